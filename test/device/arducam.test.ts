// The ArduCAM driver against the scripted module (src/drivers/arducamfake.ts), in the VM:
// flock /tmp/devs.lock npx devs run test/device/arducam.test.ts --test --test-self-exit
import { describe, expect, test } from "@devicescript/test"
import { ArduCam, OV_DSP_IMAGE_MODE, OV_DSP_QS, OV_DSP_ZMHH, OV_DSP_ZMOH, OV_DSP_ZMOW, RESOLUTIONS, qualityToQs } from "../../src/drivers/arducam"
import { FakeArduCam } from "../../src/drivers/arducamfake"

function frame(n: number, seed: number) {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff
    b[0] = 0xff
    b[1] = 0xd8
    b[n - 2] = 0xff
    b[n - 1] = 0xd9
    return b
}

function sameBytes(a: Buffer, b: Buffer) {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
}

async function errorOf(f: () => Promise<any>): Promise<string> {
    try {
        await f()
    } catch (e: any) {
        return "" + e.message
    }
    return "(no error)"
}

function noViolations(fake: FakeArduCam) {
    if (fake.violations.length) console.log(fake.violations.join("; "))
    expect(fake.violations.length).toBe(0)
}

describe("arducam init", () => {
    test("checks the SPI test register and the OV2640 id, then selects JPEG", async () => {
        const fake = new FakeArduCam({ frames: [frame(10, 0)] })
        const cam = new ArduCam(fake)
        await cam.init()
        expect(fake.dspReg(OV_DSP_IMAGE_MODE)).toBe(0x10)
        // A soft reset (sensor bank register 0x12 bit 7) precedes the DSP set-up.
        let reset = -1
        let jpeg = -1
        for (let i = 0; i < fake.sensorWrites.length; i++) {
            const w = fake.sensorWrites[i]
            if (w.bank === 1 && w.reg === 0x12 && (w.value & 0x80)) reset = i
            if (w.bank === 0 && w.reg === OV_DSP_IMAGE_MODE) jpeg = i
        }
        expect(reset >= 0).toBe(true)
        expect(jpeg > reset).toBe(true)
        noViolations(fake)
    })

    test("a broken SPI link fails with the register it tested", async () => {
        const cam = new ArduCam(new FakeArduCam({ frames: [frame(10, 0)], misoStuckHigh: true }))
        const msg = await errorOf(async () => await cam.init())
        expect(msg.indexOf("SPI test register 0x00") >= 0).toBe(true)
    })

    test("a sensor that is not an OV2640 is refused", async () => {
        const cam = new ArduCam(new FakeArduCam({ frames: [frame(10, 0)], pidh: 0x56 }))
        const msg = await errorOf(async () => await cam.init())
        expect(msg.indexOf("not an OV2640") >= 0).toBe(true)
    })
})

describe("arducam settings", () => {
    test("every resolution's zoom registers decode back to its size", async () => {
        const fake = new FakeArduCam({ frames: [frame(10, 0)] })
        const cam = new ArduCam(fake)
        await cam.init()
        for (let r = 0; r < RESOLUTIONS.length; r++) {
            await cam.setResolution(r)
            const hh = fake.dspReg(OV_DSP_ZMHH)
            const w = (fake.dspReg(OV_DSP_ZMOW) | ((hh & 3) << 8)) * 4
            const h = (fake.dspReg(OV_DSP_ZMOH) | (((hh >> 2) & 1) << 8)) * 4
            expect(w).toBe(RESOLUTIONS[r][0])
            expect(h).toBe(RESOLUTIONS[r][1])
        }
        noViolations(fake)
    })

    test("an unknown resolution is refused", async () => {
        const cam = new ArduCam(new FakeArduCam({ frames: [frame(10, 0)] }))
        const msg = await errorOf(async () => await cam.setResolution(RESOLUTIONS.length))
        expect(msg.indexOf("unknown resolution") >= 0).toBe(true)
    })

    test("quality maps onto QS, best quality = smallest scale", async () => {
        expect(qualityToQs(1)).toBe(63)
        expect(qualityToQs(100)).toBe(2)
        let prev = 64
        for (let q = 1; q <= 100; q++) {
            const qs = qualityToQs(q)
            expect(qs <= prev).toBe(true)
            prev = qs
        }
        const fake = new FakeArduCam({ frames: [frame(10, 0)] })
        const cam = new ArduCam(fake)
        await cam.init()
        await cam.setQuality(80)
        expect(fake.dspReg(OV_DSP_QS)).toBe(qualityToQs(80))
    })
})

describe("arducam capture", () => {
    test("streams the FIFO in chunks that reassemble to the frame", async () => {
        const jpeg = frame(1500, 3)
        const fake = new FakeArduCam({ frames: [jpeg], pollsUntilDone: 4 })
        const cam = new ArduCam(fake)
        await cam.init()
        const src = await cam.capture()
        expect(src.length).toBe(1500)
        let out = Buffer.alloc(0)
        for (let off = 0; off < src.length; off += 200) out = out.concat(await src.read(off, 200))
        expect(sameBytes(out, jpeg)).toBe(true)
        expect(fake.largestRead <= 256).toBe(true)
        noViolations(fake)
    })

    test("ranges can be read again (resends) and out of order", async () => {
        const jpeg = frame(900, 5)
        const fake = new FakeArduCam({ frames: [jpeg] })
        const cam = new ArduCam(fake)
        await cam.init()
        const src = await cam.capture()
        const tail = await src.read(600, 300)
        const head = await src.read(0, 100)
        const again = await src.read(600, 300)
        expect(sameBytes(tail, jpeg.slice(600, 900))).toBe(true)
        expect(sameBytes(head, jpeg.slice(0, 100))).toBe(true)
        expect(sameBytes(again, tail)).toBe(true)
        // Past the end: short, then empty.
        expect((await src.read(850, 200)).length).toBe(50)
        expect((await src.read(900, 10)).length).toBe(0)
        noViolations(fake)
    })

    test("the FIFO padding is part of the length the module reports", async () => {
        const jpeg = frame(300, 1)
        const cam = new ArduCam(new FakeArduCam({ frames: [jpeg], padding: 8 }))
        await cam.init()
        const src = await cam.capture()
        expect(src.length).toBe(308)
        const b = await src.read(0, 2)
        expect(b[0]).toBe(0xff)
        expect(b[1]).toBe(0xd8)
    })

    test("a capture that never finishes times out with the register named", async () => {
        const fake = new FakeArduCam({ frames: [frame(10, 0)], neverDone: true })
        const cam = new ArduCam(fake)
        cam.captureTimeoutMs = 40
        await cam.init()
        const msg = await errorOf(async () => await cam.capture())
        expect(msg.indexOf("timed out") >= 0).toBe(true)
        expect(msg.indexOf("0x41") >= 0).toBe(true)
    })

    test("a newer capture invalidates the previous frame", async () => {
        const a = frame(400, 1)
        const b = frame(500, 2)
        const fake = new FakeArduCam({ frames: [a, b] })
        const cam = new ArduCam(fake)
        await cam.init()
        const first = await cam.capture()
        const second = await cam.capture()
        expect(second.length).toBe(500)
        const msg = await errorOf(async () => await first.read(0, 10))
        expect(msg.indexOf("replaced") >= 0).toBe(true)
        expect(sameBytes(await second.read(0, 500), b)).toBe(true)
        expect(fake.captures).toBe(2)
        noViolations(fake)
    })
})
