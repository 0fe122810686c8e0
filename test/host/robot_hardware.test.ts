// The simulated hardware on its own (host/sim/hardware.ts): one Jacdac device with the robot's
// parts in binding order, and a battery that drains faster while the motors run.
import { test, describe } from "node:test"
import assert from "node:assert/strict"
import { jd } from "../../host/transport/jacdac"
import { SimulatedHardware, BATTERY_EMPTY_V, BATTERY_FULL_V } from "../../host/sim/hardware"
import { SRV_ROBOT_CAMERA } from "../../host/sim/camera"

/** Resolves when `cond` holds, polling on timers; fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 3000) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe("simulated hardware", () => {
  test("exposes the parts in the order the firmware's roles bind to them", () => {
    const hw = new SimulatedHardware()
    const classes = hw.provider.services().slice(1).map((s) => s.serviceClass)
    assert.deepEqual(classes, [
      jd.SRV_MOTOR,
      jd.SRV_MOTOR,
      jd.SRV_SERVO,
      jd.SRV_LIGHT_BULB,
      jd.SRV_BUTTON,
      jd.SRV_DC_VOLTAGE_MEASUREMENT,
      SRV_ROBOT_CAMERA,
    ])
  })

  test("battery voltage follows the charge and drains faster with the motors on", async () => {
    const bus = new jd.JDBus([], { disableRoleManager: true })
    const hw = new SimulatedHardware({ charge: 0.5, drainPerSecond: 0.5, idleDrainPerSecond: 0.001, tickMs: 10 })
    try {
      assert.ok(Math.abs(hw.voltage() - (BATTERY_EMPTY_V + BATTERY_FULL_V) / 2) < 1e-9)
      hw.attach(bus)
      const t0 = Date.now()
      const c0 = hw.state().charge
      await until(() => Date.now() - t0 >= 100, "idle period")
      const idleLoss = c0 - hw.state().charge
      assert.ok(idleLoss > 0, "idle drain")
      hw.motorLeft.enabled.setValues([true])
      hw.motorLeft.speed.setValues([1])
      hw.motorRight.enabled.setValues([true])
      hw.motorRight.speed.setValues([-1])
      const c1 = hw.state().charge
      const t1 = Date.now()
      await until(() => Date.now() - t1 >= 100, "driving period")
      const driveLoss = c1 - hw.state().charge
      assert.ok(driveLoss > 20 * idleLoss, `drive loss ${driveLoss} vs idle ${idleLoss}`)
      // The battery sensor's reading register carries the voltage.
      const [reading] = hw.battery.reading.values()
      assert.ok(Math.abs(reading - hw.voltage()) < 0.05, `reading ${reading} vs ${hw.voltage()}`)
      // Motor speed is i1.15 fixed point: 1 is stored as 32767/32768.
      assert.ok(Math.abs(hw.state().leftSpeed - 1) < 1e-4)
      assert.ok(Math.abs(hw.state().rightSpeed + 1) < 1e-4)
      // A disabled motor draws nothing.
      hw.motorLeft.enabled.setValues([false])
      assert.equal(hw.state().leftSpeed, 0)
    } finally {
      hw.detach()
      await bus.dispose()
    }
  })

  test("cannot be attached twice", async () => {
    const bus = new jd.JDBus([], { disableRoleManager: true })
    const hw = new SimulatedHardware()
    try {
      hw.attach(bus)
      assert.throws(() => hw.attach(bus), /already attached/)
    } finally {
      hw.detach()
      await bus.dispose()
    }
  })
})
