// The goals of the robot's actions as the bridge's front ends see them: one tracker per bridge
// node (`ActionGoals`), shared by every client and front end. A goal sent through it is followed
// by one watch loop on the robot (client/action.ts ClientGoal), however many clients listen to its
// feedback and status; its calls carry the sending client as their owner, so one client's goals
// share the robot's window fairly with other clients' calls. Values come and go as JSON by the
// bridge's rules (calls/json.ts). Goals outlive the client that sent them, as in ROS: a client
// that goes away cancels nothing. rosbridge (bridge/rosbridge.ts) uses it; HTTP and Foxglove can.
import { ActionClient, GoalStatus, type ClientGoal } from "../client/action"
import { ServiceError } from "../client/errors"
import { normalizeName, splitRobotName } from "../client/names"
import type { ActionDescriptor, CancelGoalResponse } from "../runtime/action"
import { fromJson, toJson, ValueError, type Binary } from "./json"
import type { CallPipeline } from "./pipeline"

export type { ActionRegistry } from "./rosapi"

/** How long a goal that ended stays in its action's status array (ms), and how many per action at most. */
export const ENDED_RETAIN_MS = 60000
export const ENDED_MAX = 32

/** `example_interfaces/Fibonacci` or `example_interfaces/action/Fibonacci` -> the full name. */
export function fullActionTypeName(t: string): string {
  const p = t.replace(/^\//, "").split("/")
  return p.length === 2 ? `${p[0]}/action/${p[1]}` : p.join("/")
}

/** How a goal ended, ready for a front end. Never an exception. */
export interface GoalEnd {
  /** action_msgs/msg/GoalStatus STATUS_*: succeeded, canceled, aborted; unknown (0) when the goal was lost */
  status: number
  /** true when the goal ended with a result (whatever its status); false when it has none */
  ok: boolean
  /** the result as JSON values when `ok`, else the error text `<code>: <message>` */
  values: unknown
  error?: ServiceError
}

/** One entry of `<action>/_action/status` (action_msgs/msg/GoalStatus as JSON, the UUID as base64). */
export interface GoalStatusJson {
  goal_info: { goal_id: { uuid: string }; stamp: { sec: number; nanosec: number } }
  status: number
}

type Listener<T> = (action: string, msg: T) => void

/** A goal the tracker follows. */
export class TrackedGoal {
  /** the goal id, 32 hex digits */
  readonly id: string
  /** resolves when the goal has ended (never rejects) */
  readonly ended: Promise<GoalEnd>
  /** performance.now() when the goal ended (0 while it runs) */
  endedAt = 0
  private final: number | undefined
  private feedbackListeners: ((feedback: unknown) => void)[] = []

  constructor(
    /** the action's name (`/fibonacci`, `/rover1/fibonacci`) */
    readonly action: string,
    readonly type: ActionDescriptor<any, any, any>,
    private readonly goal: ClientGoal<any, any>,
    /** the client that sent it (its calls are charged to it) */
    readonly owner: object | undefined,
    private readonly binary: Binary,
  ) {
    this.id = goal.id
    this.ended = goal.result().then(
      (r): GoalEnd => {
        this.final = r.status
        if (r.error === undefined) return { status: r.status, ok: true, values: toJson(type.result, r.result, binary) }
        const error = new ServiceError(r.status === GoalStatus.canceled ? "cancelled" : "internal", r.error, action)
        return { status: r.status, ok: false, values: error.message, error }
      },
      (e: unknown): GoalEnd => {
        this.final = GoalStatus.unknown
        const error = e instanceof ServiceError ? e : new ServiceError("internal", String(e), action)
        return { status: GoalStatus.unknown, ok: false, values: error.message, error }
      },
    )
  }

  /** action_msgs/msg/GoalStatus STATUS_* as last heard */
  get status(): number {
    return this.final ?? this.goal.status
  }

  /** The goal's entry of the status array. */
  statusJson(): GoalStatusJson {
    return { goal_info: { goal_id: { uuid: this.uuid }, stamp: { ...this.goal.stamp } }, status: this.status }
  }

  /** the goal's UUID as base64 (the JSON rules' uint8[]) */
  get uuid(): string {
    return Buffer.from(this.goal.goalId).toString("base64")
  }

  /** Each feedback the bridge hears (the goal's feedback message as JSON values). */
  onFeedback(listener: (feedback: unknown) => void): () => void {
    this.feedbackListeners.push(listener)
    return () => (this.feedbackListeners = this.feedbackListeners.filter((l) => l !== listener))
  }

  /** Asks the robot to cancel the goal; the goal then ends canceled (or as it ends anyway). */
  async cancel(options: { timeoutMs?: number } = {}): Promise<CancelGoalResponse> {
    return await this.goal.cancel({ timeoutMs: options.timeoutMs })
  }

  /** @internal */
  feedback(f: unknown): void {
    const json = toJson(this.type.feedback, f, this.binary)
    for (const l of this.feedbackListeners.slice()) l(json)
  }
}

/**
 * The bridge's goals: `send` a goal (JSON), follow it (feedback, status, the end), cancel it;
 * `statusArray(action)` and the `onStatus` / `onFeedback` events are what the
 * `<action>/_action/status` and `<action>/_action/feedback` topics carry. One per bridge node.
 */
export class ActionGoals {
  private readonly clients = new Map<string, ActionClient<any, any, any>>()
  private readonly goals = new Map<string, Map<string, TrackedGoal>>()
  private readonly statusListeners = new Set<Listener<{ status_list: GoalStatusJson[] }>>()
  private readonly feedbackListeners = new Set<Listener<unknown>>()
  private closed = false

  constructor(
    readonly pipeline: CallPipeline,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /**
   * The action `name` on the robot and its descriptor. Throws ServiceError: `unavailable` (robot
   * offline), `unimplemented` (no such action, or a type the bridge has no definition of),
   * `type_mismatch` (`expectType` given and not the action's type).
   */
  async resolve(name: string, expectType?: string): Promise<{ name: string; type: ActionDescriptor<any, any, any> }> {
    const action = normalizeName(name)
    const fleet = this.pipeline.fleet
    if (fleet && !splitRobotName(action)) {
      const first = fleet.robots()[0]?.name ?? "rover1"
      throw new ServiceError("unimplemented", `no action ${action}: this bridge serves several robots, name one (/${first}${action})`, action)
    }
    let info
    try {
      info = await this.pipeline.locate(`${action}/_action/send_goal`)
    } catch (e) {
      if (e instanceof ServiceError && e.code === "unimplemented") {
        const known = this.pipeline.actions().map((a) => a.name)
        throw new ServiceError("unimplemented", `no action ${action} on the robot (actions: ${known.join(", ") || "none"})`, action)
      }
      throw e
    }
    if (!info.type.endsWith("_SendGoal")) throw new ServiceError("unimplemented", `${action} is not an action (${info.name} is ${info.type})`, action)
    const full = info.type.slice(0, -"_SendGoal".length)
    if (expectType !== undefined && expectType !== "" && fullActionTypeName(expectType) !== full) {
      throw new ServiceError("type_mismatch", `${action} is ${full}, not ${fullActionTypeName(expectType)}`, action)
    }
    const type = this.pipeline.actionTypes[full]
    if (!type) throw new ServiceError("unimplemented", `the bridge has no definition of ${full} (its .action is not under the project's interface roots, devs.json "interfaces")`, action)
    return { name: action, type }
  }

  /**
   * Sends a goal (`goal`: JSON, an object or a list in field order). Resolves with the goal once
   * the robot accepted it; rejects with ServiceError: those of `resolve`, `invalid_argument` (a goal
   * the type refuses), `resource_exhausted` (the robot rejected the goal), and the call's errors.
   * `owner` is the sending client: the goal's calls (its watch loop included) are charged to it.
   */
  async send(req: { action: string; actionType?: string; goal: unknown; timeoutMs: number; owner?: object }, binary: Binary = "base64"): Promise<TrackedGoal> {
    if (this.closed) throw new ServiceError("unavailable", "the bridge is closing", req.action)
    const { name, type } = await this.resolve(req.action, req.actionType)
    let goal: unknown
    try {
      goal = fromJson(type.goal, positional(type, req.goal))
      type.goal.encode(goal) // the codec's own checks (ranges, bounds), before anything reaches the robot
    } catch (e) {
      throw new ServiceError("invalid_argument", `goal of ${type.fullName}: ${(e as Error).message}`, name)
    }
    let tracked: TrackedGoal | undefined
    const client = this.client(name, type)
    const g = await client.sendGoal(goal, {
      timeoutMs: req.timeoutMs,
      owner: req.owner,
      onFeedback: (f) => tracked?.feedback(f),
      onStatus: () => this.publishStatus(name),
    })
    const t = new TrackedGoal(name, type, g, req.owner, binary)
    tracked = t
    let list = this.goals.get(name)
    if (!list) this.goals.set(name, (list = new Map()))
    list.set(t.id, t)
    t.onFeedback((fb) => this.emitFeedback(name, { goal_id: { uuid: t.uuid }, feedback: fb }))
    void t.ended.then((end) => {
      t.endedAt = performance.now()
      if (end.status === GoalStatus.unknown) list.delete(t.id) // lost (the robot restarted): not a goal any more
      this.publishStatus(name)
    })
    this.publishStatus(name)
    return t
  }

  /** A goal the tracker follows, by action and 32-hex-digit id. */
  goal(action: string, id: string): TrackedGoal | undefined {
    return this.goals.get(normalizeName(action))?.get(id.toLowerCase())
  }

  /** `<action>/_action/status`: the goals the bridge follows or saw end lately, as action_msgs/msg/GoalStatusArray JSON. */
  statusArray(action: string): { status_list: GoalStatusJson[] } {
    const list = this.goals.get(normalizeName(action))
    if (!list) return { status_list: [] }
    this.prune(list)
    return { status_list: [...list.values()].map((t) => t.statusJson()) }
  }

  /** Fires with an action's status array whenever a goal of it changes status. */
  onStatus(listener: Listener<{ status_list: GoalStatusJson[] }>): () => void {
    this.statusListeners.add(listener)
    return () => this.statusListeners.delete(listener)
  }

  /** Fires with each feedback heard, as `<A>_FeedbackMessage` JSON ({goal_id, feedback}). */
  onFeedback(listener: Listener<unknown>): () => void {
    this.feedbackListeners.add(listener)
    return () => this.feedbackListeners.delete(listener)
  }

  /** Stops following every goal (they run on, on the robot). */
  close(): void {
    this.closed = true
    for (const c of this.clients.values()) c.close()
    this.clients.clear()
    this.statusListeners.clear()
    this.feedbackListeners.clear()
  }

  private client(name: string, type: ActionDescriptor<any, any, any>): ActionClient<any, any, any> {
    const key = `${name}|${type.fullName}|${type.hash32}`
    let c = this.clients.get(key)
    if (!c) this.clients.set(key, (c = new ActionClient(this.pipeline.node, type, name)))
    return c
  }

  private prune(list: Map<string, TrackedGoal>) {
    const now = performance.now()
    const ended = [...list.values()].filter((t) => t.endedAt > 0)
    for (const t of ended) if (now - t.endedAt > ENDED_RETAIN_MS) list.delete(t.id)
    const left = ended.filter((t) => list.has(t.id))
    for (let i = 0; i < left.length - ENDED_MAX; i++) list.delete(left[i]!.id)
  }

  private publishStatus(action: string) {
    if (this.statusListeners.size === 0) return
    const msg = this.statusArray(action)
    for (const l of [...this.statusListeners]) this.safely(() => l(action, msg))
  }

  private emitFeedback(action: string, msg: unknown) {
    for (const l of [...this.feedbackListeners]) this.safely(() => l(action, msg))
  }

  private safely(f: () => void) {
    try {
      f()
    } catch (e) {
      this.log(`an action listener failed: ${(e as Error).message}`)
    }
  }
}

/** rosbridge also takes a goal as a list, in field order. */
function positional(type: ActionDescriptor<any, any, any>, args: unknown): unknown {
  if (!Array.isArray(args)) return args ?? {}
  const fields = (type.goal.definitions[0]?.definitions ?? []).filter((f) => !f.isConstant)
  if (args.length > fields.length) throw new ValueError(`${args.length} values given, ${type.goal.fullName} has ${fields.length} fields`)
  return Object.fromEntries(args.map((v, i) => [fields[i]!.name, v]))
}
