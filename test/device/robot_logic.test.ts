// The robot's behaviour (src/robot/robot.ts) over in-memory parts, in the VM: argument checks and
// their messages, the drive timer, stop, call statistics and the state read back from the parts.
// flock /tmp/devs.lock npx devs run test/device/robot_logic.test.ts --test --test-self-exit
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { FrameSource } from "../../src/drivers/arducam"
import { ServiceError, Status } from "@robot-services/device"
import { Hardware, Picture, batteryPercent } from "../../src/robot/hardware"
import { counted, diagnose, drive, initRobot, setLed, setPan, state, stop, takePicture } from "../../src/robot/robot"
import { calibration, loadCalibration } from "../../src/robot/calibration"
import { writeSetting, deleteSetting } from "@devicescript/settings"

class Part {
    speedValue = 0
    writes = 0
    async write(v: number) {
        this.speedValue = v
        this.writes++
    }
    async read() {
        return this.speedValue
    }
}

function memHardware() {
    const left = new Part()
    const right = new Part()
    let angle = 0
    let led = false
    let pressed = false
    let volts = 7.5
    let lastCapture: number[] = []
    const hw: Hardware = {
        kind: "memory",
        pwmPins: 3,
        motorLeft: left,
        motorRight: right,
        // (drive_distance and rotate read them: tested against the simulated wheels, test/host/robot_sim.test.ts)
        encoderLeft: { read: async () => 0 },
        encoderRight: { read: async () => 0 },
        streamEncoders: async () => {},
        servo: {
            write: async (d: number) => {
                angle = d
            },
            read: async () => angle,
        },
        led: {
            write: async (v: number) => {
                led = v > 0
            },
            read: async () => (led ? 1 : 0),
        },
        userButton: { read: async () => (pressed ? 1 : 0) },
        battery: { read: async () => volts },
        camera: {
            capture: async (res: number, q: number): Promise<Picture> => {
                lastCapture = [res, q]
                // 1000 bytes i * 31 + res (mod 256); for res 0 its Adler-32 is 0x5467f264 (zlib)
                const b = Buffer.alloc(1000)
                for (let i = 0; i < b.length; i++) b[i] = (i * 31 + res) & 0xff
                const src: FrameSource = { length: b.length, read: async (o: number, n: number) => b.slice(o, Math.min(b.length, o + n)) }
                return { jpeg: src, width: 1, height: 1 }
            },
            probe: async () => [0x73, 0x2642],
        },
    }
    return {
        hw,
        left,
        right,
        press: (p: boolean) => {
            pressed = p
        },
        setVolts: (v: number) => {
            volts = v
        },
        lastCapture: () => lastCapture,
    }
}

async function failure(f: () => Promise<any>): Promise<ServiceError> {
    try {
        await f()
    } catch (e: any) {
        if (e instanceof ServiceError) return e
        throw e
    }
    return undefined
}

async function expectInvalid(f: () => Promise<any>, text: string) {
    const e = await failure(f)
    expect(e !== undefined).toBe(true)
    expect(e.code).toBe(Status.InvalidArgument)
    if (e.message.indexOf(text) < 0) console.log(`message '${e.message}' lacks '${text}'`)
    expect(e.message.indexOf(text) >= 0).toBe(true)
}

describe("robot arguments", () => {
    test("drive speeds and duration are range-checked with the range in the message", async () => {
        const m = memHardware()
        initRobot(m.hw)
        await expectInvalid(async () => await drive({ left: 1.5, right: 0, duration_ms: 100 }), "left must be in [-1, 1], got 1.5")
        await expectInvalid(async () => await drive({ left: 0, right: -2, duration_ms: 100 }), "right must be in [-1, 1], got -2")
        await expectInvalid(async () => await drive({ left: 0, right: 0, duration_ms: 0 }), "duration_ms must be in [1, 30000], got 0")
        await expectInvalid(async () => await drive({ left: 0, right: 0, duration_ms: 30001 }), "duration_ms must be in [1, 30000]")
        await expectInvalid(async () => await drive({ left: NaN, right: 0, duration_ms: 10 }), "left must be in [-1, 1]")
        // Nothing moved.
        expect(m.left.writes).toBe(0)
    })

    test("pan angle, resolution and quality are range-checked", async () => {
        const m = memHardware()
        initRobot(m.hw)
        await expectInvalid(async () => await setPan(91), "angle must be in [-90, 90] degrees, got 91")
        await expectInvalid(async () => await takePicture(7, 0), "resolution must be in [0, 6] (RES_QQVGA..RES_UXGA), got 7")
        await expectInvalid(async () => await takePicture(1, 101), "quality must be 0 (default) or in [1, 100], got 101")
        await takePicture(1, 0)
        expect(m.lastCapture()[1]).toBe(80)
        await takePicture(6, 100)
        expect(m.lastCapture()[0]).toBe(6)
    })
})

