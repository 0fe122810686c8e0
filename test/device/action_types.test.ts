// The action types of src/gen/interfaces.ts in the VM: made on the first call and kept (one object),
// holding the codecs of the action's messages and of the derived services (packages/device/src/lib/actiontype.ts);
// bytes as worked out by hand in test/host/idl_action.test.ts (the layouts
// @foxglove/rosmsg2-serialization writes). Every edge value: test/host/agreement.test.ts.
// flock /tmp/devs.lock npx devs run test/device/action_types.test.ts --test --test-self-exit
import { describe, expect, test } from "@devicescript/test"
import {
    CancelGoal,
    Fibonacci,
    Fibonacci_Goal_codec,
    GoalStatus_STATUS_ABORTED,
    GoalStatus_STATUS_UNKNOWN,
    CancelGoal_Response_ERROR_GOAL_TERMINATED,
    UUID_defaults,
} from "../../src/gen/interfaces"
import { decodeMessage, encodeMessage, readAll } from "@robot-services/device/src/cdr/cdr"
import { MessageCodec } from "@robot-services/device"
import { eq, fail } from "./cdr_util"

async function hexOf<T>(c: MessageCodec<T>, v: T): Promise<string> {
    return (await readAll(encodeMessage(c, v))).toString("hex")
}

function uuid(first: number): Buffer {
    const b = Buffer.alloc(16)
    for (let i = 0; i < 16; i++) b[i] = first + i
    return b
}

describe("action types", () => {
    test("Fibonacci() is made once and holds the ROS names", () => {
        const a = Fibonacci()
        expect(Fibonacci() === a).toBe(true)
        expect(a.goal === Fibonacci_Goal_codec()).toBe(true)
        expect(a.feedback === Fibonacci().feedback).toBe(true)
        eq("name", a.name, "example_interfaces/action/Fibonacci")
        eq("goal", a.goal.name, "example_interfaces/action/Fibonacci_Goal")
        eq("result", a.result.name, "example_interfaces/action/Fibonacci_Result")
        eq("feedback", a.feedback.name, "example_interfaces/action/Fibonacci_Feedback")
        eq("sendGoal", a.sendGoal.name, "example_interfaces/action/Fibonacci_SendGoal")
        eq("sendGoal.request", a.sendGoal.request.name, "example_interfaces/action/Fibonacci_SendGoal_Request")
        eq("getResult.response", a.getResult.response.name, "example_interfaces/action/Fibonacci_GetResult_Response")
        eq("feedbackMessage", a.feedbackMessage.name, "example_interfaces/action/Fibonacci_FeedbackMessage")
        if (a.hash <= 0 || a.sendGoal.hash <= 0 || a.sendGoal.hash === a.getResult.hash) fail(`hashes ${a.hash} ${a.sendGoal.hash} ${a.getResult.hash}`)
    })

    test("send_goal, get_result and feedback bytes", async () => {
        const a = Fibonacci()
        eq("SendGoal_Request", await hexOf(a.sendGoal.request, { goal_id: { uuid: uuid(0) }, goal: { order: 10 } }), "00010000000102030405060708090a0b0c0d0e0f0a000000")
        eq("SendGoal_Response", await hexOf(a.sendGoal.response, { accepted: true, stamp: { sec: 1, nanosec: 2 } }), "00010000010000000100000002000000")
        eq("GetResult_Response", await hexOf(a.getResult.response, { status: 4, result: { sequence: [0, 1, 1] } }), "000100000400000003000000000000000100000001000000")
        const fb = await hexOf(a.feedbackMessage, { goal_id: { uuid: uuid(1) }, feedback: { sequence: [5] } })
        eq("FeedbackMessage", fb, "00010000" + "0102030405060708090a0b0c0d0e0f10" + "0100000005000000")
        const back = decodeMessage(a.feedbackMessage, Buffer.from(fb, "hex"))
        eq("decoded uuid", (back.goal_id.uuid as Buffer).toString("hex"), "0102030405060708090a0b0c0d0e0f10")
        eq("decoded feedback", back.feedback.sequence[0], 5)
        const res = decodeMessage(a.getResult.response, Buffer.from("0001000006000000020000000700000008000000", "hex"))
        eq("status", res.status, 6)
        eq("sequence", res.result.sequence.join(","), "7,8")
    })

    test("CancelGoal() and the action_msgs constants", async () => {
        const c = CancelGoal()
        expect(CancelGoal() === c).toBe(true)
        eq("name", c.name, "action_msgs/srv/CancelGoal")
        const none = UUID_defaults()
        eq("zero uuid", (none.uuid as Buffer).toString("hex"), "00000000000000000000000000000000")
        eq("CancelGoal_Request", await hexOf(c.request, { goal_info: { goal_id: none, stamp: { sec: 0, nanosec: 0 } } }), "00010000" + "00000000000000000000000000000000" + "0000000000000000")
        eq("STATUS_UNKNOWN", GoalStatus_STATUS_UNKNOWN, 0)
        eq("STATUS_ABORTED", GoalStatus_STATUS_ABORTED, 6)
        eq("ERROR_GOAL_TERMINATED", CancelGoal_Response_ERROR_GOAL_TERMINATED, 3)
    })
})
