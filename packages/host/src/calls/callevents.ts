// What the call pipeline tells about its calls, to whoever listens: one record per call for the
// call log (the `/robot_bridge/calls` topic), each successful call's response (the Foxglove
// channels), and, with introspection on (`robot bridge --introspect`), the service events of
// REP-2012 with a gid per client. It makes no call itself: calls/pipeline.ts hands it each one.
import type { ServiceError, ErrorCode } from "../client/errors"
import type { ServiceDescriptor } from "../runtime/types"

/** Who is calling, for the call log and for sharing the robot between clients. */
export interface Caller {
  via: string
  client: string
  /** Left out of the call log (the bridge's own polling). */
  quiet?: boolean
  /**
   * The client as a key (its connection object): the robot's window of calls is shared fairly
   * between owners (CallOptions.owner); calls without one are one owner together.
   */
  owner?: object
}

/** One line of the call log (the `/robot_bridge/calls` topic). */
export interface CallRecord {
  /** ms since the epoch */
  time: number
  /** front end: `ws` (rosbridge), `http`, `foxglove`, `cli` */
  via: string
  /** the client, as the front end names it (an address, `client 3`) */
  client: string
  service: string
  /** full service type, "" when the call failed before the type was known */
  type: string
  ms: number
  ok: boolean
  code: ErrorCode | ""
  message: string
}

/** A successful call's response, decoded lazily (the Foxglove channels read pictures and state). */
export interface CallResult {
  service: string
  type: ServiceDescriptor<any, any>
  response(): unknown
}

/**
 * One service event (REP-2012) as the bridge publishes it on `<service>/_service_event`, JSON-ready:
 * the `<pkg>/srv/<Name>_Event` message. The bridge is the client of the robot's services, so it
 * tells REQUEST_SENT (with the request) and RESPONSE_RECEIVED (with the response); the robot itself
 * publishes nothing.
 */
export interface ServiceEvent {
  /** the service, `/add_two_ints` (the topic is `${service}/_service_event`) */
  service: string
  /** the event's type, `example_interfaces/srv/AddTwoInts_Event` */
  type: string
  msg: {
    info: { event_type: number; stamp: { sec: number; nanosec: number }; client_gid: number[]; sequence_number: number }
    request: unknown[]
    response: unknown[]
  }
}

/** service_msgs/msg/ServiceEventInfo's event types the bridge publishes (it is the client side). */
export const REQUEST_SENT = 0
export const RESPONSE_RECEIVED = 3
/** The suffix of a service's event topic. */
export const SERVICE_EVENT_SUFFIX = "/_service_event"

/** How a call ended, as the call log tells it (CallPipeline's CallOutcome). */
export interface Ended {
  ok: boolean
  error?: ServiceError
  /** the service's descriptor, once it was resolved */
  type?: ServiceDescriptor<any, any>
}

interface EventClient {
  gid: number[]
  seq: number
}

export class CallEvents {
  /**
   * Service introspection (`robot bridge --introspect`): off, no event is made and no request is
   * decoded for it. Each client's gid and request count, by its connection (Caller.owner) or, for
   * callers without one, by `via client`.
   */
  introspect = false
  private readonly callListeners = new Set<(rec: CallRecord) => void>()
  private readonly resultListeners = new Set<(res: CallResult) => void>()
  private readonly eventListeners = new Set<(ev: ServiceEvent) => void>()
  private readonly gidsByOwner = new WeakMap<object, EventClient>()
  private readonly gidsByName = new Map<string, EventClient>()
  private nextGid = 1

  /** `log`: a failed call's line, and a listener that threw. */
  constructor(private readonly log: (line: string) => void = () => {}) {}

  /** Fires once per call (rosapi calls excepted), whatever the front end. */
  onCall(listener: (rec: CallRecord) => void): () => void {
    this.callListeners.add(listener)
    return () => this.callListeners.delete(listener)
  }

  /** Fires after each successful robot call with its response. */
  onResult(listener: (res: CallResult) => void): () => void {
    this.resultListeners.add(listener)
    return () => this.resultListeners.delete(listener)
  }

