// The real `robot` binary (node packages/host/bin/robot.js) against a bridge: service list/type/find/call, the
// ros2-style output, --out, errors as one line with a non-zero exit; and `robot bridge` itself.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { test } from "node:test"
import * as jpeg from "jpeg-js"
import { ROOT, runningBridge, runRobot, startFixture } from "./bridge_helpers"
import { Trigger } from "../../packages/host/src/gen/interfaces"


const robot = (args: string[], env: Record<string, string> = {}) => runRobot(args, { env, timeoutMs: 30000 })

test("robot service list/type/find/call through a bridge", async () => {
  const f = await startFixture()
  const url = ["--url", f.bridge.wsUrl]
  try {
    const list = await robot(["service", "list", ...url])
    assert.equal(list.code, 0, list.stderr)
    assert.deepEqual(list.stdout.trim().split("\n"), ["/add_two_ints", "/fail", "/set_led", "/take_picture"])
    const lt = await robot(["service", "list", "-t", ...url])
    assert.ok(lt.stdout.includes("/add_two_ints [example_interfaces/srv/AddTwoInts]"), lt.stdout)
    const all = await robot(["service", "list", "--all", ...url])
    assert.ok(all.stdout.includes("/rosapi/services"))
    assert.equal((await robot(["service", "type", "/take_picture", ...url])).stdout.trim(), "robot_interfaces/srv/TakePicture")
    assert.equal((await robot(["service", "find", "std_srvs/srv/Trigger", ...url])).stdout.trim(), "/fail")

    const call = await robot(["service", "call", "/add_two_ints", "{a: 9007199254740993, b: 2}", ...url])
    assert.equal(call.code, 0, call.stderr)
    assert.equal(
      call.stdout,
      "requester: making request: example_interfaces.srv.AddTwoInts_Request(a=9007199254740993, b=2)\n\n" +
        "response:\nexample_interfaces.srv.AddTwoInts_Response(sum=9007199254740995)\n\n",
    )
    // ros2 form with the type, JSON request
    const typed = await robot(["service", "call", "add_two_ints", "example_interfaces/srv/AddTwoInts", '{"a": 1, "b": 1}', ...url])
    assert.match(typed.stdout, /AddTwoInts_Response\(sum=2\)/)
    const wrongType = await robot(["service", "call", "/add_two_ints", "std_srvs/srv/Trigger", "{}", ...url])
    assert.equal(wrongType.code, 1)
    assert.match(wrongType.stderr, /^robot service call: type_mismatch: \/add_two_ints is example_interfaces\/srv\/AddTwoInts/)
  } finally {
    await f.close()
  }
})

test("robot service call --out writes the picture; progress on stderr; errors are one line", async () => {
  const f = await startFixture()
  const url = ["--url", f.bridge.wsUrl]
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-cli-"))
  try {
    const out = path.join(dir, "pic.jpg")
    const pic = await robot(["service", "call", "/take_picture", "{resolution: 3, quality: 90}", "--out", out, ...url])
    assert.equal(pic.code, 0, pic.stderr)
    assert.match(pic.stdout, /format='jpeg', data=<\d+ bytes>\), width=800, height=600\)/)
    const img = jpeg.decode(fs.readFileSync(out))
    assert.deepEqual([img.width, img.height], [800, 600])
    // stderr is a pipe here: one summary line, no carriage-return redraws (issue 9)
    assert.match(pic.stderr, /^received (\d+\.\d)\/\1 KiB in \d+\.\d s$/m)
    assert.ok(!pic.stderr.includes("\r"), JSON.stringify(pic.stderr))
    assert.match(pic.stderr, /wrote \d+ bytes \(jpeg\) to /)

    const cases: [string[], RegExp][] = [
      [["service", "call", "/fail"], /^robot service call: internal: the demo handler always fails \(.+\)\n$/],
      [["service", "call", "/nope"], /^robot service call: unimplemented: no service \/nope on the robot \(robot service list shows what there is\)\n$/],
      [["service", "call", "/add_two_ints", "{a: [1"], /^robot service call: invalid_argument: the request is not valid YAML\/JSON/],
      [["service", "call", "/add_two_ints", "{a: 1.5}"], /^robot service call: invalid_argument: .*\ba\b/],
      [["service", "call", "/add_two_ints", "{}", "--timeout", "soon"], /^robot service call: --timeout must be a positive number of milliseconds, got soon\n$/],
    ]
    for (const [args, re] of cases) {
      const r = await robot([...args, ...url])
      assert.equal(r.code, 1, args.join(" "))
      assert.match(r.stderr, re)
    }
    const noBridge = await robot(["service", "list", "--url", "ws://127.0.0.1:1"])
    assert.equal(noBridge.code, 1)
    assert.match(noBridge.stderr, /^robot service list: unavailable: cannot reach a bridge at ws:\/\/127\.0\.0\.1:1 .*robot bridge/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    await f.close()
  }
})

test("robot service with a token: from the environment or --token", async () => {
  const f = await startFixture({ token: "tok" })
  const url = ["--url", f.bridge.wsUrl]
  try {
    const denied = await robot(["service", "list", ...url])
    assert.equal(denied.code, 1)
    const viaEnv = await robot(["service", "list", ...url], { ROBOT_BRIDGE_TOKEN: "tok" })
    assert.equal(viaEnv.code, 0, viaEnv.stderr)
    const wrong = await robot(["service", "list", "--token", "bad", ...url])
    assert.match(wrong.stderr, /refused the connection: wrong or missing token/)
  } finally {
    await f.close()
  }
})

