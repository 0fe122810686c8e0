// The one call pipeline every front end uses (rosbridge, HTTP, Foxglove, and the CLI's direct
// mode): the robot's service list, cached and kept fresh; name -> type resolution; JSON requests
// checked against the type and turned into codec values; CDR requests passed through as they are;
// the rosapi discovery services; one record per call for the call log; the service events of
// introspection (REP-2012, `introspect`); and, when the node is a fleet of robots
// (packages/host/src/client/fleet.ts), their presence. It talks to the robot through a RobotNode
// (packages/host/src/client/api.ts) only.
import type { Client, Fleet, NodeState, RobotNode, RobotStatus, ServiceInfo } from "../client/api"
import { ServiceError, type ErrorCode } from "../client/errors"
import { fleetOf } from "../client/fleet"
import type { MessageDescriptor, ServiceDescriptor } from "../runtime/types"
import { fromJson, toJson, ValueError, type Binary, type JsonRules } from "./json"
import { normalizeName, splitRobotName } from "../client/names"
import { GOAL_STATUS_ARRAY, goalStatusArrayDefinitions, ROSAPI_SERVICES, serviceEventDefinitions, shortTypeName, typedefs, type ActionRegistry, type TypeRegistry } from "./rosapi"
import { actionsOf, actionWire } from "../runtime/action"
import { fullTypeName } from "../runtime/names"

/** A call as a front end hands it over. `args` is JSON (an object, or a list in field order). */
export interface CallRequest {
  service: string
  args: unknown
  timeoutMs: number
  signal?: AbortSignal
  onProgress?: (received: number, total: number) => void
  /** Call only if the service has this type (`pkg/srv/Name` or `pkg/Name`); else `type_mismatch`. */
  expectType?: string
  /** How `args` is read (calls/json.ts): rosbridge's rules by default, YAML_RULES for the CLI's. */
  rules?: JsonRules
  /** Called once the request has passed every check, as it goes to the robot (not for rosapi services). */
  onStart?: () => void
  /**
   * `args` as `checkRequest` gave it for `type` (a group call checks the request once, not in each
   * robot's call): used as it is when the service has that descriptor, else `args` is checked.
   */
  checked?: CheckedRequest
}

/** A request checked against a type: the value its codec takes. */
export interface CheckedRequest {
  type: ServiceDescriptor<any, any>
  request: unknown
}

/** What came back: the response values (JSON-ready) or the error. Never throws. */
export interface CallOutcome {
  ok: boolean
  /** The response as JSON-ready values, or the error text `<code>: <message>` when !ok. */
  values: unknown
  error?: ServiceError
  type?: ServiceDescriptor<any, any>
  /** The service's full type, once it was resolved (also when the call then failed). */
  serviceType?: string
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

/** The robot's state as the bridge publishes it (`/robot_bridge/state`, `GET /api/state`). */
export interface StateMessage {
  state: NodeState
  restarted: boolean
  restarting: boolean
  services: { name: string; type: string }[]
  /** Only when the node is a fleet: every robot, online or not, in name order (`robotEntries`). */
  robots?: RobotStatus[]
  /** Only with `restarted` on a fleet: the robot that restarted. */
  robot?: string
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

/** What changed (`onChange`). `robot` names the robot of a fleet that restarted. */
export interface ChangeEvent {
  restarted: boolean
  servicesChanged: boolean
  /** a fleet's robot list or a robot's presence changed */
  robotsChanged?: boolean
  robot?: string
}

const passthrough = <T>(desc: MessageDescriptor<T>): MessageDescriptor<any> => ({
  fullName: desc.fullName,
  hash: desc.hash,
  definitions: desc.definitions,
  encode: (bytes: Uint8Array) => bytes,
  decode: (bytes: Uint8Array) => bytes,
  defaults: () => new Uint8Array(0),
})

export class CallPipeline {
  /** The robot's services as last listed or pushed. */
  services: ServiceInfo[] = []
  /** False until a list arrived since the robot last connected. */
  haveList = false
  restarting = false
  /** Set when the node is a fleet of robots (client/fleet.ts `fleetOf`). */
  readonly fleet: Fleet | undefined
  private robotsKey = ""
  private online = new Map<string, boolean>()
  private refreshing: Promise<ServiceInfo[]> | undefined
  private readonly clients = new Map<string, { hash32: number; client: Client<any, any>; raw: Client<Uint8Array, Uint8Array> }>()
  private listGen = 0
  private lastAsked = -Infinity
  private readonly offs: (() => void)[] = []
  private readonly changeListeners = new Set<(why: ChangeEvent) => void>()
  private readonly callListeners = new Set<(rec: CallRecord) => void>()
  private readonly resultListeners = new Set<(res: CallResult) => void>()
  private readonly eventListeners = new Set<(ev: ServiceEvent) => void>()
  /**
   * Service introspection (`robot bridge --introspect`): off, no event is made and no request is
   * decoded for it. Each client's gid and request count, by its connection (Caller.owner) or, for
   * callers without one, by `via client`.
   */
  introspect = false
  private readonly gidsByOwner = new WeakMap<object, EventClient>()
  private readonly gidsByName = new Map<string, EventClient>()
  private nextGid = 1
  /** The four services each action is served as (runtime/action.ts `actionWire`), by type name. */
  private readonly actionCalls: TypeRegistry

