// A model of the ArduCAM Mini 2MP for device tests: the ArduChip (SPI registers, the 384 KB FIFO
// with its read/write pointers and burst reads, the CPLD reset) and the OV2640 (two I2C register
// banks, soft reset, the DSP bypass, the JPEG engine, the zoom output size, exposure that needs
// time to settle). It is written from the parts' documentation, not from the driver: it imports
// nothing from src/drivers/arducam.ts except the bus interface it implements, and its register
// numbers and bits are its own. It records protocol violations instead of hiding them.
//
// The FIFO reads follow the vendor, not the driver (docs/hardware.md "Camera reads" has the sources):
// - a burst is one SPI transaction: CS low, 0x3C, then any number of bytes ("each burst read cycle
//   should be started with 0x3C command, followed by any numbers of data": Arducam's "Understanding
//   the SPI Bus timing on Arducam mini camera"); a new burst continues from the FIFO read pointer
//   ("one frame has multiple burst read cycle"; ArduCAM_Mini_Capture2SD.ino closes and reopens the
//   burst every 256 bytes);
// - the dummy byte: on older modules the very first burst after a capture clocks out one byte that
//   is not image data, and every later burst starts with image data (ArduCAM's answer in
//   ArduCAM/Arduino issue #53); newer modules have none (issue #432). Option `firstBurstDummy`;
// - a capture (0x04 bit 1) writes the frame from the start of the FIFO and reads start there: the
//   vendor's examples never reset a pointer. The read-pointer reset bit (0x04 bit 4,
//   FIFO_RDPTR_RST_MASK in ArduCAM.h) is defined but used by no example, so whether a burst after
//   it clocks out the dummy byte again is not documented: option `dummyAfterRewind` plays it either way;
// - the runtime's SPI limit: devicescript-esp32 `main/spi.c` moves at most 4096 bytes per transfer
//   and fails a larger one with -2, which the program sees as "SPI error: -2"; the model refuses the
//   same way (the hardware bus clocks the command and the data as two transfers).
//
// What it models, and the tests that rely on it (test/device/arducam.test.ts):
// - no JPEG until the sensor was soft-reset and then fully set up: at least INIT_WRITES register
//   writes, the DSP switched into the path (R_BYPASS bit 0 clear), JPEG output selected, the DSP
//   out of reset, a clock and a zoom output size set; otherwise the FIFO fills with raw sensor
//   bytes (no FF D8);
// - exposure: a capture that starts less than SETTLE_MS after the last sensor-bank write is dark
//   (counted in `darkFrames`);
// - the dummy byte of older modules, before the first burst after a capture (see above);
// - SPI transfers over 4096 bytes fail with "SPI error: -2" (see above);
// - FIFO overflow: a reported length of the FIFO's size (0x5FFFF) or more;
// - the CPLD reset (0x07 bit 7): the SPI registers read 0 while it is held.
import * as ds from "@devicescript/core"
import type { ArduCamBus } from "../../src/drivers/arducam"

// ArduChip (ArduCAM Mini 2MP) SPI registers; bit 7 of the address byte means write.
const A_TEST = 0x00
const A_FIFO_CTRL = 0x04
const A_FIFO_CLEAR = 0x01
const A_FIFO_START = 0x02
const A_FIFO_RDPTR_RST = 0x10
const A_FIFO_WRPTR_RST = 0x20
/** Largest SPI transfer of the ESP32 runtime (devicescript-esp32 main/spi.c BLOCK_SIZE). */
export const MODEL_SPI_MAX = 4096
const A_CPLD_RESET = 0x07 // bit 7: hold the CPLD in reset
const A_BURST = 0x3c
const A_SINGLE_READ = 0x3d
const A_REV = 0x40
const A_STATUS = 0x41 // bit 3: write FIFO done
const A_STATUS_DONE = 0x08
const A_LEN0 = 0x42
const A_LEN1 = 0x43
const A_LEN2 = 0x44 // bits 6:0
/** 384 KB FIFO: a length this large or larger has overflowed */
export const MODEL_FIFO_SIZE = 0x5ffff

