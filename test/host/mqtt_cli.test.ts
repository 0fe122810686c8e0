// The real `robot` binary with --mqtt against in-memory MQTT robots on the embedded broker:
// one robot (--robot), every robot namespaced (/rover1/…), a group call (--robots) with one robot
// offline, and the errors (broker unreachable, no such robot, robot offline, options that clash).
import assert from "node:assert/strict"
import { test } from "node:test"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { ROOT, runRobot } from "./bridge_helpers"
import { embeddedBroker, freePort, startTestRobot, type TestRobot } from "./mqtt_helpers"
import type { EmbeddedBroker } from "../../packages/host/src/mqtt/broker"

const robot = (args: string[], env: Record<string, string> = {}) => runRobot(args, { env, timeoutMs: 30000 })

async function fleet(users = false): Promise<{ broker: EmbeddedBroker; robots: TestRobot[]; close(): Promise<void> }> {
  const broker = await embeddedBroker(
    users
      ? {
          users: [
            { name: "bridge", password: "pw-bridge", role: "host" },
            { name: "rover1", password: "pw1", role: "robot" },
          ],
        }
      : {},
  )
  const robots = users
    ? [await startTestRobot({ url: broker.url, name: "rover1", password: "pw1" })]
    : await Promise.all(["rover1", "rover2", "rover3"].map((name) => startTestRobot({ url: broker.url, name })))
  return {
    broker,
    robots,
    async close() {
      for (const r of robots) await r.robot.close()
      await broker.close()
    },
  }
}

test("robot service list/type/call --mqtt: one robot, and every robot namespaced", async () => {
  const f = await fleet()
  const m = ["--mqtt", f.broker.url]
  try {
    await f.robots[2]!.robot.disconnect() // rover3 offline (its will)
    const one = await robot(["service", "list", ...m, "--robot", "rover1"])
    assert.equal(one.code, 0, one.stderr)
    assert.deepEqual(one.stdout.trim().split("\n"), ["/add_two_ints", "/count", "/fail", "/set_led", "/slow", "/take_picture"])

    const all = await robot(["service", "list", "-t", ...m])
    assert.equal(all.code, 0, all.stderr)
    const lines = all.stdout.trim().split("\n")
    assert.ok(lines.includes("/rover1/take_picture [robot_interfaces/srv/TakePicture]"), all.stdout)
    assert.ok(lines.includes("/rover2/add_two_ints [example_interfaces/srv/AddTwoInts]"), all.stdout)
    assert.ok(!lines.some((l) => l.startsWith("/rover3/")))
    assert.equal(lines.length, 12)
    assert.match(all.stderr, /^robot rover3 is offline: its services are not listed$/m)

    assert.equal((await robot(["service", "type", "/rover2/set_led", ...m])).stdout, "std_srvs/srv/SetBool\n")
    assert.equal((await robot(["service", "type", "/set_led", ...m, "--robot", "rover2"])).stdout, "std_srvs/srv/SetBool\n")

    const call = await robot(["service", "call", "/rover2/add_two_ints", "{a: 9007199254740993, b: 2}", ...m])
    assert.equal(call.code, 0, call.stderr)
    assert.equal(
      call.stdout,
      "requester: making request: example_interfaces.srv.AddTwoInts_Request(a=9007199254740993, b=2)\n\n" +
        "response:\nexample_interfaces.srv.AddTwoInts_Response(sum=9007199254740995)\n\n",
    )
    const direct = await robot(["service", "call", "/add_two_ints", "example_interfaces/srv/AddTwoInts", "{a: 1, b: 1}", ...m, "--robot", "rover1"])
    assert.match(direct.stdout, /AddTwoInts_Response\(sum=2\)/)
    const fail = await robot(["service", "call", "/fail", ...m, "--robot", "rover1"])
    assert.equal(fail.code, 1)
    assert.match(fail.stderr, /^robot service call: internal: the test handler always fails/)
  } finally {
    await f.close()
  }
})

