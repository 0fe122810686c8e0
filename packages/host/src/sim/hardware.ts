// Simulated robot hardware on the host: jacdac-ts servers for the parts the firmware's client
// roles bind to (src/robot/sim.ts), exposed as one Jacdac device on whatever bus it is attached
// to (the in-process rig, or the devtools WebSocket that the VS Code simulator uses).
//
// Parts, in the order the firmware's roles bind to them: left motor, right motor, pan servo,
// status LED (light bulb), user button, battery (DC voltage measurement) and the camera
// (packages/host/src/sim/camera.ts). The battery drains while the motors run.
import { jd, type JD } from "../transport/jacdac"
import { RobotCameraServer, SceneState } from "./camera"

/**
 * Wheels, as src/robot/calibration.ts assumes them: 65 mm wheels, 130 mm apart, encoders of 20
 * clicks per turn. At speed 1 a wheel turns at WHEEL_RPM (a TT gear motor at about 6 V).
 */
export const WHEEL_MM = 65
export const TRACK_MM = 130
export const ENCODER_CLICKS = 20
export const WHEEL_RPM = 180

/** Battery model: 2S Li-ion, as src/robot/hardware.ts assumes (empty 6.6 V, full 8.4 V). */
export const BATTERY_EMPTY_V = 6.6
export const BATTERY_FULL_V = 8.4

export interface SimulatedHardwareOptions {
  /** Initial charge 0..1 (default 0.9). */
  charge?: number
  /** Charge lost per second with both motors at full speed (default 0.01 = 1 %/s). */
  drainPerSecond?: number
  /** Charge lost per second at rest (default 0.0001). */
  idleDrainPerSecond?: number
  /** Battery and wheel model step in ms (default 50; the encoders advance each step). */
  tickMs?: number
  /** Clock of the battery model in ms (default Date.now); tests pass their own and call `advance()`. */
  clock?: () => number
  /** Jacdac device id of the hardware device (16 hex digits); random when not given. */
  deviceId?: string
}

/** A snapshot of the simulated parts, as the host sees them. */
export interface HardwareState extends SceneState {
  batteryVolts: number
  /** metres each wheel has rolled since start (forward positive): left, right */
  wheelMetres: [number, number]
  buttonPressed: boolean
  frames: number
}

export class SimulatedHardware {
  readonly motorLeft = new jd.MotorServer("left")
  readonly motorRight = new jd.MotorServer("right")
  /** the wheels' encoders: clicks turned, integrated from the motors' speeds each tick */
  readonly encoderLeft = new jd.RotaryEncoderServer()
  readonly encoderRight = new jd.RotaryEncoderServer()
  readonly servo = new jd.ServoServer({ minAngle: -90, maxAngle: 90, instanceName: "pan" })
  readonly led = new jd.JDServiceServer(jd.SRV_LIGHT_BULB, { instanceName: "status", intensityValues: [0] })
  readonly button = new jd.ButtonServer("user")
  readonly battery = new jd.SensorServer<[number]>(jd.SRV_DC_VOLTAGE_MEASUREMENT, {
    instanceName: "battery",
    readingValues: [BATTERY_FULL_V],
    streamingInterval: 100,
  })
  readonly camera: RobotCameraServer
  readonly provider: JD.JDServerServiceProvider
  private charge: number
  /** wheel turns so far (fractions kept: the encoders report whole clicks) */
  private turns = [0, 0]
  private readonly drain: number
  private readonly idleDrain: number
  private timer: ReturnType<typeof setInterval> | undefined
  private lastTick = 0
  private bus: JD.JDBus | undefined

  constructor(private readonly opts: SimulatedHardwareOptions = {}) {
    this.charge = opts.charge ?? 0.9
    this.drain = opts.drainPerSecond ?? 0.01
    this.idleDrain = opts.idleDrainPerSecond ?? 0.0001
    this.led.addRegister<[boolean]>(jd.LightBulbReg.Dimmable, [false])
    for (const e of [this.encoderLeft, this.encoderRight]) e.clicksPerTurn.setValues([ENCODER_CLICKS])
    this.battery.addRegister<[string]>(jd.DcVoltageMeasurementReg.MeasurementName, ["VBAT"])
    this.camera = new RobotCameraServer(() => this.state())
    this.updateBattery()
    this.provider = new jd.JDServerServiceProvider(
      "robot-hw",
      [this.motorLeft, this.motorRight, this.servo, this.led, this.button, this.battery, this.camera, this.encoderLeft, this.encoderRight],
      { deviceId: opts.deviceId, deviceDescription: "simulated robot hardware" },
    )
  }