// OV2640 (SCCB address 0x30). 0xFF = bank select: 0 DSP, 1 sensor.
const SCCB_ADDR = 0x30
const BANK_SEL = 0xff
// DSP bank
const DSP_R_BYPASS = 0x05 // bit 0: 1 = bypass the DSP (reset value), 0 = use the DSP
const DSP_QS = 0x44
const DSP_ZMOW = 0x5a
const DSP_ZMOH = 0x5b
const DSP_ZMHH = 0x5c // bits 1:0 OUTW[9:8], bit 2 OUTH[8]
const DSP_IMAGE_MODE = 0xda // bit 4: JPEG output
const DSP_RESET = 0xe0 // bits: 6 microcontroller, 4 JPEG, 2 DVP, ... (1 = held in reset)
// sensor bank
const S_PIDH = 0x0a
const S_PIDL = 0x0b
const S_CLKRC = 0x11
const S_COM7 = 0x12 // bit 7: soft reset
const S_MIDH = 0x1c
const S_MIDL = 0x1d

/** Register writes after a soft reset before the model believes the sensor is set up. */
export const INIT_WRITES = 150
/** Exposure settling time after a sensor-bank change. */
export const SETTLE_MS = 1000

export interface ModelOptions {
    /** JPEG frames the sensor "sees", used in turn by successive captures. */
    frames: Buffer[]
    /** Reads of the status register before the capture-done bit sets (0 = at once). */
    pollsUntilDone?: number
    /** Never finish a capture (for timeout tests). */
    neverDone?: boolean
    /** Sensor PIDH (0x26 for a real OV2640). */
    pidh?: number
    /** Break MISO: every SPI read returns 0xFF. */
    misoStuckHigh?: boolean
    /** Bytes the FIFO holds after the JPEG (the module pads frames). */
    padding?: number
    /** An older module: the first burst after a capture clocks out one dummy byte (0x00) before the data. */
    firstBurstDummy?: boolean
    /** After a read-pointer reset (0x04 bit 4) the next burst clocks out the dummy byte again (not documented either way). */
    dummyAfterRewind?: boolean
    /** Report this FIFO length instead of the frame's (an overflowed capture). */
    fifoLength?: number
}

export class ArduCamModel implements ArduCamBus {
    /** Protocol rules the driver broke, in order; a correct driver leaves this empty. */
    violations: string[] = []
    /** SCCB register writes (bank selects not counted) since the last soft reset */
    writesSinceReset = 0
    /** soft resets (COM7 bit 7) seen */
    softResets = 0
    spiTransactions = 0
    largestRead = 0
    /** SPI transactions refused for moving more than MODEL_SPI_MAX bytes */
    refusedTransfers = 0
    /** burst reads (0x3C) since the last capture started */
    bursts = 0
    /** FIFO bytes clocked out by bursts since the last capture started (dummy bytes not counted) */
    fifoBytesRead = 0
    /** read-pointer resets (0x04 bit 4) since the last capture started */
    rewinds = 0
    captures = 0
    /** captures that started before exposure settled */
    darkFrames = 0
    /** captures made before the sensor was set up (the FIFO got raw bytes, no JPEG) */
    rawFrames = 0
    cpldResets = 0
    /** why the last capture gave no JPEG ("" when it did) */
    notReady = ""

    private regs: number[] = []
    private fifo: Buffer = Buffer.alloc(0)
    private fifoLen = 0
    private readPtr = 0
    /** the next burst starts with a dummy byte */
    private dummyDue = false
    private capturing = false
    private done = false
    private pollsLeft = 0
    private frameIndex = 0
    private bank = 0
    private sensor: number[] = []
    private dsp: number[] = []
    private written: boolean[] = []
    private lastSensorBankWrite = -SETTLE_MS
    private inReset = false
    private clock = 0

    constructor(private opts: ModelOptions) {
        for (let i = 0; i < 256; i++) this.regs.push(0)
        this.powerOnSensor()
    }

    private powerOnSensor() {
        this.sensor = []
        this.dsp = []
        this.written = []
        for (let i = 0; i < 256; i++) {
            this.sensor.push(0)
            this.dsp.push(0)
            this.written.push(false)
        }
        this.dsp[DSP_R_BYPASS] = 0x01
        this.sensor[S_PIDH] = this.opts.pidh === undefined ? 0x26 : this.opts.pidh
        this.sensor[S_PIDL] = 0x42
        this.sensor[S_MIDH] = 0x7f
        this.sensor[S_MIDL] = 0xa2
        this.writesSinceReset = 0
    }

    private h(n: number) {
        const d = "0123456789abcdef"
        return "0x" + d[(n >> 4) & 15] + d[n & 15]
    }

