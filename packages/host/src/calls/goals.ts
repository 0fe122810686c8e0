// The goals the bridge follows (issue 19): one tracker per bridge, one ActionClient per action and
// one watch loop per goal, shared by every front end (rosbridge's send_action_goal and its
// `<action>/_action/status|feedback` topics, HTTP server-sent events, the dashboard, the Foxglove
// status and feedback channels), so a goal sent through one front end is seen by all of them.
// Goals are keyed by action name and goal id (32 hex digits); an ended goal is kept `keepMs` so
// that a late follower still gets its result, and at most `maxGoals` are held (the oldest ended
// ones go first; past that a new goal is refused resource_exhausted). Goals are sent and cancelled through the pipeline (its checks
// and call log), their calls charged to the sending client (its fairness share), the watch loop
// included; the watch loop and the result are the Node ActionClient's (client/action.ts). Goals
// outlive the client that sent them, as in ROS. Values follow the bridge's JSON rules (calls/json.ts).
import { randomBytes } from "node:crypto"
import { ActionClient, GoalStatus, goalStatusName, isTerminal, type ClientGoal } from "../client/action"
import { ServiceError } from "../client/errors"
import { normalizeName } from "../client/names"
import { actionsOf, type ActionDescriptor, type ActionTypes } from "../runtime/action"
import { fullTypeName } from "../runtime/names"
import { fromJson, toJson, ValueError } from "./json"
import type { CallPipeline, Caller } from "./pipeline"

/** How many ended goals an action's status array lists at most (the newest), while they are kept. */
export const STATUS_ENDED_MAX = 32

/** One entry of `<action>/_action/status` (action_msgs/msg/GoalStatus as JSON, the UUID as base64). */
export interface GoalStatusJson {
  goal_info: { goal_id: { uuid: string }; stamp: { sec: number; nanosec: number } }
  status: number
}

/** What a follower hears, in order: status changes and feedback while the goal runs, then one `result` or `error`, the last. */
export type GoalEvent =
  | { kind: "status"; status: number; status_name: string }
  | { kind: "feedback"; feedback: unknown }
  | { kind: "result"; status: number; status_name: string; result: unknown; error?: string }
  | { kind: "error"; code: string; message: string }

/** One goal as the bridge follows it. */
export class TrackedGoal {
  status: number = GoalStatus.accepted
  /** the last feedback (JSON values), undefined before the first */
  feedback: unknown
  /** the last event, once the goal has ended (`result` or `error`) */
  end: Extract<GoalEvent, { kind: "result" | "error" }> | undefined
  /** when the goal ended (ms, performance.now()) */
  endedAt = 0
  private readonly listeners = new Set<(e: GoalEvent) => void>()

  constructor(
    /** the action's name (`/fibonacci`, `/rover1/fibonacci`) */
    readonly action: string,
    readonly type: ActionDescriptor<any, any, any>,
    readonly goal: ClientGoal<any, any>,
    /** when the robot accepted it (robot time; 0 for a goal sent by another client) */
    readonly stamp: { sec: number; nanosec: number },
  ) {}

  /** the goal id, 32 hex digits */
  get id(): string {
    return this.goal.id
  }

  /** the goal's UUID as base64 (the JSON rules' uint8[]) */
  get uuid(): string {
    return Buffer.from(this.goal.goalId).toString("base64")
  }

  /** The goal's entry of its action's status array. */
  statusJson(): GoalStatusJson {
    return { goal_info: { goal_id: { uuid: this.uuid }, stamp: { ...this.stamp } }, status: this.status }
  }

  /** The goal as a snapshot: `{action, goal_id, status, status_name, feedback?, result?}`. */
  snapshot(): Record<string, unknown> {
    const s: Record<string, unknown> = { action: this.action, goal_id: this.id, status: this.status, status_name: goalStatusName(this.status) }
    if (this.feedback !== undefined) s.feedback = this.feedback
    if (this.end) s[this.end.kind] = this.end
    return s
  }

