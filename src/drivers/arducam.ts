// ArduCAM Mini 2MP driver: an OV2640 sensor configured over I2C (SCCB) and the ArduChip
// frame buffer (FIFO, 384 KB) read over SPI. DeviceScript has no camera support; this driver
// talks to the module's registers directly, through a small bus interface so that tests can
// replace the hardware with a scripted fake (src/drivers/arducamfake.ts).
//
// A captured JPEG stays in the module's FIFO: `capture()` returns a FrameSource whose `read`
// streams ranges out of the FIFO on demand, so a picture never has to fit in the 64 KB heap.

/**
 * What `capture()` returns: the same shape as `FrameSource` in src/lib/types.ts (declared here so
 * the driver compiles on its own; TypeScript's structural typing makes it a FrameSource).
 */
export interface FrameSource {
    /** total length in bytes, as the module's FIFO size registers report it */
    length: number
    /** `length` bytes from `offset`; fewer only at the end */
    read(offset: number, length: number): Promise<Buffer>
}

/** Two-digit hex for error messages (DeviceScript numbers have no toString(radix)). */
export function hex2(n: number): string {
    const digits = "0123456789abcdef"
    return digits[(n >> 4) & 15] + digits[n & 15]
}

/** The hardware the driver needs. `spi` asserts CS for the whole transaction. */
export interface ArduCamBus {
    /** CS low, clock out `tx`, then clock in `readLength` bytes (MOSI low), CS high. */
    spi(tx: Buffer, readLength: number): Promise<Buffer>
    /** I2C write of `data` (register address first) to the 7-bit address `addr`. */
    i2cWrite(addr: number, data: Buffer): Promise<void>
    /** I2C write of `reg`, then read of `length` bytes. */
    i2cRead(addr: number, reg: number, length: number): Promise<Buffer>
    /** Waits `ms` milliseconds. */
    sleep(ms: number): Promise<void>
    /** Milliseconds since start (for deadlines). */
    now(): number
}

// ArduChip registers (SPI). A write sets bit 7 of the address.
export const REG_TEST = 0x00
export const REG_FIFO = 0x04
export const FIFO_CLEAR_DONE = 0x01
export const FIFO_START = 0x02
export const FIFO_RDPTR_RST = 0x10
export const FIFO_WRPTR_RST = 0x20
export const REG_BURST_READ = 0x3c
export const REG_VERSION = 0x40
export const REG_TRIG = 0x41
export const TRIG_CAPTURE_DONE = 0x08
export const REG_FIFO_SIZE1 = 0x42
export const REG_FIFO_SIZE2 = 0x43
export const REG_FIFO_SIZE3 = 0x44
/** Frame buffer size of the ArduCAM Mini 2MP. */
export const FIFO_CAPACITY = 0x5ffff

// OV2640 (I2C address 0x30). Register 0xFF selects the bank: 0 = DSP, 1 = sensor.
export const OV2640_ADDR = 0x30
export const OV_BANK_SEL = 0xff
export const OV_BANK_DSP = 0x00
export const OV_BANK_SENSOR = 0x01
export const OV_PIDH = 0x0a // sensor bank
export const OV_PIDL = 0x0b // sensor bank
export const OV_COM7 = 0x12 // sensor bank: bit 7 = soft reset
export const OV_DSP_RESET = 0xe0 // DSP bank: bit 2 = DVP reset
export const OV_DSP_IMAGE_MODE = 0xda // DSP bank: bit 4 = JPEG output
export const OV_DSP_QS = 0x44 // DSP bank: JPEG quantization scale, lower = better
export const OV_DSP_ZMOW = 0x5a // output width / 4, low 8 bits
export const OV_DSP_ZMOH = 0x5b // output height / 4, low 8 bits
export const OV_DSP_ZMHH = 0x5c // bits 1:0 = width/4 bits 9:8, bit 2 = height/4 bit 8
export const OV2640_PID = 0x26