  /**
   * `actionTypes`: the actions the bridge knows (calls/goals.ts follows their goals); their `_action/` services can
   * then be called as services too (roslib's cancelAllGoals calls `<action>/_action/cancel_goal`).
   */
  constructor(
    readonly node: RobotNode,
    readonly registry: TypeRegistry,
    private readonly log: (line: string) => void = () => {},
    readonly actionTypes: ActionRegistry = {},
  ) {
    const calls: Record<string, ServiceDescriptor<any, any>> = {}
    for (const a of Object.values(actionTypes)) for (const s of Object.values(actionWire(a))) calls[s.fullName] = s
    this.actionCalls = calls
    this.fleet = fleetOf(node)
    this.offs.push(
      node.onServicesChanged((list) => {
        this.listGen++
        this.services = list
        this.haveList = true
        this.clients.clear()
        this.emitChange(false, true)
      }),
      node.onStateChange((state, info) => {
        // a fleet names the robot behind the event (packages/host/src/client/fleet.ts)
        const robot = (info as { robot?: string }).robot
        this.restarting = state === "connecting"
        if (state !== "connected") this.haveList = false
        if (info.restarted) this.clients.clear()
        if (!this.fleet) this.log(`robot ${state}${info.restarted ? " (restarted)" : ""}`)
        else if (info.restarted) this.log(`robot ${robot ?? "?"} restarted`)
        this.emitChange(info.restarted, false, false, info.restarted ? robot : undefined)
        if (state === "connected") this.refresh(5000).catch(() => {})
      }),
    )
    const fleet = this.fleet
    if (fleet) {
      const now = this.robotEntries() ?? []
      this.robotsKey = robotsKey(now)
      this.online = new Map(now.map((r) => [r.name, r.online]))
      this.offs.push(
        fleet.onRobotsChanged(() => {
          // a fleet tells the same news more than once (robots, then services): pass on what differs
          const now = this.robotEntries() ?? []
          const k = robotsKey(now)
          if (k === this.robotsKey) return
          for (const r of now) if (this.online.get(r.name) !== r.online) this.log(`robot ${r.name} ${r.online ? "online" : "offline"}`)
          for (const n of this.online.keys()) if (!now.some((r) => r.name === n)) this.log(`robot ${n} left`)
          this.online = new Map(now.map((r) => [r.name, r.online]))
          this.robotsKey = k
          this.emitChange(false, false, true)
        }),
      )
    }
    if (node.state === "connected") this.refresh(5000).catch(() => {})
  }

  /**
   * The fleet's robots (name order) as the bridge shows them, `services` always there (empty while
   * a robot is offline or has not listed) with names and types only; undefined for a single robot.
   */
  robotEntries(): RobotStatus[] | undefined {
    return this.fleet?.robots().map((r) => ({ name: r.name, online: r.online, services: (r.services ?? []).map((s) => ({ name: s.name, type: s.type })) }))
  }

