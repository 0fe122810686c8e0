// The Node action client, like rclpy's ActionClient: send a goal to an action the robot hosts
// (packages/device/src/lib/actions.ts), follow its status and feedback, cancel it, fetch its result.
// Built on RobotNode.createClient alone, so it works on every link and on a fleet
// (`/rover1/drive_distance`). Each step is a service call with the call runtime's guarantees.
import { randomBytes } from "node:crypto"
import { ACTION_PARTS, actionWire, type ActionDescriptor, type ActionWire, type CancelGoalResponse } from "../runtime/action"
import type { ServiceDescriptor } from "../runtime/types"
import type { CallOptions, Client, RobotNode } from "./api"
import { ServiceError } from "./errors"
import { normalizeName } from "./names"

/** action_msgs/msg/GoalStatus STATUS_* */
export const GoalStatus = { unknown: 0, accepted: 1, executing: 2, canceling: 3, succeeded: 4, canceled: 5, aborted: 6 } as const
const STATUS_NAMES = Object.keys(GoalStatus) as (keyof typeof GoalStatus)[]

/** `succeeded`, `canceled`, ... for a GoalStatus number */
export function goalStatusName(status: number): string {
  return STATUS_NAMES[status] ?? `status ${status}`
}

/** a goal has ended: succeeded, canceled or aborted */
export function isTerminal(status: number): boolean {
  return status >= GoalStatus.succeeded
}

type PartClients<G, R, F> = {
  [K in keyof ActionWire<G, R, F>]: ActionWire<G, R, F>[K] extends ServiceDescriptor<infer Q, infer P> ? Client<Q, P> : never
}

/** How long one watch or get_result call may wait on the robot before it is asked again (ms). */
const WAIT_MS = 20000
/**
 * How long a goal is followed while the robot cannot be reached (ms): a link that drops and comes
 * back (a broker restart, the robot's WiFi) within it loses nothing, as the robot's program runs on
 * with its goals. Past it, or when the node closes, the goal is reported lost.
 */
export const GOAL_LINK_GRACE_MS = 60000
/** first wait before asking again after `unavailable` (doubling to LINK_RETRY_MAX_MS) */
const LINK_RETRY_MS = 100
const LINK_RETRY_MAX_MS = 2000

/** What a goal ended with. `error` says why a goal without a result ended (aborted, or canceled before it returned one). */
export interface GoalResult<R> {
  status: number
  result: R
  error?: string
}

export interface SendGoalOptions extends Pick<CallOptions, "timeoutMs" | "owner"> {
  /** Called with each feedback the client hears (the latest one, if the robot produces them faster). */
  onFeedback?: (feedback: any) => void
  /** Called on each status change. */
  onStatus?: (status: number) => void
}

/** One goal, as the client follows it. */
export class ClientGoal<R, F> {
  status: number = GoalStatus.accepted
  /** the last feedback heard */
  feedback: F | undefined
  private seq = 0
  private feedbackListeners: ((f: F) => void)[] = []
  private statusListeners: ((s: number) => void)[] = []
  private stopped = false
  private ended: Promise<void>
  private endedResolve!: () => void
  private lost: ServiceError | undefined
  private resultPromise: Promise<GoalResult<R>> | undefined

  constructor(
    private readonly ac: ActionClient<any, R, F>,
    /** the goal's unique_identifier_msgs/UUID */
    readonly goalId: Uint8Array,
    /** when the robot accepted it (robot time) */
    readonly stamp: { sec: number; nanosec: number },
    private readonly owner?: object,
  ) {
    this.ended = new Promise((r) => (this.endedResolve = r))
    void this.watch()
  }

  /** the goal id as 32 hex digits */
  get id(): string {
    return Buffer.from(this.goalId).toString("hex")
  }

  onFeedback(listener: (feedback: F) => void): () => void {
    this.feedbackListeners.push(listener)
    return () => (this.feedbackListeners = this.feedbackListeners.filter((l) => l !== listener))
  }

  onStatus(listener: (status: number) => void): () => void {
    this.statusListeners.push(listener)
    return () => (this.statusListeners = this.statusListeners.filter((l) => l !== listener))
  }

  /** Asks the robot to cancel the goal (the goal then ends `canceled`, or as it ends anyway). */
  async cancel(options: { timeoutMs?: number } = {}): Promise<CancelGoalResponse> {
    return await this.ac.part("cancelGoal").call(
      { goal_info: { goal_id: { uuid: this.goalId }, stamp: { sec: 0, nanosec: 0 } } },
      { timeoutMs: options.timeoutMs, owner: this.owner },
    )
  }