describe("robot drive", () => {
    test("motors run, then stop by themselves after the duration", async () => {
        const m = memHardware()
        initRobot(m.hw)
        const t0 = ds.millis()
        const stopAt = (await drive({ left: 0.5, right: -0.25, duration_ms: 200 })).stop_at_ms
        expect(stopAt >= t0 + 200).toBe(true)
        let s = await state()
        expect(s.left_speed).toBe(0.5)
        expect(s.right_speed).toBe(-0.25)
        expect(s.drive_remaining_ms > 0 && s.drive_remaining_ms <= 200).toBe(true)
        const deadline = ds.millis() + 2000
        while (m.left.speedValue !== 0 && ds.millis() < deadline) await ds.sleep(10)
        expect(ds.millis() - t0 >= 200).toBe(true)
        s = await state()
        expect(s.left_speed).toBe(0)
        expect(s.right_speed).toBe(0)
        expect(s.drive_remaining_ms).toBe(0)
    })

    test("a new drive replaces the previous timer; stop cancels it", async () => {
        const m = memHardware()
        initRobot(m.hw)
        await drive({ left: 1, right: 1, duration_ms: 100 })
        await drive({ left: 0.3, right: 0.3, duration_ms: 400 })
        await ds.sleep(200)
        // The first timer (100 ms) must not have stopped the second drive.
        expect(m.left.speedValue).toBe(0.3)
        await stop()
        expect(m.left.speedValue).toBe(0)
        expect((await state()).drive_remaining_ms).toBe(0)
        await drive({ left: 0.2, right: 0.2, duration_ms: 150 })
        await stop()
        await drive({ left: 0.4, right: 0.4, duration_ms: 400 })
        await ds.sleep(250)
        // The cancelled 150 ms timer must not stop the new drive either.
        expect(m.left.speedValue).toBe(0.4)
        await stop()
    })
})

describe("robot state", () => {
    test("comes from the parts, and counts calls", async () => {
        const m = memHardware()
        initRobot(m.hw)
        await counted(async (a: number) => await setPan(a), -30)
        await counted(async (on: boolean) => await setLed(on), true)
        m.press(true)
        m.setVolts(7.2)
        const e = await failure(async () => await counted(async (a: number) => await setPan(a), 120))
        expect(e.code).toBe(Status.InvalidArgument)
        // other errors are rethrown as they are: the service runtime answers them `internal` with
        // their message (docs/protocol.md), so the firmware does not convert them itself
        let e2: any = undefined
        try {
            await counted(async () => {
                throw new Error("boom")
            }, 0)
        } catch (x) {
            e2 = x
        }
        expect(e2 instanceof ServiceError).toBe(false)
        expect(e2.message).toBe("boom")
        const s = await state()
        expect(s.pan_angle).toBe(-30)
        expect(s.led_on).toBe(true)
        expect(s.button_pressed).toBe(true)
        expect(s.battery_voltage).toBe(7.2)
        expect(s.battery_percentage).toBe(batteryPercent(7.2))
        expect(s.calls_served).toBe(2)
        expect(s.calls_failed).toBe(2)
        expect(s.last_error).toBe("boom")
        expect(s.uptime_ms > 0).toBe(true)
    })

    test("battery percentage is linear between 6.6 V and 8.4 V, clamped", async () => {
        expect(batteryPercent(6.6)).toBe(0)
        expect(batteryPercent(8.4)).toBe(100)
        expect(batteryPercent(7.5)).toBe(50)
        expect(batteryPercent(5)).toBe(0)
        expect(batteryPercent(9)).toBe(100)
    })
})

describe("diagnose (robot doctor's device side)", () => {
    test("check 0 identifies the hardware and its PWM pins", async () => {
        initRobot(memHardware().hw)
        const d = await diagnose({ check: 0, chunk_size: 0 })
        expect(d.hardware).toBe("memory")
        expect(d.pwm_pins).toBe(3)
        expect(d.arduchip_revision).toBe(0x73)
        expect(d.sensor_id).toBe(0x2642)
    })

    test("check 1 reads the last picture in chunks and whole: both Adler-32 match zlib's", async () => {
        initRobot(memHardware().hw)
        const none = await failure(async () => await diagnose({ check: 1, chunk_size: 100 }))
        expect(none.code).toBe(Status.InvalidArgument)
        expect(none.message.indexOf("take_picture") >= 0).toBe(true)
        await takePicture(0, 80)
        const d = await diagnose({ check: 1, chunk_size: 7 })
        expect(d.frame_length).toBe(1000)
        expect(d.sum_chunked).toBe(0x5467f264)
        expect(d.sum_whole).toBe(0x5467f264)
        expect((await failure(async () => await diagnose({ check: 1, chunk_size: 0 }))).code).toBe(Status.InvalidArgument)
        expect((await failure(async () => await diagnose({ check: 2, chunk_size: 10 }))).message.indexOf("check must be") >= 0).toBe(true)
    })
})

describe("calibration settings", () => {
    test("defaults, a setting that overrides one, and an out-of-range setting that is ignored", async () => {
        await deleteSetting("MOTOR_MAX")
        await deleteSetting("BAT_SCALE")
        await loadCalibration()
        expect(calibration.motorMax).toBe(0.7)
        expect(calibration.batteryScale).toBe(9.3)
        expect(calibration.servoMinUs).toBe(2500)
        expect(calibration.servoMaxUs).toBe(500)
        await writeSetting("MOTOR_MAX", 0.5)
        await writeSetting("BAT_SCALE", 99)
        await loadCalibration()
        expect(calibration.motorMax).toBe(0.5)
        expect(calibration.batteryScale).toBe(9.3)
        await deleteSetting("MOTOR_MAX")
        await deleteSetting("BAT_SCALE")
    })
})
