// The rosbridge v2 front end: call_service -> service_response (fragments, CBOR, progress), auth,
// set_level, actions (send_action_goal -> action_feedback, action_result; cancel_action_goal; the
// `<action>/_action/status` and `/feedback` topics), the services' `<service>/_service_event` topics
// (with --introspect), and the bridge's own topics (robot state, call log). Calls go through the
// shared pipeline, goals through the shared tracker (calls/goals.ts); limits and tokens through
// the guard. See docs/bridge.md.
import type { RawData, WebSocket } from "ws"
import { ServiceError } from "../client/errors"
import type { Guard } from "./guard"
import type { Output } from "./output"
import { namedRules, parseJson, stringifyJson } from "../calls/json"
import { normalizeName, splitRobotName } from "../client/names"
import { SERVICE_EVENT_SUFFIX, type CallPipeline } from "../calls/pipeline"
import type { GoalTracker, TrackedGoal } from "../calls/goals"
import { GoalStatus } from "../client/action"

/** Topics the bridge itself publishes (subscribe with the rosbridge `subscribe` op). */
export const STATE_TOPIC = "/robot_bridge/state"
export const CALLS_TOPIC = "/robot_bridge/calls"

/** An action's topics: `<action>/_action/status` (GoalStatusArray) and `<action>/_action/feedback` (`<A>_FeedbackMessage`). */
const ACTION_TOPIC = /^(.+)\/_action\/(status|feedback)$/

// cbor2 is the CBOR library roslibjs itself decodes with. It is an ES module: Node >= 20.19 loads it
// from CommonJS with require(). Uint8Array becomes a CBOR byte string, bigint an exact integer.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { encode: cborEncode } = require("cbor2") as { encode(v: unknown): Uint8Array }
const cbor = { encode: (v: unknown): Buffer => Buffer.from(cborEncode(v)) }

/** A connection as the pipeline's caller: its calls are logged as its and share the robot fairly as its. */
const callerOf = (c: Conn) => ({ via: "ws", client: `client ${c.id}`, owner: c })

interface Conn {
  id: number
  ws: WebSocket
  address: string
  authed: boolean
  calls: Set<AbortController>
  /** the goals this client sent, by the send_action_goal id (what cancel_action_goal names) */
  goals: Map<string, ConnGoal>
  topics: Set<string>
  statusLevel: "none" | "error" | "warning" | "info"
}

/** A goal of one connection: `goal` once the robot accepted it; `cancel` asked before that. */
interface ConnGoal {
  goal?: TrackedGoal
  cancel: boolean
  off?: () => void
}

export interface RosbridgeOptions {
  pipeline: CallPipeline
  goals: GoalTracker
  guard: Guard
  /** the bound on what clients that stopped reading hold (shared with the Foxglove front end) */
  output: Output
  defaultTimeoutMs: number
  maxBytes: number
  log: (line: string) => void
}

/**
 * Topics one rosbridge connection may subscribe to at once: far more than the bridge publishes for
 * a fleet dashboard (two per action and robot, one per service with --introspect), and a bound on
 * what a client that subscribes to fresh names without end makes the bridge hold.
 */
export const MAX_TOPICS_PER_CLIENT = 4096
/** The longest topic name a subscription may give (characters). */
export const MAX_TOPIC_NAME = 256

export class RosbridgeFrontEnd {
  private readonly conns = new Set<Conn>()
  private nextConn = 1
  private readonly offs: (() => void)[]
  private lastState = ""

  constructor(private readonly o: RosbridgeOptions) {
    const p = o.pipeline
    this.offs = [
      p.onChange(({ restarted, robot }) => {
        const msg = p.stateMessage(restarted, robot)
        // one robot of a fleet going away is told as a robot change then a list change: an
        // unchanged message is not sent twice (a restart always is)
        const text = stringifyJson(restarted ? p.stateMessage() : msg)
        if (!restarted && text === this.lastState) return
        this.lastState = text
        this.publish(STATE_TOPIC, msg)
      }),
      p.onCall((rec) => {
        if (!rec.service.startsWith("/rosapi/")) this.publish(CALLS_TOPIC, rec)
      }),
      // every goal the bridge follows, whichever front end sent or follows it
      o.goals.onEvent((g, e) => {
        if (e.kind === "feedback") this.publish(`${g.action}/_action/feedback`, { goal_id: { uuid: g.uuid }, feedback: e.feedback })
        else this.publish(`${g.action}/_action/status`, o.goals.statusArray(g.action))
      }),
      // service introspection: only made when the bridge runs with --introspect (pipeline.introspect)
      p.onServiceEvent((ev) => this.publish(`${ev.service}${SERVICE_EVENT_SUFFIX}`, ev.msg)),
    ]
  }