test("robot bridge --memory serves, and refuses a non-loopback bind without a token", async () => {
  const refused = await robot(["bridge", "--memory", "--host", "0.0.0.0", "--port", "0"], { ROBOT_BRIDGE_TOKEN: "" })
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /refusing to listen on 0\.0\.0\.0 without a token: pass --token/)

  const b = await runningBridge(["bridge", "--memory", "--port", "0"])
  try {
    assert.match(b.out(), /dashboard: http:\/\/127\.0\.0\.1:\d+\//)
    const r = await robot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", "--url", b.wsUrl])
    assert.match(r.stdout, /sum=5/)
  } finally {
    await b.stop()
  }
})

test("robot service call/find: the rough edges a new user hit (issue 9)", async () => {
  const f = await startFixture()
  const url = ["--url", f.bridge.wsUrl]
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-cli-"))
  let calls = 0
  f.node.addService(Trigger, "/count", () => ({ success: true, message: String(++calls) }))
  try {
    // --out to a folder that does not exist: said before the call is made (no call reaches the robot)
    const missing = path.join(dir, "nope", "pic.jpg")
    const out = await robot(["service", "call", "/count", "--out", missing, ...url])
    assert.equal(out.code, 1)
    assert.equal(out.stderr, `robot service call: --out: the folder ${path.dirname(missing)} does not exist (create it first, or pick another path)\n`)
    assert.equal(out.stdout, "")
    assert.equal(calls, 0)
    // an unknown field: refused before the "making request" line shows defaults for it
    const unknown = await robot(["service", "call", "/add_two_ints", "{a: 1, c: 2}", ...url])
    assert.equal(unknown.code, 1)
    assert.equal(unknown.stdout, "")
    assert.match(unknown.stderr, /^robot service call: invalid_argument: c: example_interfaces\/AddTwoInts_Request has no field 'c' \(fields: a, b\)/)
    // {a: '2'} is a string, not an integer
    const quoted = await robot(["service", "call", "/add_two_ints", "{a: '2', b: 1}", ...url])
    assert.equal(quoted.code, 1)
    assert.match(quoted.stderr, /^robot service call: invalid_argument: a: expected an integer \(int64\), got the string '2'; write it without quotes/)
    // a wrong type name typed by the user: the hint says what to type, not "rebuild"
    const wrongType = await robot(["service", "call", "/add_two_ints", "std_srvs/srv/Trigger", "{}", ...url])
    assert.equal(wrongType.stderr, "robot service call: type_mismatch: /add_two_ints is example_interfaces/srv/AddTwoInts, not std_srvs/srv/Trigger (leave the type out, or give example_interfaces/srv/AddTwoInts)\n")
    // the --out "holds no picture" error carries no request hint
    const noPic = await robot(["service", "call", "/add_two_ints", "{a: 1}", "--out", path.join(dir, "x.jpg"), ...url])
    assert.equal(noPic.code, 1)
    assert.match(noPic.stderr, /^robot service call: --out: the response of \/add_two_ints holds no picture \(no field with format and data\)\n$/)
    // a serial port that does not exist is named, not "connection refused", and nothing else is printed
    const serial = await robot(["service", "list", "--serial", "/dev/ttyNOPE9"])
    assert.equal(serial.code, 1)
    assert.equal(serial.stdout, "")
    assert.equal(serial.stderr, "robot service list: unavailable: no serial port /dev/ttyNOPE9: is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB* lists the ports) (check the --serial path)\n")
    // service find of a type nothing has: an error listing the types there are, exit 1
    const find = await robot(["service", "find", "foo/srv/Bar", ...url])
    assert.equal(find.code, 1)
    assert.equal(find.stdout, "")
    assert.match(find.stderr, /^robot service find: unimplemented: no service of type foo\/srv\/Bar on the robot \(its types: example_interfaces\/srv\/AddTwoInts, robot_interfaces\/srv\/TakePicture, std_srvs\/srv\/SetBool, std_srvs\/srv\/Trigger\)\n$/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    await f.close()
  }
})

test("robot service call: Ctrl+C during a call says so and ends the line; the bridge cancels the call (issue 9)", async () => {
  const f = await startFixture()
  let cancelled!: () => void
  const wasCancelled = new Promise<void>((r) => (cancelled = r))
  f.node.addService(Trigger, "/hang", (_req, ctx) => new Promise((_, reject) => ctx.signal.addEventListener("abort", () => (cancelled(), reject(new Error("aborted"))))))
  try {
    const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), "service", "call", "/hang", "--url", f.bridge.wsUrl], { cwd: ROOT })
    let stdout = ""
    let stderr = ""
    p.stderr.on("data", (d) => (stderr += d))
    const code = new Promise<number | null>((r) => p.on("close", (c) => r(c)))
    await new Promise<void>((resolve) =>
      p.stdout.on("data", (d) => {
        stdout += d
        if (stdout.includes("making request")) resolve()
      }),
    )
    p.kill("SIGINT")
    assert.equal(await code, 130)
    assert.equal(stderr, "robot service call: cancelled: interrupted (Ctrl+C) before /hang answered; the robot may still carry the call out\n")
    await wasCancelled
  } finally {
    await f.close()
  }
})
