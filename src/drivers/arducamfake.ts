// A scripted ArduCAM Mini 2MP for tests: it answers SPI and I2C transactions the way the module
// does (ArduChip registers, FIFO with read/write pointers and burst reads, OV2640 register banks)
// and records protocol violations instead of hiding them. Device tests drive the real driver
// (arducam.ts) against it; it is never used by the firmware.
import * as ds from "@devicescript/core"
import {
    ArduCamBus,
    FIFO_CLEAR_DONE,
    FIFO_RDPTR_RST,
    FIFO_START,
    FIFO_WRPTR_RST,
    OV2640_ADDR,
    OV_BANK_SEL,
    REG_BURST_READ,
    REG_FIFO,
    REG_FIFO_SIZE1,
    REG_FIFO_SIZE2,
    REG_FIFO_SIZE3,
    REG_TEST,
    REG_TRIG,
    REG_VERSION,
    TRIG_CAPTURE_DONE,
    hex2,
} from "./arducam"

export interface FakeOptions {
    /** Frames the sensor "sees", used in turn by successive captures. */
    frames: Buffer[]
    /** Reads of register 0x41 before the capture-done bit sets (0 = at once). */
    pollsUntilDone?: number
    /** Never finish a capture (for timeout tests). */
    neverDone?: boolean
    /** Value of the OV2640 PIDH register (0x26 for a real OV2640). */
    pidh?: number
    /** Break MISO: every SPI read returns 0xFF. */
    misoStuckHigh?: boolean
    /** Bytes the FIFO reports beyond the JPEG (the module pads frames). */
    padding?: number
}

/** One I2C register write as the sensor saw it: bank (0 DSP, 1 sensor), register, value. */
export interface SensorWrite {
    bank: number
    reg: number
    value: number
}

export class FakeArduCam implements ArduCamBus {
    /** Protocol rules the driver broke, in order; a correct driver leaves this empty. */
    violations: string[] = []
    sensorWrites: SensorWrite[] = []
    /** Number of SPI transactions, and the largest single read (to prove streaming). */
    spiTransactions = 0
    largestRead = 0
    fifoBytesRead = 0
    captures = 0

    private regs: number[] = []
    private fifo: Buffer = Buffer.alloc(0)
    private fifoLen = 0
    private readPtr = 0
    private capturing = false
    private done = false
    private pollsLeft = 0
    private frameIndex = 0
    private bank = 0
    private sensorRegs: number[] = []
    private dspRegs: number[] = []
    private clock = 0

    constructor(private opts: FakeOptions) {
        for (let i = 0; i < 256; i++) {
            this.regs.push(0)
            this.sensorRegs.push(0)
            this.dspRegs.push(0)
        }
        this.regs[REG_VERSION] = 0x73
        this.sensorRegs[0x0a] = opts.pidh === undefined ? 0x26 : opts.pidh
        this.sensorRegs[0x0b] = 0x42
    }

    /** Value last written to a DSP-bank register. */
    dspReg(reg: number) {
        return this.dspRegs[reg]
    }

    async spi(tx: Buffer, readLength: number): Promise<Buffer> {
        this.spiTransactions++
        if (readLength > this.largestRead) this.largestRead = readLength
        await ds.sleep(0)
        const rx = Buffer.alloc(readLength)
        if (tx.length === 0) {
            this.violations.push("SPI transaction without an address byte")
            return rx
        }
        const addr = tx[0]
        if (addr & 0x80) {
            if (tx.length !== 2) this.violations.push(`register write 0x${hex2(addr & 0x7f)} with ${tx.length - 1} data bytes`)
            this.writeReg(addr & 0x7f, tx[1])
            return rx
        }
        if (tx.length !== 1) this.violations.push(`read of 0x${hex2(addr)} sent ${tx.length} bytes`)
        if (addr === REG_BURST_READ) {
            if (!this.done) this.violations.push("burst read of the FIFO before the capture finished")
            for (let i = 0; i < readLength; i++) {
                rx[i] = this.readPtr < this.fifo.length ? this.fifo[this.readPtr] : 0
                this.readPtr++
            }
            this.fifoBytesRead += readLength
        } else {
            if (readLength !== 1) this.violations.push(`register read 0x${hex2(addr)} of ${readLength} bytes`)
            if (readLength > 0) rx[0] = this.readReg(addr)
        }
        if (this.opts.misoStuckHigh) for (let i = 0; i < rx.length; i++) rx[i] = 0xff
        return rx
    }