  /**
   * Resolves when the goal has ended, with its status and result (a goal that ended without a
   * result: the result at its defaults and `error`). Rejects with ServiceError when the goal was
   * lost: the robot restarted, or forgot it.
   */
  result(): Promise<GoalResult<R>> {
    return (this.resultPromise ??= this.fetchResult())
  }

  /** Stops following the goal (the goal itself runs on). */
  close(): void {
    this.stopped = true
    this.endedResolve()
  }

  private async fetchResult(): Promise<GoalResult<R>> {
    await this.ended
    if (this.lost) throw this.lost
    const get = this.ac.part("getResult")
    const away = this.outage()
    for (;;) {
      try {
        const r = await get.call({ goal_id: { uuid: this.goalId } }, { timeoutMs: WAIT_MS, owner: this.owner })
        return { status: r.status, result: r.result }
      } catch (e) {
        if (!(e instanceof ServiceError)) throw e
        if (e.code === "deadline_exceeded" && !this.stopped) continue
        if (await away(e)) continue
        if (this.lost) throw this.lost
        // the robot has no result to give: why the goal ended, with the result at its defaults
        const status = e.code === "cancelled" ? GoalStatus.canceled : e.code === "internal" ? GoalStatus.aborted : undefined
        if (status === undefined) throw e
        return { status, result: this.ac.type.result.defaults(), error: e.detail }
      }
    }
  }

  /** one watch call after another until the goal ends: its status changes and feedback */
  private async watch(): Promise<void> {
    const w = this.ac.part("watch")
    const away = this.outage()
    while (!this.stopped && !isTerminal(this.status)) {
      try {
        const r = await w.call({ goal_id: { uuid: this.goalId }, seq: this.seq }, { timeoutMs: WAIT_MS, owner: this.owner })
        away.back()
        if (r.seq <= this.seq) continue
        this.seq = r.seq
        // the robot sends the feedback only when it is newer than what this client has
        const fb = r.feedback[0]
        if (fb !== undefined) {
          this.feedback = fb
          for (const l of this.feedbackListeners.slice()) l(fb)
        }
        if (r.status !== this.status) {
          this.status = r.status
          for (const l of this.statusListeners.slice()) l(r.status)
        }
      } catch (e) {
        if (e instanceof ServiceError && e.code === "deadline_exceeded") continue
        // the robot out of reach for a while: asked again until it is back (its goals run on)
        if (e instanceof ServiceError && (await away(e))) continue
        // anything else: the goal is lost to this client (the robot restarted and forgot it, the
        // node closed, it stayed out of reach); result() says why
        this.lost ??= e instanceof ServiceError ? e : new ServiceError("internal", String(e))
        break
      }
    }
    this.endedResolve()
  }

  /**
   * What to do after a failed watch or get_result call: resolves true, after a pause, when `e` says
   * the robot cannot be reached (`unavailable`) and the goal is still to be followed: the node open,
   * no restart heard, and the robot out of reach for less than GOAL_LINK_GRACE_MS. `back()` is
   * called when a call got through.
   */
  private outage(): ((e: ServiceError) => Promise<boolean>) & { back(): void } {
    let since = 0
    let pause = LINK_RETRY_MS
    const away = async (e: ServiceError): Promise<boolean> => {
      if (e.code !== "unavailable" || this.stopped || this.ac.node.closed) return false
      const now = Date.now()
      since ||= now
      if (now - since >= GOAL_LINK_GRACE_MS) {
        this.lost ??= new ServiceError("unavailable", `${e.detail}; the goal was followed for ${GOAL_LINK_GRACE_MS / 1000} s without reaching the robot`, this.ac.name)
        return false
      }
      await new Promise((r) => setTimeout(r, pause))
      pause = Math.min(pause * 2, LINK_RETRY_MAX_MS)
      return !this.stopped && !this.ac.node.closed
    }
    return Object.assign(away, {
      back() {
        since = 0
        pause = LINK_RETRY_MS
      },
    })
  }

  /** the robot restarted: every goal it held is gone */
  restarted(): void {
    this.lost ??= new ServiceError("unavailable", "the robot restarted: its goals are gone", this.ac.name)
    this.stopped = true
    this.endedResolve()
  }
}