  /** Voltage of the pack at the current charge (linear model). */
  voltage(): number {
    return BATTERY_EMPTY_V + (BATTERY_FULL_V - BATTERY_EMPTY_V) * this.charge
  }

  private motorSpeed(m: JD.MotorServer): number {
    const [enabled] = m.enabled.values()
    const [speed] = m.speed.values()
    return enabled ? speed : 0
  }

  state(): HardwareState {
    return {
      panAngle: this.servo.angle.values()[0],
      leftSpeed: this.motorSpeed(this.motorLeft),
      rightSpeed: this.motorSpeed(this.motorRight),
      ledOn: (this.led.register<[number]>(0x01).values()[0] ?? 0) > 0,
      batteryVolts: this.voltage(),
      wheelMetres: [(this.turns[0]! * Math.PI * WHEEL_MM) / 1000, (this.turns[1]! * Math.PI * WHEEL_MM) / 1000],
      charge: this.charge,
      buttonPressed: this.button.reading.values()[0] > 0.5,
      frames: this.camera.frames,
    }
  }

  private updateBattery() {
    this.battery.reading.setValues([this.voltage()])
  }

  /** Runs the battery model up to the clock's current time (the timer calls it every tickMs). */
  advance() {
    this.tick(Infinity)
  }

  /**
   * The longest time (ms) the timer's steps were apart: more than tickMs when this process was busy
   * elsewhere (a GC, a test's own work). The wheels do not jump over such a gap (see `tick`).
   */
  longestStepMs = 0

  /**
   * One step of the model. The wheels turn for at most `wheelCapS` of the time since the last
   * step: when this process stalls (the hub and the parts run in it), the simulated world waits
   * with it rather than jumping ahead at once, which the firmware would read as wheels that
   * turned a stall's worth between two of its encoder reads (a `rotate 90` once reported 117
   * degrees, 250 ms late at 108 degrees/s). A motor that really keeps turning while the firmware
   * is late is still modelled: the VM is another process, and its stalls do not stop these steps.
   */
  private tick(wheelCapS = (2 * (this.opts.tickMs ?? 50)) / 1000) {
    const now = (this.opts.clock ?? Date.now)()
    const dt = (now - this.lastTick) / 1000
    if (wheelCapS !== Infinity) this.longestStepMs = Math.max(this.longestStepMs, dt * 1000)
    this.lastTick = now
    const load = (Math.abs(this.motorSpeed(this.motorLeft)) + Math.abs(this.motorSpeed(this.motorRight))) / 2
    this.charge = Math.max(0, this.charge - dt * (this.idleDrain + this.drain * load))
    this.updateBattery()
    const speeds = [this.motorSpeed(this.motorLeft), this.motorSpeed(this.motorRight)]
    const encoders = [this.encoderLeft, this.encoderRight]
    for (let i = 0; i < 2; i++) {
      this.turns[i]! += (speeds[i]! * WHEEL_RPM * Math.min(dt, wheelCapS)) / 60
      encoders[i]!.reading.setValues([Math.round(this.turns[i]! * ENCODER_CLICKS)])
    }
  }

  /** Puts the hardware device on `bus` and starts the battery model. */
  attach(bus: JD.JDBus): this {
    if (this.bus) throw new Error("simulated hardware is already attached to a bus")
    this.bus = bus
    bus.addServiceProvider(this.provider)
    this.lastTick = (this.opts.clock ?? Date.now)()
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 50)
    this.timer.unref?.()
    return this
  }

  /** Removes the device from its bus and stops the battery model. */
  detach() {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    if (this.bus) this.bus.removeServiceProvider(this.provider)
    this.bus = undefined
  }

  /** Holds the user button down (true) or releases it (false). */
  async pressButton(down: boolean) {
    if (down) await this.button.down()
    else await this.button.up()
  }
}
