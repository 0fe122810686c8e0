// The robot's behaviour behind its services: argument checks with the documented messages,
// the drive timer that stops the motors by itself, call statistics, and the state read back
// from the hardware. It knows nothing about the wire: src/main.ts binds it to services.
import * as ds from "@devicescript/core"
import { RESOLUTION_COUNT } from "../drivers/arducam"
import { GoalHandle, ServiceError, Status } from "@robot-services/device"
import { Hardware, Picture, batteryPercent } from "./hardware"
import { calibration } from "./calibration"
import { Diagnose_Request, Drive_Request, Drive_Response, GetState_Response } from "../gen/interfaces"

// The robot's most used names, as statements that compile to no code, so that they take low string
// numbers (one or two bytes less at each use; see src/drivers/arducam.ts)
"resolution"; "quality"; "latest"; "serial"; "from_angle"; "pictures_taken"; "image"; "success"
"sum_whole"; "sum_chunked"; "frame_length"; "sensor_id"; "arduchip_revision"; "angle must be in"


// Limits, as the constants in services/robot_interfaces/srv/*.srv state them.
export const MIN_SPEED = -1
export const MAX_SPEED = 1
export const MIN_DURATION_MS = 1
export const MAX_DURATION_MS = 30000
export const MIN_ANGLE = -90
export const MAX_ANGLE = 90
export const MIN_QUALITY = 1
export const MAX_QUALITY = 100
export const DEFAULT_QUALITY = 80
/**
 * the names of the resolution indexes, as robot_interfaces/srv/TakePicture states them, in the
 * words the resolution check adds after its range (one literal: the compiler formats a template
 * of constants at run time)
 */
export const RESOLUTION_NAMES = " (RES_QQVGA..RES_UXGA)"

function badArg(msg: string): never {
    throw new ServiceError(Status.InvalidArgument, msg)
}

/**
 * Throws InvalidArgument unless `v` is a number in [lo, hi] (a whole number when `int`), with the
 * message `<what> [lo, hi]<unit>, got v` (e.g. "angle must be in [-90, 90] degrees, got 120"). One
 * checker with the message's words as arguments, not a function per field: each of those cost
 * about 55 bytes of code (strings are data, not code).
 */
export function checkRange(v: number, lo: number, hi: number, int: boolean, what: string, unit: string) {
    if (typeof v !== "number" || isNaN(v) || v < lo || v > hi || (int && Math.round(v) !== v))
        badArg(`${what} [${lo}, ${hi}]${unit}, got ${v}`)
}

/** The state GetState reports: the generated response type of robot_interfaces/srv/GetState. */
export type RobotState = GetState_Response

/**
 * Adler-32 state [a, b] advanced over `data` (for `diagnose`); the sum is b * 65536 + a. Yields
 * every 256 bytes: a 4.6 KB loop without a yield tripped the VM's watchdog (InfiniteLoop).
 */
async function adler(st: number[], data: Buffer) {
    for (let i = 0; i < data.length; i++) {
        st[0] = (st[0] + data[i]) % 65521
        st[1] = (st[1] + st[0]) % 65521
        if ((i & 255) === 255) await ds.sleep(0)
    }
}

/** Largest picture `diagnose` reads in one piece (it must fit in the heap). */
export const WHOLE_READ_MAX = 32768

// The robot's state: one robot per program, module state and functions, not a class (every
// method cost a prototype entry and `this.x` a byte more than a module variable). `initRobot`
// starts it on its parts (again, for the tests: each test starts a fresh robot).
let hw: Hardware
/** the last picture taken, for `diagnose` (stays readable until the next capture) */
let lastPicture: Picture
// (no initializers: initRobot sets them before anything reads them; an initializer is code)
let callsServed: number
let callsFailed: number
let lastError: string
/** millis() at which the running drive stops; 0 when not driving. */
let driveUntil: number
let driveGeneration = 0
/**
 * The fiber that stops the motors at `driveUntil` (one for the program, woken by each drive: a
 * timer per drive would bring DeviceScript's timer queue into the image, about 800 bytes)
 */
let driveWatch: ds.Fiber

/** Starts the robot on `parts`: statistics from zero, no drive running. */
export function initRobot(parts: Hardware) {
    hw = parts
    lastPicture = undefined
    callsServed = callsFailed = 0
    lastError = ""
    cancelDrive()
    if (!driveWatch) driveWatch = watchDrive.start()
}

