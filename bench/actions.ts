// `node --import tsx bench/actions.ts [--json]` (also part of `npm run bench`): ROS 2 actions on the
// robot (issue 19, docs/actions.md), measured in one run:
//   action_accept_rtt_ratio     p50 of a goal accepted (send_goal round trip) / p50 of an AddTwoInts
//                               call, alternating on the same node: test/firmware/actions_fw.ts in the VM over Jacdac
//   action_feedback_hz          feedback heard per second from a goal that gives one every 100 ms
//                               (10 Hz asked), over Jacdac; action_feedback_hz_mqtt the same over MQTT
//                               (the embedded broker)
//   action_exactly_once         execute runs / goals sent, 30 goals through a link with 5% loss each way
//   action_cancel_p99_ms        the robot firmware (src/main.ts) with the simulated hardware: from
//                               cancel() of a drive_distance goal 200-500 ms into its run to the
//                               simulated motors stopped (read on the host's motor servers), p99 (and
//                               p50) of 20 after one not counted; action_cancel_at_start_* the same
//                               right after the goal's first feedback (10 goals)
import { ActionClient } from "../packages/host/src/client/action"
import { DEFAULT_TIMEOUT_MS } from "../packages/host/src/client/calls"
import { connect } from "../packages/host/src/client/node"
import type { RobotNode } from "../packages/host/src/client/api"
import { mqttTransport } from "../packages/host/src/client/mqtt"
import { AddTwoInts, DriveDistance, Fibonacci, Trigger } from "../packages/host/src/gen/interfaces"
import { startBroker } from "../packages/host/src/mqtt/broker"
import { startRig } from "../packages/host/src/sim/rig"
import { startSimulatedRobot } from "../packages/host/src/sim/robot"
import { figureLines } from "../harness/targets"
import { linkModel } from "../harness/link"

export const ACTION_TARGETS: Record<string, string> = {
  action_accept_rtt_ratio: "<= 1.10",
  action_feedback_hz: ">= 9.5",
  action_feedback_hz_mqtt: ">= 9.5",
  action_cancel_p99_ms: "<= 50",
  action_exactly_once: "== 1",
}

const json = process.argv.includes("--json")
const log = (m: string) => {
  if (!json) console.error(m)
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}
const r2 = (x: number) => Math.round(x * 100) / 100

async function runs(node: RobotNode): Promise<number> {
  return (JSON.parse((await node.createClient(Trigger, "action_probe").call({})).message) as { runs: number }).runs
}

/** feedback heard per second over the goal's span (first to last feedback) */
async function feedbackHz(node: RobotNode): Promise<number> {
  const ac = new ActionClient(node, Fibonacci, "fibonacci_serial")
  const times: number[] = []
  const g = await ac.sendGoal({ order: 42 }, { onFeedback: () => times.push(performance.now()) })
  await g.result()
  ac.close()
  return r2(((times.length - 1) * 1000) / (times.at(-1)! - times[0]!))
}

