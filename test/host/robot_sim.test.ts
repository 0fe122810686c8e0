// The simulated robot end to end: the real firmware (src/main.ts) in the DeviceScript VM, the
// simulated hardware (packages/host/src/sim/hardware.ts) on its bus, called through the real host client.
// Waits poll the robot with deadlines; nothing sleeps a fixed time.
import { after, before, describe, test } from "node:test"
import assert from "node:assert/strict"
import { startSimulatedRobot, type SimulatedRobot } from "../../packages/host/src/sim/robot"
import {
  AddTwoInts,
  Drive,
  GetState,
  SetBool,
  SetPan,
  TakePicture,
  Trigger,
  type GetState_Request,
  type GetState_Response,
} from "../../packages/host/src/gen/interfaces"
import { ServiceError } from "../../packages/host/src/client/errors"
import type { Client } from "../../packages/host/src/client/api"
import { motorBarLayout } from "../../packages/host/src/sim/camera"
import { avg, decode } from "./robot_helpers"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { runRobot } from "./bridge_helpers"
import { DriveDistance, Rotate, Scan } from "../../packages/host/src/gen/interfaces"
import { ActionClient, GoalStatus } from "../../packages/host/src/client/action"
import { TRACK_MM } from "../../packages/host/src/sim/hardware"
import { jd } from "../../packages/host/src/transport/jacdac"
import { rejection } from "../support/rejection"

