// ArduCAM Mini 2MP driver: an OV2640 sensor configured over I2C (SCCB) and the ArduChip
// frame buffer (FIFO, 384 KB) read over SPI. DeviceScript has no camera support; this driver
// talks to the module's registers directly, through a small bus interface so that tests can
// replace the hardware with a model of the module (test/device/arducam_model.ts).
//
// Bring-up follows the vendor's order: ArduChip reset, SPI test register, sensor id, sensor soft
// reset, the init table, the format tables (YUV422 then JPEG), a size table, then about a second
// for exposure to settle. The tables are buffer literals, so they cost data, not function code.
//
// A captured JPEG stays in the module's FIFO: `capture()` returns a FrameSource whose `read`
// streams ranges out of the FIFO on demand, so a picture never has to fit in the 64 KB heap.
// Reads go as the vendor's examples go: front to back, in bursts that each continue from the FIFO
// read pointer, each at most SPI_MAX (4096) bytes, the ESP32 runtime's limit per SPI transfer. The
// dummy byte of older modules (first burst after a capture only) is found in the data, not assumed;
// only a resend (a range behind the read pointer) resets the pointer. Sources: docs/hardware.md
// "Camera reads".

// The driver's most used names, as statements that compile to no code: DeviceScript numbers strings
// in the order it meets them and meets these when it compiles this module's top level, before the
// program's own statements compile the driver's functions; a name numbered past 247 costs one or
// two more bytes at every use (docs/benchmarks.md, "Firmware code size").
"bus"; "busy"; "readPos"; "generation"; "probe"; "ended"; "last"
"spi"; "now"; "qs"; "settleUntil"; "captureTimeoutMs"; "head"; "lock"; "i2cRead"; "i2cWrite"

/**
 * What `capture()` returns: the same shape as `ByteSource` in packages/device/src/cdr/types.ts (declared here so
 * the driver compiles on its own; TypeScript's structural typing makes it a ByteSource).
 */
