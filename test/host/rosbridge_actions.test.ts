// Actions over rosbridge (packages/host/src/bridge/rosbridge.ts, packages/host/src/calls/goals.ts): a
// bridge in front of test/firmware/actions_fw.ts in the DeviceScript VM; roslib 2's ROSLIB.Action
// unchanged, bare WebSocket clients for the status and feedback topics and the malformed ops,
// rosapi's action servers and topics, a fleet's `/rover1/fibonacci`. No fixed sleeps: every wait
// is on a message, with a deadline.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import WebSocket from "ws"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"
import type { Client, NodeState, RobotNode } from "../../packages/host/src/client/api"
import { FleetNode } from "../../packages/host/src/client/fleet"
import { startBridge, type Bridge } from "../../packages/host/src/bridge/server"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { closeRos, connectRos, loadRoslib, rawClient, rosCall, rosGet } from "./bridge_helpers"
import { fib } from "./actions_fixture"

const FIB = "example_interfaces/action/Fibonacci"

/**
 * The node with its `<action>/_action/watch` calls counted: `inFlight` now and `most` at once, so
 * a test can tell how many watch loops the bridge runs on the robot.
 */
function countingNode(node: RobotNode): { node: RobotNode; watch: { inFlight: number; most: number; calls: number } } {
  const watch = { inFlight: 0, most: 0, calls: 0 }
  const wrapped = new Proxy(node, {
    get(target, key) {
      if (key === "createClient") {
        return (type: any, name: string): Client<any, any> => {
          const c = target.createClient(type, name)
          if (!name.endsWith("/_action/watch")) return c
          return {
            serviceName: c.serviceName,
            type: c.type,
            waitForService: (o) => c.waitForService(o),
            async call(req, o) {
              watch.calls++
              watch.most = Math.max(watch.most, ++watch.inFlight)
              try {
                return await c.call(req, o)
              } finally {
                watch.inFlight--
              }
            },
          }
        }
      }
      const v = Reflect.get(target, key, target)
      return typeof v === "function" ? v.bind(target) : v
    },
  })
  return { node: wrapped, watch }
}

async function probe(ros: any): Promise<{ runs: number; cancels: number; finished: number; running: number }> {
  return JSON.parse((await rosCall(ros, "/action_probe", "std_srvs/srv/Trigger", {})).message)
}

/** roslib's sendGoal as a promise: every feedback, then the result or the failure text. */
function sendGoal(action: any, goal: unknown, onFeedback?: (f: any) => void): { id: string; done: Promise<{ ok: true; result: any } | { ok: false; error: string }> } {
  let id = ""
  const done = new Promise<{ ok: true; result: any } | { ok: false; error: string }>((resolve) => {
    id = action.sendGoal(
      goal,
      (result: any) => resolve({ ok: true, result }),
      (f: any) => onFeedback?.(f),
      (error: string) => resolve({ ok: false, error }),
    )
  })
  return { id, done }
}

