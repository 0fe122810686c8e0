// Device side of ROS 2-style services: `createService(Type, "name", handler)` like rclpy's
// create_service. All services share one Jacdac server (spec `services/rosservices.md`); the record
// protocol v2 (docs/protocol.md) is implemented in rpc/: the call table (calls.ts), the sender
// (sender.ts), the runtime under the links (runtime.ts) and the Jacdac link (server.ts, started
// here), with constants generated into gen/wire.ts. The MQTT link (net/mqtt.ts) is started by the
// program with `startMqttLink()`: a firmware that does not call it carries none of its code.
//
// Guarantees (each proven by a test named in docs/protocol.md): a call's handler runs at most once
// (per-session sequence numbers, never a time window); every call is answered (a response or a
// status + message) unless the caller gave up; no exception escapes a handler; device memory for
// calls is bounded by `budget` bytes whatever arrives; a failing call or stream fails only itself;
// a handler that never returns is released at the caller's deadline.
import { Concurrency, Entry, ServicesConfig, announce, configure, fullName, links, listChanged } from "../rpc/core"
import { startJacdacLink } from "../rpc/server"
import { calls, entries, inFlight, sessions, used } from "../rpc/calls"
import { CallState } from "../gen/wire"
import type { ServiceType } from "../cdr/cdr"

export { CallContext } from "../rpc/core"
export { PROTOCOL_VERSION } from "../gen/wire"
import { CallContext } from "../rpc/core"

export type { ServicesConfig } from "../rpc/core"

/**
 * Sets the limits of the service runtime. Call before or after `createService`; hosts learn the
 * new limits from the next HELLO. Allocates nothing.
 */
export function configureServices(c: ServicesConfig) {
    configure(c)
    announce()
}

/** Options of one service. */
export interface ServiceOptions {
    /**
     * How calls to this service overlap: unset (default: each call runs at once in its own fiber),
     * `serial` (one at a time, the others wait in arrival order within the budget), or `latest` (a
     * new call cancels the running one, whose context turns `cancelled`, and runs after it returns;
     * calls still waiting are answered `Cancelled` "replaced by a newer call"). `serial` and
     * `latest` are imported from this package: a firmware that uses neither carries neither.
     */
    concurrency?: Concurrency
}

/**
 * Serves `handler` as the ROS service `name` (a leading `/` is added when missing) of type `type`,
 * like rclpy's `create_service`. The handler gets the request and a {@link CallContext} (deadline,
 * `cancelled`, `sleep`). Throw `ServiceError(code, message)` to answer with that code; any other
 * exception is answered `Internal` with its message. Allocates one small record per service; starts
 * the shared Jacdac server and its sender fiber on first use. Throws if `name` is already served.
 */
export function createService<Req, Res>(
    type: ServiceType<Req, Res>,
    name: string,
    handler: (req: Req, ctx: CallContext) => Promise<Res> | Res,
    options?: ServiceOptions
) {
    const n = fullName(name)
    for (let i = 0; i < entries.length; i++) if (entries[i].name === n) throw new Error("service " + n + " already exists")
    let policy: Concurrency
    if (options) policy = options.concurrency
    const e: Entry = { name: n, type, handler: handler as any, policy, queue: [] }
    entries.push(e)
    startJacdacLink()
    listChanged()
}

/** Stops serving `name`; calls already running finish. Returns false if it was not served. */
export function removeService(name: string): boolean {
    const n = fullName(name)
    const es = entries
    for (let i = 0; i < es.length; ++i)
        if (es[i].name === n) {
            es.insert(i, -1)
            listChanged()
            return true
        }
    return false
}

/** Counters for diagnostics and the benchmark. */
export function serviceStats(): { tracked: number; inFlight: number; budgetUsed: number; sessions: number; dropped: number } {
    let running = 0
    for (const c of calls) if (c.state === CallState.Running) running++
    let dropped = 0
    for (const l of links) dropped += l.dropped
    return { tracked: calls.length, inFlight: inFlight(), budgetUsed: used, sessions: sessions.length, dropped }
}