/**
 * A client of one action the robot hosts, like rclpy's ActionClient:
 * `new ActionClient(node, Fibonacci, "fibonacci")`, then `sendGoal({order: 10})`.
 */
export class ActionClient<G, R, F> {
  readonly name: string
  private readonly clients: PartClients<G, R, F>
  private readonly goals = new Set<ClientGoal<R, F>>()
  private readonly unsubscribe: () => void

  constructor(
    readonly node: RobotNode,
    readonly type: ActionDescriptor<G, R, F>,
    name: string,
  ) {
    this.name = normalizeName(name)
    const wire = actionWire(type)
    const base = this.name + "/_action/"
    this.clients = {
      sendGoal: node.createClient(wire.sendGoal, base + ACTION_PARTS[0]),
      cancelGoal: node.createClient(wire.cancelGoal, base + ACTION_PARTS[1]),
      getResult: node.createClient(wire.getResult, base + ACTION_PARTS[2]),
      watch: node.createClient(wire.watch, base + ACTION_PARTS[3]),
    }
    this.unsubscribe = node.onStateChange((_s, info) => {
      if (!info.restarted) return
      // a fleet names the robot that restarted (client/fleet.ts): another robot's goals live on
      const robot = (info as { robot?: string }).robot
      if (robot !== undefined && !this.name.startsWith(`/${robot}/`)) return
      for (const g of this.goals) g.restarted()
      this.goals.clear()
    })
  }

  /** @internal the client of one of the action's services */
  part<K extends keyof ActionWire<G, R, F>>(k: K): PartClients<G, R, F>[K] {
    return this.clients[k]
  }

  /** Resolves when the robot serves all four services of the action with matching types. */
  async waitForServer(options: { timeoutMs?: number } = {}): Promise<void> {
    await Promise.all(Object.values(this.clients).map((c) => c.waitForService(options)))
  }

  /**
   * Sends a goal. Resolves with the goal once accepted; rejects with ServiceError
   * `resource_exhausted` "goal rejected" when the robot refuses it (its onGoal, or goals held at their limit).
   */
  async sendGoal(goal: G, options: SendGoalOptions = {}): Promise<ClientGoal<R, F>> {
    const goalId = new Uint8Array(randomBytes(16))
    const r = await this.part("sendGoal").call({ goal_id: { uuid: goalId }, goal }, { timeoutMs: options.timeoutMs, owner: options.owner })
    if (!r.accepted) throw new ServiceError("resource_exhausted", `goal rejected by ${this.name}`, this.name)
    const g = this.track(new ClientGoal<R, F>(this, goalId, r.stamp, options.owner))
    if (options.onFeedback) g.onFeedback(options.onFeedback)
    if (options.onStatus) g.onStatus(options.onStatus)
    return g
  }

  /** Follows a goal another client sent (its 16-byte id): status, feedback, result, cancel. */
  follow(goalId: Uint8Array, options: { owner?: object } = {}): ClientGoal<R, F> {
    return this.track(new ClientGoal<R, F>(this, goalId, { sec: 0, nanosec: 0 }, options.owner))
  }

  /** Asks the robot to cancel every goal of this action. */
  async cancelAll(options: { timeoutMs?: number } = {}): Promise<CancelGoalResponse> {
    return await this.part("cancelGoal").call(
      { goal_info: { goal_id: { uuid: new Uint8Array(16) }, stamp: { sec: 0, nanosec: 0 } } },
      { timeoutMs: options.timeoutMs },
    )
  }

  /**
   * Asks the robot to cancel every goal of this action it accepted at or before `stamp` (robot
   * time, as in `ClientGoal.stamp`), like rclcpp's `async_cancel_goals_before`.
   */
  async cancelGoalsBefore(stamp: { sec: number; nanosec: number }, options: { timeoutMs?: number } = {}): Promise<CancelGoalResponse> {
    return await this.part("cancelGoal").call({ goal_info: { goal_id: { uuid: new Uint8Array(16) }, stamp } }, { timeoutMs: options.timeoutMs })
  }

  /** Stops following every goal (they run on) and forgets the node's restarts. */
  close(): void {
    this.unsubscribe()
    for (const g of this.goals) g.close()
    this.goals.clear()
  }

  private track(g: ClientGoal<R, F>): ClientGoal<R, F> {
    this.goals.add(g)
    void g.result().then(
      () => this.goals.delete(g),
      () => this.goals.delete(g),
    )
    return g
  }
}