/** Polls `probe` until `ok` holds; fails with `what` and the last value after `timeoutMs`. */
async function waitUntil<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await probe()
    if (ok(last)) return last
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(last, (_, v) => (typeof v === "bigint" ? v.toString() : v))} after ${timeoutMs} ms`)
    await new Promise((r) => setImmediate(r))
  }
}


const near = (a: number, b: number, eps = 1e-3) => Math.abs(a - b) <= eps

describe("simulated robot through the host client", { timeout: 120000 }, () => {
  let robot: SimulatedRobot
  let getState: Client<GetState_Request, GetState_Response>

  before(async () => {
    robot = await startSimulatedRobot({ hardware: { charge: 0.8, drainPerSecond: 0.02 } })
    assert.ok(robot.node, "in-process robot has a node")
    getState = robot.node.createClient(GetState, "get_state")
    await getState.waitForService({ timeoutMs: 30000 })
    // The firmware's roles bind to the hardware about a second after both are on the bus.
    await waitUntil(
      () => getState.call({}).then((s) => s, (e: ServiceError) => e),
      (s) => !(s instanceof ServiceError),
      "get_state while the roles bind",
      15000,
    )
  })
  after(async () => {
    await robot?.close()
  })

  test("lists the robot's services with their types", async () => {
    const names = (await robot.node!.listServices()).map((s) => `${s.name} ${s.type}`).sort()
    for (const want of [
      "/add_two_ints example_interfaces/srv/AddTwoInts",
      "/drive robot_interfaces/srv/Drive",
      "/get_state robot_interfaces/srv/GetState",
      "/set_led std_srvs/srv/SetBool",
      "/set_pan robot_interfaces/srv/SetPan",
      "/stop std_srvs/srv/Trigger",
      "/take_picture robot_interfaces/srv/TakePicture",
    ])
      assert.ok(names.includes(want), `missing ${want} in ${names.join(", ")}`)
  })

  test("add_two_ints adds", async () => {
    const c = robot.node!.createClient(AddTwoInts, "add_two_ints")
    assert.equal((await c.call({ a: 40n, b: 2n })).sum, 42n)
  })

  test("add_two_ints at the int64 limit: an argument out of range is invalid_argument, a sum out of range is internal (docs/hardware.md, docs/int64.md)", async () => {
    const c = robot.node!.createClient(AddTwoInts, "add_two_ints")
    const max = 2n ** 53n - 1n
    assert.equal((await c.call({ a: max - 1n, b: 1n })).sum, max)
    assert.equal((await c.call({ a: -max + 1n, b: -1n })).sum, -max)
    // the request itself cannot be held on the device: the caller's mistake
    const arg = await rejection(c.call({ a: max + 1n, b: 0n }))
    assert.equal(arg.code, "invalid_argument")
    assert.equal(arg.detail, "request: a: 2097152 * 2^32 + 0 is not exactly representable on the device (|v| <= 2^53-1)")
    // a fine request whose answer the device cannot send: the device's failure, not the caller's
    const sum = await rejection(c.call({ a: max, b: 1n }))
    assert.equal(sum.code, "internal")
    assert.equal(sum.detail, "response: sum: 2097152 * 2^32 + 0 is not exactly representable on the device (|v| <= 2^53-1)")
    const neg = await rejection(c.call({ a: -max, b: -1n }))
    assert.equal(neg.code, "internal")
    assert.equal(neg.detail, "response: sum: -2097152 * 2^32 + 0 is not exactly representable on the device (|v| <= 2^53-1)")
    // and the robot still answers
    assert.equal((await c.call({ a: 2n, b: 3n })).sum, 5n)
  })

  test("get_state changes after drive, and again when the timeout stops the motors", async () => {
    const drive = robot.node!.createClient(Drive, "drive")
    const before = await getState.call({})
    assert.ok(near(before.left_speed, 0) && near(before.right_speed, 0), "motors start stopped")
    const res = await drive.call({ left: 0.5, right: -0.25, duration_ms: 1200 })
    const during = await getState.call({})
    assert.ok(near(during.left_speed, 0.5), `left_speed ${during.left_speed}`)
    assert.ok(near(during.right_speed, -0.25), `right_speed ${during.right_speed}`)
    assert.ok(during.drive_remaining_ms > 0 && during.drive_remaining_ms <= 1200, `drive_remaining_ms ${during.drive_remaining_ms}`)
    assert.ok(res.stop_at_ms > before.uptime_ms, "stop_at_ms is in the future")
    // The host's simulated motors run too.
    assert.ok(near(robot.hardware.state().leftSpeed, 0.5))
    const after = await waitUntil(
      () => getState.call({}),
      (s) => near(s.left_speed, 0) && near(s.right_speed, 0),
      "motors stopping by themselves",
    )
    assert.ok(after.uptime_ms >= res.stop_at_ms, `stopped at ${after.uptime_ms}, before stop_at_ms ${res.stop_at_ms}`)
    assert.equal(after.drive_remaining_ms, 0)
    assert.ok(near(robot.hardware.state().leftSpeed, 0))
    // The battery drained while the motors ran.
    assert.ok(after.battery_voltage < before.battery_voltage, `battery ${before.battery_voltage} -> ${after.battery_voltage}`)
    assert.ok(after.battery_percentage < before.battery_percentage)
    assert.ok(after.calls_served > before.calls_served)
  })

  test("stop stops the motors at once", async () => {
    const drive = robot.node!.createClient(Drive, "drive")
    const stop = robot.node!.createClient(Trigger, "stop")
    await drive.call({ left: 1, right: 1, duration_ms: 30000 })
    assert.ok(near((await getState.call({})).left_speed, 1))
    const r = await stop.call({})
    assert.equal(r.success, true)
    const s = await getState.call({})
    assert.ok(near(s.left_speed, 0) && s.drive_remaining_ms === 0, JSON.stringify({ l: s.left_speed, r: s.drive_remaining_ms }))
  })

  test("set_led, set_pan and the button show in get_state", async () => {
    const led = robot.node!.createClient(SetBool, "set_led")
    const pan = robot.node!.createClient(SetPan, "set_pan")
    assert.equal((await led.call({ data: true })).success, true)
    assert.ok(near((await pan.call({ angle: -45 })).angle, -45))
    await robot.hardware.pressButton(true)
    let s = await waitUntil(() => getState.call({}), (v) => v.button_pressed, "button pressed")
    assert.equal(s.led_on, true)
    assert.ok(near(s.pan_angle, -45))
    assert.equal(robot.hardware.state().ledOn, true)
    await robot.hardware.pressButton(false)
    await led.call({ data: false })
    s = await waitUntil(() => getState.call({}), (v) => !v.button_pressed, "button released")
    assert.equal(s.led_on, false)
  })

  test("take_picture returns JPEGs that decode to the requested size and differ", async () => {
    const cam = robot.node!.createClient(TakePicture, "take_picture")
    const sizes: [number, number, number][] = [
      [0, 160, 120],
      [1, 320, 240],
      [2, 640, 480],
    ]
    let previous: Uint8Array | undefined
    for (const [resolution, w, h] of sizes) {
      const before = await getState.call({})
      const r = await cam.call({ resolution, quality: 70 }, { timeoutMs: 30000 })
      assert.equal(r.image.format, "jpeg")
      assert.equal(r.image.header.frame_id, "camera")
      const stampMs = r.image.header.stamp.sec * 1000 + r.image.header.stamp.nanosec / 1e6
      assert.ok(stampMs >= Number(before.uptime_ms), `stamp ${stampMs} before the call (${before.uptime_ms})`)
      assert.equal(r.width, w)
      assert.equal(r.height, h)
      const img = decode(r.image.data)
      assert.equal(img.width, w)
      assert.equal(img.height, h)
      if (previous) assert.notDeepEqual(r.image.data, previous)
      previous = r.image.data
    }
    // The host rendered exactly the picture the device sent.
    assert.deepEqual(Buffer.from(previous!), robot.hardware.camera.lastPicture())
  })

  test("the picture shows the robot's state: motor bars while driving", async () => {
    const drive = robot.node!.createClient(Drive, "drive")
    const stop = robot.node!.createClient(Trigger, "stop")
    const cam = robot.node!.createClient(TakePicture, "take_picture")
    await drive.call({ left: 1, right: -1, duration_ms: 20000 })
    let r
    try {
      r = await cam.call({ resolution: 1, quality: 95 }, { timeoutMs: 30000 })
    } finally {
      await stop.call({})
    }
    const img = decode(r.image.data)
    const { x, rightX, mid, barW, barH } = motorBarLayout(img.width, img.height)
    const [lr, lg] = avg(img, x + 2, Math.round(mid - barH / 4), barW - 4, 4)
    assert.ok(lg! > 150 && lr! < 80, `left bar should be green (forward), got r=${lr} g=${lg}`)
    const [rr, rg] = avg(img, rightX + 2, Math.round(mid + barH / 4), barW - 4, 4)
    assert.ok(rr! > 150 && rg! < 80, `right bar should be red (reverse), got r=${rr} g=${rg}`)
    // Stopped: both bars are empty (dark) above and below the middle.
    const still = decode((await cam.call({ resolution: 1, quality: 95 }, { timeoutMs: 30000 })).image.data)
    const [sr, sg] = avg(still, x + 2, Math.round(mid - barH / 4), barW - 4, 4)
    assert.ok(sg! < 100 && sr! < 100, `left bar should be empty when stopped, got r=${sr} g=${sg}`)
  })

  test("bad arguments are rejected with the documented messages", async () => {
    const drive = robot.node!.createClient(Drive, "drive")
    const pan = robot.node!.createClient(SetPan, "set_pan")
    const cam = robot.node!.createClient(TakePicture, "take_picture")
    // one at a time: drive and set_pan are "latest" services, where a newer call replaces a waiting one
    const cases: [() => Promise<unknown>, string][] = [
      [() => drive.call({ left: 1.5, right: 0, duration_ms: 100 }), "left must be in [-1, 1], got 1.5"],
      [() => drive.call({ left: 0, right: -2, duration_ms: 100 }), "right must be in [-1, 1], got -2"],
      [() => drive.call({ left: 0, right: 0, duration_ms: 0 }), "duration_ms must be in [1, 30000], got 0"],
      [() => pan.call({ angle: 120 }), "angle must be in [-90, 90] degrees, got 120"],
      [() => cam.call({ resolution: 9, quality: 50 }), "resolution must be in [0, 6] (RES_QQVGA..RES_UXGA), got 9"],
      [() => cam.call({ resolution: 1, quality: 101 }), "quality must be 0 (default) or in [1, 100], got 101"],
    ]
    for (const [call, msg] of cases) {
      const e = await rejection(call())
      assert.equal(e.code, "invalid_argument", e.message)
      assert.equal(e.detail, msg)
    }
    const s = await getState.call({})
    assert.equal(s.last_error, "quality must be 0 (default) or in [1, 100], got 101")
    assert.ok(s.calls_failed >= cases.length)
    // Nothing moved.
    assert.ok(near(s.left_speed, 0))
  })

  test("two overlapping take_picture calls: each a JPEG or a clear error; no restart, and the robot still answers", async () => {
    let restarted = false
    const off = robot.node!.onStateChange((_s, info) => {
      if (info.restarted) restarted = true
    })
    const cam = robot.node!.createClient(TakePicture, "take_picture")
    const rs = await Promise.allSettled([0, 1].map(() => cam.call({ resolution: 3, quality: 50 }, { timeoutMs: 60000 })))
    let pictures = 0
    for (const r of rs) {
      if (r.status === "fulfilled") {
        const img = decode(r.value.image.data)
        assert.equal(img.width, 800)
        assert.equal(img.height, 600)
        pictures++
      } else {
        // a capture that replaced the frame another call was still sending fails that call only
        assert.ok(r.reason instanceof ServiceError, String(r.reason))
        assert.ok(["internal", "cancelled"].includes(r.reason.code), r.reason.message)
        assert.ok(r.reason.detail.length > 0)
      }
    }
    assert.ok(pictures >= 1, "neither call got a picture")
    const s = await getState.call({}, { timeoutMs: 5000 })
    off()
    assert.equal(restarted, false, "the program restarted")
    assert.ok(s.calls_served > 0)
  })

  // The robot's actions (drive_distance, rotate, scan; docs/actions.md) through the Node action
  // client. What the wheels did is read from the simulated hardware itself, not from the firmware.
  const wheels = () => robot.hardware.state().wheelMetres
  /**
   * at most two 0s first (before the encoders' first report), then each further than the one before
   * (`once`: or as far, once: a turn with one wheel still can advance by less than a click in 100 ms)
   */
  const movedOn = (xs: number[], once = false) => {
    const first = xs.findIndex((x) => x !== 0)
    const rest = xs.slice(first)
    const same = rest.filter((x, i) => i > 0 && x === rest[i - 1]).length
    return first >= 0 && first <= 2 && rest.every((x, i) => i === 0 || x >= rest[i - 1]!) && same <= (once ? 1 : 0)
  }
  const moving = () => robot.hardware.state().leftSpeed !== 0 || robot.hardware.state().rightSpeed !== 0

  test("drive_distance 0.3 m: feedback grows to the distance, the wheels rolled it, the motors stopped", async () => {
    const ac = new ActionClient(robot.node!, DriveDistance, "drive_distance")
    await ac.waitForServer({ timeoutMs: 10000 })
    const [l0, r0] = wheels()
    const fb: number[] = []
    const g = await ac.sendGoal({ distance: 0.3, speed: 0.8 }, { onFeedback: (f) => fb.push(f.distance_traveled) })
    const r = await g.result()
    assert.equal(r.status, GoalStatus.succeeded)
    const [l1, r1] = wheels()
    assert.ok(r.result.distance_traveled >= 0.3 && r.result.distance_traveled < 0.36, `reported ${r.result.distance_traveled} m`)
    // the distance is the wheels' mean, as the firmware measures it: the two motors are set by two
    // writes, and a VM held up between them starts (or stops) one wheel later than the other
    const rolled = (l1 - l0 + (r1 - r0)) / 2
    assert.ok(rolled > 0.28 && rolled < 0.38, `the wheels rolled ${rolled} m on average (left ${l1 - l0}, right ${r1 - r0})`)
    for (const d of [l1 - l0, r1 - r0]) assert.ok(d > 0.2, `a wheel rolled only ${d} m (left ${l1 - l0}, right ${r1 - r0})`)
    assert.ok(fb.length >= 3, `${fb.length} feedbacks`)
    // (each feedback further than the one before, once the encoders' first report came: at most two
    // feedbacks of 0 first. The firmware reads the encoders as they stream; it once read the
    // runtime's cached value, refreshed every 500 ms, and sent the same figure five times in a row)
    assert.ok(movedOn(fb), `feedback did not move on: ${fb.join(", ")}`)
    assert.equal(moving(), false, "the motors stopped")
    ac.close()
  })

  test("drive_distance and rotate set the motors to the goal's speed, the default when it is 0", async () => {
    // (the firmware once took `speed || default`, and DeviceScript's VM takes a number that is not a
    // whole int32 for false: every speed between 0 and 1 ran at the default)
    const seen: number[] = []
    const motor = robot.hardware.motorRight
    const onChange = () => seen.push(Math.round(motor.speed.values()[0] * 1000) / 1000)
    motor.speed.on(jd.CHANGE, onChange)
    try {
      for (const [type, name, goal] of [
        [DriveDistance, "drive_distance", { distance: 0.02, speed: 0.3 }],
        [DriveDistance, "drive_distance", { distance: 0.02, speed: 0 }],
        [Rotate, "rotate", { angle: 10, speed: 0.25 }],
        [Rotate, "rotate", { angle: 10, speed: 0 }],
      ] as const) {
        const ac = new ActionClient(robot.node!, type as typeof Rotate, name)
        const r = await (await ac.sendGoal(goal as never)).result()
        ac.close()
        assert.equal(r.status, GoalStatus.succeeded, `${name} ${JSON.stringify(goal)}: ${r.error}`)
      }
    } finally {
      motor.speed.off(jd.CHANGE, onChange)
    }
    // each goal sets the right motor turning, then stops it
    assert.deepEqual(seen, [0.3, 0, 0.5, 0, 0.25, 0, 0.4, 0])
  })

  /**
   * Turns the robot 90 degrees and checks the turn the firmware reported and the wheels made.
   * `rightLateMs`: the right motor's writes that start it reach it that much later (what a VM held
   * up between its two motor writes does: it sets the left one, then the right).
   */
  async function rotate90(rightLateMs = 0) {
    const ac = new ActionClient(robot.node!, Rotate, "rotate")
    const [l0, r0] = wheels()
    // (at half the default speed, about 108 degrees/s: the simulated wheels turn in wall-clock time,
    // and a VM held up by a busy machine reads the encoders late; at the default speed, beside a
    // build, it overshot to 112.5)
    robot.hardware.longestStepMs = 0
    const motor = robot.hardware.motorRight
    const handle = motor.handlePacket
    let delayed = 0
    if (rightLateMs)
      motor.handlePacket = async (pkt) => {
        if (!pkt.isRegisterSet || robot.hardware.state().rightSpeed !== 0) return handle.call(motor, pkt)
        delayed++
        setTimeout(() => void handle.call(motor, pkt), rightLateMs)
      }
    // when each feedback came (the firmware sends one every 100 ms of its loop of 50 ms reads)
    const fb: { t: number; angle: number }[] = []
    const r = await ac
      .sendGoal({ angle: 90, speed: 0.2 }, { onFeedback: (f) => fb.push({ t: performance.now(), angle: f.angle_turned }) })
      .then((g) => g.result())
      // (the next tests' motor as it was, whatever happened)
      .finally(() => (motor.handlePacket = handle))
    const end = performance.now()
    assert.equal(r.status, GoalStatus.succeeded)
    // The firmware stops at its first encoder read past 90: 2 clicks (9 degrees each) over at most.
    // A VM starved of CPU reads late, and the wheels turn on meanwhile, so the bound grows by what
    // the wheels turn in the time the feedback came later than its 100 ms (up to 135: a firmware
    // that does not stop goes far past).
    // each feedback further than the one before (before the encoders streamed during a move: 0 five
    // times in a row, then 117 reported)
    assert.ok(movedOn(fb.map((x) => x.angle), rightLateMs > 0), `feedback did not move on: ${fb.map((x) => x.angle).join(", ")}`)
    const times = [...fb.map((x) => x.t), end]
    let late = 0
    for (let i = 1; i < times.length; i++) late = Math.max(late, times[i]! - times[i - 1]! - 100)
    const rate = fb.length >= 2 ? (fb[fb.length - 1]!.angle - fb[0]!.angle) / (fb[fb.length - 1]!.t - fb[0]!.t) : 0.108
    const bound = Math.min(135, 110 + rate * late)
    const why = `reported ${r.result.angle_turned} degrees (bound ${bound.toFixed(1)}: ${fb.length} feedbacks, the latest ${late.toFixed(0)} ms late at ${(rate * 1000).toFixed(0)} degrees/s; the longest step of the simulated parts ${robot.hardware.longestStepMs.toFixed(0)} ms)`
    assert.ok(r.result.angle_turned >= 90 && r.result.angle_turned < bound, why)
    const [l1, r1] = wheels()
    const arc = (Math.PI * TRACK_MM) / 1000 / 4
    // The turn is half the wheels' difference, as the firmware measures it, not each wheel's own
    // travel: the two motors are set by two writes, and a VM held up between them starts (and
    // stops) the right wheel later than the left (fresh-clone CI: reported 90, the right wheel 0.84
    // of a quarter turn, the left more). The wheels turn on until the stop reaches them: up to
    // about one encoder click (9 degrees) past the angle's bound, one step of the simulated parts (a
    // CI run beside other work: the angle reported within its bound, the left wheel had turned 1.33
    // quarter turns, 120 degrees' worth). Each wheel still turned its own way by half a quarter turn
    // at least, and by at most half a quarter turn more than the turn's own bound.
    const most = Math.max(1.3, (bound + 10) / 90)
    const turned = (r1 - r0 - (l1 - l0)) / 2
    const wheelsSaid = `left wheel ${(l1 - l0).toFixed(4)} m, right ${(r1 - r0).toFixed(4)} m, a quarter turn is ${arc.toFixed(4)} m`
    assert.ok(turned > arc * 0.9 && turned < arc * most, `the wheels turned ${(turned / arc).toFixed(2)} quarter turns, at most ${most.toFixed(2)} (${wheelsSaid}; ${why})`)
    assert.ok(l1 - l0 < -arc * 0.5 && r1 - r0 > arc * 0.5, `a wheel did not turn its way (${wheelsSaid}; ${why})`)
    assert.ok(Math.max(l0 - l1, r1 - r0) < arc * (most + 0.5), `a wheel turned too far (${wheelsSaid}; at most ${(most + 0.5).toFixed(2)} quarter turns each; ${why})`)
    assert.equal(moving(), false)
    ac.close()
    return { left: l1 - l0, right: r1 - r0, arc, delayed }
  }

  test("rotate 90 degrees: the wheels turned opposite ways by a quarter of the track's circle (their mean)", async () => {
    await rotate90()
  })

  test("rotate 90 degrees with the right motor started 400 ms after the left: still a quarter turn, the right wheel short of it", async () => {
    const { left, right, arc, delayed } = await rotate90(400)
    assert.ok(delayed >= 1, "no write to the right motor was held back")
    // the left wheel turned for 400 ms (the motors at 0.2 of full speed: 0.12 m/s) longer than the
    // right one, about 0.05 m; the firmware, measuring their mean, stopped both at about a quarter
    // turn, so the right one is about 0.025 m short of it (before the turn was checked as their mean,
    // this failed: the right wheel under 0.9 of a quarter turn, as in a fresh-clone CI run whose VM
    // was held up between its two writes)
    assert.ok(-left - right > 0.035, `left wheel ${-left} m, right ${right} m: no sign of the late start (a quarter turn is ${arc} m)`)
  })

  test("cancel mid-drive: the motors are stopped when the cancel is answered; the goal ends canceled", async () => {
    const ac = new ActionClient(robot.node!, DriveDistance, "drive_distance")
    const g = await ac.sendGoal({ distance: -5, speed: 0.5 })
    await new Promise<void>((resolve) => {
      const off = g.onFeedback((f) => {
        if (f.distance_traveled > -0.05) return
        off()
        resolve()
      })
    })
    assert.equal(moving(), true)
    const c = await g.cancel()
    assert.equal(c.return_code, 0)
    assert.equal(moving(), false, "stopped before the cancel was answered")
    const r = await g.result()
    assert.equal(r.status, GoalStatus.canceled)
    // the next goal runs: the cancelled one ended, and stays ended (it once went back to canceling
    // when execute ended while onCancel was stopping the motors, and "latest" waited for it for ever)
    const next = await (await ac.sendGoal({ distance: 0.05, speed: 0.8 })).result()
    assert.equal(next.status, GoalStatus.succeeded)
    ac.close()
  })

  test("a drive service call takes the motors over: the running goal ends aborted, saying why", async () => {
    const ac = new ActionClient(robot.node!, DriveDistance, "drive_distance")
    const g = await ac.sendGoal({ distance: 5, speed: 0.3 })
    await new Promise<void>((resolve) => g.onFeedback(() => resolve()))
    await robot.node!.createClient(Drive, "drive").call({ left: 0, right: 0, duration_ms: 10 })
    const r = await g.result()
    assert.equal(r.status, GoalStatus.aborted)
    assert.match(r.error ?? "", /took over the motors/)
    ac.close()
  })

  test("scan: three pictures at three angles, each heard as feedback, the servo where the last was taken", async () => {
    const ac = new ActionClient(robot.node!, Scan, "scan")
    const pics: { angle: number; data: Uint8Array; n: number }[] = []
    const g = await ac.sendGoal(
      { from_angle: -30, to_angle: 30, count: 3, resolution: 0, quality: 0 },
      { onFeedback: (f) => pics.push({ angle: Math.round(f.angle), data: f.image.data, n: f.pictures_taken }) },
    )
    const r = await g.result()
    assert.equal(r.status, GoalStatus.succeeded)
    assert.equal(r.result.pictures_taken, 3)
    assert.deepEqual(pics.map((p) => [p.n, p.angle]), [[1, -30], [2, 0], [3, 30]], "every picture, none skipped")
    for (const p of pics) {
      assert.equal(Buffer.from(p.data.subarray(0, 2)).toString("hex"), "ffd8", "a JPEG starts with SOI")
      assert.equal(Buffer.from(p.data.subarray(-2)).toString("hex"), "ffd9", "and ends with EOI")
    }
    assert.equal(Math.round(robot.hardware.state().panAngle), 30)
    ac.close()
  })

  test("robot action send_goal /scan --out saves each picture (the CLI through the rig's hub)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "scan-"))
    try {
      const r = await runRobot(
        ["action", "send_goal", "/scan", "robot_interfaces/action/Scan", "{from_angle: 10, to_angle: 20, count: 2, resolution: 0}", "--out", dir, "--devtools", "ws://127.0.0.1:8081"],
        { timeoutMs: 60000 },
      )
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /Goal finished with status: SUCCEEDED/)
      const files = fs.readdirSync(dir).sort()
      assert.equal(files.length, 2, `${files.join(", ")}; stderr: ${r.stderr}`)
      for (const f of files) {
        assert.match(f, /^[0-9a-f]{8}-[12]\.jpeg$/)
        const b = fs.readFileSync(path.join(dir, f))
        assert.equal(b.subarray(0, 2).toString("hex"), "ffd8")
        assert.ok(r.stderr.includes(`saved ${path.join(dir, f)} (${b.length} bytes)`), r.stderr)
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a goal out of range is aborted with the range in the message", async () => {
    const ac = new ActionClient(robot.node!, DriveDistance, "drive_distance")
    const r = await (await ac.sendGoal({ distance: 11, speed: 0 })).result()
    assert.equal(r.status, GoalStatus.aborted)
    assert.match(r.error ?? "", /distance must be in \[-10, 10\], got 11/)
    ac.close()
  })
})
