// The ArduCAM's real bus on a board: SPI with chip select on a GPIO, and the board's I2C. Only
// used on hardware (see src/robot/board.ts). It calls the runtime's SPI and I2C primitives
// (`ds.spiConfigure`/`ds.spiXfer`, `ds._i2cTransaction`), which the `SPI` and `I2C` classes of
// @devicescript/spi and @devicescript/i2c wrap: used directly they cost about 700 bytes less
// function code (every method of a class is compiled into the image).
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { ArduCamBus, hex2 } from "./arducam"

/** the runtime's SPI and I2C primitives (see the header) */
const hw = ds as typeof ds & {
    spiConfigure(miso: number, mosi: number, sck: number, mode: number, hz: number): void
    spiXfer(tx: Buffer, rx: Buffer): Promise<void>
    _i2cTransaction(addr: number, wrbuf: Buffer, rdbuf?: Buffer): Promise<number>
}

/** one I2C transaction; throws naming the device and the runtime's status */
async function i2c(addr: number, wr: Buffer, rd?: Buffer) {
    const rc = await hw._i2cTransaction(addr, wr, rd)
    if (rc !== 0) throw new Error(`I2C error ${rc} at address 0x${hex2(addr)}`)
}

export interface ArduCamPins {
    cs: ds.OutputPin
    sck: ds.OutputPin
    miso: ds.InputPin
    mosi: ds.OutputPin
    /** SPI clock in Hz; the ArduChip accepts up to 8 MHz. Default 4 MHz. */
    hz?: number
}

/** Configures the SPI bus and CS pin and returns the bus for `new ArduCam(bus)`. */
export function arduCamHardwareBus(pins: ArduCamPins): ArduCamBus {
    hw.spiConfigure(pins.miso.gpio, pins.mosi.gpio, pins.sck.gpio, 0, pins.hz || 4000000)
    pins.cs.setMode(ds.GPIOMode.OutputHigh)
    return {
        spi: async (tx: Buffer, readLength: number) => {
            pins.cs.write(0)
            try {
                await hw.spiXfer(tx, null)
                const r = Buffer.alloc(readLength)
                if (readLength > 0) await hw.spiXfer(null, r)
                return r
            } finally {
                pins.cs.write(1)
            }
        },
        i2cWrite: async (addr: number, data: Buffer) => {
            await i2c(addr, data)
        },
        i2cRead: async (addr: number, reg: number, length: number) => {
            const r = Buffer.alloc(length)
            await i2c(addr, Buffer.from([reg]), r)
            return r
        },
        sleep: async (ms: number) => {
            await ds.sleep(ms)
        },
        now: () => ds.millis(),
    }
}