test("robot service call --robots: every matching robot in parallel, one row each, an offline row", async () => {
  const f = await fleet()
  const m = ["--mqtt", f.broker.url]
  try {
    await f.robots[1]!.robot.disconnect() // rover2 offline
    const r = await robot(["service", "call", "/count", ...m, "--robots", "rover*"])
    assert.equal(r.code, 1, "a robot did not answer: exit status 1")
    assert.equal(
      r.stdout,
      "requester: making request: std_srvs.srv.Trigger_Request()\n\n" +
        "rover1: std_srvs.srv.Trigger_Response(success=True, message='1')\n" +
        "rover2: offline\n" +
        "rover3: std_srvs.srv.Trigger_Response(success=True, message='1')\n",
    )
    assert.match(r.stderr, /^robot service call: 1 of 3 robot\(s\) did not answer$/m)
    assert.equal(f.robots[0]!.counted, 1)

    const some = await robot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", ...m, "--robots", "rover[13]"])
    assert.equal(some.code, 0, some.stderr)
    assert.match(some.stdout, /^rover1: example_interfaces\.srv\.AddTwoInts_Response\(sum=5\)\nrover3: example_interfaces\.srv\.AddTwoInts_Response\(sum=5\)\n$/m)

    const none = await robot(["service", "call", "/count", ...m, "--robots", "arm*"])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /^robot service call: unavailable: no robot matches 'arm\*' on mqtt:\/\/127\.0\.0\.1:\d+ \(robots there: rover1, rover2, rover3\)/)

    const missing = await robot(["service", "call", "/nope", ...m, "--robots", "rover[13]"])
    assert.equal(missing.code, 1)
    assert.equal(missing.stdout, "rover1: unimplemented: no service /nope on robot rover1\nrover3: unimplemented: no service /nope on robot rover3\n")
  } finally {
    await f.close()
  }
})

test("robot service call --mqtt: a request the type refuses is one line, as through a bridge, and no robot is called (issue 18: checked once, in the CLI's own pipeline)", async () => {
  const f = await fleet()
  const m = ["--mqtt", f.broker.url]
  try {
    const cases: [string[], RegExp][] = [
      [["/rover1/add_two_ints", "{a: '2', b: 1}"], /^robot service call: invalid_argument: a: expected an integer \(int64\), got the string '2'; write it without quotes/],
      [["/add_two_ints", "{a: 1, c: 2}", "--robot", "rover1"], /^robot service call: invalid_argument: c: example_interfaces\/AddTwoInts_Request has no field 'c' \(fields: a, b\)/],
      [["/count", "{nope: 1}", "--robot", "rover1"], /^robot service call: invalid_argument: nope: std_srvs\/Trigger_Request has no field 'nope' \(fields: none\)/],
      [["/count", "{nope: 1}", "--robots", "rover*"], /^robot service call: invalid_argument: nope: std_srvs\/Trigger_Request has no field 'nope' \(fields: none\)/],
    ]
    for (const [args, re] of cases) {
      const r = await robot(["service", "call", ...args, ...m])
      assert.equal(r.code, 1, args.join(" "))
      assert.equal(r.stdout, "", args.join(" "))
      assert.match(r.stderr, re, args.join(" "))
    }
    assert.deepEqual(f.robots.map((r) => r.counted), [0, 0, 0], "no robot was called")
  } finally {
    await f.close()
  }
})

