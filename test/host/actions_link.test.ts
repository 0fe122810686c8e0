// A goal outlives its link: the robot's MQTT broker goes away in the middle of a goal and comes
// back (the robot's program runs on; its MQTT link reconnects by itself, the host's too). The
// Node action client must follow the goal through the outage to its result, not report it lost,
// and the goal must have run once. The test firmware (test/firmware/actions_fw.ts) over MQTT.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { Fibonacci } from "../../packages/host/src/gen/interfaces"
import { ActionClient, GoalStatus } from "../../packages/host/src/client/action"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import type { RobotNode } from "../../packages/host/src/client/api"
import { startBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { actionProbe, fib } from "./actions_fixture"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, ok: () => boolean, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(20)
  }
}

describe("an action goal across a link outage (VM, MQTT)", { timeout: 120_000 }, () => {
  let broker: EmbeddedBroker
  let port: number
  let rig: Rig
  let node: RobotNode
  before(async () => {
    broker = await startBroker({ host: "127.0.0.1", port: 0 })
    port = broker.port
    rig = await startRig({ firmware: "test/firmware/actions_fw.ts", mqtt: { url: broker.url, name: "rover1" } })
    node = await connect({ transport: mqttTransport({ url: broker.url, robot: "rover1" }) })
    await node.listServices({ timeoutMs: 30000 })
  })
  after(async () => {
    await node?.close()
    await rig?.close()
    await broker?.close()
  })

  test("the broker restarts mid-goal: the client follows the goal to its result, which ran once", async () => {
    const boot = rig.node.limits!.bootId
    const runs0 = (await actionProbe(rig.node)).runs
    const ac = new ActionClient(node, Fibonacci, "fibonacci_serial")
    const states: string[] = []
    const offState = node.onStateChange((s) => states.push(s))
    let heard = 0
    const g = await ac.sendGoal({ order: 40 }, { onFeedback: () => heard++ })
    // (a rejection before it is awaited below must not be unhandled)
    const result = g.result()
    result.catch(() => {})
    await until("3 feedbacks before the outage", () => heard >= 3)
    await broker.close()
    await until("the host saw the link go down", () => states.includes("disconnected"))
    await sleep(500)
    broker = await startBroker({ host: "127.0.0.1", port })
    await until("the host is connected again", () => node.state === "connected")
    const before = heard
    const r = await result
    offState()
    assert.equal(r.status, GoalStatus.succeeded, r.error)
    assert.deepEqual(r.result.sequence, fib(40))
    assert.ok(heard > before, `feedback after the outage (${heard} in all, ${before} before it)`)
    assert.equal(rig.node.limits!.bootId, boot, "the robot's program did not restart")
    assert.equal((await actionProbe(rig.node)).runs, runs0 + 1, "the goal ran once")
  })
})
