// The one call pipeline every front end uses (rosbridge, HTTP, Foxglove, and the CLI's direct
// mode): a service name resolved to its type, a JSON request checked and turned into codec values
// (or a CDR request passed through as it is), the call made through a RobotNode
// (packages/host/src/client/api.ts) only, and its outcome. It composes the parts that each do one
// job, and keeps their methods on itself so that front ends see one object:
// - calls/servicelist.ts: the robot's service list, cached and kept fresh, its change events, and a
//   fleet's presence;
// - calls/knowntypes.ts: the types the bridge knows and the request check;
// - calls/callevents.ts: the call log, the results, and the service events of introspection;
// - calls/rosapiservices.ts: the rosapi discovery services and the topics they list.
import type { Client, Fleet, RobotNode, RobotStatus, ServiceInfo } from "../client/api"
import { ServiceError } from "../client/errors"
import type { MessageDescriptor, ServiceDescriptor, ServiceTypes } from "../runtime/types"
import type { ActionTypes } from "../runtime/action"
import { normalizeName } from "../client/names"
import { timerMs } from "../client/calls"
import { fullTypeName } from "../runtime/names"
import { toJson, type Binary, type JsonRules } from "./json"
import { CallEvents, type Caller, type CallRecord, type CallResult, type ServiceEvent } from "./callevents"
import { KnownTypes, requestFromJson, type CheckedRequest } from "./knowntypes"
import { actionTopics, answerRosapi, rosapiTopics, ROSAPI_SERVICES } from "./rosapiservices"
import { ServiceList, type ChangeEvent, type StateMessage } from "./servicelist"

export { REQUEST_SENT, RESPONSE_RECEIVED, SERVICE_EVENT_SUFFIX, type Caller, type CallRecord, type CallResult, type ServiceEvent } from "./callevents"
export { requestFromJson, type CheckedRequest } from "./knowntypes"
export { isRobotOffline, type ChangeEvent, type StateMessage } from "./servicelist"

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

const passthrough = <T>(desc: MessageDescriptor<T>): MessageDescriptor<any> => ({
  fullName: desc.fullName,
  hash: desc.hash,
  definitions: desc.definitions,
  encode: (bytes: Uint8Array) => bytes,
  decode: (bytes: Uint8Array) => bytes,
  defaults: () => new Uint8Array(0),
})

export class CallPipeline {
  /** The robot's service list and a fleet's presence. */
  private readonly serviceList: ServiceList
  private readonly types: KnownTypes
  private readonly events: CallEvents
  /** A client per service (typed, and raw for CDR), made anew when the list is pushed or the robot restarts. */
  private readonly clients = new Map<string, { hash32: number; client: Client<any, any>; raw: Client<Uint8Array, Uint8Array> }>()

  /**
   * `actionTypes`: the actions the bridge knows (calls/goals.ts follows their goals); their `_action/` services can
   * then be called as services too (roslib's cancelAllGoals calls `<action>/_action/cancel_goal`).
   */
  constructor(
    readonly node: RobotNode,
    readonly registry: ServiceTypes,
    log: (line: string) => void = () => {},
    readonly actionTypes: ActionTypes = {},
  ) {
    this.types = new KnownTypes(registry, actionTypes)
    this.events = new CallEvents(log)
    this.serviceList = new ServiceList(node, log, () => this.clients.clear())
  }

  /** The robot's services as last listed or pushed. */
  get services(): ServiceInfo[] {
    return this.serviceList.services
  }

  /** False until a list arrived since the robot last connected. */
  get haveList(): boolean {
    return this.serviceList.haveList
  }

  get restarting(): boolean {
    return this.serviceList.restarting
  }

  /** Set when the node is a fleet of robots (client/fleet.ts `fleetOf`). */
  get fleet(): Fleet | undefined {
    return this.serviceList.fleet
  }

  /** Service introspection (`robot bridge --introspect`, calls/callevents.ts): off, no event is made. */
  get introspect(): boolean {
    return this.events.introspect
  }

  set introspect(on: boolean) {
    this.events.introspect = on
  }

  /** calls/servicelist.ts `robotEntries`: the fleet's robots, undefined for a single robot. */
  robotEntries(): RobotStatus[] | undefined {
    return this.serviceList.robotEntries()
  }

  /** Fires on every robot state change, restart and service list change, and a fleet's presence changes. */
  onChange(listener: (why: ChangeEvent) => void): () => void {
    return this.serviceList.onChange(listener)
  }

  /** Fires once per call (rosapi calls excepted), whatever the front end. */
  onCall(listener: (rec: CallRecord) => void): () => void {
    return this.events.onCall(listener)
  }

  /** Fires after each successful robot call with its response. */
  onResult(listener: (res: CallResult) => void): () => void {
    return this.events.onResult(listener)
  }

  /** Fires for each service event (only with `introspect`): REQUEST_SENT, then RESPONSE_RECEIVED if an answer came. */
  onServiceEvent(listener: (ev: ServiceEvent) => void): () => void {
    return this.events.onServiceEvent(listener)
  }