    private writeReg(reg: number, v: number) {
        if (reg === REG_FIFO) {
            if (v & FIFO_CLEAR_DONE) this.done = false
            if (v & FIFO_RDPTR_RST) this.readPtr = 0
            if (v & FIFO_WRPTR_RST) this.fifoLen = 0
            if (v & FIFO_START) {
                if (this.done) this.violations.push("capture started without clearing the done flag (0x04 bit 0)")
                if (this.capturing) this.violations.push("capture started while one is running")
                this.capturing = true
                this.pollsLeft = this.opts.pollsUntilDone || 0
                this.captures++
            }
            return
        }
        if (reg === REG_TRIG || reg === REG_FIFO_SIZE1 || reg === REG_FIFO_SIZE2 || reg === REG_FIFO_SIZE3) {
            this.violations.push(`write to read-only register 0x${hex2(reg)}`)
            return
        }
        this.regs[reg] = v
    }

    private finishCapture() {
        const frames = this.opts.frames
        const frame = frames[this.frameIndex % frames.length]
        this.frameIndex++
        const pad = this.opts.padding || 0
        this.fifo = Buffer.alloc(frame.length + pad)
        this.fifo.blitAt(0, frame, 0, frame.length)
        this.fifoLen = this.fifo.length
        this.readPtr = 0
        this.capturing = false
        this.done = true
    }

    private readReg(reg: number): number {
        if (reg === REG_TRIG) {
            if (this.capturing && !this.opts.neverDone) {
                if (this.pollsLeft <= 0) this.finishCapture()
                else this.pollsLeft--
            }
            return this.done ? TRIG_CAPTURE_DONE : 0
        }
        if (reg === REG_FIFO_SIZE1 || reg === REG_FIFO_SIZE2 || reg === REG_FIFO_SIZE3) {
            if (!this.done) this.violations.push(`FIFO size register 0x${hex2(reg)} read before the capture finished`)
            const len = this.done ? this.fifoLen : 0
            if (reg === REG_FIFO_SIZE1) return len & 0xff
            if (reg === REG_FIFO_SIZE2) return (len >> 8) & 0xff
            return (len >> 16) & 0x7f
        }
        if (reg === REG_TEST) return this.regs[REG_TEST]
        return this.regs[reg]
    }

    async i2cWrite(addr: number, data: Buffer): Promise<void> {
        if (addr !== OV2640_ADDR) throw new Error(`I2C error: no device at 0x${hex2(addr)}`)
        if (data.length !== 2) {
            this.violations.push(`SCCB write of ${data.length} bytes (must be register + value)`)
            return
        }
        const reg = data[0]
        const v = data[1]
        this.sensorWrites.push({ bank: reg === OV_BANK_SEL ? -1 : this.bank, reg, value: v })
        if (reg === OV_BANK_SEL) {
            if (v > 1) this.violations.push(`bank select 0x${hex2(v)}`)
            this.bank = v & 1
        } else if (this.bank === 1) this.sensorRegs[reg] = v
        else this.dspRegs[reg] = v
    }

    async i2cRead(addr: number, reg: number, length: number): Promise<Buffer> {
        if (addr !== OV2640_ADDR) throw new Error(`I2C error: no device at 0x${hex2(addr)}`)
        const out = Buffer.alloc(length)
        for (let i = 0; i < length; i++) out[i] = this.bank === 1 ? this.sensorRegs[reg + i] : this.dspRegs[reg + i]
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
