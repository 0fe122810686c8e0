// ROS 2 actions hosted on the device: `createActionServer(Fibonacci(), "fibonacci", { execute })`,
// like rclpy's ActionServer. An action is served as four services of the call runtime, so every
// guarantee of a service call holds for each of its steps (a goal is accepted exactly once under
// loss and replay, every step has a finite deadline, memory is bounded by the budget):
//   /<name>/_action/send_goal    <A>_SendGoal     accept or reject a goal (a goal id already known: its first answer again)
//   /<name>/_action/cancel_goal  action_msgs/srv/CancelGoal
//   /<name>/_action/get_result   <A>_GetResult    answered when the goal has ended
//   /<name>/_action/watch        <A>_Watch        answered when the goal's status or feedback changed
//                                                 past the seq the host already has (how feedback and
//                                                 status reach every host that follows the goal)
// The `_action/` names are hidden from `robot service list`, as ROS 2 hides them (docs/actions.md).
// Everything here stays inside the DeviceScript language subset.
import "../cdr/strings"
import * as ds from "@devicescript/core"
import { CALL_COST, CallContext, GRACE_MS, budget, errText, fullName, maxTimeoutMs, retentionMs } from "../rpc/core"
import { calls, chargeLink, used } from "../rpc/calls"
import { ActionGoalInfo, ActionStamp, ActionType, stampOf } from "./actiontype"
import { CdrWriter, MessageCodec } from "../cdr/cdr"
import { createService } from "./services"
import { ServiceError, Status } from "../cdr/types"

// The names this file uses most, numbered when the compiler meets this module (cdr/strings.ts says why)
"goals"; "goal"; "key"; "o"; "seen"; "fseq"; "last"; "ended"; "fetched"; "done"; "goal_id"; "uuid"; "stamp"
"feedback"; "result"; "sec"; "nanosec"; "execute"; "accepted"; "onCancel"; "watch"; "concurrency"; "onGoal"
"maxGoals"; "host"; "fc"; "delivered"; "getResult"; "cancelGoal"; "sendGoal"; "_Request"; "_Response"

/** action_msgs/msg/GoalStatus STATUS_* */
export const enum GoalStatus {
    Unknown = 0,
    Accepted = 1,
    Executing = 2,
    Canceling = 3,
    Succeeded = 4,
    Canceled = 5,
    Aborted = 6,
}

/**
 * One goal, as `execute` sees it (its second argument): a CallContext whose `cancelled` turns true
 * when a host cancels the goal, a newer goal preempts it (`"latest"`) or its deadline passes, and
 * whose `deadline` is the goal's. `feedback(f)` publishes progress to every host following the goal.
 * @devsWhenUsed
 */
export class GoalHandle<G, F> extends CallContext {
    status = GoalStatus.Accepted
    /** bumped on every status change and feedback: what `_action/watch` compares */
    seq = 1
    /** the last feedback ([] before the first) */
    last: F[] = []
    /** the highest seq a host following the goal has (what its last watch asked past); the seq of the last feedback */
    seen = 0
    fseq: number
    result: any
    /** why the goal was aborted */
    error = ""
    /** ds.millis() when it ended (unset: not yet), and when a host first fetched its result (fields without an initializer: an initializer is code) */
    ended: number
    fetched: number
    fiber: ds.Fiber
    /** the host that sent it (its session) */
    host: any
    constructor(name: string, deadline: number, public id: Buffer, public key: string, public goal: G, public stamp: ActionStamp, private fc: MessageCodec<F>) {
        super(name, deadline)
    }
    /**
     * Sends `f` to every host following this goal (the latest one wins if they ask slower than it
     * changes). Throws InvalidArgument, naming the field, if `f` cannot be encoded (checked here, so
     * the mistake surfaces in execute and aborts the goal instead of failing every host's watch).
     */
    feedback(f: F) {
        this.fc.encode(new CdrWriter(), f)
        this.last = [f]
        this.fseq = ++this.seq
    }
    /**
     * Waits until a host following the goal has the latest feedback, or `ms` pass, or the goal is
     * cancelled; true if a host has it. For feedback that must not be overwritten before a host has
     * it (a picture still in the camera's buffer).
     */
    async delivered(ms: number): Promise<boolean> {
        const end = ds.millis() + ms
        while (this.seen < this.seq && !this.cancelled && ds.millis() < end) await ds.sleep(10)
        return this.seen >= this.seq
    }
    /** the goal is done (succeeded, canceled or aborted) */
    done(): boolean {
        return this.status >= GoalStatus.Succeeded
    }
}

