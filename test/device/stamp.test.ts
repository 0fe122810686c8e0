// stampOf (packages/device/src/lib/actiontype.ts), the uptime as a builtin_interfaces/Time, in the
// VM. DeviceScript's `%` wraps an integer outside int32 first ((2^31 + 648) % 1000 is -648 in the
// VM), so a stamp made with `%` after 2^31 ms of uptime (24.8 days) had a negative nanosec, which
// the uint32 field refuses: every picture and every accepted goal failed from then on.
// flock /tmp/devs.lock npx devs run test/device/stamp.test.ts --test --test-self-exit
import { describe, expect, test } from "@devicescript/test"
import { stampOf } from "@robot-services/device"

function stampIs(ms: number, sec: number, nanosec: number) {
    const s = stampOf(ms)
    if (s.sec !== sec || s.nanosec !== nanosec) throw new Error(`stampOf(${ms}) = {sec: ${s.sec}, nanosec: ${s.nanosec}}, expected {sec: ${sec}, nanosec: ${nanosec}}`)
}

describe("stampOf", () => {
    test("an uptime under 2^31 ms", () => {
        stampIs(0, 0, 0)
        stampIs(1999.6, 1, 999000000)
        stampIs(2147483647, 2147483, 647000000)
    })
    test("an uptime past 2^31 ms (24.8 days) and past 2^32 ms (49.7 days)", () => {
        stampIs(2147483648 + 1000, 2147484, 648000000)
        stampIs(4294967296 + 5, 4294967, 301000000)
        stampIs(1e12 + 999, 1000000000, 999000000)
        expect(stampOf(2147484648).nanosec >= 0).toBe(true)
    })
})
