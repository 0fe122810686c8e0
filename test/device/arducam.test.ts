// The ArduCAM driver (src/drivers/arducam.ts) against a model of the module
// (test/device/arducam_model.ts, written from the parts' documentation), in the VM:
// flock /tmp/devs.lock npx devs run test/device/arducam.test.ts --test --test-self-exit
import { describe, expect, test } from "@devicescript/test"
import { ArduCam, MAX_QUALITY, RESOLUTION_COUNT, SETTLE_MS, configure, frameSize, initCamera, qualityToQs } from "../../src/drivers/arducam"
import { ArduCamModel, INIT_WRITES, MODEL_FIFO_SIZE, MODEL_SPI_MAX } from "./arducam_model"

/** A JPEG-shaped frame: FF D8, a pattern that never holds FF D9, FF D9. */
function frame(n: number, seed: number) {
    const b = Buffer.alloc(n)
    // the pattern repeats every 256 bytes: one block, copied (a byte loop over 9 KB trips the VM's watchdog)
    const block = Buffer.alloc(256)
    for (let i = 0; i < 256; i++) block[i] = (i * 7 + seed) & 0xff
    for (let at = 0; at < n; at += 256) b.blitAt(at, block, 0, Math.min(256, n - at))
    b[0] = 0xff
    b[1] = 0xd8
    b[n - 2] = 0xff
    b[n - 1] = 0xd9
    return b
}

/** Byte equality, compared natively 1 KB at a time (a byte loop over 9 KB trips the VM's watchdog). */
function sameBytes(a: Buffer, b: Buffer) {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i += 1024) if (a.slice(i, i + 1024).toString("hex") !== b.slice(i, i + 1024).toString("hex")) return false
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

function has(msg: string, part: string) {
    if (msg.indexOf(part) < 0) console.log(`expected '${part}' in: ${msg}`)
    expect(msg.indexOf(part) >= 0).toBe(true)
}

function noViolations(m: ArduCamModel) {
    if (m.violations.length) console.log(m.violations.join("; "))
    expect(m.violations.length).toBe(0)
}

async function readAll(src: { length: number; read(o: number, n: number): Promise<Buffer> }, chunk: number) {
    // one buffer, filled in place (concatenating 200-byte pieces of a 9 KB frame ran the heap out)
    const out = Buffer.alloc(src.length)
    for (let off = 0; off < src.length; off += chunk) {
        const b = await src.read(off, chunk)
        out.blitAt(off, b, 0, b.length)
    }
    return out
}

describe("arducam bring-up", () => {
    test("init resets the ArduChip and writes the full set-up; the model then gives a JPEG", async () => {
        const jpeg = frame(600, 1)
        const m = new ArduCamModel({ frames: [jpeg] })
        const cam = new ArduCam(m)
        await initCamera(cam)
        expect(m.cpldResets).toBe(1)
        // One soft reset, then the tables: at least INIT_WRITES writes after it.
        expect(m.softResets).toBe(1)
        expect(m.writesSinceReset > INIT_WRITES).toBe(true)
        expect(m.setupProblem()).toBe("")
        expect(m.dspReg(0x05) & 1).toBe(0) // DSP in the path
        expect(m.dspReg(0xda) & 0x10).toBe(0x10) // JPEG
        const src = await cam.capture()
        expect(m.rawFrames).toBe(0)
        expect(sameBytes(await src.read(0, src.length), jpeg)).toBe(true)
        noViolations(m)
    })

    test("the model gives no JPEG after the old minimal set-up (reset, JPEG mode, zoom): the driver says so", async () => {
        const m = new ArduCamModel({ frames: [frame(600, 1)] })
        const w = async (reg: number, v: number) => await m.i2cWrite(0x30, Buffer.from([reg, v]))
        await w(0xff, 1)
        await w(0x12, 0x80)
        await w(0xff, 0)
        await w(0xe0, 0x04)
        await w(0xda, 0x10)
        await w(0x5a, 0x50)
        await w(0x5b, 0x3c)
        await w(0xe0, 0x00)
        has(m.setupProblem(), "register writes since the soft reset")
        const cam = new ArduCam(m)
        const msg = await errorOf(async () => await cam.capture())
        has(msg, "no JPEG start")
        expect(m.rawFrames).toBe(1)
    })

    test("a broken SPI link fails with the register it tested", async () => {
        const cam = new ArduCam(new ArduCamModel({ frames: [frame(10, 0)], misoStuckHigh: true }))
        has(await errorOf(async () => await initCamera(cam)), "SPI test register 0x00")
    })

    test("a sensor that is not an OV2640 is refused", async () => {
        const cam = new ArduCam(new ArduCamModel({ frames: [frame(10, 0)], pidh: 0x56 }))
        has(await errorOf(async () => await initCamera(cam)), "not an OV2640")
    })

    test("probe answers the ArduChip revision and the sensor id", async () => {
        const cam = new ArduCam(new ArduCamModel({ frames: [frame(10, 0)] }))
        const id = await cam.probe()
        expect(id[0]).toBe(0x73)
        expect(id[1]).toBe(0x2642)
    })
})

