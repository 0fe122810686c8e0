// The robot's parts, one interface each. Two implementations exist and one is picked at start
// (src/robot/select.ts): the board's own servers (src/robot/board.ts) and DeviceScript client
// roles bound to servers that the host simulates (src/robot/sim.ts). The robot's services
// (src/robot/robot.ts) only see these interfaces.
//
// Every getter reads the part (a register of its role, a pin), never a cached copy, so the
// state a caller sees is what the hardware reports. Every method may throw a ServiceError with
// Status.Unavailable when the part is not connected.
import { FrameSource } from "../drivers/arducam"

// The parts' method names, as statements that compile to no code, so that they take low string
// numbers (one or two bytes less at each call; see src/drivers/arducam.ts)
"capture"; "jpeg"; "pwm"; "reverse"; "dir"

/**
 * One part driven or read by a number: every part but the camera. One interface, two methods, for
 * all of them (a method per kind cost the simulated part seven more methods, about 280 bytes of code:
 * docs/benchmarks.md "Firmware code size"); a DeviceScript register (`ds.Register<number>`) is one.
 *   motor    write/read its speed, -1 (full reverse) .. 1 (full forward), 0 = stopped
 *   servo    the camera's pan angle in degrees (0 = straight ahead)
 *   LED      1 on, 0 off; reads its intensity (on: above 0)
 *   userButton  read: pressed above 0.5
 *   encoder  read: a wheel's quadrature encoder, clicks turned since start (forward: up),
 *            calibration.encoderClicks per turn
 *   battery  read: the terminal voltage in volts
 */
export interface Part {
    write(v: number): Promise<void>
    read(): Promise<number>
}

/** A part that is only read (button, encoder, battery). */
export interface InputPart {
    read(): Promise<number>
}

/** A picture: the JPEG as a FrameSource (a ByteSource), and its size in pixels. */
export interface Picture {
    jpeg: FrameSource
    width: number
    height: number
}

/** The camera. `resolution` is 0 .. RESOLUTION_COUNT - 1 (drivers/arducam.ts `frameSize`); `quality` is 1..100. */
export interface CameraPart {
    capture(resolution: number, quality: number): Promise<Picture>
    /**
     * Identity for `robot doctor`: [ArduChip revision (SPI register 0x40), OV2640 id (PIDH << 8 |
     * PIDL)] after the SPI test-register echo; throws naming the register that failed. The
     * simulated camera has no registers and answers [0, 0].
     */
    probe(): Promise<number[]>
}

/** All parts of the robot, and which implementation provides them. */
export interface Hardware {
    kind: string
    /** PWM pins the firmware started, all at start (0 in the simulator, which has no LEDC limit) */
    pwmPins: number
    motorLeft: Part
    motorRight: Part
    encoderLeft: InputPart
    encoderRight: InputPart
    servo: Part
    led: Part
    /** not `button`: any property of that name brings DeviceScript's `Gamepad.button`, compiled when a
     *  property of its name is used, and with it client registers and emitters (about 500 bytes) */
    userButton: InputPart
    battery: InputPart
    camera: CameraPart
    /**
     * Asks both encoders to report their position every 50 ms for `samples` reports (0: stop). A
     * read otherwise gives the runtime's cached value, refreshed at most every 500 ms.
     */
    streamEncoders(samples: number): Promise<void>
}

/** Battery pack: 2S Li-ion. Empty at 3.3 V per cell, full at 4.2 V per cell. */
export const BATTERY_EMPTY_V = 6.6
export const BATTERY_FULL_V = 8.4

/** Charge estimate 0..100 % from the pack voltage (linear between empty and full). */
export function batteryPercent(volts: number): number {
    const p = ((volts - BATTERY_EMPTY_V) / (BATTERY_FULL_V - BATTERY_EMPTY_V)) * 100
    return Math.max(0, Math.min(100, p))
}