  /** Fires on every robot state change, restart and service list change, and a fleet's presence changes. */
  onChange(listener: (why: ChangeEvent) => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

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

  /** `robot`: the fleet's robot that restarted (with `restarted`). */
  stateMessage(restarted = false, robot?: string): StateMessage {
    const m: StateMessage = {
      state: this.node.state,
      restarted,
      restarting: this.restarting,
      services: this.services.map((s) => ({ name: s.name, type: s.type })),
    }
    const robots = this.robotEntries()
    if (robots) m.robots = robots
    if (restarted && robot !== undefined) m.robot = robot
    return m
  }

  /** Asks the robot for its list (an older answer never overwrites a newer push). */
  async refresh(timeoutMs: number): Promise<ServiceInfo[]> {
    const gen = this.listGen
    const ask = this.node.listServices({ timeoutMs })
    this.refreshing = ask
    let list: ServiceInfo[]
    try {
      list = await ask
    } finally {
      if (this.refreshing === ask) this.refreshing = undefined
    }
    if (gen !== this.listGen) return this.services
    const changed = key(list) !== key(this.services)
    this.services = list
    this.haveList = true
    // only a list that differs is news (a restart's state message must not be followed by a plain one)
    if (changed) this.emitChange(false, true)
    return list
  }

  /** The list, asking the robot first if none arrived since it connected. */
  async list(): Promise<ServiceInfo[]> {
    if (!this.haveList && this.node.state === "connected") await this.refresh(5000).catch(() => {})
    return this.services
  }

  /** The robot's actions (each `<name>/_action/send_goal` listed), `/rover1/fibonacci` on a fleet, with their types. */
  actions(): { name: string; type: string }[] {
    return actionsOf(this.services)
  }

  /** The descriptor of a service type (`pkg/srv/Name`, or an action's part), or undefined when the bridge has none. */
  descriptor(typeName: string): ServiceDescriptor<any, any> | undefined {
    return Object.hasOwn(this.registry, typeName) ? this.registry[typeName] : Object.hasOwn(this.actionCalls, typeName) ? this.actionCalls[typeName] : undefined
  }

  /**
   * `args` checked against service type `typeName` by `rules` (requestFromJson), for a call with
   * `checked`; undefined when the bridge has no descriptor of the type. Throws `invalid_argument`.
   */
  checkRequest(typeName: string, args: unknown, service: string, rules?: JsonRules): CheckedRequest | undefined {
    const type = this.descriptor(typeName)
    return type && { type, request: requestFromJson(type, args, service, rules) }
  }

  /** The service and its descriptor; throws ServiceError (unavailable, unimplemented). */
  async resolve(service: string): Promise<{ info: ServiceInfo; type: ServiceDescriptor<any, any> }> {
    const info = await this.locate(service)
    const type = this.descriptor(info.type)
    if (!type) throw new ServiceError("unimplemented", `the bridge has no definition of ${info.type} (its .srv is not under the project's interface roots, devs.json "interfaces")`, info.name)
    return { info, type }
  }

  /** The service as the robot lists it, whatever its type; throws ServiceError (unavailable, unimplemented). */
  async locate(service: string): Promise<ServiceInfo> {
    const name = normalizeName(service)
    // a fleet's robot that is offline or unknown: say so at once (the list cannot have it)
    if (this.fleet) this.checkRobot(name)
    let info = this.services.find((x) => x.name === name)
    if (!info && this.node.state === "connected") {
      // the list may be stale (first call after a restart, a robot that just came): ask once, or
      // wait for the question already asked (the calls of a group call come together)
      let asking = this.refreshing
      if (!asking && performance.now() - this.lastAsked > 1000) {
        this.lastAsked = performance.now()
        asking = this.refresh(2000)
      }
      try {
        if (asking) info = (await asking).find((x) => x.name === name) ?? this.services.find((x) => x.name === name)
      } catch {
        // unimplemented or unavailable below
      }
    }
    if (!info) {
      if (this.fleet) this.checkRobot(name)
      if (this.node.state !== "connected") throw new ServiceError("unavailable", `the robot is ${this.node.state}; try again when it is connected`, name)
      if (this.fleet) {
        const split = splitRobotName(name)
        if (!split) {
          const first = this.fleet.robots()[0]?.name ?? "rover1"
          throw new ServiceError("unimplemented", `no service ${name}: this bridge serves several robots, name one (/${first}${name})`, name)
        }
        throw new ServiceError("unimplemented", `no service ${split.service} on robot ${split.robot} (robot service list shows what there is)`, name)
      }
      throw new ServiceError("unimplemented", `no service ${name} on the robot (robot service list shows what there is)`, name)
    }
    return info
  }

  /** Throws `unavailable` when `name` belongs to a robot of the fleet that is offline (`isRobotOffline`) or unknown. */
  private checkRobot(name: string) {
    const split = splitRobotName(name)
    if (!split) return
    const robots = this.fleet!.robots()
    const r = robots.find((x) => x.name === split.robot)
    if (!r) {
      const known = robots.map((x) => x.name)
      throw new ServiceError("unavailable", `no robot ${split.robot}${known.length ? ` (robots: ${known.join(", ")})` : " (no robot has appeared yet)"}`, name)
    }
    if (!r.online) throw new ServiceError("unavailable", `robot ${split.robot} is offline; try again when it is back`, name)
  }

  private entry(info: ServiceInfo, type: ServiceDescriptor<any, any>) {
    let e = this.clients.get(info.name)
    if (!e || e.hash32 !== info.hash32) {
      const raw: ServiceDescriptor<Uint8Array, Uint8Array> = { ...type, request: passthrough(type.request), response: passthrough(type.response) }
      e = { hash32: info.hash32, client: this.node.createClient(type, info.name), raw: this.node.createClient(raw, info.name) }
      this.clients.set(info.name, e)
    }
    return e
  }

  /**
   * One call with a JSON request; the response as JSON-ready values (`binary`: uint8[] as base64
   * strings or as bytes). rosapi services are answered here. Never throws.
   */
  async callJson(req: CallRequest, binary: Binary, caller: Caller): Promise<CallOutcome> {
    const name = normalizeName(req.service)
    const start = performance.now()
    let out: CallOutcome
    let serviceType: string | undefined
    try {
      if (name in ROSAPI_SERVICES) return { ok: true, values: await this.rosapi(name, req.args) }
      const { info, type } = await this.resolve(name)
      serviceType = info.type
      if (req.expectType !== undefined) {
        const want = fullTypeName(req.expectType, "srv")
        if (want !== info.type) throw new ServiceError("type_mismatch", `${name} is ${info.type}, not ${want}`, name)
      }
      const request = req.checked?.type === type ? req.checked.request : requestFromJson(type, req.args, name, req.rules)
      const event = this.introspect && !caller.quiet ? this.eventOf(caller, name, info.type, () => toJson(type.request, request, "base64")) : undefined
      req.onStart?.()
      const res = await this.entry(info, type).client.call(request, { timeoutMs: req.timeoutMs, signal: req.signal, onProgress: req.onProgress, owner: caller.owner })
      out = { ok: true, values: toJson(type.response, res, binary), type }
      event?.(() => (binary === "base64" ? out.values : toJson(type.response, res, "base64")))
      this.emitResult({ service: name, type, response: () => res })
    } catch (e) {
      out = failure(e, name)
    }
    if (serviceType !== undefined) out.serviceType = serviceType
    this.record(caller, name, start, out)
    return out
  }

  /**
   * One call with a request already encoded (ROS 2 CDR, as the robot takes it): the bytes go to the
   * robot as they are, after a decode that checks them; the response bytes come back as the robot
   * sent them. Never throws.
   */
  async callCdr(
    service: string,
    request: Uint8Array,
    options: { timeoutMs: number; signal?: AbortSignal },
    caller: Caller,
  ): Promise<{ ok: true; bytes: Uint8Array; type: ServiceDescriptor<any, any> } | { ok: false; error: ServiceError }> {
    const name = normalizeName(service)
    const start = performance.now()
    try {
      const { info, type } = await this.resolve(name)
      let decodedRequest: unknown
      try {
        decodedRequest = type.request.decode(request)
      } catch (e) {
        throw new ServiceError("invalid_argument", `the CDR request is not a valid ${type.request.fullName}: ${(e as Error).message}`, name)
      }
      const event = this.introspect && !caller.quiet ? this.eventOf(caller, name, info.type, () => toJson(type.request, decodedRequest, "base64")) : undefined
      const bytes = await this.entry(info, type).raw.call(request, { ...options, owner: caller.owner })
      event?.(() => toJson(type.response, type.response.decode(bytes), "base64"))
      this.record(caller, name, start, { ok: true, values: undefined, type })
      let decoded: unknown
      this.emitResult({ service: name, type, response: () => (decoded ??= type.response.decode(bytes)) })
      return { ok: true, bytes, type }
    } catch (e) {
      const out = failure(e, name)
      this.record(caller, name, start, out)
      return { ok: false, error: out.error! }
    }
  }

  /**
   * The one place every robot call passes with introspection on (callJson and callCdr, whatever the
   * front end): publishes REQUEST_SENT now and returns the function that publishes RESPONSE_RECEIVED
   * when the answer came. A call that fails has no response event, as in ROS 2 (the client
   * received nothing). The bridge's own polling (`quiet`: the Foxglove state channel) is left out,
   * as from the call log: it is no client's call, and would bury theirs.
   */
  private eventOf(caller: Caller, service: string, serviceType: string, request: () => unknown): (response: () => unknown) => void {
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

  private record(caller: Caller, service: string, start: number, out: CallOutcome) {
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

  private emitResult(res: CallResult) {
    for (const l of [...this.resultListeners]) {
      try {
        l(res)
      } catch (e) {
        this.log(`a result listener failed: ${(e as Error).message}`)
      }
    }
  }

  private emitChange(restarted: boolean, servicesChanged: boolean, robotsChanged = false, robot?: string) {
    const why: ChangeEvent = { restarted, servicesChanged }
    if (robotsChanged) why.robotsChanged = true
    if (robot !== undefined) why.robot = robot
    for (const l of [...this.changeListeners]) l(why)
  }

  private async rosapi(name: string, args: unknown): Promise<unknown> {
    const a = (typeof args === "object" && args !== null && !Array.isArray(args) ? args : {}) as Record<string, unknown>
    const str = (k: string): string => {
      const v = a[k]
      if (typeof v !== "string") throw new ServiceError("invalid_argument", `${name}: '${k}' must be a string`, name)
      return v
    }
    const registry = this.registry
    switch (name) {
      case "/rosapi/services": {
        // each service's type beside its name (an extension, as /rosapi/topics gives `types`): a
        // listing with types is one round trip, not one more per service
        const all = [...(await this.list()).map((s) => ({ name: s.name, type: s.type })), ...Object.entries(ROSAPI_SERVICES).map(([name, type]) => ({ name, type }))]
        all.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
        return { services: all.map((s) => s.name), types: all.map((s) => s.type) }
      }
      case "/rosapi/service_type": {
        const n = normalizeName(str("service"))
        return { type: ROSAPI_SERVICES[n] ?? (await this.list()).find((s) => s.name === n)?.type ?? "" }
      }
      case "/rosapi/services_for_type": {
        const t = fullTypeName(str("type"), "srv")
        return { services: (await this.list()).filter((s) => s.type === t).map((s) => s.name).sort() }
      }
      case "/rosapi/service_request_details":
      case "/rosapi/service_response_details": {
        const t = registry[fullTypeName(str("type"), "srv")]
        if (!t) return { typedefs: [] }
        return { typedefs: typedefs((name.endsWith("request_details") ? t.request : t.response).definitions) }
      }
      case "/rosapi/message_details": {
        const want = str("type")
        const sets = Object.values(registry).flatMap((t) => [t.request.definitions, t.response.definitions])
        // the actions' messages too: goal, result, feedback, `<A>_FeedbackMessage`, the status array
        for (const a of Object.values(this.actionTypes)) sets.push(a.goal.definitions, a.result.definitions, a.feedback.definitions, a.feedbackMessage.definitions, goalStatusArrayDefinitions(a))
        // with introspection, each service's `<Name>_Event` (what its _service_event topic carries)
        if (this.introspect) for (const t of Object.values(registry)) sets.push(serviceEventDefinitions(t))
        for (const defs of sets) {
          const d = defs.find((x) => x.name === want || shortTypeName(x.name ?? "") === want)
          if (d) return { typedefs: typedefs([d, ...defs.filter((x) => x !== d)]) }
        }
        return { typedefs: [] }
      }
      case "/rosapi/action_servers":
        return { action_servers: actionsOf(await this.list()).map((a) => a.name).sort() }
      case "/rosapi/topics": {
        const topics = await this.topics()
        return { topics: topics.map((t) => t.topic), types: topics.map((t) => t.type) }
      }
      case "/rosapi/topic_type": {
        const n = normalizeName(str("topic"))
        return { type: (await this.topics()).find((t) => t.topic === n)?.type ?? "" }
      }
      case "/rosapi/get_time": {
        const ms = Date.now()
        return { time: { sec: Math.floor(ms / 1000), nanosec: (ms % 1000) * 1_000_000 } }
      }
    }
    throw new ServiceError("unimplemented", `${name} is not served`, name)
  }

  /**
   * The topics the robot's actions have on the bridge (`<action>/_action/feedback`, `<action>/_action/status`),
   * name order, with their types (`<A>_FeedbackMessage`, action_msgs/msg/GoalStatusArray), as rosapi lists topics.
   */
  async actionTopics(): Promise<{ topic: string; type: string }[]> {
    const out: { topic: string; type: string }[] = []
    for (const a of actionsOf(await this.list())) {
      out.push({ topic: `${a.name}/_action/feedback`, type: `${a.type}_FeedbackMessage` }, { topic: `${a.name}/_action/status`, type: GOAL_STATUS_ARRAY })
    }
    return out.sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0))
  }

  /**
   * The topics rosapi lists: the actions' (`actionTopics`) and, with `introspect`, each service's
   * `<service>/_service_event` (`<type>_Event`), name order.
   */
  async topics(): Promise<{ topic: string; type: string }[]> {
    const out = await this.actionTopics()
    if (this.introspect) for (const s of await this.list()) out.push({ topic: `${s.name}${SERVICE_EVENT_SUFFIX}`, type: `${s.type}_Event` })
    return out.sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0))
  }

