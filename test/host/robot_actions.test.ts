// The robot's actions (src/main.ts: drive_distance, rotate) end to end: the real firmware in the
// DeviceScript VM, the simulated hardware (packages/host/src/sim/hardware.ts: motors and the wheels'
// encoders) on its bus, the Node action client. What the wheels did is read from the simulated
// hardware itself, not from the firmware's own account.
import { after, before, describe, test } from "node:test"
import assert from "node:assert/strict"
import { startSimulatedRobot, type SimulatedRobot } from "../../packages/host/src/sim/robot"
import { Drive, DriveDistance, Rotate, Scan } from "../../packages/host/src/gen/interfaces"
import { ActionClient, GoalStatus } from "../../packages/host/src/client/action"
import { TRACK_MM } from "../../packages/host/src/sim/hardware"

describe("the robot's actions in the simulator", { timeout: 120000 }, () => {
  let robot: SimulatedRobot
  before(async () => {
    robot = await startSimulatedRobot()
  })
  after(async () => {
    await robot?.close()
  })

  const wheels = () => robot.hardware.state().wheelMetres
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
    for (const d of [l1 - l0, r1 - r0]) assert.ok(d > 0.28 && d < 0.38, `a wheel rolled ${d} m`)
    assert.ok(fb.length >= 3, `${fb.length} feedbacks`)
    for (let i = 1; i < fb.length; i++) assert.ok(fb[i]! >= fb[i - 1]!, `feedback went back: ${fb.join(", ")}`)
    assert.equal(moving(), false, "the motors stopped")
    ac.close()
  })

  test("rotate 90 degrees: the wheels turned opposite ways by a quarter of the track's circle", async () => {
    const ac = new ActionClient(robot.node!, Rotate, "rotate")
    const [l0, r0] = wheels()
    const r = await (await ac.sendGoal({ angle: 90, speed: 0 })).result()
    assert.equal(r.status, GoalStatus.succeeded)
    assert.ok(r.result.angle_turned >= 90 && r.result.angle_turned < 110, `reported ${r.result.angle_turned} degrees`)
    const [l1, r1] = wheels()
    const arc = (Math.PI * TRACK_MM) / 1000 / 4
    assert.ok(l1 - l0 < -arc * 0.9 && l1 - l0 > -arc * 1.3, `left wheel ${l1 - l0} m, a quarter turn is ${arc} m`)
    assert.ok(r1 - r0 > arc * 0.9 && r1 - r0 < arc * 1.3, `right wheel ${r1 - r0} m`)
    assert.equal(moving(), false)
    ac.close()
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

  test("a goal out of range is aborted with the range in the message", async () => {
    const ac = new ActionClient(robot.node!, DriveDistance, "drive_distance")
    const r = await (await ac.sendGoal({ distance: 11, speed: 0 })).result()
    assert.equal(r.status, GoalStatus.aborted)
    assert.match(r.error ?? "", /distance must be in \[-10, 10\], got 11/)
    ac.close()
  })
})