/** Output sizes the OV2640 JPEG engine produces, indexed like TakePicture.RES_*. */
export const RESOLUTIONS: number[][] = [
    [160, 120],
    [320, 240],
    [640, 480],
    [800, 600],
    [1024, 768],
    [1280, 1024],
    [1600, 1200],
]

/** Maps a JPEG quality 1..100 onto the OV2640 quantization scale 63..2 (lower is better). */
export function qualityToQs(quality: number): number {
    const q = Math.max(1, Math.min(100, Math.round(quality)))
    return Math.round(63 - ((q - 1) * 61) / 99)
}

/**
 * A register write/read sequence of the ArduCAM Mini 2MP. All methods throw Error with a message
 * naming the register on a protocol failure (no module, wrong chip, capture timeout).
 * Captures are serialized: a second `capture()` waits for the first one.
 */
export class ArduCam {
    private busy = false
    private generation = 0
    /** FIFO read pointer position (bytes), -1 when unknown */
    private readPos = -1
    private resolution = -1
    private qs = -1
    /** Longest time a capture may take before it fails. */
    captureTimeoutMs = 3000

    constructor(private bus: ArduCamBus) {}

    async writeReg(reg: number, value: number) {
        await this.bus.spi(Buffer.from([reg | 0x80, value & 0xff]), 0)
    }

    async readReg(reg: number): Promise<number> {
        const r = await this.bus.spi(Buffer.from([reg & 0x7f]), 1)
        return r[0]
    }

    async sensorWrite(reg: number, value: number) {
        await this.bus.i2cWrite(OV2640_ADDR, Buffer.from([reg, value & 0xff]))
    }

    async sensorRead(reg: number): Promise<number> {
        const r = await this.bus.i2cRead(OV2640_ADDR, reg, 1)
        return r[0]
    }

    /**
     * Checks both buses and puts the sensor in JPEG mode. Throws if the SPI test register does
     * not echo, or the sensor id is not an OV2640.
     */
    async init() {
        for (const probe of [0x55, 0xaa]) {
            await this.writeReg(REG_TEST, probe)
            const got = await this.readReg(REG_TEST)
            if (got !== probe)
                throw new Error(
                    `ArduCAM SPI test register 0x00: wrote 0x${hex2(probe)}, read 0x${hex2(got)} (check CS/SCK/MISO/MOSI wiring)`
                )
        }
        await this.sensorWrite(OV_BANK_SEL, OV_BANK_SENSOR)
        const pid = await this.sensorRead(OV_PIDH)
        const ver = await this.sensorRead(OV_PIDL)
        if (pid !== OV2640_PID)
            throw new Error(
                `ArduCAM sensor id 0x${hex2(pid)}${hex2(ver)} at I2C 0x30 is not an OV2640 (expected 0x26xx)`
            )
        // Soft reset, then JPEG output from the DSP.
        await this.sensorWrite(OV_COM7, 0x80)
        await this.bus.sleep(100)
        await this.sensorWrite(OV_BANK_SEL, OV_BANK_DSP)
        await this.sensorWrite(OV_DSP_RESET, 0x04)
        await this.sensorWrite(OV_DSP_IMAGE_MODE, 0x10)
        await this.sensorWrite(OV_DSP_RESET, 0x00)
        this.resolution = -1
        this.qs = -1
    }

    /** Sets the JPEG output size (index into RESOLUTIONS). Throws on an unknown index. */
    async setResolution(res: number) {
        const wh = RESOLUTIONS[res]
        if (!wh) throw new Error(`unknown resolution ${res}`)
        if (res === this.resolution) return
        const w4 = wh[0] >> 2
        const h4 = wh[1] >> 2
        await this.sensorWrite(OV_BANK_SEL, OV_BANK_DSP)
        await this.sensorWrite(OV_DSP_RESET, 0x04)
        await this.sensorWrite(OV_DSP_ZMOW, w4 & 0xff)
        await this.sensorWrite(OV_DSP_ZMOH, h4 & 0xff)
        await this.sensorWrite(OV_DSP_ZMHH, ((w4 >> 8) & 0x03) | ((h4 >> 6) & 0x04))
        await this.sensorWrite(OV_DSP_RESET, 0x00)
        this.resolution = res
    }

