// The CLI through a bridge that serves a fleet (issue 17, tried with `robot sim --robots 3`): a call
// to an offline robot says `unavailable: robot X is offline` as HTTP and rosbridge do (not "no
// service"), a name without a robot says "no service" and names one to use, and `--robots <glob>`
// calls the matching robots through the bridge's group API. The fleet is the in-memory demo fleet
// behind a real bridge; the CLI is the real binary.
import assert from "node:assert/strict"
import { test } from "node:test"
import { demoFleet, demoMemoryNode } from "../../packages/host/src/demo/demo"
import type { MemoryNode } from "../../packages/host/src/demo/memory"
import { startBridge } from "../../packages/host/src/bridge/server"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"
import { runRobot, startFixture } from "./bridge_helpers"

async function startFleet(count: number) {
  const fleet = demoFleet(count)
  await fleet.listServices({ timeoutMs: 2000 })
  const bridge = await startBridge({ node: fleet, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes })
  return {
    bridge,
    node: (name: string) => fleet.robot(name) as MemoryNode,
    async close() {
      await bridge.close()
      await fleet.close()
    },
  }
}

test("CLI through a fleet's bridge: an offline robot is unavailable, a name without a robot names one to use", { timeout: 120_000 }, async () => {
  const f = await startFleet(3)
  const url = ["--url", f.bridge.wsUrl]
  try {
    const ok = await runRobot(["service", "call", "/robot2/add_two_ints", "{a: 40, b: 2}", ...url])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /sum=42/)

    f.node("robot2").disconnect()
    const t0 = Date.now()
    const off = await runRobot(["service", "call", "/robot2/add_two_ints", "{a: 1, b: 2}", ...url])
    assert.equal(off.code, 1)
    assert.match(off.stderr, /^robot service call: unavailable: robot robot2 is offline; try again when it is back \(the bridge serves it again when the robot is back/)
    assert.doesNotMatch(off.stderr, /no service/)
    assert.ok(Date.now() - t0 < 30000, "no call timeout was waited for")

    const bare = await runRobot(["service", "call", "/add_two_ints", "{a: 1, b: 2}", ...url])
    assert.equal(bare.code, 1)
    assert.match(bare.stderr, /^robot service call: unimplemented: no service \/add_two_ints: this bridge serves several robots, name one \(\/robot1\/add_two_ints\)\n$/)

    const type = await runRobot(["service", "type", "/add_two_ints", ...url])
    assert.equal(type.code, 1)
    assert.match(type.stderr, /^robot service type: unimplemented: no service \/add_two_ints \(the robots are named first: \/robot1\/add_two_ints \(or 1 more: robot service list\)\)\n$/)

    const missing = await runRobot(["service", "call", "/robot1/nope", ...url])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /^robot service call: unimplemented: no service \/nope on robot robot1 \(robot service list shows what there is\)\n$/)
  } finally {
    await f.close()
  }
})

test("robot service call --robots <glob> through a fleet's bridge: one row per matching robot, an offline row, exit status", { timeout: 120_000 }, async () => {
  const f = await startFleet(3)
  const url = ["--url", f.bridge.wsUrl]
  try {
    const all = await runRobot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", "--robots", "robot*", ...url])
    assert.equal(all.code, 0, all.stderr)
    assert.equal(
      all.stdout,
      "requester: making request: example_interfaces.srv.AddTwoInts_Request(a=2, b=3)\n\n" +
        "robot1: example_interfaces.srv.AddTwoInts_Response(sum=5)\n" +
        "robot2: example_interfaces.srv.AddTwoInts_Response(sum=5)\n" +
        "robot3: example_interfaces.srv.AddTwoInts_Response(sum=5)\n",
    )
    // int64 stays exact both ways
    const big = await runRobot(["service", "call", "add_two_ints", "example_interfaces/AddTwoInts", "{a: 9007199254740993, b: 0}", "--robots", "robot[13]", ...url])
    assert.equal(big.code, 0, big.stderr)
    assert.match(big.stdout, /robot1: .*sum=9007199254740993\)\nrobot3: .*sum=9007199254740993\)\n$/)

    f.node("robot1").disconnect()
    const some = await runRobot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", "--robots", "robot*", ...url])
    assert.equal(some.code, 1)
    assert.match(some.stdout, /robot1: offline\nrobot2: .*sum=5\)\nrobot3: .*sum=5\)\n$/)
    assert.equal(some.stderr, "robot service call: 1 of 3 robot(s) did not answer\n")

    const none = await runRobot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", "--robots", "arm*", ...url])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /^robot service call: unavailable: no robot matches 'arm\*' \(robots there: robot1, robot2, robot3\)/)

    const wrongType = await runRobot(["service", "call", "/add_two_ints", "std_srvs/srv/Trigger", "--robots", "robot*", ...url])
    assert.equal(wrongType.code, 1)
    assert.match(wrongType.stderr, /type_mismatch: \/add_two_ints is example_interfaces\/srv\/AddTwoInts, not std_srvs\/srv\/Trigger/)

    // a request the type refuses: one line, no request line, no robot called (the bridge checks it
    // once, by the CLI's rules: a quoted integer is a string)
    const quoted = await runRobot(["service", "call", "/add_two_ints", "{a: '2', b: 3}", "--robots", "robot*", ...url])
    assert.equal(quoted.code, 1)
    assert.equal(quoted.stdout, "")
    assert.match(quoted.stderr, /^robot service call: invalid_argument: a: expected an integer \(int64\), got the string '2'; write it without quotes/)
  } finally {
    await f.close()
  }
  // a bridge serving one robot has no group calls
  const one = await startFixture({}, demoMemoryNode())
  try {
    const r = await runRobot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", "--robots", "*", "--url", one.bridge.wsUrl])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^robot service call: unimplemented: the bridge at http:\/\/127\.0\.0\.1:\d+ serves one robot, not a fleet \(leave --robots out\)/)
  } finally {
    await one.close()
  }
})
