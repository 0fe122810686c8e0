// The real `robot` binary's action verbs (packages/host/src/cli/action.ts) against
// test/firmware/actions_fw.ts (which starts its MQTT link when the rig writes MQTT_URL) in the DeviceScript VM, every
// way the CLI reaches a robot: straight to the VM (--devtools, the rig's hub), through a bridge
// (call_service on the `_action/` services), and over an MQTT broker (--robot, and the fleet's
// names /rover1/fibonacci). list/-t, type, info, send_goal with feedback to the end, Ctrl-C
// mid-goal (the robot counts the cancel), bad input, and `robot service list` hiding the action's
// services. Waits are on output and events, never on fixed delays.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { after, before, describe, test } from "node:test"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { startBridge, type Bridge } from "../../packages/host/src/bridge/server"
import { startBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { MqttDirectory } from "../../packages/host/src/client/mqttdir"
import { projectCallTypes } from "../../packages/host/src/calls/projecttypes"
import { ROOT, runRobot } from "./bridge_helpers"
import { actionProbe } from "./actions_fixture"

const robot = (args: string[]) => runRobot(args, { timeoutMs: 30000 })
const FIB = "example_interfaces/action/Fibonacci"

describe("robot action (VM)", { timeout: 180000 }, () => {
  let broker: EmbeddedBroker
  let rig: Rig
  let bridge: Bridge
  /** each way to the robot: its name, its options, and the prefix of the robot's names there (a fleet's `/rover1`) */
  let vias: [string, string[], string][]
  before(async () => {
    broker = await startBroker({ host: "127.0.0.1", port: 0 })
    rig = await startRig({ firmware: "test/firmware/actions_fw.ts", mqtt: { url: broker.url, name: "rover1" } })
    bridge = await startBridge({ node: rig.node, host: "127.0.0.1", port: 0, typeRegistry: projectCallTypes() })
    const dir = await MqttDirectory.connect({ url: broker.url })
    try {
      await dir.waitFor({ names: ["rover1"], timeoutMs: 20000 })
    } finally {
      await dir.close()
    }
    vias = [
      ["devtools", ["--devtools", "ws://127.0.0.1:8081"], ""],
      ["bridge", ["--url", bridge.wsUrl], ""],
      ["mqtt --robot", ["--mqtt", broker.url, "--robot", "rover1"], ""],
      ["mqtt fleet", ["--mqtt", broker.url], "/rover1"],
    ]
  })
  after(async () => {
    await bridge?.close()
    await rig?.close()
    await broker?.close()
  })

  const cancels = async () => (await actionProbe(rig.node)).cancels

  test("list, list -t, type, info; an unknown action names those there are", async () => {
    const list = await robot(["action", "list", ...vias[0]![1]])
    assert.equal(list.code, 0, list.stderr)
    assert.deepEqual(list.stdout.trim().split("\n"), ["/fibonacci", "/fibonacci_latest", "/fibonacci_serial"])
    for (const [via, conn, ns] of vias) {
      const typed = await robot(["action", "list", "-t", ...conn])
      assert.equal(typed.stdout, `${ns}/fibonacci [${FIB}]\n${ns}/fibonacci_latest [${FIB}]\n${ns}/fibonacci_serial [${FIB}]\n`, `${via}: ${typed.stderr}`)
      const type = await robot(["action", "type", `${ns}/fibonacci_serial`, ...conn])
      assert.equal(type.stdout, `${FIB}\n`, via)
      const info = await robot(["action", "info", `${ns}/fibonacci`, "-t", ...conn])
      assert.equal(info.code, 0, `${via}: ${info.stderr}`)
      assert.ok(info.stdout.startsWith(`Action: ${ns}/fibonacci\nAction clients: unknown (the robot does not track them)\nAction servers: 1\n    `), `${via}: ${info.stdout}`)
      assert.match(info.stdout, /\nAction servers: 1\n    .+ \[example_interfaces\/action\/Fibonacci\]\nServices:\n/, via)
      for (const [part, t] of [["send_goal", `${FIB}_SendGoal`], ["cancel_goal", "action_msgs/srv/CancelGoal"], ["get_result", `${FIB}_GetResult`], ["watch", `${FIB}_Watch`]])
        assert.ok(info.stdout.includes(`    ${ns}/fibonacci/_action/${part} [${t}]\n`), `${via}: ${part} in ${info.stdout}`)
      const none = await robot(["action", "info", `${ns}/fibonaci`, ...conn])
      assert.equal(none.code, 1, via)
      assert.equal(none.stderr, `robot action info: unimplemented: no action ${ns}/fibonaci on the robot (its actions: ${ns}/fibonacci, ${ns}/fibonacci_latest, ${ns}/fibonacci_serial)\n`, via)
    }
    // a fleet's action is named with its robot first
    const bare = await robot(["action", "type", "/fibonacci", ...vias[3]![1]])
    assert.equal(bare.code, 1)
    assert.equal(bare.stderr, "robot action type: unimplemented: no action /fibonacci (the robots are named first: /rover1/fibonacci)\n")
  })

  test("send_goal --feedback to the end: every feedback, the result, SUCCEEDED; aborted and rejected goals exit 1", async () => {
    for (const [via, conn, ns] of vias) {
      const r = await robot(["action", "send_goal", `${ns}/fibonacci`, FIB, "{order: 5}", "--feedback", ...conn])
      assert.equal(r.code, 0, `${via}: ${r.stderr}`)
      const id = /Goal accepted with ID: ([0-9a-f]{32})\n/.exec(r.stdout)?.[1]
      assert.ok(id, r.stdout)
      assert.equal(
        r.stdout,
        "Waiting for an action server to become available...\nSending goal:\n    order: 5\n\n" +
          `Goal accepted with ID: ${id}\n\n` +
          "Feedback:\n    sequence: [0, 1, 1]\n\nFeedback:\n    sequence: [0, 1, 1, 2]\n\nFeedback:\n    sequence: [0, 1, 1, 2, 3]\n\n" +
          "Result:\n    sequence: [0, 1, 1, 2, 3]\n\nGoal finished with status: SUCCEEDED\n",
        via,
      )
      // stderr is a pipe: no progress line redrawn with carriage returns
      assert.equal(r.stderr, "", via)
    }
    const [, direct] = vias[0]!
    const aborted = await robot(["action", "send_goal", "/fibonacci", FIB, "{order: 99}", ...direct])
    assert.equal(aborted.code, 1)
    assert.match(aborted.stdout, /\nGoal finished with status: ABORTED\n$/)
    assert.equal(aborted.stderr, "robot action send_goal: the goal ended aborted: order 99 is refused by this test firmware\n")
    const rejected = await robot(["action", "send_goal", "/fibonacci", FIB, "{order: 0}", ...direct])
    assert.equal(rejected.code, 1)
    assert.match(rejected.stdout, /\nGoal was rejected\.\n$/)
  })

  test("send_goal, then Ctrl-C mid-goal: the goal is canceled on the robot and the CLI says so", async () => {
    for (const [via, conn, ns] of vias) {
      const before = await cancels()
      const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), "action", "send_goal", `${ns}/fibonacci`, FIB, "{order: 25}", "-f", ...conn], { cwd: ROOT })
      let out = ""
      let err = ""
      p.stderr.on("data", (d) => (err += d))
      const exited = new Promise<number | null>((resolve) => p.once("close", resolve))
      // Ctrl-C once the goal runs (its first feedback), 2.3 s before it would end
      await new Promise<void>((resolve, reject) => {
        p.stdout.on("data", (d) => {
          out += d
          if (out.includes("Feedback:")) resolve()
        })
        void exited.then(() => reject(new Error(`${via}: exited before its first feedback: ${out}\n${err}`)))
      })
      p.kill("SIGINT")
      assert.equal(await exited, 130, `${via}: ${err}`)
      assert.match(out, /\nCanceling goal\.\.\.\nGoal canceled\.\n$/, via)
      assert.ok(!out.includes("Goal finished"), via)
      assert.equal(await cancels(), before + 1, via)
    }
  })

  test("bad input (type, goal, action) gets one line naming what was wrong, exit 1", async () => {
    const [, conn] = vias[1]!
    const cases: [string[], RegExp][] = [
      [["/fibonacci", "example_interfaces/action/Nope", "{order: 5}"], /^robot action send_goal: invalid_argument: unknown action type example_interfaces\/action\/Nope \(the action types this project knows: example_interfaces\/action\/Fibonacci, robot_interfaces\/action\/DriveDistance, /],
      [["/fibonacci", "std_srvs/srv/Trigger", "{}"], /^robot action send_goal: 'std_srvs\/srv\/Trigger' is not an action type/],
      [["/fibonacci", FIB, "{order: [5"], /^robot action send_goal: invalid_argument: the goal is not valid YAML\/JSON/],
      [["/fibonacci", FIB, "{ordr: 5}"], /^robot action send_goal: invalid_argument: goal: ordr: example_interfaces\/Fibonacci_Goal has no field 'ordr' \(fields: order\) \(check the goal against `robot interface show example_interfaces\/action\/Fibonacci`\)\n$/],
      [["/fibonacci", FIB, "{order: 99999999999}"], /^robot action send_goal: invalid_argument: goal: order: 99999999999 is out of range for int32/],
      [["/add_two_ints", FIB, "{order: 5}"], /^robot action send_goal: unimplemented: no action \/add_two_ints on the robot \(its actions: \/fibonacci, /],
    ]
    for (const [args, re] of cases) {
      const r = await robot(["action", "send_goal", ...args, ...conn])
      assert.equal(r.code, 1, args.join(" "))
      assert.match(r.stderr, re)
    }
    // a bridge that knows the services' names but not the action's types says it cannot serve the goal
    // (as an older bridge: no action types, so the four services are not in its type registry)
    const old = await startBridge({ node: rig.node, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes, actionTypes: {} })
    try {
      const r = await robot(["action", "send_goal", "/fibonacci", FIB, "{order: 2}", "--url", old.wsUrl])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^robot action send_goal: unimplemented: the bridge has no definition of example_interfaces\/action\/Fibonacci_SendGoal: .*\(this bridge does not serve actions: /)
    } finally {
      await old.close()
    }
  })

  test("service list hides the actions' services unless --include-hidden-services; service type and call work on them", async () => {
    for (const [via, conn, ns] of vias) {
      const list = await robot(["service", "list", ...conn])
      assert.deepEqual(list.stdout.trim().split("\n"), [`${ns}/action_probe`, `${ns}/add_two_ints`], via)
      const all = (await robot(["service", "list", "--include-hidden-services", ...conn])).stdout.trim().split("\n")
      for (const part of ["send_goal", "cancel_goal", "get_result", "watch"]) assert.ok(all.includes(`${ns}/fibonacci_latest/_action/${part}`), `${via}: ${part}`)
      // the MQTT backends call through the same pipeline as --devtools
      if (via.startsWith("mqtt")) continue
      assert.equal((await robot(["service", "type", `${ns}/fibonacci/_action/watch`, ...conn])).stdout, `${FIB}_Watch\n`, via)
      // cancel every goal of an idle action: nothing to cancel, answered by the robot
      const call = await robot(["service", "call", `${ns}/fibonacci_serial/_action/cancel_goal`, "{}", ...conn])
      assert.equal(call.code, 0, `${via}: ${call.stderr}`)
      assert.match(call.stdout, /\nresponse:\naction_msgs\.srv\.CancelGoal_Response\(return_code=\d, goals_canceling=\[\]\)\n/, via)
    }
  })
})
