// The public shape of the host client. NodeCore (client/core.ts) implements it for the nodes
// `connect` returns (JacdacNode in client/node.ts, the MQTT node in client/mqtt.ts), FleetNode
// (client/fleet.ts) for a fleet, which is also a `Fleet`; the bridge and the CLI depend only on this file.
import type { ServiceDescriptor } from "../runtime/types"

export type { ErrorCode } from "./errors"
export { ServiceError } from "./errors"

/** A service as the device lists it. */
export interface ServiceInfo {
  /** ROS name with the leading slash, e.g. `/add_two_ints`. */
  name: string
  /** Full type name, e.g. `example_interfaces/srv/AddTwoInts`. */
  type: string
  /** Type hash the device was built with (first 4 bytes of the sha256). */
  hash32: number
}

export interface CallOptions {
  /** Give up after this many milliseconds (`deadline_exceeded`). Default 10000. */
  timeoutMs?: number
  /** Abort the call (`cancelled`); the device is told to drop it. */
  signal?: AbortSignal
  /** Called as response bytes arrive: bytes received so far and the total. */
  onProgress?: (received: number, total: number) => void
  /**
   * Who asks: an opaque key compared by identity (the bridge gives each client connection's
   * object). A node shares its window of calls between owners fairly, so one owner's long queue
   * does not hold back another's calls (packages/host/src/client/calls.ts `pump`). Calls without
   * one are one owner together.
   */
  owner?: object
}

export interface Client<Req, Res> {
  readonly serviceName: string
  readonly type: ServiceDescriptor<Req, Res>
  /** Resolves when the device lists this service with a matching type; rejects with
   * `deadline_exceeded` after `timeoutMs` (default 10000), or `type_mismatch` if the hash differs. */
  waitForService(options?: { timeoutMs?: number }): Promise<void>
  /** One call. Rejects only with ServiceError. */
  call(request: Req, options?: CallOptions): Promise<Res>
}

export type NodeState = "connecting" | "connected" | "disconnected"

export interface RobotNode {
  readonly state: NodeState
  /** True once `close()` was called: every call fails `unavailable`, and the node never comes back. */
  readonly closed: boolean
  /** Fires on state changes and when the device program restarts (`restarted` true). */
  onStateChange(listener: (state: NodeState, info: { restarted: boolean }) => void): () => void
  /** Fires when the device's service list changes. */
  onServicesChanged(listener: (services: ServiceInfo[]) => void): () => void
  /** The device's services; waits for the device for up to `timeoutMs` (default 10000). */
  listServices(options?: { timeoutMs?: number }): Promise<ServiceInfo[]>
  createClient<Req, Res>(type: ServiceDescriptor<Req, Res>, serviceName: string): Client<Req, Res>
  /** Fails pending calls with `unavailable` and closes the transport. */
  close(): Promise<void>
}

/**
 * One robot of a set of robots, as a fleet (client/fleet.ts), a broker's directory
 * (client/mqttdir.ts), the bridge (`GET /api/robots`, `/robot_bridge/state`, Foxglove's metadata)
 * and the CLI see it.
 */
export interface RobotStatus {
  name: string
  /** a fleet: its node is connected; a directory: its retained presence is `online` */
  online: boolean
  /**
   * The robot's own services (`/take_picture`, without the robot's name), once it listed them; a
   * directory, which does not list, leaves it out. The bridge's JSON always has it (empty while
   * the robot is offline or has not listed) and gives each service's name and type only.
   */
  services?: { name: string; type: string }[]
}

/**
 * The live fleet: a set of robots connected in this process as one node (client/fleet.ts
 * `FleetNode`; service `/take_picture` of robot `rover1` is `/rover1/take_picture`), with their
 * presence read at once and its changes as events. Its group calls: packages/host/src/calls/group.ts
 * `groupCall`; a tool that reaches a fleet through a bridge holds a `FleetGroupApi` there instead.
 */
export interface Fleet {
  /** Every robot, online or not, in name order. */
  robots(): RobotStatus[]
  /** Fires when a robot joins, leaves, goes online or offline, or lists its services. */
  onRobotsChanged(listener: (robots: RobotStatus[]) => void): () => void
  /** Names of the robots whose name matches the glob list (`rover*`, `r?,arm[13]`), online or not, in name order. */
  matchRobots(glob: string): string[]
}
