// ROS 2 actions on the device (packages/device/src/lib/actions.ts) through the Node action client
// (packages/host/src/client/action.ts): test/firmware/actions_fw.ts in the DeviceScript VM, the
// real host client, through the rig's frame hub. No fixed sleeps: every wait is on a goal's event.
import assert from "node:assert/strict"
import { setMaxListeners } from "node:events"
import { after, before, describe, test } from "node:test"
import { AddTwoInts, Fibonacci } from "../../packages/host/src/gen/interfaces"
import { actionWire } from "../../packages/host/src/runtime/action"
import { ActionClient, GoalStatus, isTerminal, type ClientGoal } from "../../packages/host/src/client/action"
import { ServiceError } from "../../packages/host/src/client/errors"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { linkModel } from "../../harness/link"
import { actionProbe, fib } from "./actions_fixture"

const LOSSY = { loss: 0.05, duplicate: 0.02, reorder: 0.02, queueBytes: 2048, bytesPerSec: 100000 }

/** resolves once `g` reports `status` (at once if it already has) */
function statusReached<R, F>(g: ClientGoal<R, F>, status: number, timeoutMs = 10000): Promise<void> {
  if (g.status === status) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`status ${status} not reached in ${timeoutMs} ms (now ${g.status})`)), timeoutMs)
    const off = g.onStatus((s) => {
      if (s !== status) return
      clearTimeout(t)
      off()
      resolve()
    })
  })
}