describe("actions over rosbridge (VM)", { timeout: 60000 }, () => {
  let rig: Rig
  let bridge: Bridge
  let watch: { inFlight: number; most: number; calls: number }
  before(async () => {
    rig = await startRig({ firmware: "test/firmware/actions_fw.ts", echoVm: process.env.RS_ECHO_VM === "1" })
    const counted = countingNode(rig.node)
    watch = counted.watch
    bridge = await startBridge({ node: counted.node, port: 0, typeRegistry: serviceTypes })
  })
  after(async () => {
    await bridge?.close()
    await rig?.close()
  })

  test("ROSLIB.Action: a goal with feedback to the end, every term, then the result", async () => {
    const R = await loadRoslib()
    const ros = await connectRos(bridge.wsUrl)
    try {
      const action = new R.Action({ ros, name: "/fibonacci", actionType: FIB })
      const feedback: number[][] = []
      const { id, done } = sendGoal(action, { order: 8 }, (f) => feedback.push(f.sequence))
      assert.match(id, /^send_action_goal:\/fibonacci:/)
      const r = await done
      assert.deepEqual(r, { ok: true, result: { sequence: fib(8) } })
      // one feedback per 100 ms and a watch round trip far shorter: none skipped
      assert.deepEqual(
        feedback.map((s) => s.length),
        [3, 4, 5, 6, 7, 8],
      )
      for (const s of feedback) assert.deepEqual(s, fib(s.length))
    } finally {
      await closeRos(ros)
    }
  })

  test("ROSLIB.Action: cancel mid-goal reaches the robot (its onCancel ran) and the result says canceled", async () => {
    const R = await loadRoslib()
    const ros = await connectRos(bridge.wsUrl)
    try {
      const before = await probe(ros)
      const action = new R.Action({ ros, name: "/fibonacci", actionType: "example_interfaces/Fibonacci" })
      let cancelled = false
      const g = sendGoal(action, { order: 40 }, (f) => {
        if (f.sequence.length >= 4 && !cancelled) {
          cancelled = true
          action.cancelGoal(g.id)
        }
      })
      const r = await g.done
      assert.equal(r.ok, false)
      // rosbridge's shape: result true, status 5 (canceled) and the result the goal returned,
      // which roslib hands to the failed callback as a GoalError
      const m = /^GoalError: Action was canceled: (.*)$/.exec((r as { error: string }).error)
      assert.ok(m, (r as { error: string }).error)
      const partial = JSON.parse(m[1]!).sequence as number[]
      assert.ok(partial.length >= 4 && partial.length < 40, `stopped early: ${partial.length} terms`)
      assert.deepEqual(partial, fib(partial.length))
      const after = await probe(ros)
      assert.equal(after.cancels - before.cancels, 1, "the robot's onCancel ran once")
      assert.equal(after.finished - before.finished, 1)
    } finally {
      await closeRos(ros)
    }
  })

  test("ROSLIB.Action cancelAllGoals (a call_service to /fibonacci/_action/cancel_goal) cancels the running goal", async () => {
    const R = await loadRoslib()
    const ros = await connectRos(bridge.wsUrl)
    try {
      const before = await probe(ros)
      const action = new R.Action({ ros, name: "/fibonacci_serial", actionType: FIB })
      let asked = false
      const r = await sendGoal(action, { order: 40 }, (f) => {
        if (f.sequence.length < 3 || asked) return
        asked = true
        action.cancelAllGoals()
      }).done
      assert.match((r as { error: string }).error, /^GoalError: Action was canceled: \{"sequence":\[0,1,1(,\d+)*\]\}$/)
      assert.equal((await probe(ros)).finished - before.finished, 1)
    } finally {
      await closeRos(ros)
    }
  })

  test("two clients: one follows /fibonacci/_action/feedback and /status while the other sends the goal; one watch loop on the robot", async () => {
    const R = await loadRoslib()
    const watcher = await rawClient(bridge.wsUrl)
    const ros = await connectRos(bridge.wsUrl)
    try {
      watcher.send({ op: "subscribe", topic: "/fibonacci/_action/status" })
      watcher.send({ op: "subscribe", topic: "/fibonacci/_action/feedback" })
      // latched, as ROS 2's status topic: the array at once
      const first = await watcher.next((m) => m.topic === "/fibonacci/_action/status", "the status array on subscribe")
      assert.ok(Array.isArray(first.msg.status_list))
      const seen = new Set(first.msg.status_list.map((s: any) => s.goal_info.goal_id.uuid))
      watcher.got.length = 0

      const callsBefore = watch.calls
      const action = new R.Action({ ros, name: "/fibonacci", actionType: FIB })
      const mine: number[][] = []
      const r = await sendGoal(action, { order: 7 }, (f) => mine.push(f.sequence)).done
      assert.deepEqual(r, { ok: true, result: { sequence: fib(7) } })
      // the goal's final status reaches the watcher
      const done = await watcher.next(
        (m) => m.topic === "/fibonacci/_action/status" && m.msg.status_list.some((s: any) => !seen.has(s.goal_info.goal_id.uuid) && s.status === 4),
        "status succeeded",
      )
      const entry = done.msg.status_list.find((s: any) => !seen.has(s.goal_info.goal_id.uuid))
      const uuid = entry.goal_info.goal_id.uuid as string
      assert.equal(Buffer.from(uuid, "base64").length, 16, "goal_id.uuid: 16 bytes, base64 as rosbridge sends uint8[]")
      assert.ok(entry.goal_info.stamp.sec > 0 || entry.goal_info.stamp.nanosec > 0, "stamp: when the robot accepted it")
      const statuses = watcher.got.filter((m) => m.topic === "/fibonacci/_action/status").map((m) => m.msg.status_list.find((s: any) => s.goal_info.goal_id.uuid === uuid)?.status)
      assert.ok(statuses.includes(1) || statuses.includes(2), `accepted or executing seen before the end: ${statuses}`)
      // the watcher's feedback: <A>_FeedbackMessage, the same terms the sender got
      const fbs = watcher.got.filter((m) => m.topic === "/fibonacci/_action/feedback")
      assert.ok(fbs.every((m) => m.msg.goal_id.uuid === uuid))
      assert.deepEqual(
        fbs.map((m) => m.msg.feedback.sequence),
        mine,
      )
      assert.equal(mine.length, 5)
      // three listeners (the sender's feedback, two subscriptions), one watch call at a time
      assert.equal(watch.most, 1, "one watch loop on the robot")
      assert.ok(watch.calls - callsBefore <= mine.length + 3, `${watch.calls - callsBefore} watch calls for ${mine.length} feedbacks`)
    } finally {
      watcher.close()
      await closeRos(ros)
    }
  })

  test("a client that goes away: its goal runs on to the end (as in ROS), seen on the status topic", async () => {
    const sender = await rawClient(bridge.wsUrl)
    const watcher = await rawClient(bridge.wsUrl)
    const ros = await connectRos(bridge.wsUrl)
    try {
      const before = await probe(ros)
      watcher.send({ op: "subscribe", topic: "/fibonacci/_action/feedback" })
      watcher.send({ op: "subscribe", topic: "/fibonacci/_action/status" })
      await watcher.next((m) => m.topic === "/fibonacci/_action/status", "the status array on subscribe")
      sender.send({ op: "send_action_goal", id: "g1", action: "/fibonacci", action_type: FIB, args: { order: 12 }, feedback: true })
      await sender.next((m) => m.op === "action_feedback" && m.id === "g1", "the first feedback")
      sender.close()
      const fb = await watcher.next((m) => m.topic === "/fibonacci/_action/feedback" && m.msg.feedback.sequence.length === 12, "the last feedback after the sender left")
      const uuid = fb.msg.goal_id.uuid
      await watcher.next(
        (m) => m.topic === "/fibonacci/_action/status" && m.msg.status_list.some((s: any) => s.goal_info.goal_id.uuid === uuid && s.status === 4),
        "status succeeded",
      )
      const after = await probe(ros)
      assert.equal(after.cancels - before.cancels, 0, "nothing cancelled")
      assert.equal(after.finished - before.finished, 1)
    } finally {
      watcher.close()
      await closeRos(ros)
    }
  })

  test("rosapi: action servers, their topics and types; the _action/ services stay listed and callable", async () => {
    const ros = await connectRos(bridge.wsUrl)
    try {
      const servers = await rosGet<string[]>((ok, fail) => ros.getActionServers(ok, fail))
      assert.deepEqual(servers, ["/fibonacci", "/fibonacci_latest", "/fibonacci_serial"])
      const services = await rosGet<string[]>((ok, fail) => ros.getServices(ok, fail))
      for (const p of ["send_goal", "cancel_goal", "get_result", "watch"]) assert.ok(services.includes(`/fibonacci/_action/${p}`), p)
      assert.ok(services.includes("/rosapi/action_servers"))
      assert.equal(await rosGet((ok, fail) => ros.getServiceType("/fibonacci/_action/cancel_goal", ok, fail)), "action_msgs/srv/CancelGoal")
      const topics = await rosGet<{ topics: string[]; types: string[] }>((ok, fail) => ros.getTopics(ok, fail))
      const typeOf = (t: string) => topics.types[topics.topics.indexOf(t)]
      assert.equal(typeOf("/fibonacci/_action/feedback"), `${FIB}_FeedbackMessage`)
      assert.equal(typeOf("/fibonacci/_action/status"), "action_msgs/msg/GoalStatusArray")
      assert.equal(await rosGet((ok, fail) => ros.getTopicType("/fibonacci_serial/_action/status", ok, fail)), "action_msgs/msg/GoalStatusArray")
      const det = await rosGet<any>((ok, fail) => ros.getMessageDetails(`${FIB}_FeedbackMessage`, ok, fail))
      assert.deepEqual(
        det.map((t: any) => [t.type, t.fieldnames]),
        [
          ["example_interfaces/Fibonacci_FeedbackMessage", ["goal_id", "feedback"]],
          ["unique_identifier_msgs/UUID", ["uuid"]],
          ["example_interfaces/Fibonacci_Feedback", ["sequence"]],
        ],
      )
      const st = await rosGet<any>((ok, fail) => ros.getMessageDetails("action_msgs/msg/GoalStatusArray", ok, fail))
      assert.deepEqual(
        st.map((t: any) => t.type),
        ["action_msgs/GoalStatusArray", "action_msgs/GoalStatus", "action_msgs/GoalInfo", "unique_identifier_msgs/UUID", "builtin_interfaces/Time"],
      )
    } finally {
      await closeRos(ros)
    }
  })

  test("malformed and refused goals: a clear error each, as rosbridge gives them; the connection stays open", async () => {
    const c = await rawClient(bridge.wsUrl)
    try {
      const result = (id: string) => c.next((m) => m.op === "action_result" && m.id === id, `action_result ${id}`)
      const errorOf = (id: string) => c.next((m) => m.op === "status" && m.level === "error" && m.id === id, `error status ${id}`)
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ["unknown", { action: "/nope", action_type: FIB, args: { order: 3 } }, /^unimplemented: no action \/nope on the robot \(actions: \/fibonacci, \/fibonacci_serial, \/fibonacci_latest\)$/],
        ["badvalue", { action: "/fibonacci", action_type: FIB, args: { order: "x" } }, /^invalid_argument: goal of example_interfaces\/action\/Fibonacci: .*order/],
        ["badfield", { action: "/fibonacci", action_type: FIB, args: { orden: 3 } }, /^invalid_argument: .*has no field 'orden' \(fields: order\)/],
        ["wrongtype", { action: "/fibonacci", action_type: "std_srvs/action/Nope", args: { order: 3 } }, /^type_mismatch: \/fibonacci is example_interfaces\/action\/Fibonacci, not std_srvs\/action\/Nope$/],
        ["rejected", { action: "/fibonacci", action_type: FIB, args: { order: 0 } }, /^resource_exhausted: goal rejected by \/fibonacci$/],
      ]
      for (const [id, m] of cases) c.send({ op: "send_action_goal", id, ...m })
      for (const [id, , re] of cases) {
        const r = await result(id)
        assert.equal(r.result, false, id)
        assert.equal(r.status, 0, `${id}: status unknown, as rosbridge's failures`)
        assert.match(r.values, re)
        assert.match((await errorOf(id)).msg, /^send_action_goal \/(nope|fibonacci): /)
      }
      // a goal whose execute throws: aborted, no result, the robot's message
      c.send({ op: "send_action_goal", id: "abort", action: "fibonacci", action_type: FIB, args: [99] })
      const ab = await result("abort")
      assert.deepEqual([ab.result, ab.status, ab.action], [false, 6, "/fibonacci"])
      assert.match(ab.values, /^internal: .*order 99 is refused/)
      // ops that name nothing
      c.send({ op: "send_action_goal", id: "noname", args: {} })
      assert.match((await errorOf("noname")).msg, /'action' must be an action name/)
      c.send({ op: "cancel_action_goal", id: "ghost", action: "/fibonacci" })
      assert.match((await errorOf("ghost")).msg, /no goal 'ghost' of \/fibonacci is running on this connection/)
      c.send({ op: "subscribe", id: "t", topic: "/fibonacci/status" })
      assert.match((await errorOf("t")).msg, /_action\/status/)
      // still served
      c.send({ op: "call_service", id: "sum", service: "/add_two_ints", args: { a: 2, b: 3 } })
      const sum = await c.next((m) => m.op === "service_response" && m.id === "sum", "the service response")
      assert.deepEqual(sum.values, { sum: 5 })
      assert.equal(c.ws.readyState, WebSocket.OPEN)
    } finally {
      c.close()
    }
  })

  test("a fleet: /rover1/fibonacci through a fleet bridge, listed by rosapi under the robot's name; another robot's restart leaves its goal alone", async () => {
    const fleet = new FleetNode()
    fleet.add("rover1", rig.node)
    // rover2: a robot with no services whose restart the test tells
    const restart = new Set<(s: NodeState, i: { restarted: boolean }) => void>()
    const rover2: RobotNode = {
      state: "connected",
      closed: false,
      onStateChange: (l) => (restart.add(l), () => restart.delete(l)),
      onServicesChanged: () => () => {},
      listServices: async () => [],
      createClient: () => {
        throw new Error("rover2 has no services")
      },
      close: async () => {},
    }
    fleet.add("rover2", rover2)
    const fb = await startBridge({ node: fleet, port: 0, typeRegistry: serviceTypes })
    const R = await loadRoslib()
    const ros = await connectRos(fb.wsUrl)
    try {
      const servers = await rosGet<string[]>((ok, fail) => ros.getActionServers(ok, fail))
      assert.ok(servers.includes("/rover1/fibonacci"), String(servers))
      const action = new R.Action({ ros, name: "/rover1/fibonacci", actionType: FIB })
      const feedback: number[][] = []
      let told = false
      const r = await sendGoal(action, { order: 5 }, (f) => {
        feedback.push(f.sequence)
        if (told) return
        told = true
        for (const l of restart) l("connected", { restarted: true })
      }).done
      assert.ok(told)
      assert.deepEqual(r, { ok: true, result: { sequence: fib(5) } })
      assert.deepEqual(feedback, [fib(3), fib(4), fib(5)])
      // a name without a robot says which to use
      const c = await rawClient(fb.wsUrl)
      c.send({ op: "send_action_goal", id: "bare", action: "/fibonacci", action_type: FIB, args: { order: 3 } })
      const bare = await c.next((m) => m.op === "action_result" && m.id === "bare", "action_result")
      assert.equal(bare.values, "unimplemented: no action /fibonacci: this bridge serves several robots, name one (/rover1/fibonacci)")
      c.close()
    } finally {
      await closeRos(ros)
      await fb.close() // the fleet is left open: rig.node is the rig's to close
    }
  })
})
