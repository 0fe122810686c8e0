// Real hardware on the robot_s3 board (boards/robot_s3.board.json): the board's own servers
// started with `board.startX()` (motor PWM, pan servo, LED, button), the motors' direction pins,
// the battery on an ADC pin, and the ArduCAM Mini through src/drivers/arducam.ts. Calibration
// comes from settings (calibration.ts). Only used on a board; it cannot be exercised in the
// simulator (see docs/hardware.md for what was checked how).
import * as ds from "@devicescript/core"
import { board, pins } from "@dsboard/robot_s3"
import { ArduCam, configure, frameSize, initCamera } from "../drivers/arducam"
import { Gpio, arduCamHardwareBus } from "../drivers/arducambus"
import { ServiceError, Status } from "@robot-services/device"
import { Hardware, Part, Picture } from "./hardware"
import { calibration, loadCalibration } from "./calibration"

/** PWM pins this firmware has started (each takes one of the S3's 4 LEDC timers for good). */
let pwmStarted = 0

/**
 * One DRV8833 channel from one PWM pin (IN1, a dimmable light bulb's duty) and one direction GPIO
 * (IN2). Forward: IN2 low, duty = speed. Reverse: IN2 high, duty inverted (1 - |speed|): IN1 low
 * with IN2 high drives backwards. Stop: IN2 low, duty 0 (coast). A change of direction writes duty 0
 * first, then the direction pin, then the new duty: the bridge never drives forwards from a reverse
 * duty; for one register write it may drive backwards at full duty (IN1 low, IN2 high), the way the
 * wheel turns or is asked to. The directions differ in their off phase: forward coasts (IN1 IN2 = 0 0),
 * reverse brakes (1 1), because IN2 has no PWM of its own (docs/hardware.md "Motors": the PWM
 * budget). Speeds are scaled by calibration.motorMax. Test: test/device/board_motor.test.ts.
 */
export class BoardMotor implements Part {
    private reverse = false
    constructor(private pwm: ds.LightBulb, private dir: Gpio) {
        dir.setMode(ds.GPIOMode.OutputLow)
        pwmStarted++
    }
    async write(speed: number) {
        const duty = Math.abs(speed) * calibration.motorMax
        const reverse = speed < 0
        if (reverse !== this.reverse) {
            await this.pwm.intensity.write(0)
            this.dir.setMode(reverse ? ds.GPIOMode.OutputHigh : ds.GPIOMode.OutputLow)
            this.reverse = reverse
        }
        await this.pwm.intensity.write(reverse ? 1 - duty : duty)
    }
    async read() {
        const d = await this.pwm.intensity.read()
        return this.reverse ? -(1 - d) / calibration.motorMax : d / calibration.motorMax
    }
}

/**
 * Starts the board's servers and returns the parts; calibration settings load in the background.
 * The LED, button and encoders are their roles' registers; the servo and the battery object literals
 * (smaller code than a class each), the camera too. The servo's pulse range comes from calibration, written before
 * its first angle.
 * The battery: the ADC reading (0..1) times calibration.batteryScale.
 */
export function startBoardHardware(): Hardware {
    loadCalibration.start()
    const motorLeft = new BoardMotor(board.startMotorLeft(), pins.MOTOR_L_DIR as any)
    const motorRight = new BoardMotor(board.startMotorRight(), pins.MOTOR_R_DIR as any)
    const servo = board.startServoPan()
    pwmStarted++
    let servoOn = false
    const led = board.startLedStatus()
    const button = board.startButtonUser()
    const encL = board.startEncoderLeft()
    const encR = board.startEncoderRight()
    const bat = pins.BAT_SENSE as any as Gpio
    bat.setMode(ds.GPIOMode.AnalogIn)
    // The ArduCAM, initialized on first use so that a missing camera does not stop the robot: an
    // object literal over closures (a class with its two private helpers cost 40 bytes more: every
    // method is a prototype entry), made here (a function of its own cost a header and a call).
    let cam: ArduCam
    let ready = false
    const driver = () => {
        if (!cam)
            cam = new ArduCam(arduCamHardwareBus({ cs: pins.CAM_CS, sck: pins.CAM_SCK, miso: pins.CAM_MISO, mosi: pins.CAM_MOSI }))
        return cam
    }
    function fail(e: any): never {
        if (e instanceof ServiceError) throw e
        ready = false
        throw new ServiceError(Status.Unavailable, "camera: " + e.message)
    }
    return {
        kind: "board robot_s3",
        pwmPins: pwmStarted,
        motorLeft,
        motorRight,
        // the board's registers are parts as they are
        encoderLeft: encL.reading,
        encoderRight: encR.reading,
        streamEncoders: async (n: number) => {
            await encL.streamingSamples.write(n)
            await encR.streamingSamples.write(n)
        },
        servo: {
            write: async (degrees: number) => {
                if (!servoOn) {
                    await servo.minPulse.write(calibration.servoMinUs)
                    await servo.maxPulse.write(calibration.servoMaxUs)
                    await servo.enabled.write(true)
                    servoOn = true
                }
                await servo.angle.write(degrees)
            },
            read: async () => await servo.angle.read(),
        },
        led: led.intensity,
        userButton: button.reading,
        battery: { read: async () => bat.value * calibration.batteryScale },
        camera: {
            capture: async (resolution: number, quality: number): Promise<Picture> => {
                try {
                    const c = driver()
                    if (!ready) {
                        await initCamera(c)
                        ready = true
                    }
                    await configure(c, resolution, quality)
                    const jpeg = await c.capture()
                    const wh = frameSize(resolution)
                    return { jpeg, width: wh[0], height: wh[1] }
                } catch (e: any) {
                    fail(e)
                }
            },
            probe: async () => {
                try {
                    return await driver().probe()
                } catch (e: any) {
                    fail(e)
                }
            },
        },
    }
}