    /** Last value of a DSP-bank register. */
    dspReg(reg: number) {
        return this.dsp[reg]
    }
    /** Last value of a sensor-bank register. */
    sensorReg(reg: number) {
        return this.sensor[reg]
    }
    /** Output size the DSP zoom registers select: [width, height]. */
    outputSize(): number[] {
        const hh = this.dsp[DSP_ZMHH]
        return [(this.dsp[DSP_ZMOW] | ((hh & 3) << 8)) * 4, (this.dsp[DSP_ZMOH] | (((hh >> 2) & 1) << 8)) * 4]
    }
    /** The JPEG quantization scale in use. */
    qs() {
        return this.dsp[DSP_QS]
    }

    /** "" when a capture now would give a JPEG, else the first missing piece of the set-up. */
    setupProblem(): string {
        if (!this.softResets) return "no soft reset (COM7 bit 7)"
        if (this.writesSinceReset < INIT_WRITES)
            return `only ${this.writesSinceReset} register writes since the soft reset (the init table has more)`
        if (this.dsp[DSP_R_BYPASS] & 1) return "DSP bypassed (R_BYPASS 0x05 bit 0 set)"
        if (!(this.dsp[DSP_IMAGE_MODE] & 0x10)) return "JPEG output off (IMAGE_MODE 0xDA bit 4)"
        if (this.dsp[DSP_RESET] !== 0) return "DSP blocks held in reset (0xE0)"
        if (!this.written[S_CLKRC]) return "sensor clock (CLKRC 0x11) never set"
        const wh = this.outputSize()
        if (wh[0] === 0 || wh[1] === 0) return "no zoom output size (0x5A/0x5B)"
        return ""
    }

    async spi(tx: Buffer, readLength: number): Promise<Buffer> {
        this.spiTransactions++
        if (readLength > this.largestRead) this.largestRead = readLength
        await ds.sleep(0)
        if (readLength > MODEL_SPI_MAX || tx.length > MODEL_SPI_MAX) {
            // what spiXfer does on the ESP32 runtime: nothing is clocked, the call fails
            this.refusedTransfers++
            throw new Error("SPI error: -2")
        }
        const rx = Buffer.alloc(readLength)
        if (tx.length === 0) {
            this.violations.push("SPI transaction without an address byte")
            return rx
        }
        const addr = tx[0]
        if (addr & 0x80) {
            if (tx.length !== 2) this.violations.push(`register write ${this.h(addr & 0x7f)} with ${tx.length - 1} data bytes`)
            this.write(addr & 0x7f, tx[1])
            return rx
        }
        if (tx.length !== 1) this.violations.push(`read of ${this.h(addr)} sent ${tx.length} bytes`)
        if (this.inReset) return rx
        if (addr === A_BURST) {
            if (!this.done) this.violations.push("burst read of the FIFO before the capture finished")
            this.bursts++
            const skip = this.dummyDue && readLength > 0 ? 1 : 0
            if (skip) this.dummyDue = false
            // FIFO bytes from the read pointer (0 past what the capture wrote), copied natively:
            // a byte loop over 4 KB trips the VM's watchdog
            const n = readLength - skip
            const avail = Math.max(0, Math.min(n, this.fifo.length - this.readPtr))
            if (avail > 0) rx.blitAt(skip, this.fifo, this.readPtr, avail)
            this.readPtr += n
            this.fifoBytesRead += n
        } else {
            if (readLength !== 1) this.violations.push(`register read ${this.h(addr)} of ${readLength} bytes`)
            if (readLength > 0) rx[0] = this.read(addr)
        }
        if (this.opts.misoStuckHigh) for (let i = 0; i < rx.length; i++) rx[i] = 0xff
        return rx
    }

