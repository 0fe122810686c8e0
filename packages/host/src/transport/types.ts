// The transport contracts of the host client. A RobotTransport is a factory of jacdac-ts
// transports: jacdac-ts does the Jacdac framing and device discovery, the client
// (packages/host/src/client/node.ts) adds its own call ids. A NodeTransport carries record frames without Jacdac
// (MQTT: packages/host/src/client/mqtt.ts) and makes its own node.
import type { JD } from "./jacdac"
import type { NodeOptions, RecordNode } from "../client/core"

/** How to reach a device over Jacdac: the client calls `create()` once per connection. */
export interface RobotTransport {
  /** Short kind, e.g. `websocket`, `serial`, `hub`. */
  readonly kind: string
  /** Human-readable target, e.g. `ws://127.0.0.1:8081`; used in error messages. */
  readonly description: string
  /** Makes a jacdac-ts transport. Throws a clear Error when a needed package is missing. */
  create(): Promise<JD.Transport>
}

/** How to reach a robot without Jacdac (e.g. `mqttTransport`): `connect` hands it the node options. */
export interface NodeTransport<N extends RecordNode = RecordNode> {
  /** Short kind, e.g. `mqtt`. */
  readonly kind: string
  /** Human-readable target, e.g. `robot rover1 at mqtt://127.0.0.1:1883`. */
  readonly description: string
  /** Connects and makes the node; rejects with ServiceError `unavailable` naming the target. */
  connectNode(options: NodeOptions & { connectTimeoutMs?: number }): Promise<N>
}