  /**
   * Follows the goal: `listener` hears the current status and the last feedback at once, then every
   * event up to the end (or the end at once, for a goal that has ended). Returns the unsubscribe.
   */
  subscribe(listener: (e: GoalEvent) => void): () => void {
    listener({ kind: "status", status: this.status, status_name: goalStatusName(this.status) })
    if (this.feedback !== undefined) listener({ kind: "feedback", feedback: this.feedback })
    if (this.end) {
      listener(this.end)
      return () => {}
    }
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** @internal */
  emit(e: GoalEvent): void {
    if (e.kind === "status") this.status = e.status
    else if (e.kind === "feedback") this.feedback = e.feedback
    else {
      this.end = e
      this.endedAt = performance.now()
      if (e.kind === "result") this.status = e.status
    }
    for (const l of [...this.listeners]) l(e)
    if (this.end) this.listeners.clear()
  }
}

export interface GoalTrackerOptions {
  /** How long an ended goal stays to be asked for (ms, default 60000). */
  keepMs?: number
  /** Goals held at once, running or kept (default 256). */
  maxGoals?: number
}

/**
 * The goals the bridge follows. `start` sends one, `follow` picks up one (started here or by any
 * other client of the robot), `cancel` asks the robot to cancel one; `onEvent` hears every goal's
 * events (the Foxglove channels). One watch loop per goal, whoever follows it.
 */
export class GoalTracker {
  private readonly clients = new Map<string, ActionClient<any, any, any>>()
  private readonly goals = new Map<string, TrackedGoal>()
  private readonly listeners = new Set<(g: TrackedGoal, e: GoalEvent) => void>()
  private readonly keepMs: number
  private readonly maxGoals: number
  private closed = false

  constructor(
    readonly pipeline: CallPipeline,
    readonly actions: ActionTypes,
    options: GoalTrackerOptions = {},
  ) {
    this.keepMs = options.keepMs ?? 60000
    this.maxGoals = options.maxGoals ?? 256
  }

  /** Why a goal is refused when the bridge holds `maxGoals` running goals (the error's detail). */
  get fullMessage(): string {
    return `the bridge follows ${this.maxGoals} running goals already; try again when one has ended`
  }

  /** The robot's actions now: name, type, and the descriptor when the bridge knows the type. */
  async list(): Promise<{ name: string; type: string; descriptor?: ActionDescriptor<any, any, any> }[]> {
    return actionsOf(await this.pipeline.list()).map((a) => ({ ...a, descriptor: this.actions[a.type] }))
  }