describe("actions on the robot (VM)", () => {
  let rig: Rig
  let boot: number
  before(async () => {
    rig = await startRig({ firmware: "test/firmware/actions_fw.ts", echoVm: process.env.RS_ECHO_VM === "1" })
    boot = rig.node.limits!.bootId
  })
  after(async () => {
    await rig?.close()
  })

  test("the action's four services are listed with their types", async () => {
    const list = await rig.node.listServices()
    const of = (n: string) => list.find((s) => s.name === n)?.type
    assert.equal(of("/fibonacci/_action/send_goal"), "example_interfaces/action/Fibonacci_SendGoal")
    assert.equal(of("/fibonacci/_action/get_result"), "example_interfaces/action/Fibonacci_GetResult")
    assert.equal(of("/fibonacci/_action/cancel_goal"), "action_msgs/srv/CancelGoal")
    assert.equal(of("/fibonacci/_action/watch"), "example_interfaces/action/Fibonacci_Watch")
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    await ac.waitForServer({ timeoutMs: 5000 })
    ac.close()
  })

  test("a goal with feedback to the end: every term in order, then the result", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const before = await actionProbe(rig.node)
    const feedback: number[][] = []
    const statuses: number[] = []
    const g = await ac.sendGoal({ order: 10 }, { onFeedback: (f) => feedback.push(f.sequence), onStatus: (s) => statuses.push(s) })
    const r = await g.result()
    assert.equal(r.status, GoalStatus.succeeded)
    assert.deepEqual(r.result.sequence, fib(10))
    // feedback comes every 100 ms and the watch round trip is far shorter: none is skipped
    assert.deepEqual(
      feedback.map((s) => s.length),
      [3, 4, 5, 6, 7, 8, 9, 10],
    )
    for (const s of feedback) assert.deepEqual(s, fib(s.length))
    assert.deepEqual(statuses, [GoalStatus.executing, GoalStatus.succeeded])
    const after = await actionProbe(rig.node)
    assert.equal(after.runs - before.runs, 1, "execute ran once")
    ac.close()
  })

  test("a goal onGoal refuses is rejected; one whose execute throws ends aborted with its message", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    await assert.rejects(ac.sendGoal({ order: 0 }), (e: unknown) => e instanceof ServiceError && e.code === "resource_exhausted" && /goal rejected/.test(e.message))
    const g = await ac.sendGoal({ order: 99 })
    const r = await g.result()
    assert.equal(r.status, GoalStatus.aborted)
    assert.match(r.error ?? "", /order 99 is refused/)
    assert.deepEqual(r.result, { sequence: [] }, "no result: the defaults")
    ac.close()
  })

  test("feedback that cannot be encoded aborts the goal with the field named", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const r = await (await ac.sendGoal({ order: 97 })).result()
    assert.equal(r.status, GoalStatus.aborted)
    assert.match(r.error ?? "", /int32/)
    ac.close()
  })

  test("cancel mid-goal: onCancel runs at once, the goal ends canceled with what it had", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const before = await actionProbe(rig.node)
    const g = await ac.sendGoal({ order: 40 })
    await new Promise<void>((resolve) => {
      const off = g.onFeedback((f) => {
        if (f.sequence.length < 4) return
        off()
        resolve()
      })
    })
    const c = await g.cancel()
    assert.equal(c.return_code, 0)
    assert.equal(c.goals_canceling.length, 1)
    assert.deepEqual(Buffer.from(c.goals_canceling[0]!.goal_id.uuid), Buffer.from(g.goalId))
    // onCancel ran before the cancel was answered
    assert.equal((await actionProbe(rig.node)).cancels - before.cancels, 1)
    const r = await g.result()
    assert.equal(r.status, GoalStatus.canceled)
    assert.ok(r.result.sequence.length >= 4 && r.result.sequence.length < 40, `partial result: ${r.result.sequence.length} terms`)
    // a second cancel: the goal has ended
    assert.equal((await g.cancel()).return_code, 3)
    ac.close()
  })

  test("cancel by stamp, as ROS 2's CancelGoal says: the goals accepted at or before it; with a goal id, that goal too", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const g1 = await ac.sendGoal({ order: 40 })
    const g2 = await ac.sendGoal({ order: 40 })
    const g3 = await ac.sendGoal({ order: 40 })
    const ms = (s: { sec: number; nanosec: number }) => s.sec * 1000 + s.nanosec / 1e6
    assert.ok(ms(g1.stamp) < ms(g2.stamp) && ms(g2.stamp) < ms(g3.stamp), `stamps in order: ${[g1, g2, g3].map((g) => ms(g.stamp))}`)
    // the goals accepted at or before g1's stamp: g1 alone
    const c1 = await ac.cancelGoalsBefore(g1.stamp)
    assert.equal(c1.return_code, 0)
    assert.deepEqual(c1.goals_canceling.map((x) => Buffer.from(x.goal_id.uuid).toString("hex")), [g1.id])
    assert.equal((await g1.result()).status, GoalStatus.canceled)
    assert.ok(!isTerminal(g2.status) && !isTerminal(g3.status), "g2 and g3 run on")
    // g3 by its id, with the stamp of g2: both (g1 has ended and is not listed again)
    const c2 = await rig.node.createClient(actionWire(Fibonacci).cancelGoal, "/fibonacci/_action/cancel_goal").call({ goal_info: { goal_id: { uuid: g3.goalId }, stamp: g2.stamp } })
    assert.equal(c2.return_code, 0)
    assert.deepEqual(c2.goals_canceling.map((x) => Buffer.from(x.goal_id.uuid).toString("hex")).sort(), [g2.id, g3.id].sort())
    for (const g of [g2, g3]) assert.equal((await g.result()).status, GoalStatus.canceled)
    // a stamp before every goal the robot holds: nothing to cancel (REJECTED, as with no goals at all)
    assert.equal((await ac.cancelGoalsBefore({ sec: 0, nanosec: 1 })).return_code, 1)
    ac.close()
  })

  test("two hosts following one goal both hear its feedback and its result", async () => {
    const other = await rig.connect()
    const a = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const b = new ActionClient(other, Fibonacci, "fibonacci")
    // host B has its session and the service list before the goal starts (a fresh node took about
    // half a second on a loaded machine, most of a short goal: B then heard only its last terms)
    await b.waitForServer({ timeoutMs: 20000 })
    const g = await a.sendGoal({ order: 12 })
    const f = b.follow(g.goalId)
    const heardB: number[] = []
    f.onFeedback((x) => heardB.push(x.sequence.length))
    const [ra, rb] = await Promise.all([g.result(), f.result()])
    assert.equal(ra.status, GoalStatus.succeeded)
    assert.deepEqual(rb, ra)
    // (the goal waits for one following host, not for each: B may miss a term if it falls behind)
    assert.ok(heardB.length >= 3 && heardB.at(-1) === 12, `host B heard ${heardB.join(",")}`)
    a.close()
    b.close()
    await other.close()
  })

  test("a host that fills the goal places does not lock out another host: its goal is accepted and runs during the flood (issue 16)", async () => {
    const flooder = await rig.connect()
    const a = new ActionClient(flooder, Fibonacci, "fibonacci")
    const b = new ActionClient(rig.node, Fibonacci, "fibonacci")
    await a.waitForServer({ timeoutMs: 20000 })
    // host A asks for 8 long goals at once (the server holds 4); each runs until its 3 s deadline
    const flood = await Promise.allSettled(Array.from({ length: 8 }, () => a.sendGoal({ order: 60 })))
    const held = flood.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<ClientGoal<unknown, unknown>>).value)
    const refused = flood.filter((r) => r.status === "rejected")
    assert.ok(held.length >= 1, "the flooder's first goals are accepted")
    for (const r of refused) assert.match(String((r as PromiseRejectedResult).reason), /goal rejected/)
    // while A's goals are held and running, host B's goal is accepted and runs to its result
    for (const g of held) assert.ok(g.status !== GoalStatus.succeeded && g.status < GoalStatus.succeeded, `A's goal still held (status ${g.status})`)
    const g = await b.sendGoal({ order: 5 })
    const r = await g.result()
    assert.equal(r.status, GoalStatus.succeeded)
    assert.deepEqual(r.result.sequence, fib(5))
    // A kept fewer than every place: the last one is for a host that holds none
    assert.ok(held.length <= 3, `the flooder held ${held.length} of the 4 places`)
    await Promise.all(held.map((x) => x.result().catch(() => undefined)))
    // the rule does not stop one host sending goals one after another: its ended goals whose
    // results it has give their place back
    for (let i = 0; i < 5; i++) assert.equal((await (await b.sendGoal({ order: 2 })).result()).status, GoalStatus.succeeded, `goal ${i + 1} in a row`)
    a.close()
    b.close()
    await flooder.close()
  })

  test("a host flooding watch long-polls does not hold up another host: its calls are answered and its goal's feedback flows during the flood (issue 16)", { timeout: 90_000 }, async () => {
    // (a window of 16: more calls at once than the device gives one host, as an attacker would send;
    // the client's default window is the device's share, 6 of its 8)
    const flooder = await rig.connect({ window: 16 })
    const b = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const add = rig.node.createClient(AddTwoInts, "add_two_ints")
    const watch = flooder.createClient(actionWire(Fibonacci).watch, "/fibonacci/_action/watch")
    const heard: number[] = []
    const g = await b.sendGoal({ order: 25 }, { onFeedback: (f) => heard.push(f.sequence.length) })
    // host A keeps 20 watch calls waiting on B's goal for a seq it never reaches (each held up to
    // 5 s on the robot, longer than any of the test's calls), renewed as they end
    let flooding = true
    let floodCalls = 0
    let lastFloodCall = 0
    const stop = new AbortController()
    setMaxListeners(40, stop.signal)
    const poll = async (): Promise<void> => {
      while (flooding) {
        floodCalls++
        lastFloodCall = Date.now()
        await watch.call({ goal_id: { uuid: g.goalId }, seq: 2 ** 31 }, { timeoutMs: 5000, signal: stop.signal }).catch(() => undefined)
      }
    }
    const flood = Array.from({ length: 20 }, poll)
    try {
      // during the flood: B's calls are answered, each within a second
      for (let i = 0; i < 10; i++) {
        const t0 = Date.now()
        const r = await add.call({ a: BigInt(i), b: 1n }, { timeoutMs: 3000 })
        assert.equal(r.sum, BigInt(i) + 1n)
        assert.ok(Date.now() - t0 < 1000, `call ${i} took ${Date.now() - t0} ms during the flood`)
      }
      assert.ok(g.status < GoalStatus.succeeded, "the goal was still running while the calls were checked")
      // (a 25-term goal takes about 2.5 s; its result within 15 s, while the flood goes on)
      const r = await Promise.race([g.result(), new Promise<never>((_, no) => setTimeout(() => no(new Error("B's goal had no result within 15 s during the flood")), 15000).unref())])
      assert.equal(r.status, GoalStatus.succeeded)
      assert.deepEqual(r.result.sequence, fib(25))
      // (the goal waits up to 1 s for a host to have each term: B's watch kept up through the flood)
      assert.ok(heard.length >= 15 && heard.at(-1) === 25, `B heard ${heard.length} feedbacks: ${heard.join(",")}`)
      assert.ok(floodCalls >= 20, `the flood made ${floodCalls} watch calls`)
    } finally {
      flooding = false
      stop.abort()
      await Promise.all(flood)
      b.close()
      await flooder.close()
      // the robot holds A's last watch calls until their 5 s deadline (its sweep runs every 250 ms):
      // the next test starts once they are gone, not into what is left of the flood. (Waiting until
      // 6 calls at once went through fast was tried: on a busy machine they did while A's calls
      // still held slots, and the next test's probe calls were turned away busy.)
      await new Promise((r) => setTimeout(r, Math.max(0, lastFloodCall + 6000 - Date.now())))
    }
  })

  test("serial goals run one after another; a latest goal preempts the running one", async () => {
    const s = new ActionClient(rig.node, Fibonacci, "fibonacci_serial")
    const g1 = await s.sendGoal({ order: 6 })
    const g2 = await s.sendGoal({ order: 4 })
    // the robot's own count of running execute calls, sampled until both ended: never 2
    let most = 0
    let samples = 0
    const both = Promise.all([g1.result(), g2.result()])
    let ended = false
    void both.then(() => (ended = true))
    while (!ended) {
      most = Math.max(most, (await actionProbe(rig.node)).running)
      samples++
    }
    assert.ok(samples >= 5, `${samples} samples`)
    assert.equal(most, 1, "one serial goal at a time")
    const [r1, r2] = await both
    assert.deepEqual(r1.result.sequence, fib(6))
    assert.deepEqual(r2.result.sequence, fib(4))
    s.close()

    const l = new ActionClient(rig.node, Fibonacci, "fibonacci_latest")
    const a = await l.sendGoal({ order: 40 })
    await statusReached(a, GoalStatus.executing)
    const b = await l.sendGoal({ order: 5 })
    const ra = await a.result()
    assert.equal(ra.status, GoalStatus.canceled)
    assert.deepEqual((await b.result()).result.sequence, fib(5))
    l.close()
  })

  test("a goal that ignores its cancel is stopped at its deadline and aborted", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const g = await ac.sendGoal({ order: 98 })
    const t0 = performance.now()
    const r = await g.result()
    const took = performance.now() - t0
    assert.equal(r.status, GoalStatus.aborted)
    assert.match(r.error ?? "", /deadline/)
    // the server's timeoutMs is 3000, the grace 1000
    assert.ok(took > 2500 && took < 7000, `ended after ${took} ms`)
    // its execute fiber was terminated: its 100 ms ticks stop (probed for 400 ms)
    const ticks = (await actionProbe(rig.node)).ticks
    const until = performance.now() + 400
    while (performance.now() < until) assert.equal((await actionProbe(rig.node)).ticks, ticks, "the ignored goal still runs")
    ac.close()
  })

  test("the same goal id sent again is accepted once and runs once", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const before = await actionProbe(rig.node)
    const send = ac.part("sendGoal")
    const goal_id = { uuid: new Uint8Array(16).fill(7) }
    const r1 = await send.call({ goal_id, goal: { order: 3 } })
    const r2 = await send.call({ goal_id, goal: { order: 3 } })
    assert.equal(r1.accepted, true)
    assert.deepEqual(r2, r1, "the first answer again")
    const r = await ac.follow(goal_id.uuid).result()
    assert.deepEqual(r.result.sequence, fib(3))
    assert.equal((await actionProbe(rig.node)).runs - before.runs, 1)
    ac.close()
  })

  test("goals over a lossy link (5% loss each way): each accepted exactly once, every result right", async () => {
    const lossy = await rig.connect({ pipes: linkModel({ ...LOSSY, seed: 11 }).pipes })
    await lossy.listServices({ timeoutMs: 20000 })
    const ac = new ActionClient(lossy, Fibonacci, "fibonacci")
    const before = await actionProbe(rig.node)
    const n = 12
    const goals: ClientGoal<{ sequence: number[] }, { sequence: number[] }>[] = []
    // at most 3 at once: the server holds 4 goals (running or with a result not yet fetched)
    for (let i = 0; i < n; i += 3) {
      const batch = await Promise.all([0, 1, 2].map((k) => ac.sendGoal({ order: 3 + ((i + k) % 4) }, { timeoutMs: 20000 })))
      goals.push(...batch)
      for (const g of batch) assert.equal((await g.result()).status, GoalStatus.succeeded)
    }
    for (let i = 0; i < n; i++) assert.deepEqual((await goals[i]!.result()).result.sequence, fib(3 + (i % 4)))
    assert.equal((await actionProbe(rig.node)).runs - before.runs, n, "each goal ran exactly once")
    ac.close()
    await lossy.close()
  })

  test("the robot restarting mid-goal: the client hears it at once and the goal fails unavailable", async () => {
    const ac = new ActionClient(rig.node, Fibonacci, "fibonacci")
    const g = await ac.sendGoal({ order: 40 })
    await statusReached(g, GoalStatus.executing)
    const t0 = performance.now()
    const failed = g.result().then(
      () => assert.fail("the goal cannot end normally"),
      (e: unknown) => e,
    )
    await rig.restartVm()
    const e = await failed
    assert.ok(e instanceof ServiceError && e.code === "unavailable", `got ${e}`)
    assert.match((e as ServiceError).message, /restarted/)
    assert.ok(performance.now() - t0 < 15000)
    ac.close()
    // the new program serves actions again
    boot = rig.node.limits!.bootId
    const again = new ActionClient(rig.node, Fibonacci, "fibonacci")
    assert.deepEqual((await (await again.sendGoal({ order: 3 })).result()).result.sequence, fib(3))
    again.close()
    assert.ok(boot !== undefined)
  })
})