  /** `robot`: the fleet's robot that restarted (with `restarted`). */
  stateMessage(restarted = false, robot?: string): StateMessage {
    return this.serviceList.stateMessage(restarted, robot)
  }

  /** Asks the robot for its list (an older answer never overwrites a newer push). */
  refresh(timeoutMs: number): Promise<ServiceInfo[]> {
    return this.serviceList.refresh(timeoutMs)
  }

  /** The list, asking the robot first if none arrived since it connected. */
  list(): Promise<ServiceInfo[]> {
    return this.serviceList.list()
  }

  /** The robot's actions (each `<name>/_action/send_goal` listed), `/rover1/fibonacci` on a fleet, with their types. */
  actions(): { name: string; type: string }[] {
    return this.serviceList.actions()
  }

  /** The descriptor of a service type (`pkg/srv/Name`, or an action's part), or undefined when the bridge has none. */
  descriptor(typeName: string): ServiceDescriptor<any, any> | undefined {
    return this.types.descriptor(typeName)
  }

  /**
   * `args` checked against service type `typeName` by `rules` (requestFromJson), for a call with
   * `checked`; undefined when the bridge has no descriptor of the type. Throws `invalid_argument`.
   */
  checkRequest(typeName: string, args: unknown, service: string, rules?: JsonRules): CheckedRequest | undefined {
    return this.types.checkRequest(typeName, args, service, rules)
  }

  /** The service and its descriptor; throws ServiceError (unavailable, unimplemented). */
  async resolve(service: string): Promise<{ info: ServiceInfo; type: ServiceDescriptor<any, any> }> {
    const info = await this.locate(service)
    const type = this.descriptor(info.type)
    if (!type) throw new ServiceError("unimplemented", `the bridge has no definition of ${info.type}: its .srv was not under the project's interface roots (devs.json "interfaces") when the bridge started; a type added since needs the bridge restarted`, info.name)
    return { info, type }
  }

  /** The service as the robot lists it, whatever its type; throws ServiceError (unavailable, unimplemented). */
  locate(service: string): Promise<ServiceInfo> {
    return this.serviceList.locate(service)
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
      if (name in ROSAPI_SERVICES) return { ok: true, values: await answerRosapi(this, name, req.args) }
      const { info, type } = await this.resolve(name)
      serviceType = info.type
      if (req.expectType !== undefined) {
        const want = fullTypeName(req.expectType, "srv")
        if (want !== info.type) throw new ServiceError("type_mismatch", `${name} is ${info.type}, not ${want}`, name)
      }
      const request = req.checked?.type === type ? req.checked.request : requestFromJson(type, req.args, name, req.rules)
      const event = this.events.eventOf(caller, name, info.type, () => toJson(type.request, request, "base64"))
      req.onStart?.()
      const res = await this.entry(info, type).client.call(request, { timeoutMs: timerMs(req.timeoutMs), signal: req.signal, onProgress: req.onProgress, owner: caller.owner })
      out = { ok: true, values: toJson(type.response, res, binary), type }
      event?.(() => (binary === "base64" ? out.values : toJson(type.response, res, "base64")))
      this.events.result({ service: name, type, response: () => res })
    } catch (e) {
      out = failure(e, name)
    }
    if (serviceType !== undefined) out.serviceType = serviceType
    this.events.record(caller, name, start, out)
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
      const event = this.events.eventOf(caller, name, info.type, () => toJson(type.request, decodedRequest, "base64"))
      const bytes = await this.entry(info, type).raw.call(request, { ...options, timeoutMs: timerMs(options.timeoutMs), owner: caller.owner })
      event?.(() => toJson(type.response, type.response.decode(bytes), "base64"))
      this.events.record(caller, name, start, { ok: true, type })
      let decoded: unknown
      this.events.result({ service: name, type, response: () => (decoded ??= type.response.decode(bytes)) })
      return { ok: true, bytes, type }
    } catch (e) {
      const out = failure(e, name)
      this.events.record(caller, name, start, out)
      return { ok: false, error: out.error! }
    }
  }

  /**
   * The topics the robot's actions have on the bridge (`<action>/_action/feedback`, `<action>/_action/status`),
   * name order, with their types, as rosapi lists topics (calls/rosapiservices.ts).
   */
  actionTopics(): Promise<{ topic: string; type: string }[]> {
    return actionTopics(this)
  }

  /** The topics rosapi lists: the actions' and, with `introspect`, each service's event topic, name order. */
  topics(): Promise<{ topic: string; type: string }[]> {
    return rosapiTopics(this)
  }

  /** Stops listening to the node (the node itself stays open). */
  close(): void {
    this.serviceList.close()
    this.events.close()
  }
}


function failure(e: unknown, name: string): CallOutcome {
  const err = e instanceof ServiceError ? e : new ServiceError("internal", (e as Error)?.message ?? String(e), name)
  return { ok: false, values: err.message, error: err }
}
