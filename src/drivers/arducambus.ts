// The ArduCAM's real bus on a board: SPI with chip select on a GPIO, and the board's I2C. Only used
// on hardware (see src/robot/board.ts). It calls the runtime's SPI and I2C primitives directly, as
// the SPI and I2C classes of @devicescript/spi and @devicescript/i2c do (same calls, same error
// message): those classes compile every method, about 700 bytes of code this driver never runs.
import * as ds from "@devicescript/core"
import { ArduCamBus } from "./arducam"

/**
 * A GPIO pin as the runtime has it: `setMode` and `value` are native. Without @devicescript/gpio,
 * whose start-up code gives every pin a `write` and a `subscribe` (with its change timer and
 * emitters: about 500 bytes of code the robot never ran), a pin is driven by its mode
 * (OutputHigh/OutputLow), as that `write` does.
 */
export interface Gpio {
    setMode(mode: ds.GPIOMode): void
    value: number
}

export interface ArduCamPins {
    cs: ds.OutputPin
    sck: ds.OutputPin
    miso: ds.InputPin
    mosi: ds.OutputPin
    /** SPI clock in Hz; the ArduChip accepts up to 8 MHz. Default 4 MHz. */
    hz?: number
}

/** the runtime's SPI and I2C primitives (what @devicescript/spi and @devicescript/i2c wrap) */
type DsBus = typeof ds & {
    spiConfigure(miso: number, mosi: number, sck: number, mode: number, hz: number): void
    spiXfer(tx: Buffer, rx: Buffer): Promise<void>
    _i2cTransaction(addr: number, wrbuf: Buffer, rdbuf?: Buffer): Promise<number>
}

/** One I2C transaction (`xfer` of @devicescript/i2c): write `wr`, then read `numRead` bytes. */
async function xfer(addr: number, wr: Buffer, numRead?: number): Promise<Buffer> {
    const rd = numRead > 0 ? Buffer.alloc(numRead) : undefined
    const rc = await (ds as DsBus)._i2cTransaction(addr, wr, rd)
    if (rc !== 0) throw new Error(`I2C error ${rc} dev=${addr}: write ${wr}, read ${numRead} B`)
    return rd || hex``
}

/**
 * Configures the SPI bus and CS pin and returns the bus for `new ArduCam(bus)`. Each `spi` call is
 * two runtime transfers (the command, then the reply) with CS held low; the runtime refuses a
 * transfer over 4096 bytes ("SPI error: -2", devicescript-esp32 main/spi.c), so the driver asks for
 * at most SPI_MAX bytes at a time.
 */
export function arduCamHardwareBus(pins: ArduCamPins): ArduCamBus {
    // SPI mode 0
    (ds as DsBus).spiConfigure(pins.miso.gpio, pins.mosi.gpio, pins.sck.gpio, 0, pins.hz > 0 ? pins.hz : 4000000)
    const cs = pins.cs as any as Gpio
    cs.setMode(ds.GPIOMode.OutputHigh)
    return {
        spi: async (tx: Buffer, readLength: number) => {
            cs.setMode(ds.GPIOMode.OutputLow)
            try {
                await (ds as DsBus).spiXfer(tx, null)
                if (readLength <= 0) return Buffer.alloc(0)
                const rx = Buffer.alloc(readLength)
                await (ds as DsBus).spiXfer(null, rx)
                return rx
            } finally {
                cs.setMode(ds.GPIOMode.OutputHigh)
            }
        },
        // (xfer itself: its result, an empty buffer, is not read)
        i2cWrite: xfer,
        i2cRead: async (addr: number, reg: number, length: number) => await xfer(addr, Buffer.from([reg]), length),
        sleep: async (ms: number) => {
            await ds.sleep(ms)
        },
        now: () => ds.millis(),
    }
}
