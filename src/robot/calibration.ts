// Per-robot calibration from DeviceScript settings (`.env.defaults`, overridden by `.env.local`
// or by settings written to the board), so that a robot is tuned without editing code. Each value
// falls back to the default below when the setting is missing or not a number. Documented in
// docs/hardware.md ("Calibration").
import { settingText } from "@robot-services/device/settings"

/** Calibration values, with the defaults used when a setting is missing. */
export const calibration = {
    /** SERVO_MIN_US: servo pulse (µs) at -90° (the board file's minPulse; 2500 = mounted reversed) */
    servoMinUs: 2500,
    /** SERVO_MAX_US: servo pulse (µs) at +90° */
    servoMaxUs: 500,
    /** BAT_SCALE: pack volts per unit of ADC reading (0..1): divider 3 x 3.1 V full scale */
    batteryScale: 9.3,
    /** MOTOR_MAX: largest PWM duty 0..1 at speed 1: 0.7 keeps a 2S pack (8.4 V) near 6 V on 3-6 V TT motors */
    motorMax: 0.7,
    /** WHEEL_MM: wheel diameter, mm (the TT motor's 65 mm wheel) */
    wheelMm: 65,
    /** TRACK_MM: distance between the two wheels' contact points, mm */
    trackMm: 130,
    /** ENC_CLICKS: encoder clicks per wheel turn */
    encoderClicks: 20,
}

/** The setting as JSON (as `readSetting` parses it), when it is a number in [lo, hi]; else `fallback`. */
async function num(key: string, fallback: number, lo: number, hi: number) {
    const t = await settingText(key)
    let v: any
    try {
        v = JSON.parse(t)
    } catch (e) {
        // unset or not JSON: the default
    }
    return typeof v === "number" && v >= lo && v <= hi ? v : fallback
}

/**
 * Reads the settings once; values outside their range are ignored (the default stays). Never
 * throws: a settings failure is logged and the defaults stay.
 */
export async function loadCalibration() {
    const c = calibration
    try {
        c.servoMinUs = await num("SERVO_MIN_US", c.servoMinUs, 400, 2600)
        c.servoMaxUs = await num("SERVO_MAX_US", c.servoMaxUs, 400, 2600)
        c.batteryScale = await num("BAT_SCALE", c.batteryScale, 1, 30)
        c.motorMax = await num("MOTOR_MAX", c.motorMax, 0.1, 1)
        c.wheelMm = await num("WHEEL_MM", c.wheelMm, 10, 300)
        c.trackMm = await num("TRACK_MM", c.trackMm, 30, 1000)
        c.encoderClicks = await num("ENC_CLICKS", c.encoderClicks, 1, 10000)
    } catch (e: any) {
        console.log("calibration: settings unreadable, defaults kept: " + e.message)
    }
    return c
}