/** the goal's status changes to `st` (a module function, not a method: a method is an entry more in the image's class tables) */
function to(g: GoalHandle<any, any>, st: GoalStatus) {
    g.status = st
    g.seq++
    if (g.done()) g.ended = ds.millis()
}

/** What an action server does; see {@link createActionServer}. */
export interface ActionServerOptions<G, R, F> {
    /** Runs the goal in its own fiber; returns the result or throws (the goal is then aborted with the message). */
    execute: (goal: G, handle: GoalHandle<G, F>) => Promise<R>
    /** Accept (true, the default) or reject a goal before it runs. */
    onGoal?: (goal: G) => boolean
    /**
     * A host asked to cancel the goal (or a newer goal preempts it): stop what it drives here, at
     * once. Called with the handle already `cancelled`, before the cancel is answered (awaited).
     * Return false to refuse the cancel: the handle turns back (execute may have seen it meanwhile).
     */
    onCancel?: (handle: GoalHandle<G, F>) => Promise<boolean | void> | boolean | void
    /** `"parallel"` (default): goals run at once; `"serial"`: one after another; `"latest"`: a new goal cancels the running ones, then runs. */
    concurrency?: "parallel" | "serial" | "latest"
    /**
     * Goals held at once, running, waiting or ended with their result kept (default 4). Past it:
     * rejected; a host that holds goals never takes the last place (another host's goal gets it).
     */
    maxGoals?: number
    /** A goal's deadline (ms, default the runtime's maxTimeoutMs): then it is cancelled, and aborted if it has not ended GRACE later. */
    timeoutMs?: number
    /** How long an ended goal's result is kept for hosts that have not fetched it (ms, default 60000; once fetched, the runtime's retentionMs). */
    keepMs?: number
}

interface Server {
    o: ActionServerOptions<any, any, any>
    goals: GoalHandle<any, any>[]
}

/** the goal named by a request; none: null, or InvalidArgument when `known` (one function for both: a function less in the image) */
function find(s: Server, id: Buffer, known?: boolean): GoalHandle<any, any> {
    const k = id.toString("hex")
    for (const g of s.goals) if (g.key === k) return g
    if (known) throw new ServiceError(Status.InvalidArgument, "unknown goal " + k)
    return null
}

/**
 * Ended goals give their place and budget back: once their result was fetched, retentionMs later
 * (other hosts following them may fetch it too) or at once when a new goal needs the place; never
 * fetched, keepMs after they ended.
 */
function prune(s: Server, max: number) {
    const now = ds.millis()
    for (const g of s.goals.slice())
        if (g.ended !== undefined && (g.fetched !== undefined ? s.goals.length >= max || now - g.fetched > retentionMs : now - g.ended > (s.o.keepMs > 0 ? s.o.keepMs : 60000))) {
            s.goals.insert(s.goals.indexOf(g), -1)
            chargeLink(-CALL_COST)
        }
}

/**
 * waits (polling, woken early by the call's cancel or deadline) until `g` has ended (`seq` -1) or
 * its seq is past `seq` (arguments, not a condition as a closure: a closure per call site is a
 * function more in the image)
 */
async function wait(ctx: CallContext, g: GoalHandle<any, any>, seq: number) {
    while (seq < 0 ? !g.done() : g.seq <= seq) {
        if (ctx.cancelled) throw new ServiceError(Status.Cancelled, ctx.reason)
        await ds.sleep(10)
    }
}

/** the goal's own fiber: waits its turn, runs execute in a second fiber, enforces the deadline */
async function runGoal(s: Server, g: GoalHandle<any, any>) {
    if (s.o.concurrency)
        while (!g.cancelled) {
            let ahead = false
            for (const o of s.goals) {
                if (o === g) break
                if (!o.done()) ahead = true
            }
            if (!ahead) break
            await ds.sleep(10)
        }
    if (g.cancelled) {
        to(g, GoalStatus.Canceled)
        return
    }
    to(g, GoalStatus.Executing)
    g.fiber = execute.start(s, g)
    while (!g.done()) {
        const now = ds.millis()
        if (now > g.deadline) {
            g.cancel("the goal's deadline passed")
            if (now > g.deadline + GRACE_MS) {
                // execute ignored its cancel: stopped for good
                g.fiber.terminate()
                g.error = "the goal's deadline passed"
                to(g, GoalStatus.Aborted)
            }
        }
        await ds.sleep(10)
    }
}

async function execute(s: Server, g: GoalHandle<any, any>) {
    try {
        g.result = await s.o.execute(g.goal, g)
        to(g, g.cancelled ? GoalStatus.Canceled : GoalStatus.Succeeded)
    } catch (e) {
        g.error = errText(e)
        to(g, g.cancelled ? GoalStatus.Canceled : GoalStatus.Aborted)
    }
}