/** Stops the motors when the running drive's time is up (the fiber `driveWatch`). */
async function watchDrive() {
    while (true) {
        const until = driveUntil
        const left = until - ds.millis()
        if (until > 0 && left <= 0) {
            try {
                // (it sets driveUntil to 0 first: a failure is not retried in a loop)
                await setMotors(0, 0)
            } catch (e: any) {
                // Never let an exception escape: it would end the fiber, and no drive would stop again.
                lastError = "drive timeout could not stop the motors: " + e.message
                console.log(lastError)
            }
        } else await ds.suspend(until > 0 ? left : 3600000)
    }
}

/**
 * Runs `f(req)` and counts its outcome (calls served, failed, last error). Errors are rethrown
 * unchanged: the service runtime answers a ServiceError with its code, anything else Internal
 * with its message.
 */
export async function counted<Q, T>(f: (req: Q) => Promise<T>, req: Q): Promise<T> {
    try {
        const r = await f(req)
        callsServed++
        return r
    } catch (e: any) {
        callsFailed++
        lastError = "" + (e && e.message !== undefined ? e.message : e)
        throw e
    }
}

export async function state(): Promise<RobotState> {
    const now = ds.millis()
    const volts = await hw.battery.read()
    return {
        uptime_ms: Math.floor(now),
        battery_voltage: volts,
        battery_percentage: batteryPercent(volts),
        left_speed: await hw.motorLeft.read(),
        right_speed: await hw.motorRight.read(),
        drive_remaining_ms: driveUntil > now ? Math.ceil(driveUntil - now) : 0,
        pan_angle: await hw.servo.read(),
        led_on: (await hw.led.read()) > 0,
        button_pressed: (await hw.userButton.read()) > 0.5,
        free_heap: 0,
        calls_served: callsServed,
        calls_failed: callsFailed,
        last_error: lastError,
    }
}

/** Drives for the request's `duration_ms`; answers the uptime at which the motors stop (the service's handler itself). */
export async function drive(req: Drive_Request): Promise<Drive_Response> {
    const left = req.left
    const right = req.right
    const durationMs = req.duration_ms
    checkRange(left, MIN_SPEED, MAX_SPEED, false, "left must be in", "")
    checkRange(right, MIN_SPEED, MAX_SPEED, false, "right must be in", "")
    checkRange(durationMs, MIN_DURATION_MS, MAX_DURATION_MS, true, "duration_ms must be in", "")
    const gen = cancelDrive()
    await setMotors(left, right)
    // (another drive, stop or action may have taken over while the motors were set)
    if (gen === driveGeneration) {
        driveUntil = ds.millis() + durationMs
        if (driveWatch.suspended) driveWatch.resume(null)
    }
    return { stop_at_ms: Math.floor(driveUntil) }
}

/** Stops the motors now (and the drive timer). */
export async function stop() {
    cancelDrive()
    await setMotors(0, 0)
}

/**
 * drive_distance and rotate (robot_interfaces/action/DriveDistance, Rotate): runs the wheels at
 * `speed` (0: `dflt`) until the encoders say `target` units are done (metres driving, degrees
 * turning: `turn`), with feedback every 100 ms, the units done and left in its fields `doneName` and
 * `leftName`; returns the units done. A
 * negative target drives backwards or turns clockwise. The motors stop however it ends; a newer
 * drive, rotate or drive_distance takes over the motors and ends this goal aborted.
 */
