// Test firmware for ROS 2 actions (packages/device/src/lib/actions.ts): example_interfaces/action/Fibonacci
// served as /fibonacci (parallel goals), /fibonacci_serial and /fibonacci_latest, beside
// /add_two_ints (the baseline of the accept round trip) and /action_probe (counters, as JSON in a
// Trigger's message). A goal of order n computes n terms, one every 100 ms (10 Hz feedback: the
// terms so far; the next waits until a following host has it, up to 1 s); order 0 is rejected by onGoal; order 99 throws (aborted); order 98 ignores its
// cancel (the deadline and the grace stop it); order 97 gives feedback out of int32's range. test/host/actions.test.ts drives it.
import * as ds from "@devicescript/core"
import { configureServices, createActionServer, createService } from "@robot-services/device"
import { startMqttLink } from "@robot-services/device/mqtt"
import { AddTwoInts, Fibonacci, Trigger } from "../../src/gen/interfaces"

let runs = 0
let cancels = 0
let finished = 0
let running = 0
/** 100 ms ticks of goals of order 98, which ignore their cancel */
let ticks = 0

async function fib(
    goal: { order: number },
    h: { cancelled: boolean; feedback(f: { sequence: number[] }): void; sleep(ms: number): Promise<boolean>; delivered(ms: number): Promise<boolean> }
) {
    runs++
    running++
    try {
        if (goal.order === 99) throw new Error("order 99 is refused by this test firmware")
        const seq: number[] = [0, 1]
        if (goal.order === 98)
            while (true) {
                await ds.sleep(100)
                ticks++
            }
        if (goal.order === 97) h.feedback({ sequence: [2 ** 40] })
        for (let i = 2; i < goal.order; i++) {
            if (!(await h.sleep(100))) break
            // the last term has reached a following host before the next replaces it, however slow
            // the machine (tests count them; at 10 Hz a host that keeps up never waits here)
            await h.delivered(1000)
            seq.push(seq[i - 1] + seq[i - 2])
            h.feedback({ sequence: seq.slice(0) })
        }
        finished++
        return { sequence: seq.slice(0, goal.order) }
    } finally {
        running--
    }
}

const options = {
    execute: fib,
    onGoal: (g: { order: number }) => g.order > 0,
    onCancel: () => {
        cancels++
    },
    timeoutMs: 3000,
}
createService(AddTwoInts, "add_two_ints", async req => ({ sum: req.a + req.b }))
createActionServer(Fibonacci(), "fibonacci", options)
createActionServer(Fibonacci(), "fibonacci_serial", { execute: fib, concurrency: "serial", maxGoals: 3 })
createActionServer(Fibonacci(), "fibonacci_latest", { execute: fib, concurrency: "latest" })
createService(Trigger, "action_probe", async () => ({
    success: true,
    message: JSON.stringify({ runs, cancels, finished, running, ticks }),
}))
configureServices({ maxTimeoutMs: 60000 })
// over MQTT too when the rig writes MQTT_URL (bench/actions.ts: feedback rate over MQTT)
setTimeout(() => startMqttLink(), 0)
console.log("actions test firmware up")