export interface FrameSource {
    /**
     * total length in bytes: what the FIFO length register counts (the vendor's "length of the valid
     * image data"), from FF D8; it may end with the FIFO's padding after FF D9, which decoders ignore
     */
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
const REG_TEST = 0x00
const REG_FIFO = 0x04
const FIFO_CLEAR_DONE = 0x01
const FIFO_START = 0x02
/** resets the FIFO read pointer (FIFO_RDPTR_RST_MASK in the vendor's ArduCAM.h); only resends use it */
const FIFO_RDPTR_RST = 0x10
/** bit 7 holds the ArduChip (CPLD) in reset */
const REG_RESET = 0x07
const REG_BURST_READ = 0x3c
const REG_VERSION = 0x40
const REG_TRIG = 0x41
const TRIG_CAPTURE_DONE = 0x08
const REG_FIFO_SIZE1 = 0x42
/**
 * Largest SPI transfer: the ESP32 runtime (devicescript-esp32 `main/spi.c`, BLOCK_SIZE) moves at most
 * 4096 bytes per transfer and fails a larger one with "SPI error: -2". Every burst stays within it.
 */
export const SPI_MAX = 4096
/** Frame buffer size of the ArduCAM Mini 2MP: a length this large or larger means overflow. */
export const FIFO_SIZE = 0x5ffff

// OV2640 (I2C address 0x30). Register 0xFF selects the bank: 0 = DSP, 1 = sensor.
const OV2640_ADDR = 0x30
const OV_PIDH = 0x0a // sensor bank
const OV_DSP_QS = 0x44 // DSP bank: JPEG quantization scale, lower = better
export const OV2640_PID = 0x26

/** Wait after init or a size change before the first capture: exposure settles (first frames are dark). */
export const SETTLE_MS = 1000

/**
 * Output sizes the OV2640 JPEG engine produces, indexed like TakePicture.RES_*: width and height,
 * u16 each (a byte table costs the image far less code than an array of arrays); see `frameSize`.
 */
const SIZES = hex`a0007800 4001f000 8002e001 20035802 00040003 00050004 4006b004`
/** how many output sizes there are (RES_QQVGA .. RES_UXGA) */
export const RESOLUTION_COUNT = 7

/** [width, height] of resolution `res` (0 .. RESOLUTION_COUNT - 1) */
export function frameSize(res: number): number[] {
    return [SIZES.getAt(res * 4, "u16"), SIZES.getAt(res * 4 + 2, "u16")]
}

/**
 * Highest quality per resolution: above it a detailed scene can exceed the 384 KB FIFO at the
 * largest sizes. An estimate (the vendor's default QS of 12 is about quality 84), not measured.
 */
export const MAX_QUALITY = hex`64 64 64 64 5a 50 46`

/** Maps a JPEG quality 1..100 onto the OV2640 quantization scale 63..2 (lower is better). */
export function qualityToQs(quality: number): number {
    const q = Math.max(1, Math.min(100, Math.round(quality)))
    return Math.round(63 - ((q - 1) * 61) / 99)
}

/**
 * OV2640 set-up after the soft reset, as (register, value) pairs: 190 writes across both banks
 * (0xFF selects the bank) that set clocks, analog tuning, AEC/AGC, gamma, colour matrix and the
 * DSP, including R_BYPASS (DSP 0x05) = 0, which puts the DSP (and so the JPEG engine) in the path.
 * Register values from the OV2640's vendor bring-up (ArduCAM); the tables are our own encoding.
 */
const INIT_TABLE = hex`
    ff00 2cff 2edf ff01 3c32 1100 0902 0428 13e5 1448 2c0c 3378
    3a33 3bfb 3e00 4311 1610 3992 35da 221a 37c3 2300 34c0 361a
    0688 07c0 0d87 0e41 4c00 4800 5b00 4203 4a81 2199 2440 2538
    2682 5c00 6300 6170 6280 7c05 2080 2830 6c00 6d80 6e00 7002
    7194 73c1 1240 1711 1843 1900 1a4b 3209 37c0 4f60 50a8 6d00
    3d38 463f 4f60 0c3c ff00 e57f f9c0 4124 e014 76ff 33a0 4220
    4318 4c00 87d5 883f d703 d910 d382 c808 c980 7c00 7d00 7c03
    7d48 7d48 7c08 7d20 7d10 7d0e 9000 910e 911a 9131 915a 9169
    9175 917e 9188 918f 9196 91a3 91af 91c4 91d7 91e8 9120 9200
    9306 93e3 9305 9305 9300 9304 9300 9300 9300 9300 9300 9300
    9300 9600 9708 9719 9702 970c 9724 9730 9728 9726 9702 9798
    9780 9700 9700 c3ed a400 a800 c511 c651 bf80 c710 b666 b8a5
    b764 b97c b3af b497 b5ff b0c5 b194 b20f c45c c064 c14b 8c00
    863d 5000 51c8 5296 5300 5400 5500 5ac8 5b96 5c00 d300 c3ed
    7f00 da00 e51f e167 e000 dd7f 0500 1240 d304 c016 c112 8c00
    863d 5000 512c 5224 5300 5400 5500 5a2c 5b24 5c00
`
/** DSP output format: YUV422 path, then the JPEG engine on it (vendor order). */
const FORMAT_TABLE = hex`
    ff00 0500 da10 d703 df00 3380 3c40 e177 0000 e014 e177 e51f
    d703 da10 e000 ff01 0408 ff01 1500
`
/** Per resolution (0 .. RESOLUTION_COUNT - 1): sensor mode, clock, window, DSP input size, zoom output size. */
const SIZE_TABLES: Buffer[] = [
    // 160x120
    hex`
        ff01 1240 1711 1843 1900 1a4b 3209 4fca 50a8 5a23 6d00 3912
        35da 221a 37c3 2300 34c0 361a 0688 07c0 0d87 0e41 4c00 ff00
        e004 c064 c14b 8635 5092 51c8 5296 5300 5400 5500 5700 5a28
        5b1e 5c00 e000
    `,
    // 320x240
    hex`
        ff01 1240 1711 1843 1900 1a4b 3209 4fca 50a8 5a23 6d00 3912
        35da 221a 37c3 2300 34c0 361a 0688 07c0 0d87 0e41 4c00 ff00
        e004 c064 c14b 8635 5089 51c8 5296 5300 5400 5500 5700 5a50
        5b3c 5c00 e000
    `,
    // 640x480
    hex`
        ff01 1101 1200 1711 1875 3236 1901 1a97 030f 3740 4fbb 509c
        5a57 6d80 3d34 3902 3588 220a 3740 34a0 0602 0db7 0e01 ff00
        e004 c0c8 c196 863d 5089 5190 522c 5300 5400 5588 5700 5aa0
        5b78 5c00 d304 e000
    `,
    // 800x600
    hex`
        ff01 1101 1200 1711 1875 3236 1901 1a97 030f 3740 4fbb 509c
        5a57 6d80 3d34 3902 3588 220a 3740 34a0 0602 0db7 0e01 ff00
        e004 c0c8 c196 8635 5089 5190 522c 5300 5400 5588 5700 5ac8
        5b96 5c00 d302 e000
    `,
    // 1024x768
    hex`
        ff01 1101 1200 1711 1875 3236 1901 1a97 030f 3740 4fbb 509c
        5a57 6d80 3d34 3902 3588 220a 3740 34a0 0602 0db7 0e01 ff00
        c0c8 c196 8c00 863d 5000 5190 522c 5300 5400 5588 5a00 5bc0
        5c01 d302
    `,
    // 1280x1024: zoom height 1024 rows (ZMOH 0x00 + ZMHH bit 2); the vendor table sets 960 (0xF0)
    hex`
        ff01 1101 1200 1711 1875 3236 1901 1a97 030f 3740 4fbb 509c
        5a57 6d80 3d34 3902 3588 220a 3740 34a0 0602 0db7 0e01 ff00
        e004 c0c8 c196 863d 5000 5190 522c 5300 5400 5588 5700 5a40
        5b00 5c05 d302 e000
    `,
    // 1600x1200
    hex`
        ff01 1101 1200 1711 1875 3236 1901 1a97 030f 3740 4fbb 509c
        5a57 6d80 3d34 3902 3588 220a 3740 34a0 0602 0db7 0e01 ff00
        e004 c0c8 c196 863d 5000 5190 522c 5300 5400 5588 5700 5a90
        5b2c 5c05 d302 e000
    `,
]

/**
 * A register write/read sequence of the ArduCAM Mini 2MP. All methods throw Error with a message
 * naming the register on a protocol failure (no module, wrong chip, capture timeout, overflow, no
 * JPEG markers). Configuration, captures and FIFO reads are serialized by one lock, so a re-init
 * or size change never interleaves with a capture or a read.
 */
export class ArduCam {
    // (the driver's state, also used by the module functions below the class, the register
    // accessors among them: not an API; those are functions rather than methods because every
    // method costs code in the image)
    busy: boolean
    generation = 0
    /** FIFO position of the read pointer: the next burst's first byte */
    readPos = 0
    /** the frame's first bytes, read by the first burst of a pass (see `begin`) */
    head: Buffer
    /** FF D9 was seen in this frame; `last`: the last byte a burst read (an FF before a D9 across bursts) */
    ended: boolean
    last = 0
    // (unset until the sensor is set up: compared only with numbers it never equals, or read as truthy)
    resolution: number
    quality: number
    qs: number
    settleUntil: number
    /** Longest time a capture may take before it fails. */
    captureTimeoutMs = 3000

