// What DeviceScript's VM takes for true: a number only when it is a nonzero whole int32 or an
// infinity. 0.5, 1.5, 2^31 (ds.millis() after 24.8 days of uptime) and 1e12 are false there, true in
// JavaScript. The device's code therefore compares numbers explicitly, and `npm run lint:device`
// (scripts/lint-device.ts) finds any number used as a truth value. If DeviceScript changes this,
// this file fails and the rule can be relaxed.
// flock /tmp/devs.lock npx devs run test/device/truth.test.ts --test --test-self-exit
import { describe, expect, test } from "@devicescript/test"

// (through a function, so that the compiler does not fold the constant)
function truth(x: number) {
    return x ? "true" : "false"
}
function not(x: number) {
    return !x
}
function or(x: number, y: number) {
    return x || y
}

describe("a number as a truth value in the VM", () => {
    test("nonzero whole int32s and infinities are true", () => {
        expect(truth(1)).toBe("true")
        expect(truth(-1)).toBe("true")
        expect(truth(2147483647)).toBe("true")
        expect(truth(Infinity)).toBe("true")
        expect(truth(0)).toBe("false")
        expect(truth(NaN)).toBe("false")
    })
    test("fractions and whole numbers past int32 are false (true in JavaScript)", () => {
        expect(truth(0.5)).toBe("false")
        expect(truth(1.5)).toBe("false")
        expect(truth(-0.5)).toBe("false")
        expect(truth(2147483648)).toBe("false")
        expect(truth(1e12)).toBe("false")
        // so `speed || dflt` gives dflt for a speed of 0.3, and `!t` is true for a time past 2^31 ms
        expect(or(0.3, 5)).toBe(5)
        expect(not(2147483649)).toBe(true)
    })
})