describe("arducam settings", () => {
    test("every size table selects its output size, and the next capture waits for exposure", async () => {
        const m = new ArduCamModel({ frames: [frame(300, 2)] })
        const cam = new ArduCam(m)
        await initCamera(cam)
        for (let r = RESOLUTION_COUNT - 1; r >= 0; r--) {
            await configure(cam, r, 80)
            const wh = m.outputSize()
            expect(wh[0]).toBe(frameSize(r)[0])
            expect(wh[1]).toBe(frameSize(r)[1])
            expect(m.setupProblem()).toBe("")
            const t0 = m.now()
            await cam.capture()
            expect(m.now() - t0 >= SETTLE_MS - 1).toBe(true)
        }
        expect(m.darkFrames).toBe(0)
        noViolations(m)
    })

    test("the model counts a capture right after a sensor change as dark", async () => {
        const m = new ArduCamModel({ frames: [frame(300, 2)] })
        await m.i2cWrite(0x30, Buffer.from([0xff, 1]))
        await m.i2cWrite(0x30, Buffer.from([0x11, 0x01]))
        await m.spi(Buffer.from([0x84, 0x02]), 0)
        expect(m.darkFrames).toBe(1)
    })

    test("an unknown resolution is refused", async () => {
        const cam = new ArduCam(new ArduCamModel({ frames: [frame(10, 0)] }))
        has(await errorOf(async () => await configure(cam, RESOLUTION_COUNT, 80)), "unknown resolution")
    })

    test("quality maps onto QS (best = smallest) and is capped at the sizes that can overflow the FIFO", async () => {
        expect(qualityToQs(1)).toBe(63)
        expect(qualityToQs(100)).toBe(2)
        let prev = 64
        for (let q = 1; q <= 100; q++) {
            const qs = qualityToQs(q)
            expect(qs <= prev).toBe(true)
            prev = qs
        }
        const m = new ArduCamModel({ frames: [frame(10, 0)] })
        const cam = new ArduCam(m)
        await initCamera(cam)
        await configure(cam, 0, 100)
        expect(m.qs()).toBe(qualityToQs(100))
        // A larger size applies the cap to the quality asked for.
        await configure(cam, 6, 100)
        expect(MAX_QUALITY[6] < 100).toBe(true)
        expect(m.qs()).toBe(qualityToQs(MAX_QUALITY[6]))
        await configure(cam, 6, 50)
        expect(m.qs()).toBe(qualityToQs(50))
        noViolations(m)
    })

    test("configuration waits for a running capture instead of writing the sensor during it", async () => {
        const m = new ArduCamModel({ frames: [frame(300, 3)], pollsUntilDone: 30 })
        const cam = new ArduCam(m)
        // both fibres advance the model's clock while they wait: no deadline in this test
        cam.captureTimeoutMs = 1e9
        await initCamera(cam)
        let captured = false
        setTimeout(async () => {
            await cam.capture()
            captured = true
        }, 0)
        // let the capture start and take the lock
        while (m.captures === 0) await m.sleep(1)
        await configure(cam, 4, 60)
        while (!captured) await m.sleep(1)
        noViolations(m)
        expect(m.outputSize()[0]).toBe(1024)
    })
})