  /** Stops listening to the node (the node itself stays open). */
  close(): void {
    for (const off of this.offs) off()
    this.changeListeners.clear()
    this.callListeners.clear()
    this.resultListeners.clear()
    this.eventListeners.clear()
  }
}

/**
 * True for the error of a call to a fleet's robot that is offline (`unavailable`, "robot rover1 is
 * offline; try again when it is back"): a ServiceError's code and detail, or a group call row's error.
 */
export function isRobotOffline(e: { code: string; message: string } | undefined): boolean {
  return e?.code === "unavailable" && /^robot \S+ is offline;/.test(e.message)
}

interface EventClient {
  gid: number[]
  seq: number
}

const robotsKey = (robots: RobotStatus[] | undefined) => JSON.stringify(robots ?? [])
const key = (list: ServiceInfo[]) => list.map((s) => `${s.name}|${s.type}|${s.hash32}`).join(",")

function failure(e: unknown, name: string): CallOutcome {
  const err = e instanceof ServiceError ? e : new ServiceError("internal", (e as Error)?.message ?? String(e), name)
  return { ok: false, values: err.message, error: err }
}

/**
 * The request check of every call (the front ends' and the CLI's through `callJson`, a group
 * call's through `checkRequest`): a JSON request, an object or a list in field order, turned into
 * the value the type's codec takes by `rules`; `invalid_argument` naming the field if not.
 */
export function requestFromJson(type: ServiceDescriptor<any, any>, args: unknown, service?: string, rules?: JsonRules): unknown {
  try {
    return fromJson(type.request, positional(type, args), rules)
  } catch (e) {
    if (e instanceof ValueError) throw new ServiceError("invalid_argument", e.message, service)
    throw e
  }
}

/** rosbridge also takes args as a list, in field order. */
function positional(type: ServiceDescriptor<any, any>, args: unknown): unknown {
  if (!Array.isArray(args)) return args ?? {}
  const fields = (type.request.definitions[0]?.definitions ?? []).filter((f) => !f.isConstant)
  if (args.length > fields.length) throw new ServiceError("invalid_argument", `${args.length} arguments given, ${type.fullName} request has ${fields.length} fields`)
  return Object.fromEntries(args.map((v, i) => [fields[i]!.name, v]))
}