async function main() {
  const out: Record<string, number> = {}
  const broker = await startBroker({ port: 0 })
  const rig = await startRig({ firmware: "test/firmware/actions_fw.ts", mqtt: { url: broker.url, name: "bench-actions" } })
  try {
    const node = rig.node
    const add = node.createClient(AddTwoInts, "add_two_ints")
    const ac = new ActionClient(node, Fibonacci, "fibonacci")
    await ac.waitForServer({ timeoutMs: DEFAULT_TIMEOUT_MS })
    log("accept round trip against a service call")
    const callT: number[] = []
    const acceptT: number[] = []
    for (let i = 0; i < 60; i++) {
      let t = performance.now()
      await add.call({ a: 1n, b: 2n })
      if (i >= 10) callT.push(performance.now() - t)
      t = performance.now()
      const g = await ac.sendGoal({ order: 2 })
      if (i >= 10) acceptT.push(performance.now() - t)
      // (its result fetched: the server's 4 places stay free)
      await g.result()
    }
    out.action_accept_rtt_p50_ms = r2(pct(acceptT, 50))
    out.action_call_rtt_p50_ms = r2(pct(callT, 50))
    out.action_accept_rtt_ratio = r2(pct(acceptT, 50) / pct(callT, 50))
    ac.close()
    log("feedback rate over Jacdac")
    out.action_feedback_hz = await feedbackHz(node)
    log("feedback rate over MQTT")
    const mq = await connect({ transport: mqttTransport({ url: broker.url, robot: "bench-actions" }) })
    try {
      await mq.listServices({ timeoutMs: 20000 })
      out.action_feedback_hz_mqtt = await feedbackHz(mq)
    } finally {
      await mq.close()
    }
    log("exactly once: 30 goals through a link with 5% loss each way")
    const lossy = await rig.connect({ pipes: linkModel({ loss: 0.05, duplicate: 0.02, reorder: 0.02, queueBytes: 2048, bytesPerSec: 100000, seed: 5 }).pipes })
    try {
      await lossy.listServices({ timeoutMs: 20000 })
      const la = new ActionClient(lossy, Fibonacci, "fibonacci")
      const before = await runs(node)
      const n = 30
      for (let i = 0; i < n; i += 3) {
        const batch = await Promise.all([0, 1, 2].map(() => la.sendGoal({ order: 3 }, { timeoutMs: 20000 })))
        for (const g of batch) await g.result()
      }
      out.action_exactly_once = r2(((await runs(node)) - before) / n)
      la.close()
    } finally {
      await lossy.close()
    }
  } finally {
    await rig.close()
    await broker.close()
  }
  log("cancel to motors stopped: the robot firmware with the simulated hardware")
  const robot = await startSimulatedRobot()
  try {
    const drive = new ActionClient(robot.node!, DriveDistance, "drive_distance")
    const stopped = () => robot.hardware.state().leftSpeed === 0 && robot.hardware.state().rightSpeed === 0
    // a cancel mid-goal (200-500 ms after the first feedback) and one right after the first
    // feedback, when the goal's start has spent the runtime's burst of packets (each packet then
    // waits for its 20 ms slot: ../shared/DEVICESCRIPT.md), reported apart
    const cancelT: number[] = []
    const startT: number[] = []
    const cancelOnce = async (i: number, atStart: boolean): Promise<number> => {
      const g = await drive.sendGoal({ distance: i % 2 ? 3 : -3, speed: 0.5 })
      await new Promise<void>((resolve) => {
        const off = g.onFeedback(() => {
          off()
          resolve()
        })
      })
      if (!atStart) await new Promise((r) => setTimeout(r, 200 + 100 * (i % 4)))
      if (stopped()) throw new Error("the motors are not running during the goal")
      const t0 = performance.now()
      const c = g.cancel()
      while (!stopped()) {
        if (performance.now() - t0 > 5000) throw new Error("the motors did not stop within 5 s of the cancel")
        await new Promise((r) => setImmediate(r))
      }
      const ms = performance.now() - t0
      await c
      await g.result()
      return ms
    }
    // (one first, not counted: the first cancel after start-up runs code paths for the first time)
    await cancelOnce(0, false)
    for (let i = 0; i < 20; i++) cancelT.push(await cancelOnce(i, false))
    for (let i = 0; i < 10; i++) startT.push(await cancelOnce(i, true))
    drive.close()
    out.action_cancel_p50_ms = r2(pct(cancelT, 50))
    out.action_cancel_p99_ms = r2(pct(cancelT, 99))
    out.action_cancel_at_start_p50_ms = r2(pct(startT, 50))
    out.action_cancel_at_start_p99_ms = r2(pct(startT, 99))
  } finally {
    await robot.close()
  }
  if (json) process.stdout.write(JSON.stringify(out) + "\n")
  else for (const line of figureLines(out, ACTION_TARGETS, [30, 10, 12])) console.log(line)
}

if (require.main === module)
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e)
      process.exit(1)
    },
  )