/**
 * Serves the ROS action `name` of type `type` (generated: `Fibonacci()`), like rclpy's
 * ActionServer: hosts send goals, follow their status and feedback, cancel them and fetch their
 * results (`robot action send_goal`, the Node action client, roslib's `ROSLIB.Action` through the
 * bridge). Each goal runs `options.execute` in its own fiber. Throws if `name` is already served.
 */
export function createActionServer<G, R, F>(type: ActionType<G, R, F>, name: string, options: ActionServerOptions<G, R, F>) {
    const s: Server = { o: options, goals: [] }
    const n = fullName(name) + "/_action/"
    createService(type.sendGoal, n + "send_goal", async (req, ctx) => {
        const max = options.maxGoals > 0 ? options.maxGoals : 4
        // (the last place too: see below)
        prune(s, max - 1)
        const id = req.goal_id.uuid as Buffer
        let g = find(s, id)
        // the same goal sent again (its answer lost, the host restarted): the same answer, never a second run
        if (g) return { accepted: true, stamp: g.stamp }
        const t = ds.millis()
        const stamp = stampOf(t)
        // the host asking (the session of this call), and the goals it holds: a host that holds
        // goals never takes the last place, so one host's goals cannot lock the others out (issue 16)
        let host: any = null
        for (const c of calls) if (c === ctx) host = c.s
        let mine = 0
        for (const o of s.goals) if (o.host === host) mine++
        if (s.goals.length + (mine > 0 ? 1 : 0) >= max || used + CALL_COST > budget || (options.onGoal && !options.onGoal(req.goal)))
            return { accepted: false, stamp }
        g = new GoalHandle(n, t + (options.timeoutMs > 0 ? options.timeoutMs : maxTimeoutMs), id, id.toString("hex"), req.goal, stamp, type.feedback)
        g.host = host
        // the goal's record and its two fibers, for as long as it is held
        chargeLink(CALL_COST)
        if (options.concurrency === "latest") for (const o of s.goals.slice()) if (!o.done()) await cancel(s, o, "preempted by a newer goal")
        s.goals.push(g)
        runGoal.start(s, g)
        return { accepted: true, stamp }
    })
    createService(type.cancelGoal, n + "cancel_goal", async (req) => {
        // ROS 2's CancelGoal: a goal id, that goal; a stamp (robot time, as in accept answers), the
        // goals accepted at or before it; both, the two; neither, every goal
        const info = req.goal_info
        const k = (info.goal_id.uuid as Buffer).toString("hex")
        const by = info.stamp.sec * 1000 + info.stamp.nanosec / 1000000
        const all = k === "00000000000000000000000000000000"
        const out: ActionGoalInfo[] = []
        let code = 2
        for (const g of s.goals.slice())
            if ((all && by === 0) || g.key === k || g.stamp.sec * 1000 + g.stamp.nanosec / 1000000 <= by) {
                if (g.done()) code = 3
                else if (await cancel(s, g, "cancel requested")) out.push({ goal_id: { uuid: g.id }, stamp: g.stamp })
                else code = 1
            }
        return { return_code: out.length > 0 ? 0 : all ? 1 : code, goals_canceling: out }
    })
    createService(type.getResult, n + "get_result", async (req, ctx) => {
        const g = find(s, req.goal_id.uuid as Buffer, true)
        await wait(ctx, g, -1)
        if (g.fetched === undefined) g.fetched = ds.millis()
        // a goal with no result to give (aborted, or canceled before execute returned one): its status
        // as the call's, which the host turns into the goal's status with the result at its defaults
        if (g.result === undefined)
            throw new ServiceError(g.status === GoalStatus.Canceled ? Status.Cancelled : Status.Internal, g.error || "canceled")
        return { status: g.status, result: g.result }
    })
    createService(type.watch, n + "watch", async (req, ctx) => {
        const g = find(s, req.goal_id.uuid as Buffer, true)
        if (req.seq > g.seen) g.seen = req.seq
        await wait(ctx, g, req.seq)
        // the feedback only when the host does not have it yet (a status change alone does not resend a picture)
        return { seq: g.seq, status: g.status, feedback: g.fseq > req.seq ? g.last : [] }
    })
}

/** asks `g` to stop: its handle turns cancelled, onCancel runs (false: refused); true if it is now canceling */
async function cancel(s: Server, g: GoalHandle<any, any>, why: string): Promise<boolean> {
    g.cancel(why)
    if (s.o.onCancel && (await s.o.onCancel(g)) === false) {
        g.cancelled = false
        return false
    }
    // (execute may have ended the goal while onCancel ran: an ended goal keeps its status)
    if (!g.done()) to(g, GoalStatus.Canceling)
    return true
}
