// The bridge in front of the simulated robot (the real firmware src/main.ts in the DeviceScript VM
// with simulated hardware, packages/host/src/sim/robot.ts): roslib through rosbridge, every robot service, a
// picture, errors, several clients; the real `robot` CLI against it; and `robot bridge` itself
// (the default: simulated robot + bridge). Waits poll with deadlines; no fixed sleeps.
import assert from "node:assert/strict"
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { after, before, describe, test } from "node:test"
import * as jpeg from "jpeg-js"
import { startSimulatedRobot, type SimulatedRobot } from "../../packages/host/src/sim/robot"
import { startBridge, type Bridge } from "../../packages/host/src/bridge/server"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"
import { closeRos, connectRos, rosCall, rosGet, ROOT, runRobot } from "./bridge_helpers"


const robotCli = (args: string[]) => runRobot(args)

async function eventually<T>(f: () => Promise<T>, what: string, timeoutMs = 15000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      return await f()
    } catch (e) {
      if (Date.now() > end) throw new Error(`${what}: ${(e as Error).message}`)
      await new Promise((r) => setImmediate(r))
    }
  }
}

describe("bridge + simulated robot", { timeout: 180000 }, () => {
  let robot: SimulatedRobot
  let bridge: Bridge
  before(async () => {
    robot = await startSimulatedRobot({})
    bridge = await startBridge({ node: robot.node!, port: 0, typeRegistry: serviceTypes })
  })
  after(async () => {
    await bridge?.close()
    await robot?.close()
  })

  test("roslib: discovery and every robot service", async () => {
    const ros = await connectRos(bridge.wsUrl)
    try {
      const names = await rosGet<string[]>((ok, fail) => ros.getServices(ok, fail))
      for (const n of ["/add_two_ints", "/get_state", "/take_picture", "/set_led", "/drive", "/set_pan", "/stop"]) assert.ok(names.includes(n), `${n} in ${names}`)
      assert.equal(await rosGet((ok, fail) => ros.getServiceType("/drive", ok, fail)), "robot_interfaces/srv/Drive")
      const det = await rosGet<any>((ok, fail) => ros.getServiceRequestDetails("robot_interfaces/srv/Drive", ok, fail))
      assert.deepEqual(det.typedefs[0].fieldnames, ["left", "right", "duration_ms"])

      // the roles bind to the simulated hardware about a second after boot
      const st = await eventually(() => rosCall(ros, "/get_state", "", {}), "get_state")
      assert.equal(typeof st.uptime_ms, "number")
      assert.ok(st.battery_voltage > 0)
      assert.deepEqual(await rosCall(ros, "/add_two_ints", "", { a: 40, b: 2 }), { sum: 42 })
      const led = await rosCall(ros, "/set_led", "", { data: true })
      assert.equal(led.success, true)
      const pan = await rosCall(ros, "/set_pan", "", { angle: 30 })
      assert.ok(Math.abs(pan.angle - 30) < 1e-3)
      const drive = await rosCall(ros, "/drive", "", { left: 0.5, right: 0.5, duration_ms: 2000 })
      assert.ok(drive.stop_at_ms > st.uptime_ms)
      const st2 = await rosCall(ros, "/get_state", "", {})
      assert.equal(st2.led_on, true)
      assert.ok(Math.abs(st2.left_speed - 0.5) < 1e-3)
      assert.equal((await rosCall(ros, "/stop", "", {})).success, true)
      // a picture: base64 JPEG of the requested size
      const pic = await rosCall(ros, "/take_picture", "", { resolution: 0, quality: 60 })
      assert.equal(pic.image.format, "jpeg")
      const img = jpeg.decode(Buffer.from(pic.image.data, "base64"))
      assert.deepEqual([img.width, img.height, pic.width, pic.height], [160, 120, 160, 120])
      // errors from the device, as result:false with the code
      await assert.rejects(rosCall(ros, "/drive", "", { left: 2, right: 0, duration_ms: 100 }), /^Error: invalid_argument: /)
      await assert.rejects(rosCall(ros, "/take_picture", "", { resolution: 42 }), /^Error: invalid_argument: /)
      await assert.rejects(rosCall(ros, "/add_two_ints", "", { a: "x" }), /^Error: invalid_argument: /)
      await assert.rejects(rosCall(ros, "/nope", "", {}), /^Error: unimplemented: /)
    } finally {
      await closeRos(ros)
    }
  })

  test("HTTP: the robot's actions through the bridge: drive_distance and scan followed with server-sent events to the end", async () => {
    /** POSTs a goal and reads its event stream to the end: the feedback and the last event */
    const run = async (action: string, goal: unknown) => {
      const res = await fetch(`${bridge.url}/api/actions/${action}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(goal) })
      const start = (await res.json()) as any
      assert.equal(start.accepted, true, JSON.stringify(start))
      const text = await (await fetch(`${bridge.url}${start.events}`)).text()
      const events = text
        .split("\n\n")
        .filter((b) => b.startsWith("event: "))
        .map((b) => ({ event: b.slice(7, b.indexOf("\n")), data: JSON.parse(b.slice(b.indexOf("data: ") + 6)) }))
      return { feedback: events.filter((e) => e.event === "feedback").map((e) => e.data.feedback), last: events[events.length - 1]! }
    }
    const actions = ((await (await fetch(`${bridge.url}/api/actions`)).json()) as any).actions.map((a: any) => `${a.name} ${a.type}`)
    assert.ok(actions.includes("/drive_distance robot_interfaces/action/DriveDistance"), String(actions))
    const drive = await run("drive_distance", { distance: 0.2, speed: 0.8 })
    assert.deepEqual([drive.last.event, drive.last.data.status_name], ["result", "succeeded"])
    assert.ok(drive.last.data.result.distance_traveled >= 0.2, JSON.stringify(drive.last.data))
    const travelled = drive.feedback.map((f) => f.distance_traveled)
    assert.ok(travelled.length >= 2 && travelled.every((d, i) => i === 0 || d >= travelled[i - 1]!), String(travelled))
    // a picture per feedback, base64 JPEG (the bridge's JSON rules), every one heard
    const scan = await run("scan", { from_angle: -20, to_angle: 20, count: 2, resolution: 0, quality: 0 })
    assert.deepEqual([scan.last.event, scan.last.data.result.pictures_taken], ["result", 2])
    assert.deepEqual(scan.feedback.map((f) => f.pictures_taken), [1, 2])
    for (const f of scan.feedback) assert.equal(Buffer.from(f.image.data, "base64").subarray(0, 2).toString("hex"), "ffd8")
  })

  test("roslib: several clients at once against the device, none misrouted", async () => {
    const clients = await Promise.all([0, 1, 2].map(() => connectRos(bridge.wsUrl)))
    try {
      const results = await Promise.all(
        clients.flatMap((ros, ci) => Array.from({ length: 10 }, (_, i) => rosCall(ros, "/add_two_ints", "", { a: ci * 100, b: i }).then((v) => [ci * 100 + i, v.sum]))),
      )
      for (const [want, got] of results) assert.equal(got, want)
      assert.equal(results.length, 30)
    } finally {
      await Promise.all(clients.map(closeRos))
    }
  })

  test("robot CLI: list, call, a picture with --out", async () => {
    const url = ["--url", bridge.wsUrl]
    const list = await robotCli(["service", "list", "-t", ...url])
    assert.equal(list.code, 0, list.stderr)
    assert.ok(list.stdout.includes("/take_picture [robot_interfaces/srv/TakePicture]"), list.stdout)
    const call = await robotCli(["service", "call", "/set_pan", "robot_interfaces/srv/SetPan", "{angle: -20}", ...url])
    assert.equal(call.code, 0, call.stderr)
    // the servo reports the angle it reached (a float32 from the simulated hardware)
    assert.match(call.stdout, /^requester: making request: robot_interfaces\.srv\.SetPan_Request\(angle=-20\.0\)\n\nresponse:\nrobot_interfaces\.srv\.SetPan_Response\(angle=-(20\.0|19\.99\d*)\)\n\n$/)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-sim-cli-"))
    try {
      const out = path.join(dir, "p.jpg")
      const pic = await robotCli(["service", "call", "/take_picture", "{resolution: 1}", "--out", out, "--timeout", "30000", ...url])
      assert.equal(pic.code, 0, pic.stderr)
      const img = jpeg.decode(fs.readFileSync(out))
      assert.deepEqual([img.width, img.height], [320, 240])
      // stderr is a pipe: the progress is one line at the end, no carriage-return redraws (issue 9)
      assert.match(pic.stderr, /^received (\d+\.\d)\/\1 KiB in \d+\.\d s$/m)
      assert.ok(!pic.stderr.includes("\r"))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
    const bad = await robotCli(["service", "call", "/drive", "{left: 3, duration_ms: 10}", ...url])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^robot service call: invalid_argument: .*\n$/)
  })

  test("robot CLI --devtools: straight to the VM through its devtools hub, no bridge", async () => {
    const hub = ["--devtools", "ws://127.0.0.1:8081"]
    const list = await robotCli(["service", "list", "-t", ...hub])
    assert.equal(list.code, 0, list.stderr)
    assert.ok(list.stdout.includes("/add_two_ints [example_interfaces/srv/AddTwoInts]"), list.stdout)
    const call = await robotCli(["service", "call", "/add_two_ints", "{a: 9007199254740000, b: 991}", ...hub])
    assert.equal(call.code, 0, call.stderr)
    assert.match(call.stdout, /\nresponse:\nexample_interfaces\.srv\.AddTwoInts_Response\(sum=9007199254740991\)\n/)
    // the device refuses int64 values it cannot hold exactly (its 64-bit policy), with the reason
    const big = await robotCli(["service", "call", "/add_two_ints", "{a: 9007199254740993, b: 1}", ...hub])
    assert.equal(big.code, 1)
    assert.match(big.stderr, /^robot service call: invalid_argument: .*a: 2097152 \* 2\^32 \+ 1 is not exactly representable/)
    const bad = await robotCli(["service", "call", "/nope", ...hub])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^robot service call: unimplemented: /)
  })
})

/**
 * Runs `robot <args>` until its stdout holds the rosbridge URL and `ready`, then `body(url, child)`;
 * always stops the child with SIGINT (Ctrl+C) and waits for it to exit.
 */
async function withRunningCli(
  args: string[],
  ready: string,
  body: (url: string, p: ChildProcessWithoutNullStreams, out: () => string) => Promise<void>,
): Promise<void> {
  const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), ...args], { cwd: ROOT })
  let out = ""
  let err = ""
  p.stderr.on("data", (d) => (err += d))
  try {
    const url = await new Promise<string>((resolve, reject) => {
      p.stdout.on("data", (d) => {
        out += d
        const m = /rosbridge: (ws:\/\/[\d.:]+)/.exec(out)
        if (m && out.includes(ready)) resolve(m[1]!)
      })
      p.on("close", (code) => reject(new Error(`robot ${args.join(" ")} exited (${code}): ${out}\n${err}`)))
    })
    await body(url, p, () => out)
  } finally {
    const closed = new Promise((r) => (p.exitCode !== null ? r(null) : p.once("close", r)))
    p.kill("SIGINT")
    await closed
  }
}

test("`robot bridge` starts the simulated robot with the bridge and prints the dashboard and a call to try", { timeout: 180000 }, async () => {
  await withRunningCli(["bridge", "--port", "0", "--wait"], "bridge ready", async (url, _p, out) => {
    assert.match(out(), /Bridge for the simulated robot/)
    assert.match(out(), /dashboard: http:\/\/127\.0\.0\.1:\d+\//)
    assert.match(out(), /robot service call \/get_state/)
    const r = await eventually(async () => {
      const x = await robotCli(["service", "call", "/get_state", "--url", url])
      if (x.code !== 0) throw new Error(x.stderr)
      return x
    }, "get_state through `robot bridge`", 20000)
    assert.match(r.stdout, /robot_interfaces\.srv\.GetState_Response\(uptime_ms=\d+, battery_voltage=/)
  })
})

test("`robot sim` (the README's `npm start`) starts the robot and the bridge; the first call after 'ready' succeeds; 'b' presses the button", { timeout: 180000 }, async () => {
  await withRunningCli(["sim", "--port", "0", "--wait"], "Press the simulated button", async (url, p, out) => {
    assert.match(out(), /Bridge for the simulated robot/)
    assert.match(out(), /dashboard: http:\/\/127\.0\.0\.1:\d+\//)
    assert.match(out(), /\/take_picture +robot_interfaces\/srv\/TakePicture/)
    // no retry: the simulated hardware is bound before the bridge is announced
    const first = await robotCli(["service", "call", "/get_state", "--url", url])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /button_pressed=False/)
    assert.match(first.stdout, /calls_failed=0/)
    const pressed = new Promise<void>((resolve) => p.stdout.on("data", () => out().includes("[sim] button down") && resolve()))
    p.stdin.write("b\n")
    await pressed
    const r = await eventually(async () => {
      const x = await robotCli(["service", "call", "/get_state", "--url", url])
      if (!/button_pressed=True/.test(x.stdout)) throw new Error(x.stdout + x.stderr)
      return x
    }, "get_state to show the pressed button", 10000)
    assert.match(r.stdout, /button_pressed=True/)
  })
})