export async function move(target: number, speed: number, dflt: number, lim: number, turn: boolean, h: GoalHandle<any, any>, doneName: string, leftName: string): Promise<number> {
    checkRange(target, -lim, lim, false, turn ? "angle must be in" : "distance must be in", "")
    checkRange(speed, 0, MAX_SPEED, false, "speed must be in", "")
    const dir = target < 0 ? -1 : 1
    // (not `speed || dflt`: DeviceScript takes a number that is not a whole int32 for false)
    const v = (speed > 0 ? speed : dflt) * dir
    // metres per encoder click; a turn's degrees per metre of (right - left) / 2 wheel travel
    const m = (Math.PI * calibration.wheelMm) / 1000 / calibration.encoderClicks
    const k = turn ? 360000 / (Math.PI * calibration.trackMm) : 1
    const gen = cancelDrive()
    const l0 = await hw.encoderLeft.read()
    const r0 = await hw.encoderRight.read()
    await setMotors(turn ? -v : v, v)
    let done = 0
    let next = 0
    // (the encoders stream while the wheels turn, 255 reports of 50 ms asked again every 5 s: a read
    // of one that does not stream gives the runtime's cached value, up to 500 ms old, and a turn of
    // 90 degrees at 108 degrees/s reported 0 turned for 400 ms, then stopped at 117. A move that
    // ends by itself stops them; a cancelled or replaced one leaves the reports to run out, 12.75 s
    // at most. Calls made during a move took as long as idle ones: 20.0 ms p50 on Jacdac)
    let more = 0
    try {
        while (!h.cancelled) {
            if (ds.millis() >= more) {
                await hw.streamEncoders(255)
                more = ds.millis() + 5000
            }
            if (gen !== driveGeneration) badArg("another drive, rotate or drive_distance took over the motors")
            const dl = ((await hw.encoderLeft.read()) - l0) * m
            const dr = ((await hw.encoderRight.read()) - r0) * m
            done = (turn ? (dr - dl) / 2 : (dl + dr) / 2) * k * dir
            if (done >= target * dir) break
            if (ds.millis() >= next) {
                const f: any = {}
                f[doneName] = done * dir
                f[leftName] = (target * dir - done) * dir
                h.feedback(f)
                next = ds.millis() + 100
            }
            // the encoders stream their position every 50 ms: reading them faster only fills the
            // bus, and a cancel's motor writes then wait behind the reads (bench/actions.ts)
            await ds.sleep(50)
        }
    } finally {
        if (gen === driveGeneration) {
            await stop()
            await hw.streamEncoders(0)
        }
    }
    return done * dir
}

export async function setPan(angle: number): Promise<number> {
    checkRange(angle, MIN_ANGLE, MAX_ANGLE, false, "angle must be in", " degrees")
    await hw.servo.write(angle)
    return await hw.servo.read()
}

export async function setLed(on: boolean): Promise<boolean> {
    await hw.led.write(on ? 1 : 0)
    return (await hw.led.read()) > 0
}

export async function takePicture(resolution: number, quality: number): Promise<Picture> {
    checkRange(resolution, 0, RESOLUTION_COUNT - 1, true, "resolution must be in", RESOLUTION_NAMES)
    // 0 means DEFAULT_QUALITY
    if (quality !== 0) checkRange(quality, MIN_QUALITY, MAX_QUALITY, true, "quality must be 0 (default) or in", "")
    lastPicture = await hw.camera.capture(resolution, quality !== 0 ? quality : DEFAULT_QUALITY)
    return lastPicture
}

/**
 * `robot doctor`'s device side (robot_interfaces/srv/Diagnose): check 0 identifies the
 * hardware, check 1 reads the last picture in `chunk`-byte reads and in one read and returns
 * an Adler-32 of each. Throws InvalidArgument on a bad check or chunk size, or when there is no
 * picture yet or it is too large for one read. Takes the request itself: the service's handler,
 * with no closure to unpack it.
 */
export async function diagnose(req: Diagnose_Request) {
    const check = req.check
    const chunk = req.chunk_size
    const r = {
        hardware: hw.kind,
        pwm_pins: hw.pwmPins,
        arduchip_revision: 0,
        sensor_id: 0,
        frame_length: 0,
        sum_chunked: 0,
        sum_whole: 0,
    }
    if (check === 0) {
        const id = await hw.camera.probe()
        r.arduchip_revision = id[0]
        r.sensor_id = id[1]
        return r
    }
    if (check !== 1) badArg(`check must be 0 (CHECK_HARDWARE) or 1 (CHECK_FRAME), got ${check}`)
    checkRange(chunk, 1, 4096, false, "chunk_size must be in", "")
    const src = lastPicture ? lastPicture.jpeg : undefined
    if (!src) badArg("no picture yet: call /take_picture first")
    if (src.length > WHOLE_READ_MAX)
        badArg(`the last picture is ${src.length} bytes, over ${WHOLE_READ_MAX} for one read: take it at RES_QQVGA`)
    r.frame_length = src.length
    const st = [1, 0]
    for (let off = 0; off < src.length; off += chunk) await adler(st, await src.read(off, Math.min(chunk, src.length - off)))
    r.sum_chunked = st[1] * 65536 + st[0]
    st[0] = 1
    st[1] = 0
    await adler(st, await src.read(0, src.length))
    r.sum_whole = st[1] * 65536 + st[0]
    return r
}

/** Ends the running drive's time (the motors keep their speed); returns the new drive generation. */
function cancelDrive() {
    driveUntil = 0
    return ++driveGeneration
}

/** Sets both wheels (0, 0: stopped, and no drive running) */
async function setMotors(left: number, right: number) {
    if (left === 0 && right === 0) driveUntil = 0
    await hw.motorLeft.write(left)
    await hw.motorRight.write(right)
}