  /** Fires for each service event (only with `introspect`): REQUEST_SENT, then RESPONSE_RECEIVED if an answer came. */
  onServiceEvent(listener: (ev: ServiceEvent) => void): () => void {
    this.eventListeners.add(listener)
    return () => this.eventListeners.delete(listener)
  }

  /**
   * The one place every robot call passes with introspection on (callJson and callCdr, whatever the
   * front end): publishes REQUEST_SENT now and returns the function that publishes RESPONSE_RECEIVED
   * when the answer came; undefined with `introspect` off. A call that fails has no response event,
   * as in ROS 2 (the client received nothing). The bridge's own polling (`quiet`: the Foxglove state
   * channel) is left out, as from the call log: it is no client's call, and would bury theirs.
   */
  eventOf(caller: Caller, service: string, serviceType: string, request: () => unknown): ((response: () => unknown) => void) | undefined {
    if (!this.introspect || caller.quiet) return undefined
    const c = this.eventClient(caller)
    const seq = ++c.seq
    const type = `${serviceType}_Event`
    const emit = (event_type: number, req: unknown[], res: unknown[]) => {
      const ms = Date.now()
      const ev: ServiceEvent = {
        service,
        type,
        msg: { info: { event_type, stamp: { sec: Math.floor(ms / 1000), nanosec: (ms % 1000) * 1_000_000 }, client_gid: c.gid, sequence_number: seq }, request: req, response: res },
      }
      for (const l of [...this.eventListeners]) {
        try {
          l(ev)
        } catch (e) {
          this.log(`a service event listener failed: ${(e as Error).message}`)
        }
      }
    }
    if (this.eventListeners.size > 0) emit(REQUEST_SENT, [request()], [])
    return (response) => {
      if (this.eventListeners.size > 0) emit(RESPONSE_RECEIVED, [], [response()])
    }
  }

  /** The client's gid, 16 bytes: a counter the bridge gives out (unique while it runs, as ROS 2 gids are per session). */
  private eventClient(caller: Caller): EventClient {
    let c = caller.owner ? this.gidsByOwner.get(caller.owner) : this.gidsByName.get(`${caller.via} ${caller.client}`)
    if (c) return c
    const gid = new Array<number>(16).fill(0)
    // "rb" (robot bridge), then the counter big-endian in the last 8 bytes
    gid[0] = 0x72
    gid[1] = 0x62
    let n = this.nextGid++
    for (let i = 15; i >= 8 && n > 0; i--, n = Math.floor(n / 256)) gid[i] = n % 256
    c = { gid, seq: 0 }
    if (caller.owner) this.gidsByOwner.set(caller.owner, c)
    else this.gidsByName.set(`${caller.via} ${caller.client}`, c)
    return c
  }

  /** The call's line in the call log (`start`: performance.now() when it began); a failure is logged too. */
  record(caller: Caller, service: string, start: number, out: Ended): void {
    const ms = Number((performance.now() - start).toFixed(2))
    if (!out.ok) this.log(`${caller.via} ${caller.client} ${service}: ${out.error?.message} (${ms} ms)`)
    if (this.callListeners.size === 0 || caller.quiet) return
    const rec: CallRecord = {
      time: Date.now(),
      via: caller.via,
      client: caller.client,
      service,
      type: out.type?.fullName ?? "",
      ms,
      ok: out.ok,
      code: out.error?.code ?? "",
      message: out.error?.detail ?? "",
    }
    for (const l of [...this.callListeners]) l(rec)
  }

  /** Hands a successful call's response to the `onResult` listeners. */
  result(res: CallResult): void {
    for (const l of [...this.resultListeners]) {
      try {
        l(res)
      } catch (e) {
        this.log(`a result listener failed: ${(e as Error).message}`)
      }
    }
  }

  /** Drops every listener. */
  close(): void {
    this.callListeners.clear()
    this.resultListeners.clear()
    this.eventListeners.clear()
  }
}