    /** Sets the JPEG quality 1..100 (mapped with qualityToQs). */
    async setQuality(quality: number) {
        const qs = qualityToQs(quality)
        if (qs === this.qs) return
        await this.sensorWrite(OV_BANK_SEL, OV_BANK_DSP)
        await this.sensorWrite(OV_DSP_QS, qs)
        this.qs = qs
    }

    /**
     * Captures one frame into the FIFO and returns it as a FrameSource that reads the FIFO on
     * demand. The source stays valid until the next capture; reading it afterwards throws.
     * Throws on timeout (`captureTimeoutMs`) or an impossible FIFO length.
     */
    async capture(): Promise<FrameSource> {
        while (this.busy) await this.bus.sleep(5)
        this.busy = true
        try {
            return await this.captureLocked()
        } finally {
            this.busy = false
        }
    }

    private async captureLocked(): Promise<FrameSource> {
        this.generation++
        const gen = this.generation
        this.readPos = -1
        await this.writeReg(REG_FIFO, FIFO_CLEAR_DONE)
        await this.writeReg(REG_FIFO, FIFO_RDPTR_RST | FIFO_WRPTR_RST)
        await this.writeReg(REG_FIFO, FIFO_START)
        const deadline = this.bus.now() + this.captureTimeoutMs
        while (((await this.readReg(REG_TRIG)) & TRIG_CAPTURE_DONE) === 0) {
            if (this.bus.now() > deadline)
                throw new Error(`ArduCAM capture timed out after ${this.captureTimeoutMs} ms (register 0x41 bit 3 never set)`)
            await this.bus.sleep(2)
        }
        const len =
            (await this.readReg(REG_FIFO_SIZE1)) |
            ((await this.readReg(REG_FIFO_SIZE2)) << 8) |
            (((await this.readReg(REG_FIFO_SIZE3)) & 0x7f) << 16)
        if (len === 0 || len > FIFO_CAPACITY)
            throw new Error(`ArduCAM FIFO length ${len} is out of range 1..${FIFO_CAPACITY}`)
        await this.writeReg(REG_FIFO, FIFO_RDPTR_RST)
        this.readPos = 0
        const cam = this
        return {
            length: len,
            read: async (offset: number, length: number) => await cam.readFifo(gen, len, offset, length),
        }
    }

    /** Reads [offset, offset+length) of frame `gen`, moving the FIFO read pointer as needed. */
    private async readFifo(gen: number, total: number, offset: number, length: number): Promise<Buffer> {
        if (gen !== this.generation)
            throw new Error("ArduCAM frame was replaced by a newer capture")
        if (offset < 0 || offset > total) throw new Error(`FIFO offset ${offset} outside 0..${total}`)
        const n = Math.min(length, total - offset)
        if (n <= 0) return Buffer.alloc(0)
        while (this.busy) await this.bus.sleep(5)
        this.busy = true
        try {
            if (this.readPos < 0 || offset < this.readPos) {
                // The FIFO only reads forward: rewind to the start.
                await this.writeReg(REG_FIFO, FIFO_RDPTR_RST)
                this.readPos = 0
            }
            while (this.readPos < offset) {
                const skip = Math.min(offset - this.readPos, 256)
                await this.bus.spi(Buffer.from([REG_BURST_READ]), skip)
                this.readPos += skip
            }
            const data = await this.bus.spi(Buffer.from([REG_BURST_READ]), n)
            this.readPos += n
            return data
        } finally {
            this.busy = false
        }
    }
}