describe("arducam SPI limit (the ESP32 runtime moves at most 4096 bytes per transfer)", () => {
    test("the model refuses a burst of 4097 bytes with the runtime's error, and clocks nothing", async () => {
        const m = new ArduCamModel({ frames: [frame(9000, 1)] })
        await m.spi(Buffer.from([0x84, 0x02]), 0)
        while (((await m.spi(Buffer.from([0x41]), 1))[0] & 8) === 0) await m.sleep(1)
        has(await errorOf(async () => await m.spi(Buffer.from([0x3c]), MODEL_SPI_MAX + 1)), "SPI error: -2")
        expect(m.refusedTransfers).toBe(1)
        expect(m.fifoBytesRead).toBe(0)
        expect((await m.spi(Buffer.from([0x3c]), MODEL_SPI_MAX)).length).toBe(MODEL_SPI_MAX)
    })

    test("a 9 KB frame read in one read (diagnose's whole read) goes in transfers of at most 4096 bytes", async () => {
        const jpeg = frame(9000, 7)
        const m = new ArduCamModel({ frames: [jpeg] })
        const cam = new ArduCam(m)
        await initCamera(cam)
        const src = await cam.capture()
        expect(src.length).toBe(9000)
        expect(sameBytes(await src.read(0, src.length), jpeg)).toBe(true)
        expect(m.refusedTransfers).toBe(0)
        expect(m.largestRead <= MODEL_SPI_MAX).toBe(true)
        noViolations(m)
    })
})

