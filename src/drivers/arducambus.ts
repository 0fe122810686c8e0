// The ArduCAM's real bus on a board: SPI from `@devicescript/spi` with chip select on a GPIO,
// and the board's I2C from `@devicescript/i2c`. Only used on hardware (see src/robot/board.ts).
import * as ds from "@devicescript/core"
import { spi } from "@devicescript/spi"
import { i2c } from "@devicescript/i2c"
import "@devicescript/gpio"
import { ArduCamBus } from "./arducam"

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
    spi.configure({ miso: pins.miso, mosi: pins.mosi, sck: pins.sck, mode: 0, hz: pins.hz || 4000000 })
    pins.cs.setMode(ds.GPIOMode.OutputHigh)
    return {
        spi: async (tx: Buffer, readLength: number) => {
            pins.cs.write(0)
            try {
                await spi.write(tx)
                return readLength > 0 ? await spi.read(readLength) : Buffer.alloc(0)
            } finally {
                pins.cs.write(1)
            }
        },
        i2cWrite: async (addr: number, data: Buffer) => {
            await i2c.writeBuf(addr, data)
        },
        i2cRead: async (addr: number, reg: number, length: number) => {
            return await i2c.readRegBuf(addr, reg, length)
        },
        sleep: async (ms: number) => {
            await ds.sleep(ms)
        },
        now: () => ds.millis(),
    }
}
