// The simulated hardware on its own (packages/host/src/sim/hardware.ts): one Jacdac device with the robot's
// parts in binding order, and a battery that drains faster while the motors run.
import { test, describe } from "node:test"
import assert from "node:assert/strict"
import { jd } from "../../packages/host/src/transport/jacdac"
import { SimulatedHardware, BATTERY_EMPTY_V, BATTERY_FULL_V } from "../../packages/host/src/sim/hardware"
import { SRV_ROBOT_CAMERA } from "../../packages/host/src/sim/camera"

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
      jd.SRV_ROTARY_ENCODER,
      jd.SRV_ROTARY_ENCODER,
    ])
  })

  test("battery voltage follows the charge and drains faster with the motors on", async () => {
    const bus = new jd.JDBus([], { disableRoleManager: true })
    // the battery model runs on a clock the test moves: no waiting, exact figures
    let now = 1_000_000
    const hw = new SimulatedHardware({ charge: 0.5, drainPerSecond: 0.1, idleDrainPerSecond: 0.001, clock: () => now })
    try {
      assert.ok(Math.abs(hw.voltage() - (BATTERY_EMPTY_V + BATTERY_FULL_V) / 2) < 1e-9)
      hw.attach(bus)
      const c0 = hw.state().charge
      now += 1000
      hw.advance()
      const idleLoss = c0 - hw.state().charge
      assert.ok(Math.abs(idleLoss - 0.001) < 1e-9, `idle drain over 1 s: ${idleLoss}`)
      hw.motorLeft.enabled.setValues([true])
      hw.motorLeft.speed.setValues([1])
      hw.motorRight.enabled.setValues([true])
      hw.motorRight.speed.setValues([-1])
      const c1 = hw.state().charge
      now += 1000
      hw.advance()
      const driveLoss = c1 - hw.state().charge
      // idle drain + 0.1/s x load, load = mean |speed| (i1.15 fixed point: 1 is 32767/32768, -1 exact)
      const load = (32767 / 32768 + 1) / 2
      assert.ok(Math.abs(driveLoss - (0.001 + 0.1 * load)) < 1e-9, `drive drain over 1 s: ${driveLoss}`)
      assert.ok(driveLoss > 20 * idleLoss)
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
