// The transport contract of the host client over Jacdac. A RobotTransport is a factory of jacdac-ts
// transports: jacdac-ts does the Jacdac framing and device discovery, the client
// (packages/host/src/client/node.ts) adds its own call ids. (A link that carries record frames
// without Jacdac makes its own node: NodeTransport, packages/host/src/client/core.ts.)
import type { JD } from "./jacdac"

/** How to reach a device over Jacdac: the client calls `create()` once per connection. */
export interface RobotTransport {
  /** Short kind, e.g. `websocket`, `serial`, `hub`. */
  readonly kind: string
  /** Human-readable target, e.g. `ws://127.0.0.1:8081`; used in error messages. */
  readonly description: string
  /** Makes a jacdac-ts transport. Throws a clear Error when a needed package is missing. */
  create(): Promise<JD.Transport>
  /**
   * Why the last transport made did not connect, in words for the user, when the transport knows
   * (jacdac-ts says only that it did not: a serial port another program holds, or one where no
   * DeviceScript board answers). `error`: what jacdac-ts reported meanwhile, if anything.
   */
  whyNotConnected?(error: string | undefined): string | undefined
}
