// The services an action is served as (packages/host/src/runtime/action.ts `actionWire`, the
// device's packages/device/src/lib/actiontype.ts): CancelGoal built from the action's own
// definitions equals the generated action_msgs/srv/CancelGoal, and `<A>_Watch` has the layout
// docs/actions.md gives. The device side agrees through test/host/actions.test.ts (the hashes are
// compared when the client waits for the server; every value crosses the wire).
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import { CancelGoal, Fibonacci } from "../../packages/host/src/gen/interfaces"
import { CANCEL_GOAL_HASH32, WATCH_SALT, actionWire, actionsOf, isActionService } from "../../packages/host/src/runtime/action"
import { actionDescriptorsOf } from "../../packages/host/src/calls/projecttypes"
import { loadInterfaces } from "../../packages/host/src/idl/load"

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")
const uuid = Uint8Array.from({ length: 16 }, (_, i) => i + 1)

describe("action wire types", () => {
  test("CancelGoal made from the action's definitions is action_msgs/srv/CancelGoal, hash and bytes", () => {
    const w = actionWire(Fibonacci)
    assert.equal(CANCEL_GOAL_HASH32, CancelGoal.hash32)
    assert.equal(w.cancelGoal.hash32, CancelGoal.hash32)
    assert.equal(w.cancelGoal.fullName, CancelGoal.fullName)
    const req = { goal_info: { goal_id: { uuid }, stamp: { sec: 7, nanosec: 9 } } }
    assert.equal(hex(w.cancelGoal.request.encode(req)), hex(CancelGoal.request.encode(req)))
    const res = { return_code: 0, goals_canceling: [req.goal_info, { goal_id: { uuid: new Uint8Array(16) }, stamp: { sec: 1, nanosec: 2 } }] }
    const bytes = CancelGoal.response.encode(res)
    assert.equal(hex(w.cancelGoal.response.encode(res)), hex(bytes))
    assert.deepEqual(w.cancelGoal.response.decode(bytes), CancelGoal.response.decode(bytes))
  })

  test("<A>_Watch: goal id and seq; seq, status and at most one feedback", () => {
    const w = actionWire(Fibonacci).watch
    assert.equal(w.fullName, "example_interfaces/action/Fibonacci_Watch")
    assert.equal(w.hash32, (Fibonacci.hash32 ^ WATCH_SALT) >>> 0)
    assert.equal(hex(w.request.encode({ goal_id: { uuid }, seq: 5 })), "00010000" + hex(uuid) + "05000000")
    // seq 3, status 2, one feedback {sequence: [0, 1]}
    const one = "00010000" + "03000000" + "02" + "000000" + "01000000" + "02000000" + "00000000" + "01000000"
    assert.equal(hex(w.response.encode({ seq: 3, status: 2, feedback: [{ sequence: [0, 1] }] })), one)
    assert.deepEqual(w.response.decode(Buffer.from(one, "hex")), { seq: 3, status: 2, feedback: [{ sequence: [0, 1] }] })
    assert.equal(hex(w.response.encode({ seq: 1, status: 1, feedback: [] })), "00010000" + "01000000" + "01" + "000000" + "00000000")
    assert.throws(() => w.response.encode({ seq: 1, status: 1, feedback: [{ sequence: [] }, { sequence: [] }] }), /at most 1/)
  })

  test("action types read at run time (a project's own .action files) equal the generated ones", () => {
    const a = actionDescriptorsOf(loadInterfaces(["services"]))["example_interfaces/action/Fibonacci"]!
    assert.equal(a.hash32, Fibonacci.hash32)
    assert.equal(a.text, Fibonacci.text)
    assert.equal(actionWire(a).watch.hash32, actionWire(Fibonacci).watch.hash32)
    const req = { goal_id: { uuid }, goal: { order: 12 } }
    assert.equal(hex(a.sendGoal.request.encode(req)), hex(Fibonacci.sendGoal.request.encode(req)))
    const res = { status: 4, result: { sequence: [1, 2, 3] } }
    assert.equal(hex(a.getResult.response.encode(res)), hex(Fibonacci.getResult.response.encode(res)))
  })

  test("a robot's actions from its service list; their services are hidden ones", () => {
    const list = [
      { name: "/add_two_ints", type: "example_interfaces/srv/AddTwoInts" },
      { name: "/fibonacci/_action/send_goal", type: "example_interfaces/action/Fibonacci_SendGoal" },
      { name: "/fibonacci/_action/watch", type: "example_interfaces/action/Fibonacci_Watch" },
      { name: "/rover1/drive/_action/send_goal", type: "robot_interfaces/action/DriveDistance_SendGoal" },
      { name: "/odd/_action/send_goal", type: "example_interfaces/srv/AddTwoInts" },
    ]
    assert.deepEqual(actionsOf(list), [
      { name: "/fibonacci", type: "example_interfaces/action/Fibonacci" },
      { name: "/rover1/drive", type: "robot_interfaces/action/DriveDistance" },
    ])
    assert.deepEqual(list.filter((s) => !isActionService(s.name)).map((s) => s.name), ["/add_two_ints"])
  })

  test("made once per action", () => {
    assert.equal(actionWire(Fibonacci), actionWire(Fibonacci))
  })
})