test("robot service --mqtt errors: broker unreachable, no such robot, robot offline, bad credentials, clashing options", async () => {
  const f = await fleet(true)
  const free = await freePort()
  try {
    const url = f.broker.url.replace("mqtt://", "mqtt://bridge:pw-bridge@")
    const ok = await robot(["service", "call", "/add_two_ints", "{a: 1, b: 2}", "--mqtt", url, "--robot", "rover1"])
    assert.equal(ok.code, 0, ok.stderr)
    const env = await robot(["service", "list", "--mqtt", f.broker.url, "--robot", "rover1"], { ROBOT_MQTT_USER: "bridge", ROBOT_MQTT_PASSWORD: "pw-bridge" })
    assert.equal(env.code, 0, env.stderr)

    const cases: [string[], Record<string, string>, RegExp][] = [
      [["service", "list", "--mqtt", `mqtt://127.0.0.1:${free}`], {}, /^robot service list: unavailable: cannot reach the MQTT broker mqtt:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.* \(is the broker running and the URL right\?/],
      [["service", "list", "--mqtt", f.broker.url], {}, /^robot service list: unavailable: cannot reach the MQTT broker .*Not authorized/],
      [["service", "list", "--mqtt", url.replace("pw-bridge", "wrong")], {}, /Bad username or password \(check the user name and password\)/],
      [["service", "call", "/add_two_ints", "--mqtt", url, "--robot", "rover9"], {}, /^robot service call: unavailable: no robot rover9 on mqtt:\/\/127\.0\.0\.1:\d+ \(robots there: rover1\) \(check the name with `robot service list --mqtt <url>`\)\n$/],
      [["service", "call", "/add_two_ints", "--robot", "rover1"], {}, /^robot service call: --robot needs --mqtt <url>/],
      [["service", "call", "/add_two_ints", "--robots", "r*", "--devtools"], {}, /^robot service call: --robots calls a fleet's robots: through a bridge \(no --devtools\) or with --mqtt <url>/],
      [["service", "list", "--mqtt", url, "--serial", "/dev/null"], {}, /^robot service list: --serial and --mqtt do not go together/],
      [["service", "call", "/add_two_ints", "--mqtt", url], {}, /^robot service call: invalid_argument: \/add_two_ints: without --robot, name the robot first, e\.g\. \/rover1\/add_two_ints/],
      // (the example names the service asked for, not one of this repository's robot)
      [["service", "call", "hello", "--mqtt", url], {}, /^robot service call: invalid_argument: \/hello: without --robot, name the robot first, e\.g\. \/rover1\/hello /],
    ]
    for (const [args, e, re] of cases) {
      const r = await robot(args, e)
      assert.equal(r.code, 1, args.join(" "))
      assert.match(r.stderr, re, args.join(" "))
    }
    await f.robots[0]!.robot.disconnect()
    const off = await robot(["service", "call", "/add_two_ints", "--mqtt", url, "--robot", "rover1"])
    assert.equal(off.code, 1)
    assert.match(off.stderr, /^robot service call: unavailable: robot rover1 offline \(mqtt:\/\/127\.0\.0\.1:\d+\) \(its last will says it lost the broker/)
  } finally {
    await f.close()
  }
})

/** Starts `robot <args>` and resolves with the dashboard URL once it prints "bridge ready". */
async function startBridgeCli(args: string[]) {
  const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), ...args], { cwd: ROOT })
  let out = ""
  let err = ""
  p.stderr.on("data", (d) => (err += d))
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout.on("data", (d) => {
      out += d
      const m = /dashboard: (http:\/\/[\d.:]+)\//.exec(out)
      if (m && out.includes("bridge ready")) resolve(m[1]!)
    })
    p.on("close", (code) => reject(new Error(`robot ${args.join(" ")} exited (${code}): ${out}\n${err}`)))
  })
  return {
    url,
    out: () => out,
    err: () => err,
    async stop() {
      const closed = new Promise((r) => (p.exitCode !== null ? r(null) : p.once("close", r)))
      p.kill("SIGINT")
      await closed
    },
  }
}

test("`robot bridge --mqtt --memory --robots 3`: an embedded broker, robots on it over MQTT, group calls through the bridge; an external broker's robots too", { timeout: 60000 }, async () => {
  const b = await startBridgeCli(["bridge", "--mqtt", "--memory", "--robots", "3", "--broker-port", "0", "--port", "0", "--no-foxglove"])
  try {
    assert.match(b.out(), /Bridge for the robots on the embedded broker mqtt:\/\/127\.0\.0\.1:\d+, with 3 in-memory demo robots/)
    assert.match(b.err(), /robots connect with MQTT_URL=mqtt:\/\/<this machine's address>:\d+/)
    const robots = await (await fetch(`${b.url}/api/robots`)).json()
    assert.deepEqual(robots.robots.map((r: any) => [r.name, r.online]), [
      ["robot1", true],
      ["robot2", true],
      ["robot3", true],
    ])
    const g = await (await fetch(`${b.url}/api/group/add_two_ints?robots=robot[12]`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a": 2, "b": 3}' })).json()
    assert.deepEqual(g.results.map((x: any) => [x.robot, x.values?.sum]), [
      ["robot1", 5],
      ["robot2", 5],
    ])
  } finally {
    await b.stop()
  }
  // an external broker: the bridge serves whatever robots are on it
  const broker = await embeddedBroker()
  const r = await startTestRobot({ url: broker.url, name: "ext1" })
  const e = await startBridgeCli(["bridge", "--mqtt", broker.url, "--port", "0", "--no-foxglove"])
  try {
    assert.match(e.out(), /Robots: ext1/)
    const res = await (await fetch(`${e.url}/api/services/ext1/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a": 20, "b": 22}' })).json()
    assert.equal(res.sum ?? res.values?.sum, 42, JSON.stringify(res))
  } finally {
    await e.stop()
    await r.robot.close()
    await broker.close()
  }
  const bad = await robot(["bridge", "--broker-port", "1884", "--memory", "--port", "0"])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /--broker-host\/--broker-port\/--broker-users\/--broker-host-rate configure the embedded broker: use them with --mqtt and no URL/)
  const slow = await robot(["bridge", "--mqtt", "--memory", "--broker-host-rate", "100", "--port", "0"])
  assert.equal(slow.code, 1)
  assert.match(slow.stderr, /--broker-host-rate must be an integer 1024-1073741824, got 100/)
})
