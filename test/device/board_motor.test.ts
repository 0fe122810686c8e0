// The board's motor channel (src/robot/board.ts BoardMotor) against a model of its two pins on a
// DRV8833 H-bridge, in the VM: IN1 is the PWM duty (a dimmable light bulb's intensity), IN2 the
// direction GPIO. The model records the bridge's state after every pin write, from the DRV8833
// truth table (IN1 IN2: 0 0 coast, 1 0 forward, 0 1 reverse, 1 1 brake; PWM on IN1 alternates the
// on state with the off state), so a transient a transition passes through is seen, not only the
// state it ends in.
// flock /tmp/devs.lock npx devs run test/device/board_motor.test.ts --test --test-self-exit
import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import { BoardMotor } from "../../src/robot/board"
import { calibration } from "../../src/robot/calibration"

/** Rounds a duty to two decimals for the log. */
function r2(v: number) {
    return Math.round(v * 100) / 100
}

/** One DRV8833 channel's inputs; `log`: the bridge's state after each write. */
class Bridge {
    in1 = 0
    in2 = 0
    log: string[] = []
    writes: string[] = []
    pwm: any
    dir: any
    constructor() {
        const self = this
        this.pwm = {
            intensity: {
                write: async (v: number) => {
                    self.in1 = v
                    self.writes.push("IN1=" + r2(v))
                    self.log.push(self.state())
                },
                read: async () => self.in1,
            },
        }
        this.dir = {
            // (the pin is driven by its mode: OutputHigh is 1, OutputLow 0)
            setMode: (m: number) => {
                self.in2 = m === ds.GPIOMode.OutputHigh ? 1 : 0
                self.writes.push("IN2=" + self.in2)
                self.log.push(self.state())
            },
        }
    }
    /** forward/reverse with the share of each PWM period that drives, coast, or brake */
    state() {
        if (this.in2) return this.in1 >= 1 ? "brake" : "reverse " + r2(1 - this.in1)
        return this.in1 > 0 ? "forward " + r2(this.in1) : "coast"
    }
    clear() {
        this.log = []
        this.writes = []
    }
}

function has(list: string[], prefix: string) {
    for (const s of list) if (s.indexOf(prefix) === 0) return true
    return false
}

function motor() {
    calibration.motorMax = 1
    const b = new Bridge()
    const m = new BoardMotor(b.pwm, b.dir)
    return [b, m] as any[]
}

describe("board motor on a DRV8833 model", () => {
    test("stopping from a slow reverse never drives forwards, and ends coasting", async () => {
        const bm = motor()
        const b: Bridge = bm[0]
        const m: BoardMotor = bm[1]
        await m.write(-0.2)
        expect(b.state()).toBe("reverse 0.2")
        b.clear()
        await m.write(0)
        if (has(b.log, "forward")) console.log(b.log.join(", "))
        expect(has(b.log, "forward")).toBe(false)
        expect(b.state()).toBe("coast")
        expect(await m.read()).toBe(0)
    })

    test("a change of direction writes duty 0, then the direction pin, then the duty", async () => {
        const bm = motor()
        const b: Bridge = bm[0]
        const m: BoardMotor = bm[1]
        await m.write(0.4)
        b.clear()
        await m.write(-0.3)
        expect(b.writes.join(" ")).toBe("IN1=0 IN2=1 IN1=0.7")
        expect(b.state()).toBe("reverse 0.3")
        expect(r2(await m.read())).toBe(-0.3)
        b.clear()
        await m.write(0.5)
        expect(b.writes.join(" ")).toBe("IN1=0 IN2=0 IN1=0.5")
        expect(has(b.log, "brake")).toBe(false)
        expect(b.state()).toBe("forward 0.5")
    })

    test("the same direction changes the duty only; stop from either direction coasts", async () => {
        const bm = motor()
        const b: Bridge = bm[0]
        const m: BoardMotor = bm[1]
        await m.write(0.3)
        b.clear()
        await m.write(0.6)
        expect(b.writes.join(" ")).toBe("IN1=0.6")
        await m.write(0)
        expect(b.state()).toBe("coast")
        await m.write(-0.6)
        b.clear()
        await m.write(-0.1)
        expect(b.writes.join(" ")).toBe("IN1=0.9")
        await m.write(0)
        expect(b.state()).toBe("coast")
    })

    test("speeds are scaled by calibration.motorMax both ways", async () => {
        const bm = motor()
        const b: Bridge = bm[0]
        const m: BoardMotor = bm[1]
        calibration.motorMax = 0.5
        await m.write(1)
        expect(b.state()).toBe("forward 0.5")
        expect(await m.read()).toBe(1)
        await m.write(-1)
        expect(b.state()).toBe("reverse 0.5")
        expect(await m.read()).toBe(-1)
        calibration.motorMax = 1
    })
})