    constructor(public bus: ArduCamBus) {}

    /** [ArduChip revision, OV2640 id] for `robot doctor`, without changing the set-up. */
    async probe(): Promise<number[]> {
        await lock(this)
        try {
            return await identify(this)
        } finally {
            this.busy = false
        }
    }

    /**
     * Captures one frame into the FIFO and returns it as a FrameSource that reads the FIFO on
     * demand. The source stays valid until the next capture; reading it afterwards throws.
     * Waits for the sensor to settle after init or a size change. Throws on timeout
     * (`captureTimeoutMs`), an empty or overflowed FIFO, or a frame without JPEG markers.
     */
    async capture(): Promise<FrameSource> {
        const c = this
        await lock(c)
        try {
            const wait = c.settleUntil - c.bus.now()
            if (wait > 0) await c.bus.sleep(wait)
            c.generation++
            const gen = c.generation
            // The vendor's sequence: clear the done flag, start. The capture writes the frame from the start
            // of the FIFO and reads start there (no example resets a pointer).
            await writeReg(c, REG_FIFO, FIFO_CLEAR_DONE)
            await writeReg(c, REG_FIFO, FIFO_START)
            const deadline = c.bus.now() + c.captureTimeoutMs
            while (((await readReg(c, REG_TRIG)) & TRIG_CAPTURE_DONE) === 0) {
                if (c.bus.now() > deadline)
                    throw new Error(`ArduCAM capture timed out after ${c.captureTimeoutMs} ms (register 0x41 bit 3 never set)`)
                await c.bus.sleep(2)
            }
            const fifo =
                (await readReg(c, REG_FIFO_SIZE1)) |
                ((await readReg(c, REG_FIFO_SIZE1 + 1)) << 8) |
                (((await readReg(c, REG_FIFO_SIZE1 + 2)) & 0x7f) << 16)
            if (fifo === 0) throw new Error("ArduCAM FIFO length 0: no frame (is the sensor initialised?)")
            if (fifo >= FIFO_SIZE)
                throw new Error(`ArduCAM FIFO overflow: length ${fifo} >= ${FIFO_SIZE} (lower the quality or the resolution)`)
            c.ended = false
            await begin(c)
            return {
                length: fifo,
                read: async (offset: number, length: number) => await readFifo(c, gen, fifo, offset, length),
            }
        } finally {
            c.busy = false
        }
    }

}

// (init and configure: module functions, not methods, as every method costs the image a
// prototype entry; probe and capture are the camera part's methods, kept by the simulated camera)
/**
 * Resets the ArduChip, checks both buses and runs the full JPEG bring-up at 320x240. The next
 * capture waits SETTLE_MS. Throws if the SPI test register does not echo or the sensor is not
 * an OV2640.
 */
export async function initCamera(c: ArduCam) {
    await lock(c)
    try {
        await writeReg(c, REG_RESET, 0x80)
        await c.bus.sleep(100)
        await writeReg(c, REG_RESET, 0x00)
        await c.bus.sleep(100)
        await identify(c)
        // Sensor soft reset (COM7 bit 7, sensor bank), then the tables.
        await sensorWrite(c, 0xff, 1)
        await sensorWrite(c, 0x12, 0x80)
        await c.bus.sleep(100)
        await writeTable(c, INIT_TABLE)
        await writeTable(c, FORMAT_TABLE)
        c.qs = -1
        await writeSize(c, 1)
    } finally {
        c.busy = false
    }
}

/**
 * Sets the JPEG output size (0 .. RESOLUTION_COUNT - 1) and quality 1..100 (mapped with
 * qualityToQs, capped by MAX_QUALITY of the size), under one lock; writes the sensor only where
 * they change. Throws on an unknown size index.
 */
export async function configure(c: ArduCam, res: number, quality: number) {
    if (!(res >= 0 && res < RESOLUTION_COUNT)) throw new Error(`unknown resolution ${res}`)
    await lock(c)
    try {
        c.quality = quality
        // (a new size writes the quality after its table)
        if (res !== c.resolution) await writeSize(c, res)
        else await writeQuality(c)
    } finally {
        c.busy = false
    }
}

async function writeReg(c: ArduCam, reg: number, value: number) {
    await c.bus.spi(Buffer.from([reg | 0x80, value & 0xff]), 0)
}

async function readReg(c: ArduCam, reg: number): Promise<number> {
    const r = await c.bus.spi(Buffer.from([reg & 0x7f]), 1)
    return r[0]
}

async function sensorWrite(c: ArduCam, reg: number, value: number) {
    await c.bus.i2cWrite(OV2640_ADDR, Buffer.from([reg, value & 0xff]))
}

async function lock(c: ArduCam) {
    while (c.busy) await c.bus.sleep(5)
    c.busy = true
}

/** Writes (register, value) pairs in order. */
async function writeTable(c: ArduCam, t: Buffer) {
    for (let i = 0; i + 1 < t.length; i += 2) await sensorWrite(c, t[i], t[i + 1])
}

/**
 * Checks both buses: the SPI test register echo, the ArduChip revision and the OV2640 id.
 * Returns [revision, id]; throws naming the register that failed.
 */
async function identify(c: ArduCam): Promise<number[]> {
    for (const probe of [0x55, 0xaa]) {
        await writeReg(c, REG_TEST, probe)
        const got = await readReg(c, REG_TEST)
        if (got !== probe)
            throw new Error(
                `ArduCAM SPI test register 0x00: wrote 0x${hex2(probe)}, read 0x${hex2(got)} (check CS/SCK/MISO/MOSI wiring)`
            )
    }
    const rev = await readReg(c, REG_VERSION)
    await sensorWrite(c, 0xff, 1)
    // (the sensor's only two reads: a read function of their own cost more than it saved)
    const pid = (await c.bus.i2cRead(OV2640_ADDR, OV_PIDH, 1))[0]
    const ver = (await c.bus.i2cRead(OV2640_ADDR, OV_PIDH + 1, 1))[0]
    if (pid !== OV2640_PID)
        throw new Error(
            `ArduCAM sensor id 0x${hex2(pid)}${hex2(ver)} at I2C 0x30 is not an OV2640 (expected 0x26xx; check SDA/SCL and pull-ups)`
        )
    return [rev, (pid << 8) | ver]
}

async function writeSize(c: ArduCam, res: number) {
    await writeTable(c, SIZE_TABLES[res])
    c.resolution = res
    c.settleUntil = c.bus.now() + SETTLE_MS
    if (c.quality > 0) await writeQuality(c)
}

/** QS for the requested quality, capped by MAX_QUALITY of the current size. */
async function writeQuality(c: ArduCam) {
    const qs = qualityToQs(Math.min(c.quality, MAX_QUALITY[c.resolution] > 0 ? MAX_QUALITY[c.resolution] : 100))
    if (qs === c.qs) return
    await sensorWrite(c, 0xff, 0)
    await sensorWrite(c, OV_DSP_QS, qs)
    c.qs = qs
}

/** One burst (CS low, 0x3C, `n` bytes, CS high; n <= SPI_MAX): it continues from the FIFO read pointer. */
async function burst(c: ArduCam, n: number): Promise<Buffer> {
    const b = await c.bus.spi(Buffer.from([REG_BURST_READ]), n)
    c.readPos += n
    // Look for the JPEG end (FF D9; JPEG data escapes FF as FF 00, so the first one is the end),
    // natively with indexOf: a byte loop over 4 KB trips the VM's watchdog.
    let i = c.last === 0xff ? 0 : 1
    while (!c.ended && i >= 0 && i < n) {
        i = b.indexOf(0xd9, i)
        if (i >= 0 && (i > 0 ? b[i - 1] : c.last) === 0xff) c.ended = true
        else if (i >= 0) i++
    }
    c.last = b[n - 1]
    return b
}

/**
 * The first burst of a pass over the frame (after the capture, or after a read-pointer reset):
 * 3 bytes, with FF D8 at 0 or, on older modules that clock out a dummy byte first, at 1. Found in
 * the data each time, as the vendor's examples look for FF D8: ArduCAM documents the dummy byte for
 * the first burst after a capture only. Keeps the frame's bytes it read in `head`.
 */
async function begin(c: ArduCam) {
    const h = await c.bus.spi(Buffer.from([REG_BURST_READ]), 3)
    const s = h[0] === 0xff && h[1] === 0xd8 ? 0 : h[1] === 0xff && h[2] === 0xd8 ? 1 : -1
    if (s < 0)
        throw new Error(
            `ArduCAM frame has no JPEG start: FF D8 is at neither offset 0 nor 1 (read ${hex2(h[0])} ${hex2(h[1])} ${hex2(h[2])})`
        )
    c.head = h.slice(s)
    c.readPos = 3 - s
    c.last = h[2]
}

/**
 * Reads [offset, offset+length) of frame `gen`: front to back in bursts of at most SPI_MAX bytes,
 * each continuing from the FIFO read pointer. Only a range before the read pointer (a resend) resets
 * the pointer (0x04 bit 4) and reads forward again from the frame's start. The read that reaches the
 * end throws if no FF D9 came by.
 */
async function readFifo(c: ArduCam, gen: number, total: number, offset: number, length: number): Promise<Buffer> {
    if (gen !== c.generation) throw new Error("ArduCAM frame was replaced by a newer capture")
    if (offset < 0 || offset > total) throw new Error(`FIFO offset ${offset} outside 0..${total}`)
    const n = Math.min(length, total - offset)
    if (n <= 0) return Buffer.alloc(0)
    await lock(c)
    try {
        if (gen !== c.generation) throw new Error("ArduCAM frame was replaced by a newer capture")
        const out = Buffer.alloc(n)
        let k = 0
        for (let pass = 0; pass < 2; pass++) {
            // the frame's first bytes, read by `begin`
            while (k < n && offset + k < c.head.length) {
                out[k] = c.head[offset + k]
                k++
            }
            if (k >= n || offset + k >= c.readPos) break
            // behind the read pointer: the FIFO only reads forward, so back to the start
            await writeReg(c, REG_FIFO, FIFO_RDPTR_RST)
            await begin(c)
        }
        while (c.readPos < offset + k) await burst(c, Math.min(SPI_MAX, offset + k - c.readPos))
        while (k < n) {
            const b = await burst(c, Math.min(SPI_MAX, n - k))
            out.blitAt(k, b, 0, b.length)
            k += b.length
        }
        if (offset + n === total && !c.ended) throw new Error(`ArduCAM frame has no JPEG end (FF D9) in its ${total} FIFO bytes`)
        return out
    } finally {
        c.busy = false
    }
}
