// The firmware's client of the simulated camera (src/robot/sim.ts SimCamera) against a
// robotCamera server running in the same VM that loses chunks on purpose:
// flock /tmp/devs.lock npx devs run test/device/robot_simcamera.test.ts --test --test-self-exit
import * as ds from "@devicescript/core"
import { Server, startServer } from "@devicescript/server"
import { describe, expect, test } from "@devicescript/test"
import { SimCamera } from "../../src/robot/sim"

const CHUNK = 224

/** A robotCamera server whose "pictures" are a byte pattern; it drops every `dropEvery`-th chunk once. */
class LossyCamera extends Server {
    pictures: Buffer[] = []
    tokens: number[] = []
    sent = 0
    dropped = 0
    dropEvery = 4
    droppedOffsets: number[] = []
    captures = 0
    constructor() {
        super(ds.RobotCamera.spec)
    }
    async capture(args: number[]) {
        const token = args[0]
        const w = args[1]
        const h = args[2]
        this.captures++
        // Size depends on the requested size so the test can tell pictures apart.
        const size = ((w * h) >> 6) + 37
        const b = Buffer.alloc(size)
        for (let i = 0; i < size; i++) b[i] = (i * 13 + token) & 0xff
        this.pictures.push(b)
        this.tokens.push(token)
        await this._send(ds.RobotCamera.spec.lookup("captured").encode([token, 0, size]))
    }
    async read(args: number[]) {
        const token = args[0]
        const length = args[1]
        const offset = args[2]
        const idx = this.tokens.indexOf(token)
        if (idx < 0) {
            await this._send(ds.RobotCamera.spec.lookup("chunk").encode([token, 1, offset, Buffer.alloc(0)]))
            return
        }
        const pic = this.pictures[idx]
        const end = Math.min(pic.length, offset + length)
        for (let off = offset; off < end; off += CHUNK) {
            this.sent++
            if (this.sent % this.dropEvery === 0 && this.droppedOffsets.indexOf(off) < 0) {
                this.droppedOffsets.push(off)
                this.dropped++
                continue
            }
            const n = Math.min(CHUNK, end - off)
            await this._send(ds.RobotCamera.spec.lookup("chunk").encode([token, 0, off, pic.slice(off, off + n)]))
        }
    }
}

const server = new LossyCamera()
startServer(server)
const cam = new SimCamera(new ds.RobotCamera("camera"))
cam.retryMs = 150

async function bound() {
    const deadline = ds.millis() + 4000
    while (ds.millis() < deadline) {
        if ((cam as any).role.isBound) return true
        await ds.sleep(20)
    }
    return false
}

describe("simulated camera client", () => {
    test("captures and reads a picture in windows, recovering lost chunks", async () => {
        expect(await bound()).toBe(true)
        const pic = await cam.capture(2, 80) // 640 x 480: 4837 bytes, three read windows
        expect(pic.width).toBe(640)
        expect(pic.height).toBe(480)
        const size = ((640 * 480) >> 6) + 37
        expect(pic.jpeg.length).toBe(size)
        const token = server.tokens[server.tokens.length - 1]
        let ok = true
        for (let off = 0; off < size; off += 200) {
            const part = await pic.jpeg.read(off, 200)
            expect(part.length).toBe(Math.min(200, size - off))
            for (let i = 0; i < part.length; i++) if (part[i] !== (((off + i) * 13 + token) & 0xff)) ok = false
        }
        expect(ok).toBe(true)
        expect(server.dropped > 0).toBe(true)
    })

    test("a range can be read again after later ranges", async () => {
        const pic = await cam.capture(0, 50)
        const token = server.tokens[server.tokens.length - 1]
        const late = await pic.jpeg.read(300, 10)
        const early = await pic.jpeg.read(5, 10)
        expect(late[0]).toBe((300 * 13 + token) & 0xff)
        expect(early[9]).toBe((14 * 13 + token) & 0xff)
        expect((await pic.jpeg.read(pic.jpeg.length, 10)).length).toBe(0)
    })

    test("a picture the host no longer has fails with a clear error", async () => {
        const pic = await cam.capture(0, 50)
        server.tokens = []
        server.pictures = []
        let msg = ""
        try {
            await pic.jpeg.read(0, 10)
        } catch (e: any) {
            msg = e.message
        }
        expect(msg.indexOf("no longer on the host") >= 0).toBe(true)
    })
})