    private write(reg: number, v: number) {
        if (reg === A_CPLD_RESET) {
            const hold = (v & 0x80) !== 0
            if (hold && !this.inReset) {
                this.cpldResets++
                for (let i = 0; i < 256; i++) this.regs[i] = 0
                this.done = false
                this.capturing = false
                this.fifoLen = 0
                this.readPtr = 0
            }
            this.inReset = hold
            return
        }
        if (this.inReset) return
        if (reg === A_FIFO_CTRL) {
            if (v & A_FIFO_CLEAR) this.done = false
            if (v & A_FIFO_RDPTR_RST) {
                this.readPtr = 0
                this.rewinds++
                this.dummyDue = !!this.opts.dummyAfterRewind && !!this.opts.firstBurstDummy
            }
            if (v & A_FIFO_WRPTR_RST) this.fifoLen = 0
            if (v & A_FIFO_START) {
                if (this.done) this.violations.push("capture started without clearing the done flag (0x04 bit 0)")
                if (this.capturing) this.violations.push("capture started while one is running")
                this.capturing = true
                this.pollsLeft = this.opts.pollsUntilDone || 0
                this.captures++
                this.bursts = 0
                this.fifoBytesRead = 0
                this.rewinds = 0
                if (this.clock - this.lastSensorBankWrite < SETTLE_MS) this.darkFrames++
            }
            return
        }
        if (reg === A_STATUS || reg === A_LEN0 || reg === A_LEN1 || reg === A_LEN2 || reg === A_REV) {
            this.violations.push(`write to read-only register ${this.h(reg)}`)
            return
        }
        this.regs[reg] = v
    }

    private finishCapture() {
        this.notReady = this.setupProblem()
        if (this.notReady) {
            // The FIFO records whatever the sensor sends: raw bytes, no JPEG markers.
            this.rawFrames++
            this.fifo = Buffer.alloc(4096)
            for (let i = 0; i < this.fifo.length; i++) this.fifo[i] = 0x10 + (i & 0x3f)
        } else {
            const frames = this.opts.frames
            const frame = frames[this.frameIndex % frames.length]
            this.frameIndex++
            // (without padding the frame itself is the FIFO: no copy, large frames fit the VM's heap)
            if (this.opts.padding) {
                this.fifo = Buffer.alloc(frame.length + this.opts.padding)
                this.fifo.blitAt(0, frame, 0, frame.length)
            } else this.fifo = frame
        }
        this.fifoLen = this.opts.fifoLength || this.fifo.length
        // the frame is written from the start of the FIFO, and reads start there
        this.readPtr = 0
        this.dummyDue = !!this.opts.firstBurstDummy
        this.capturing = false
        this.done = true
    }

    private read(reg: number): number {
        if (reg === A_STATUS) {
            if (this.capturing && !this.opts.neverDone) {
                if (this.pollsLeft <= 0) this.finishCapture()
                else this.pollsLeft--
            }
            return this.done ? A_STATUS_DONE : 0
        }
        if (reg === A_LEN0 || reg === A_LEN1 || reg === A_LEN2) {
            if (!this.done) this.violations.push(`FIFO size register ${this.h(reg)} read before the capture finished`)
            const len = this.done ? this.fifoLen : 0
            if (reg === A_LEN0) return len & 0xff
            if (reg === A_LEN1) return (len >> 8) & 0xff
            return (len >> 16) & 0x7f
        }
        if (reg === A_REV) return 0x73
        if (reg === A_SINGLE_READ) return this.readPtr < this.fifo.length ? this.fifo[this.readPtr++] : 0
        return this.regs[reg]
    }

    async i2cWrite(addr: number, data: Buffer): Promise<void> {
        if (addr !== SCCB_ADDR) throw new Error(`I2C error: no device at ${this.h(addr)}`)
        if (data.length !== 2) {
            this.violations.push(`SCCB write of ${data.length} bytes (must be register + value)`)
            return
        }
        const reg = data[0]
        const v = data[1]
        if (reg === BANK_SEL) {
            if (v > 1) this.violations.push(`bank select ${this.h(v)}`)
            this.bank = v & 1
            return
        }
        if (this.capturing) this.violations.push(`sensor register ${this.h(reg)} (bank ${this.bank}) written during a capture`)
        if (this.bank === 1) {
            this.lastSensorBankWrite = this.clock
            if (reg === S_COM7 && v & 0x80) {
                this.powerOnSensor()
                this.softResets++
                return
            }
            this.sensor[reg] = v
            this.written[reg] = true
        } else this.dsp[reg] = v
        this.writesSinceReset++
    }

    async i2cRead(addr: number, reg: number, length: number): Promise<Buffer> {
        if (addr !== SCCB_ADDR) throw new Error(`I2C error: no device at ${this.h(addr)}`)
        const out = Buffer.alloc(length)
        for (let i = 0; i < length; i++) out[i] = this.bank === 1 ? this.sensor[reg + i] : this.dsp[reg + i]
        return out
    }

    async sleep(ms: number): Promise<void> {
        this.clock += ms
        await ds.sleep(0)
    }

    now(): number {
        return this.clock
    }
}