  /** Every goal's events (`g` is the goal they belong to). Returns the unsubscribe. */
  onEvent(listener: (g: TrackedGoal, e: GoalEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * `<action>/_action/status`: the goals of `action` held now, running or ended lately (the newest
   * {@link STATUS_ENDED_MAX} ended ones), as action_msgs/msg/GoalStatusArray JSON. A goal lost
   * (the robot restarted) is not listed: it is not a goal any more.
   */
  statusArray(action: string): { status_list: GoalStatusJson[] } {
    const now = performance.now()
    const held = this.goalsOf(action).filter((g) => g.end?.kind !== "error" && !(g.end && now - g.endedAt > this.keepMs))
    const ended = held.filter((g) => g.end).sort((a, b) => b.endedAt - a.endedAt)
    const dropped = new Set(ended.slice(STATUS_ENDED_MAX))
    return { status_list: held.filter((g) => !dropped.has(g)).map((g) => g.statusJson()) }
  }

  /** The goals held now of `action` (all of them without one), running or kept. */
  goalsOf(action?: string): TrackedGoal[] {
    const name = action === undefined ? undefined : normalizeName(action)
    return [...this.goals.values()].filter((g) => name === undefined || g.action === name)
  }

  /**
   * Sends a goal (JSON, as the bridge takes requests: an object, or a list in field order) to
   * `action`, through the pipeline (its request check and call log: the call is
   * `<action>/_action/send_goal`), charged to `caller.owner`, as the goal's watch loop is. Resolves
   * with the goal, or undefined when the robot rejected it. Throws ServiceError: `unimplemented`
   * (no such action, or a type the bridge does not know), `type_mismatch` (`actionType` given and
   * not the action's type), `invalid_argument` (the goal does not fit the type), `unavailable`,
   * `resource_exhausted` (the bridge holds `maxGoals` running goals), and the call's own errors.
   */
  async start(
    action: string,
    goalJson: unknown,
    options: { timeoutMs: number; caller: Caller; signal?: AbortSignal; actionType?: string },
  ): Promise<TrackedGoal | undefined> {
    if (this.closed) throw new ServiceError("unavailable", "the bridge is closing", normalizeName(action))
    const { name, client } = await this.client(action, options.actionType)
    const type = client.type
    let goal: unknown
    try {
      goal = positional(type, goalJson)
      type.goal.encode(fromJson(type.goal, goal)) // the codec's own checks (ranges, bounds), with the goal type's name in the error
    } catch (e) {
      throw new ServiceError("invalid_argument", `goal of ${type.fullName}: ${(e as Error).message}`, name)
    }
    this.makeRoom()
    const goalId = new Uint8Array(randomBytes(16))
    const out = await this.pipeline.callJson(
      { service: `${name}/_action/send_goal`, args: { goal_id: { uuid: Buffer.from(goalId).toString("base64") }, goal }, timeoutMs: options.timeoutMs, signal: options.signal },
      "base64",
      options.caller,
    )
    if (!out.ok) throw out.error!
    const r = out.values as { accepted: boolean; stamp: { sec: number; nanosec: number } }
    if (!r.accepted) return undefined
    return this.track(name, client.type, client.follow(goalId, { owner: options.caller.owner }), r.stamp)
  }

  /** The goal `id` (32 hex digits) of `action`: the one held, or a new follower of it. Throws as {@link start}, and `invalid_argument` for a malformed id. */
  async follow(action: string, id: string): Promise<TrackedGoal> {
    const name = normalizeName(action)
    const known = this.goals.get(key(name, id))
    if (known) return known
    checkId(name, id)
    const { client } = await this.client(name)
    const again = this.goals.get(key(name, id))
    if (again) return again
    this.makeRoom()
    return this.track(name, client.type, client.follow(new Uint8Array(Buffer.from(id, "hex"))), { sec: 0, nanosec: 0 })
  }

  /**
   * Asks the robot to cancel goal `id` of `action` (through the pipeline: `<action>/_action/cancel_goal`
   * in the call log). Resolves with CancelGoal's `return_code` (0 cancelling, 2 unknown goal, 3 already ended).
   */
  async cancel(action: string, id: string, options: { timeoutMs: number; caller: Caller }): Promise<number> {
    const name = normalizeName(action)
    checkId(name, id)
    await this.client(name)
    const uuid = Buffer.from(id, "hex").toString("base64")
    const out = await this.pipeline.callJson(
      { service: `${name}/_action/cancel_goal`, args: { goal_info: { goal_id: { uuid }, stamp: { sec: 0, nanosec: 0 } } }, timeoutMs: options.timeoutMs },
      "base64",
      options.caller,
    )
    if (!out.ok) throw out.error!
    return (out.values as { return_code: number }).return_code
  }

  /** Stops following every goal (they run on) and forgets them. */
  close(): void {
    this.closed = true
    for (const c of this.clients.values()) c.close()
    this.clients.clear()
    this.goals.clear()
    this.listeners.clear()
  }

  /**
   * The client of `action`, made once (again after a restart); throws when there is no such action,
   * or (`expectType` given) when the action is of another type.
   */
  private async client(action: string, expectType?: string): Promise<{ name: string; client: ActionClient<any, any, any> }> {
    const name = normalizeName(action)
    // the pipeline says why a send_goal cannot be called: an offline robot, an unknown robot of a fleet, none at all
    let info
    try {
      info = await this.pipeline.locate(`${name}/_action/send_goal`)
    } catch (e) {
      if (e instanceof ServiceError && e.code === "unimplemented" && /^no service /.test(e.detail)) {
        const known = this.pipeline.actions().map((a) => a.name)
        throw new ServiceError("unimplemented", `no action ${name} on the robot (actions: ${known.join(", ") || "none"})`, name)
      }
      throw e
    }
    const typeName = actionsOf([{ name: info.name, type: info.type }])[0]?.type
    if (typeName === undefined) throw new ServiceError("unimplemented", `${name} is not an action (${info.name} is ${info.type})`, name)
    if (expectType !== undefined && expectType !== "" && fullTypeName(expectType, "action") !== typeName) {
      throw new ServiceError("type_mismatch", `${name} is ${typeName}, not ${fullTypeName(expectType, "action")}`, name)
    }
    const type = Object.hasOwn(this.actions, typeName) ? this.actions[typeName] : undefined
    if (!type) throw new ServiceError("unimplemented", `the bridge has no definition of ${typeName}: its .action was not under the project's interface roots (devs.json "interfaces") when the bridge started; a type added since needs the bridge restarted`, name)
    let c = this.clients.get(name)
    if (!c || c.type !== type) {
      c?.close()
      c = new ActionClient(this.pipeline.node, type, name)
      this.clients.set(name, c)
    }
    return { name, client: c }
  }

  private track(action: string, type: ActionDescriptor<any, any, any>, g: ClientGoal<any, any>, stamp: { sec: number; nanosec: number }): TrackedGoal {
    const t = new TrackedGoal(action, type, g, stamp)
    this.goals.set(key(action, t.id), t)
    const emit = (e: GoalEvent) => {
      t.emit(e)
      for (const l of [...this.listeners]) l(t, e)
    }
    g.onStatus((s) => {
      if (!isTerminal(s)) emit({ kind: "status", status: s, status_name: goalStatusName(s) })
    })
    g.onFeedback((f) => emit({ kind: "feedback", feedback: toJson(type.feedback, f) }))
    g.result().then(
      (r) => {
        const e: GoalEvent = { kind: "result", status: r.status, status_name: goalStatusName(r.status), result: toJson(type.result, r.result) }
        if (r.error !== undefined) e.error = r.error
        emit(e)
      },
      (e: unknown) => {
        const err = e instanceof ServiceError ? e : new ServiceError("internal", String(e))
        emit({ kind: "error", code: err.code, message: err.detail })
      },
    )
    return t
  }

  /** Forgets ended goals past `keepMs`, then, at `maxGoals`, the oldest ended one; refuses when all are running. */
  private makeRoom() {
    const now = performance.now()
    for (const [k, g] of this.goals) if (g.end && now - g.endedAt > this.keepMs) this.goals.delete(k)
    if (this.goals.size < this.maxGoals) return
    let oldest: [string, TrackedGoal] | undefined
    for (const e of this.goals) if (e[1].end && (!oldest || e[1].endedAt < oldest[1].endedAt)) oldest = e
    if (!oldest) throw new ServiceError("resource_exhausted", this.fullMessage)
    this.goals.delete(oldest[0])
  }
}

const key = (action: string, id: string) => `${action} ${id}`

function checkId(action: string, id: string) {
  if (!/^[0-9a-f]{32}$/.test(id)) throw new ServiceError("invalid_argument", `'${id}' is not a goal id (32 hex digits)`, action)
}

/** A goal may be a list, in field order, as rosbridge takes one. */
function positional(type: ActionDescriptor<any, any, any>, args: unknown): unknown {
  if (!Array.isArray(args)) return args ?? {}
  const fields = (type.goal.definitions[0]?.definitions ?? []).filter((f) => !f.isConstant)
  if (args.length > fields.length) throw new ValueError(`${args.length} values given, ${type.goal.fullName} has ${fields.length} fields`)
  return Object.fromEntries(args.map((v, i) => [fields[i]!.name, v]))
}
