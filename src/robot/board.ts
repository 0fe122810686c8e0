// Real hardware on the robot_s3 board (boards/robot_s3.board.json): the board's own servers
// started with `board.startX()` (motors on the DRV8833, pan servo, LED, button), the battery on
// an ADC pin, and the ArduCAM Mini through src/drivers/arducam.ts. Only used on a board; it
// cannot be exercised in the simulator (see docs/hardware.md for what was checked how).
import * as ds from "@devicescript/core"
import "@devicescript/gpio"
import { board, pins } from "@dsboard/robot_s3"
import { ArduCam, RESOLUTIONS } from "../drivers/arducam"
import { arduCamHardwareBus } from "../drivers/arducambus"
import { ServiceError, Status } from "../lib/types"
import { BatteryPart, ButtonPart, CameraPart, Hardware, LedPart, MotorPart, Picture, ServoPart } from "./hardware"

/** Battery divider: 200k over 100k, so the ADC sees a third of the pack voltage. */
const BATTERY_DIVIDER = 3
/** ADC full scale of the ESP32-S3 at 11 dB attenuation, in volts (as DeviceScript scales 0..1). */
const ADC_FULL_SCALE_V = 3.1

class BoardMotor implements MotorPart {
    constructor(private role: ds.Motor) {}
    async setSpeed(speed: number) {
        await this.role.enabled.write(speed !== 0)
        await this.role.speed.write(speed)
    }
    async speed() {
        return await this.role.speed.read()
    }
}

class BoardServo implements ServoPart {
    private enabled = false
    constructor(private role: ds.Servo) {}
    async setAngle(degrees: number) {
        if (!this.enabled) {
            await this.role.enabled.write(true)
            this.enabled = true
        }
        await this.role.angle.write(degrees)
    }
    async angle() {
        return await this.role.angle.read()
    }
}

class BoardLed implements LedPart {
    constructor(private role: ds.LightBulb) {}
    async set(on: boolean) {
        await this.role.intensity.write(on ? 1 : 0)
    }
    async isOn() {
        return (await this.role.intensity.read()) > 0
    }
}

class BoardButton implements ButtonPart {
    constructor(private role: ds.Button) {}
    async isPressed() {
        return (await this.role.reading.read()) > 0.5
    }
}

class AdcBattery implements BatteryPart {
    constructor(private pin: ds.AnalogInPin & ds.InputPin) {
        pin.setMode(ds.GPIOMode.AnalogIn)
    }
    async voltage() {
        return (this.pin.value as number) * ADC_FULL_SCALE_V * BATTERY_DIVIDER
    }
}

/** The ArduCAM, initialized on first use so that a missing camera does not stop the robot. */
class ArduCamPart implements CameraPart {
    private cam: ArduCam
    private ready = false
    async capture(resolution: number, quality: number): Promise<Picture> {
        try {
            if (!this.cam)
                this.cam = new ArduCam(
                    arduCamHardwareBus({ cs: pins.CAM_CS, sck: pins.CAM_SCK, miso: pins.CAM_MISO, mosi: pins.CAM_MOSI })
                )
            if (!this.ready) {
                await this.cam.init()
                this.ready = true
            }
            await this.cam.setResolution(resolution)
            await this.cam.setQuality(quality)
            const jpeg = await this.cam.capture()
            const wh = RESOLUTIONS[resolution]
            return { jpeg, width: wh[0], height: wh[1] }
        } catch (e: any) {
            if (e instanceof ServiceError) throw e
            this.ready = false
            throw new ServiceError(Status.Unavailable, "camera: " + e.message)
        }
    }
}

/** Starts the board's servers and returns the parts. */
export function startBoardHardware(): Hardware {
    return {
        kind: "board robot_s3",
        motorLeft: new BoardMotor(board.startMotorLeft()),
        motorRight: new BoardMotor(board.startMotorRight()),
        servo: new BoardServo(board.startServoPan()),
        led: new BoardLed(board.startLedStatus()),
        button: new BoardButton(board.startButtonUser()),
        battery: new AdcBattery(pins.BAT_SENSE),
        camera: new ArduCamPart(),
    }
}