describe("arducam capture: the frame is read the vendor's way, front to back", () => {
    test("a frame read in order is one pass over the FIFO: no read-pointer reset, every byte clocked once", async () => {
        const jpeg = frame(9000, 3)
        const m = new ArduCamModel({ frames: [jpeg], pollsUntilDone: 4 })
        const cam = new ArduCam(m)
        await initCamera(cam)
        const src = await cam.capture()
        expect(sameBytes(await readAll(src, 200), jpeg)).toBe(true)
        expect(m.rewinds).toBe(0)
        expect(m.fifoBytesRead).toBe(9000)
        noViolations(m)
    })

    test("an older module's dummy byte comes before the first burst only: later bursts are image data", async () => {
        const jpeg = frame(5000, 4)
        const m = new ArduCamModel({ frames: [jpeg], firstBurstDummy: true })
        const cam = new ArduCam(m)
        await initCamera(cam)
        const src = await cam.capture()
        expect(src.length).toBe(5000)
        expect(sameBytes(await readAll(src, 230), jpeg)).toBe(true)
        expect(m.rewinds).toBe(0)
        // a second capture arms the dummy byte again
        const again = await cam.capture()
        expect(sameBytes(await readAll(again, 1000), jpeg)).toBe(true)
        noViolations(m)
    })

    test("the frame is what the FIFO length register counts: padding after FF D9 is kept, as the vendor sends it", async () => {
        const jpeg = frame(1500, 3)
        const m = new ArduCamModel({ frames: [jpeg], padding: 40 })
        const cam = new ArduCam(m)
        await initCamera(cam)
        const src = await cam.capture()
        expect(src.length).toBe(1540)
        const all = await readAll(src, 200)
        expect(sameBytes(all.slice(0, 1500), jpeg)).toBe(true)
        expect(all[1539]).toBe(0)
        noViolations(m)
    })

    test("FF D8 at neither offset 0 nor 1 fails clearly", async () => {
        const bad = frame(100, 5)
        bad[0] = 0x00
        bad[1] = 0x00
        const cam = new ArduCam(new ArduCamModel({ frames: [bad] }))
        await initCamera(cam)
        has(await errorOf(async () => await cam.capture()), "FF D8 is at neither offset 0 nor 1")
    })

    test("a frame with no FF D9 fails the read that reaches its end, naming it", async () => {
        const bad = frame(3000, 5)
        bad[2999] = 0x00
        const cam = new ArduCam(new ArduCamModel({ frames: [bad] }))
        await initCamera(cam)
        const src = await cam.capture()
        expect((await src.read(0, 2000)).length).toBe(2000)
        has(await errorOf(async () => await src.read(2000, 1000)), "no JPEG end (FF D9)")
    })

    test("an FF D9 split across two bursts is still the end", async () => {
        // the first burst reads 3 bytes, the next 4096 (bytes 3..4098): FF is its last byte, D9 the next burst's first
        const jpeg = frame(4100, 9)
        const m = new ArduCamModel({ frames: [jpeg] })
        const cam = new ArduCam(m)
        await initCamera(cam)
        const src = await cam.capture()
        expect(sameBytes(await src.read(0, 4100), jpeg)).toBe(true)
        expect(m.bursts).toBe(3)
        noViolations(m)
    })

    test("a FIFO length of exactly the FIFO size is an overflow", async () => {
        const cam = new ArduCam(new ArduCamModel({ frames: [frame(100, 1)], fifoLength: MODEL_FIFO_SIZE }))
        await initCamera(cam)
        has(await errorOf(async () => await cam.capture()), "FIFO overflow")
    })

    // Resends read a range again. The driver resets the read pointer for them; whether the burst
    // after that reset clocks out the dummy byte again is not documented, so every combination runs.
    function resendTest(firstBurstDummy: boolean, dummyAfterRewind: boolean) {
            test(`ranges can be read again and out of order (dummy byte: first burst ${firstBurstDummy}, after a reset ${dummyAfterRewind})`, async () => {
                const jpeg = frame(6000, 5)
                const m = new ArduCamModel({ frames: [jpeg], firstBurstDummy, dummyAfterRewind })
                const cam = new ArduCam(m)
                await initCamera(cam)
                const src = await cam.capture()
                const tail = await src.read(4500, 1500)
                expect(sameBytes(tail, jpeg.slice(4500, 6000))).toBe(true)
                expect(sameBytes(await src.read(0, 100), jpeg.slice(0, 100))).toBe(true)
                expect(sameBytes(await src.read(4500, 1500), tail)).toBe(true)
                expect(sameBytes(await src.read(1, 4500), jpeg.slice(1, 4501))).toBe(true)
                expect(sameBytes(await src.read(2, 3), jpeg.slice(2, 5))).toBe(true)
                expect((await src.read(5950, 200)).length).toBe(50)
                expect((await src.read(6000, 10)).length).toBe(0)
                expect(m.largestRead <= MODEL_SPI_MAX).toBe(true)
                noViolations(m)
            })
    }
    resendTest(false, false)
    resendTest(false, true)
    resendTest(true, false)
    resendTest(true, true)

    test("a capture that never finishes times out with the register named", async () => {
        const cam = new ArduCam(new ArduCamModel({ frames: [frame(10, 0)], neverDone: true }))
        cam.captureTimeoutMs = 40
        await initCamera(cam)
        const msg = await errorOf(async () => await cam.capture())
        has(msg, "timed out")
        has(msg, "0x41")
    })

    test("a newer capture invalidates the previous frame", async () => {
        const a = frame(400, 1)
        const b = frame(500, 2)
        const m = new ArduCamModel({ frames: [a, b] })
        const cam = new ArduCam(m)
        await initCamera(cam)
        const first = await cam.capture()
        const second = await cam.capture()
        expect(second.length).toBe(500)
        has(await errorOf(async () => await first.read(0, 10)), "replaced")
        expect(sameBytes(await second.read(0, 500), b)).toBe(true)
        expect(m.captures).toBe(2)
        noViolations(m)
    })
})