  get count(): number {
    return this.conns.size
  }

  /** Serves one accepted WebSocket; `authed` when the upgrade carried the right token (or none is needed). */
  accept(ws: WebSocket, address: string, authed: boolean): void {
    const c: Conn = { id: this.nextConn++, ws, address, authed, calls: new Set(), goals: new Map(), topics: new Set(), statusLevel: "error" }
    this.conns.add(c)
    this.o.output.add(ws, `client ${c.id}`)
    ws.on("message", (data, isBinary) => {
      try {
        this.onMessage(c, data, isBinary)
      } catch (e) {
        this.status(c, "error", `bridge error: ${(e as Error).message}`)
      }
    })
    ws.on("error", (e) => this.o.log(`client ${c.id}: ${e.message}`))
    ws.on("close", (code) => {
      if (code === 1009) this.o.log(`client ${c.id} closed: message over ${this.o.maxBytes} bytes`)
      this.conns.delete(c)
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "the client went away"))
      // its goals run on (as in ROS: a client that goes away cancels nothing); only its listening stops
      for (const g of c.goals.values()) g.off?.()
      c.goals.clear()
    })
  }

  close(): void {
    for (const off of this.offs) off()
    for (const c of this.conns) {
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "bridge closing"))
      c.ws.terminate()
    }
    this.conns.clear()
  }

  private publish(topic: string, msg: unknown) {
    let text: string | undefined
    for (const c of this.conns) {
      if (!c.topics.has(topic)) continue
      text ??= stringifyJson({ op: "publish", topic, msg })
      this.send(c, text)
    }
  }

  private send(c: Conn, data: string | Buffer) {
    this.o.output.send(c.ws, data)
  }

  private status(c: Conn, level: "error" | "warning" | "info", msg: string, id?: unknown) {
    const order = { none: 0, error: 1, warning: 2, info: 3 }
    if (order[level] > order[c.statusLevel]) return
    const m: Record<string, unknown> = { op: "status", level, msg }
    if (typeof id === "string" || typeof id === "number") m.id = id
    this.send(c, stringifyJson(m))
  }

  private onMessage(c: Conn, data: RawData, isBinary: boolean) {
    if (isBinary) return this.status(c, "error", "binary messages are not accepted: send rosbridge JSON text")
    let msg: unknown
    try {
      msg = parseJson(data.toString())
    } catch (e) {
      return this.status(c, "error", `malformed JSON: ${(e as Error).message}`)
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg) || typeof (msg as { op?: unknown }).op !== "string") {
      return this.status(c, "error", "a rosbridge message is a JSON object with a string 'op'")
    }
    const m = msg as Record<string, unknown>
    const op = m.op as string
    if (op === "auth") {
      const given = typeof m.mac === "string" ? m.mac : typeof m.token === "string" ? m.token : undefined
      if (!this.o.guard.tokenOk(given)) {
        this.status(c, "error", "wrong token", m.id)
        c.ws.close(1008, "wrong token")
        return
      }
      c.authed = true
      return
    }
    if (!c.authed) {
      this.status(c, "error", "authenticate first: connect with ?token=<token> or send {op: 'auth', mac: <token>}", m.id)
      c.ws.close(1008, "not authenticated")
      return
    }
    switch (op) {
      case "call_service":
        return this.onCall(c, m)
      case "set_level": {
        const level = m.level
        if (level === "none" || level === "error" || level === "warning" || level === "info") c.statusLevel = level
        else this.status(c, "error", `set_level: level must be none, error, warning or info`, m.id)
        return
      }
      case "subscribe":
        return this.onSubscribe(c, m)
      case "unsubscribe":
        if (typeof m.topic === "string") c.topics.delete(m.topic === STATE_TOPIC || m.topic === CALLS_TOPIC ? m.topic : normalizeName(m.topic))
        return
      case "send_action_goal":
        return this.onSendGoal(c, m)
      case "cancel_action_goal":
        return this.onCancelGoal(c, m)
      case "advertise":
      case "unadvertise":
      case "publish":
      case "advertise_service":
      case "unadvertise_service":
      case "service_response":
      case "advertise_action":
      case "unadvertise_action":
      case "action_feedback":
      case "action_result":
        return this.status(c, "error", `op '${op}' is not supported: this bridge serves the robot's services and actions (call_service, send_action_goal), it hosts none of a client's`, m.id)
      default:
        return this.status(c, "error", `unknown op '${op}'`, m.id)
    }
  }

  private onSubscribe(c: Conn, m: Record<string, unknown>) {
    const topic = m.topic
    if (topic === STATE_TOPIC || topic === CALLS_TOPIC) {
      c.topics.add(topic)
      if (topic === STATE_TOPIC) this.send(c, stringifyJson({ op: "publish", topic, msg: this.o.pipeline.stateMessage() }))
      return
    }
    const name = typeof topic === "string" && topic !== "" ? normalizeName(topic) : ""
    if (!this.roomFor(c, name, m.id)) return
    if (name.endsWith(SERVICE_EVENT_SUFFIX) && name.length > SERVICE_EVENT_SUFFIX.length) return this.onSubscribeEvents(c, name, m.id)
    const a = ACTION_TOPIC.exec(name)
    if (!a) {
      const events = this.o.pipeline.introspect ? ", each service's <service>/_service_event" : ""
      return this.status(c, "error", `subscribe: this bridge publishes ${STATE_TOPIC}, ${CALLS_TOPIC}${events} and each action's <action>/_action/status and <action>/_action/feedback (no other ROS topics)`, m.id)
    }
    const action = a[1]!
    c.topics.add(name)
    const p = this.o.pipeline
    if (p.haveList && !p.actions().some((x) => x.name === action)) {
      this.status(c, "warning", `subscribe: no action ${action} on the robot now; ${name} is published if it appears`, m.id)
    }
    // ROS 2 latches the status topic (transient local): a new subscriber gets the goals at once
    if (a[2] === "status") this.send(c, stringifyJson({ op: "publish", topic: name, msg: this.o.goals.statusArray(action) }))
  }

  /**
   * Whether `c` may subscribe to `name`: a name of at most MAX_TOPIC_NAME characters, and at most
   * MAX_TOPICS_PER_CLIENT topics per connection (a client subscribing to fresh names without end
   * would otherwise grow the bridge's memory without end, and every publish looks them up).
   */
  private roomFor(c: Conn, name: string, id: unknown): boolean {
    if (name.length > MAX_TOPIC_NAME) {
      this.status(c, "error", `subscribe: a topic name of ${name.length} characters (the bridge takes at most ${MAX_TOPIC_NAME})`, id)
      return false
    }
    if (c.topics.size >= MAX_TOPICS_PER_CLIENT && !c.topics.has(name)) {
      this.status(c, "error", `subscribe: ${name.slice(0, 64)}${name.length > 64 ? "..." : ""} refused: this client subscribes to ${c.topics.size} topics already (the bridge's bound per connection); unsubscribe some first`, id)
      return false
    }
    return true
  }

  /**
   * `<service>/_service_event`: refused with an error status when the bridge runs without
   * --introspect (nothing would ever come; `robot service echo` says so from this); a warning only
   * when the service is not on the robot now (it may appear, as an action's topics may).
   */
  private onSubscribeEvents(c: Conn, name: string, id: unknown) {
    const p = this.o.pipeline
    if (!p.introspect) return this.status(c, "error", `subscribe: ${name} is not published: the bridge was not started with --introspect (robot bridge --introspect)`, id)
    c.topics.add(name)
    const service = name.slice(0, -SERVICE_EVENT_SUFFIX.length)
    if (p.haveList && !p.services.some((s) => s.name === service)) {
      this.status(c, "warning", `subscribe: no service ${service} on the robot now; ${name} is published if it appears`, id)
    }
  }

  /**
   * send_action_goal, as rosbridge_suite answers it: `action_feedback` messages (with `feedback:
   * true`), then one `action_result` ({values: the result, status, result: true}); a goal that
   * could not be sent (unknown action, a goal the type refuses, rejected by the robot) is an
   * `action_result` with `result: false`, status 0 (unknown) and `values: "<code>: <message>"`, after
   * an error status. A goal that ended without a result (aborted by an error) is `result: false`
   * with its status. The goal's send_goal call takes one of the client's in-flight slots.
   */
  private onSendGoal(c: Conn, m: Record<string, unknown>) {
    const id = typeof m.id === "string" || typeof m.id === "number" ? m.id : undefined
    if (typeof m.action !== "string" || m.action === "") return this.status(c, "error", "send_action_goal: 'action' must be an action name", id)
    if (m.action_type !== undefined && typeof m.action_type !== "string") return this.status(c, "error", "send_action_goal: 'action_type' must be an action type (pkg/action/Name)", id)
    const action = normalizeName(m.action)
    const key = id === undefined ? undefined : String(id)
    if (key !== undefined && c.goals.has(key)) return this.status(c, "error", `send_action_goal: goal '${key}' of this connection is still running; give each goal its own id`, id)
    const reply = (out: Record<string, unknown>) => {
      if (id !== undefined) out.id = id
      this.send(c, stringifyJson(out))
    }
    const fail = (e: ServiceError) => {
      this.status(c, "error", `send_action_goal ${action}: ${e.message}`, id)
      reply({ op: "action_result", action, values: e.message, status: GoalStatus.unknown, result: false })
    }
    // a bare action name on a fleet: say which robot's to use (the pipeline would take its first part for a robot)
    const fleet = this.o.pipeline.fleet
    if (fleet && !splitRobotName(action)) {
      const first = fleet.robots()[0]?.name ?? "rover1"
      return fail(new ServiceError("unimplemented", `no action ${action}: this bridge serves several robots, name one (/${first}${action})`, action))
    }
    const release = this.o.guard.acquire(c.address, c)
    if (!release) return fail(new ServiceError("resource_exhausted", this.o.guard.refusal(c.address, c), action))
    const entry: ConnGoal = { cancel: false }
    if (key !== undefined) c.goals.set(key, entry)
    const forget = () => {
      entry.off?.()
      if (key !== undefined && c.goals.get(key) === entry) c.goals.delete(key)
    }
    this.o.goals
      .start(action, m.args, { timeoutMs: this.o.defaultTimeoutMs, caller: callerOf(c), actionType: m.action_type as string | undefined })
      .finally(release)
      .then(
        (g) => {
          if (!g) {
            forget()
            return fail(new ServiceError("resource_exhausted", `goal rejected by ${action}`, action))
          }
          entry.goal = g
          if (!this.conns.has(c)) return // the client left meanwhile: its goal runs on
          if (entry.cancel) this.cancelGoal(c, g, id)
          entry.off = g.subscribe((e) => {
            if (e.kind === "feedback") {
              if (m.feedback === true) reply({ op: "action_feedback", action, values: e.feedback })
              return
            }
            if (e.kind === "status") return
            forget()
            // a goal without a result says why as `<code>: <message>`, as a failed call does; a lost goal's status is unknown
            if (e.kind === "error") reply({ op: "action_result", action, values: `${e.code}: ${e.message}`, status: GoalStatus.unknown, result: false })
            else if (e.error === undefined) reply({ op: "action_result", action, values: e.result, status: e.status, result: true })
            else reply({ op: "action_result", action, values: `${e.status === GoalStatus.canceled ? "cancelled" : "internal"}: ${e.error}`, status: e.status, result: false })
          })
        },
        (e: unknown) => {
          forget()
          fail(e instanceof ServiceError ? e : new ServiceError("internal", (e as Error)?.message ?? String(e), action))
        },
      )
  }

  /** cancel_action_goal: `id` is the send_action_goal's, on this connection. Nothing is sent back but errors: the goal's action_result says how it ended. */
  private onCancelGoal(c: Conn, m: Record<string, unknown>) {
    const id = m.id
    if (typeof id !== "string" && typeof id !== "number") return this.status(c, "error", "cancel_action_goal: 'id' must be the id of the send_action_goal to cancel")
    if (typeof m.action !== "string" || m.action === "") return this.status(c, "error", "cancel_action_goal: 'action' must be an action name", id)
    const action = normalizeName(m.action)
    const entry = c.goals.get(String(id))
    if (!entry) return this.status(c, "error", `cancel_action_goal: no goal '${id}' of ${action} is running on this connection (it ended, or was never sent here)`, id)
    if (entry.goal && entry.goal.action !== action) return this.status(c, "error", `cancel_action_goal: goal '${id}' is a goal of ${entry.goal.action}, not ${action}`, id)
    if (!entry.goal) entry.cancel = true // cancelled once the robot has accepted it
    else this.cancelGoal(c, entry.goal, id)
  }

  private cancelGoal(c: Conn, g: TrackedGoal, id: unknown) {
    const release = this.o.guard.acquire(c.address, c)
    if (!release) return this.status(c, "error", `cancel_action_goal: ${this.o.guard.refusal(c.address, c)}`, id)
    this.o.goals
      .cancel(g.action, g.id, { timeoutMs: this.o.defaultTimeoutMs, caller: callerOf(c) })
      .then(
        (code) => {
          // 2 (unknown goal) and 3 (terminated): the goal ended anyway, its action_result says how
          if (code === 1) this.status(c, "error", `cancel_action_goal: the robot refused to cancel goal '${String(id)}' of ${g.action}`, id)
        },
        (e: unknown) => this.status(c, "error", `cancel_action_goal ${g.action}: ${(e as Error)?.message ?? String(e)}`, id),
      )
      .finally(release)
  }

  private onCall(c: Conn, m: Record<string, unknown>) {
    const id = m.id
    if (typeof m.service !== "string" || m.service === "") return this.status(c, "error", "call_service: 'service' must be a service name", id)
    const service = normalizeName(m.service)
    const compression = m.compression === undefined ? "none" : m.compression
    if (compression !== "none" && compression !== "cbor" && compression !== "cbor-raw" && compression !== "png") {
      return this.status(c, "error", `call_service: unknown compression '${String(compression)}'`, id)
    }
    if (compression === "png") this.status(c, "warning", "call_service: png compression is not supported; answering uncompressed", id)
    const binary = compression === "cbor" || compression === "cbor-raw"
    const frag = typeof m.fragment_size === "number" && m.fragment_size > 0 ? Math.floor(m.fragment_size) : undefined
    const timeoutMs = typeof m.timeout === "number" && m.timeout > 0 ? Math.ceil(m.timeout * 1000) : this.o.defaultTimeoutMs
    // extension: `expect_type` calls only a service of that type, and the answer names the type
    if (m.expect_type !== undefined && (typeof m.expect_type !== "string" || m.expect_type === "")) return this.status(c, "error", "call_service: 'expect_type' must be a service type", id)
    const expectType = m.expect_type as string | undefined
    // extension: `args_rules: "yaml"` reads args by the CLI's rules (calls/json.ts YAML_RULES): the
    // CLI sends its request unchecked and this is its one check
    const rules = m.args_rules === undefined ? undefined : namedRules(m.args_rules)
    if (m.args_rules !== undefined && !rules) return this.status(c, "error", `call_service: 'args_rules' must be "yaml", got ${stringifyJson(m.args_rules).slice(0, 40)}`, id)
    const reply = (values: unknown, result: boolean, type?: string) => {
      const out: Record<string, unknown> = { op: "service_response", service, values, result }
      if (id !== undefined) out.id = id
      if (expectType !== undefined && type !== undefined) out.type = type
      if (binary) return this.send(c, cbor.encode(out))
      const text = stringifyJson(out)
      if (frag && text.length > frag) {
        const fid = typeof id === "string" || typeof id === "number" ? id : `service_response:${service}:${c.id}:${Date.now()}`
        const total = Math.ceil(text.length / frag)
        for (let i = 0; i < total; i++) this.send(c, stringifyJson({ op: "fragment", id: fid, data: text.slice(i * frag, (i + 1) * frag), num: i, total }))
      } else this.send(c, text)
    }
    const release = this.o.guard.acquire(c.address, c)
    if (!release) return reply(new ServiceError("resource_exhausted", this.o.guard.refusal(c.address, c), service).message, false)
    const ac = new AbortController()
    c.calls.add(ac)
    let lastProgress = 0
    const onProgress =
      m.progress === true
        ? (received: number, total: number) => {
            const now = performance.now()
            if (received < total && now - lastProgress < 50) return
            lastProgress = now
            this.send(c, stringifyJson({ op: "service_progress", id, service, received, total }))
          }
        : undefined
    // with progress, 0 of 0 first once the request passed the checks (the CLI prints its request line then)
    const onStart = onProgress && (() => this.send(c, stringifyJson({ op: "service_progress", id, service, received: 0, total: 0 })))
    this.o.pipeline
      .callJson({ service, args: m.args, timeoutMs, signal: ac.signal, onProgress, onStart, expectType, rules }, binary ? "bytes" : "base64", callerOf(c))
      .then((out) => reply(out.values, out.ok, out.serviceType))
      .catch((e) => this.status(c, "error", `bridge error: ${(e as Error).message}`, id))
      .finally(() => {
        release()
        c.calls.delete(ac)
      })
  }
}
