// Checks DeviceScript board files (`boards/*.board.json`) offline.
//
// The board's `$schema` (devicescript-esp32's esp32deviceconfig.schema.json) lives on the internet
// and is not reachable from CI, so the rules that matter are written down here: the keys the
// DeviceScript build and runtime need (see `DeviceHardwareInfo` and the `*Config` interfaces in
// node_modules/@devicescript/core/src/devicescript-servers.d.ts), the GPIO capabilities of each
// chip (the arch table shipped in @devicescript/cli), no GPIO used for two functions, and the
// parts the robot firmware (src/robot/board.ts) expects, and each chip's PWM budget. Every message
// starts with the file name.
import * as fs from "node:fs"
import * as path from "node:path"

/** Schemas a board file may name in `$schema`, by the chip family they describe. */
export const BOARD_SCHEMAS: Record<string, string> = {
  esp32: "https://raw.githubusercontent.com/microsoft/devicescript-esp32/main/boards/esp32deviceconfig.schema.json",
  rp2040: "https://raw.githubusercontent.com/microsoft/devicescript-pico/main/boards/rp2040deviceconfig.schema.json",
}

interface ArchPins {
  schema: keyof typeof BOARD_SCHEMAS
  /** GPIOs usable as general I/O */
  io: string
  /** GPIOs with an ADC usable while WiFi runs */
  analogIn: string
  /** GPIOs that must never be assigned (flash, PSRAM, native USB) */
  reserved: string
  /**
   * PWM pins the runtime can run at once. devicescript-esp32 `main/led.c` `jd_pwm_init` gives every
   * PWM pin its own LEDC low-speed timer, never freed; there are LEDC_TIMER_MAX = 4 on every ESP32
   * variant, and the fifth pin prints "! out of LEDC timers" and panics the board.
   */
  pwm: number
}

/** Pin capabilities per DeviceScript arch id (from the arch table in @devicescript/cli 2.16.4). */
export const ARCHS: Record<string, ArchPins> = {
  esp32: { schema: "esp32", io: "0,2,4,5,12-15,18,19,21-23,25-27,32-39", analogIn: "32-39", reserved: "6-11,16,17", pwm: 4 },
  esp32c3: { schema: "esp32", io: "0-10,20,21", analogIn: "0-4", reserved: "11-19", pwm: 4 },
  esp32s2: { schema: "esp32", io: "0-18,21,33-46", analogIn: "1-10", reserved: "19,20,26-32", pwm: 4 },
  // S3: 26-32 are the SPI flash/PSRAM pins of every module; 33-37 carry the octal flash/PSRAM of the
  // N8R8/N16R8 (and other octal) modules, so a board file that might meet one of those never uses them.
  esp32s3: { schema: "esp32", io: "0-18,21,33-48", analogIn: "1-10", reserved: "19,20,26-37", pwm: 4 },
  // RP2040: 8 PWM slices of 2 channels; the pico runtime's allocation was not reviewed, so this
  // only bounds the hardware.
  rp2040: { schema: "rp2040", io: "0-29", analogIn: "26-29", reserved: "", pwm: 16 },
}

/** Parses "0-3,7" into a set of numbers. */
export function pinSet(spec: string): Set<number> {
  const out = new Set<number>()
  for (const part of spec.split(",")) {
    if (!part.trim()) continue
    const [a, b] = part.split("-").map((s) => Number.parseInt(s, 10))
    if (a === undefined || Number.isNaN(a)) throw new Error(`bad pin range '${part}'`)
    for (let i = a; i <= (b ?? a); i++) out.add(i)
  }
  return out
}

/** Pin-valued keys of each service config (devicescript-servers.d.ts): required ones first. */
const SERVICE_PINS: Record<string, { required: string[]; optional: string[] }> = {
  motor: { required: ["pin1"], optional: ["pin2", "pinEnable"] },
  servo: { required: ["pin"], optional: ["powerPin"] },
  button: { required: ["pin"], optional: ["pinBacklight"] },
  lightBulb: { required: ["pin"], optional: [] },
  relay: { required: ["pin"], optional: ["pinFeedback", "pinLed"] },
  buzzer: { required: ["pin"], optional: [] },
  potentiometer: { required: ["pin"], optional: [] },
  switch: { required: ["pin"], optional: [] },
  rotaryEncoder: { required: ["pin0", "pin1"], optional: [] },
}

/**
 * PWM pins a `$services` entry really takes on the runtime (each one LEDC timer on an ESP32):
 * - motor: 2, whatever its pins: jacdac-c `motor.c` starts PWM on pin1 AND pin2 when it powers up,
 *   and with no pin2 it calls `jd_pwm_init(NO_PIN)`, which still takes a timer (one that the next
 *   PWM pin is then given too);
 * - servo: 1; buzzer: 1; lightBulb: 1 only with `dimmable: true` (otherwise a plain GPIO).
 * Returns the pin keys that run PWM.
 */
export function pwmKeys(kind: string, s: Json): string[] {
  if (kind === "motor") return ["pin1", s.pin2 === undefined ? "pin2 (absent: jd_pwm_init(NO_PIN) still takes a timer)" : "pin2"]
  if (kind === "servo" || kind === "buzzer") return ["pin"]
  if (kind === "lightBulb" && s.dimmable === true) return ["pin"]
  return []
}

/**
 * What src/robot/board.ts starts or reads; a robot board that lacks one fails at run time.
 * Motors are dimmable light bulbs (PWM duty on IN1) plus a direction GPIO on IN2 that the firmware
 * writes: one LEDC timer per motor instead of two (docs/hardware.md, "PWM budget").
 */
export const ROBOT_REQUIRED = {
  services: {
    motorLeft: "lightBulb",
    motorRight: "lightBulb",
    servoPan: "servo",
    ledStatus: "lightBulb",
    buttonUser: "button",
    encoderLeft: "rotaryEncoder",
    encoderRight: "rotaryEncoder",
  },
  /** light bulbs that must be dimmable (they carry the motors' PWM) */
  dimmable: ["motorLeft", "motorRight"],
  pins: ["BAT_SENSE", "CAM_CS", "CAM_SCK", "CAM_MISO", "CAM_MOSI", "MOTOR_L_DIR", "MOTOR_R_DIR"],
  /** pin labels the firmware itself starts PWM on (none: its PWM goes through $services) */
  scriptPwm: [] as string[],
  i2c: true,
} as const

type Json = Record<string, unknown>

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v)
}

/**
 * Validates one board file; returns the list of problems (empty when the board is fine), each
 * prefixed with the file's base name. `robot` adds the checks for the robot firmware's parts.
 */
export function validateBoardFile(file: string, opts: { robot?: boolean; scriptPwm?: string[] } = {}): string[] {
  const name = path.basename(file)
  const errs: string[] = []
  const err = (msg: string) => errs.push(`${name}: ${msg}`)
  let cfg: unknown
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    return [(e as NodeJS.ErrnoException).code === "ENOENT" ? `${name}: not found (${file})` : `${name}: cannot be read: ${(e as Error).message}`]
  }
  try {
    cfg = JSON.parse(text)
  } catch (e) {
    return [`${name}: not valid JSON: ${(e as Error).message}`]
  }
  if (!isObj(cfg)) return [`${name}: top level must be an object`]

  const id = name.replace(/\.board\.json$/, "")
  if (!/^[a-z][a-z0-9_]*$/.test(id)) err(`board id '${id}' must be lower_snake_case (it becomes @dsboard/${id})`)

  for (const key of ["$schema", "devName", "productId", "archId"]) {
    if (typeof cfg[key] !== "string" || !(cfg[key] as string).trim()) err(`missing required key '${key}' (a string)`)
  }
  const archId = cfg.archId as string
  const arch = ARCHS[archId]
  if (typeof archId === "string" && !arch) err(`unknown archId '${archId}' (known: ${Object.keys(ARCHS).join(", ")})`)
  if (arch && typeof cfg.$schema === "string" && cfg.$schema !== BOARD_SCHEMAS[arch.schema])
    err(`$schema must be ${BOARD_SCHEMAS[arch.schema]} for archId '${archId}', got ${cfg.$schema}`)
  if (typeof cfg.productId === "string" && !/^0x3[0-9a-f]{7}$/i.test(cfg.productId))
    err(`productId '${cfg.productId}' must be a 32-bit hex number starting with 0x3`)

  // Pin labels.
  const labels = new Map<string, number>()
  if (!isObj(cfg.pins)) err("missing required key 'pins' (label -> GPIO number)")
  else {
    for (const [label, v] of Object.entries(cfg.pins)) {
      if (label.startsWith("#")) continue
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
        err(`pins.${label} must be a GPIO number, got ${JSON.stringify(v)}`)
        continue
      }
      labels.set(label, v)
    }
  }
  const io = arch ? pinSet(arch.io) : undefined
  const reserved = arch ? pinSet(arch.reserved) : undefined
  const labelOf = new Map<number, string>()
  for (const [label, gpio] of labels) {
    const prev = labelOf.get(gpio)
    if (prev !== undefined) err(`GPIO${gpio} has two labels: ${prev} and ${label}`)
    else labelOf.set(gpio, label)
    if (reserved?.has(gpio)) err(`pins.${label}: GPIO${gpio} is reserved on ${archId} (flash, PSRAM or native USB)`)
    else if (io && !io.has(gpio)) err(`pins.${label}: GPIO${gpio} is not a usable I/O pin on ${archId}`)
  }

  // Every place a pin is used, resolved to a GPIO number; no GPIO may serve two functions.
  const users = new Map<number, string>()
  const use = (where: string, v: unknown, required: boolean) => {
    if (v === undefined) {
      if (required) err(`${where} is required`)
      return
    }
    let gpio: number | undefined
    if (typeof v === "number" && Number.isInteger(v)) {
      gpio = v
      const label = labelOf.get(v)
      // The DeviceScript build refuses a GPIO that is both labelled and used by number.
      if (label !== undefined && !where.startsWith("pins."))
        err(`${where}: GPIO${v} is labelled ${label} in pins; refer to it as "${label}"`)
    }
    else if (typeof v === "string") {
      gpio = labels.get(v)
      if (gpio === undefined) return err(`${where}: '${v}' is not a label in pins`)
    } else return err(`${where}: must be a GPIO number or a pin label, got ${JSON.stringify(v)}`)
    if (reserved?.has(gpio)) err(`${where}: GPIO${gpio} is reserved on ${archId}`)
    else if (io && !io.has(gpio)) err(`${where}: GPIO${gpio} is not a usable I/O pin on ${archId}`)
    const prev = users.get(gpio)
    if (prev) err(`GPIO${gpio} is used twice: by ${prev} and by ${where}`)
    else users.set(gpio, where)
  }
  /** every PWM pin the board will run: "$services.name.key (GPIOn)" */
  const pwm: string[] = []
  const gpioText = (v: unknown) => {
    const g = typeof v === "string" ? labels.get(v) : typeof v === "number" ? v : undefined
    return g === undefined ? "no pin" : `GPIO${g}`
  }
  if (cfg.log !== undefined) {
    if (!isObj(cfg.log)) err("log must be an object")
    else use("log.pinTX", cfg.log.pinTX, true)
  }
  if (cfg.i2c !== undefined) {
    if (!isObj(cfg.i2c)) err("i2c must be an object")
    else {
      use("i2c.pinSDA", cfg.i2c.pinSDA, true)
      use("i2c.pinSCL", cfg.i2c.pinSCL, true)
    }
  }
  if (cfg.led !== undefined) {
    if (!isObj(cfg.led)) err("led must be an object")
    else {
      use("led.pin", cfg.led.pin, false)
      // An RGB LED on three pins (`rgb`, type 0) runs PWM on each channel.
      if (Array.isArray(cfg.led.rgb))
        cfg.led.rgb.forEach((c: unknown, i: number) => pwm.push(`led.rgb[${i}] (${gpioText(isObj(c) ? c.pin : undefined)})`))
    }
  }
  const serviceNames = new Map<string, string>()
  if (cfg.$services !== undefined) {
    if (!Array.isArray(cfg.$services)) err("$services must be an array")
    else
      cfg.$services.forEach((s: unknown, i: number) => {
        if (!isObj(s)) return err(`$services[${i}] must be an object`)
        const kind = s.service
        const label = typeof s.name === "string" ? s.name : `#${i}`
        if (typeof kind !== "string") return err(`$services[${i}] (${label}): missing 'service'`)
        if (typeof s.name !== "string") err(`$services[${i}] (${kind}): missing 'name' (the role board.startX() creates)`)
        else if (serviceNames.has(s.name)) err(`$services: name '${s.name}' appears twice`)
        else serviceNames.set(s.name, kind)
        const pins = SERVICE_PINS[kind]
        if (!pins) return err(`$services[${i}] (${label}): unknown service '${kind}'`)
        for (const k of pins.required) use(`$services.${label}.${k}`, s[k], true)
        for (const k of pins.optional) use(`$services.${label}.${k}`, s[k], false)
        for (const k of pwmKeys(kind, s)) pwm.push(`$services.${label}.${k} (${gpioText(s[k.split(" ")[0]!])})`)
        if (kind === "servo" && typeof s.minAngle === "number" && typeof s.maxAngle === "number" && !(s.minAngle < s.maxAngle))
          err(`$services.${label}: minAngle must be below maxAngle`)
      })
  }

  if (opts.robot) {
    for (const [role, kind] of Object.entries(ROBOT_REQUIRED.services)) {
      const got = serviceNames.get(role)
      if (got === undefined) err(`robot board needs a '${kind}' service named '${role}' in $services`)
      else if (got !== kind) err(`$services.${role} must be a '${kind}', got '${got}'`)
    }
    for (const p of ROBOT_REQUIRED.pins) {
      const gpio = labels.get(p)
      if (gpio === undefined) {
        err(`robot board needs the pin label '${p}'`)
        continue
      }
      // Labels the firmware drives itself (not through a service) still count as used.
      use(`pins.${p}`, gpio, true)
    }
    const bat = labels.get("BAT_SENSE")
    if (bat !== undefined && arch && !pinSet(arch.analogIn).has(bat))
      err(`pins.BAT_SENSE: GPIO${bat} has no ADC usable with WiFi on ${archId} (use one of ${arch.analogIn})`)
    if (ROBOT_REQUIRED.i2c && !isObj(cfg.i2c)) err("robot board needs an 'i2c' section (camera sensor bus)")
    const services = Array.isArray(cfg.$services) ? (cfg.$services as unknown[]) : []
    for (const name of ROBOT_REQUIRED.dimmable) {
      const s = services.find((x) => isObj(x) && x.name === name) as Json | undefined
      if (s && s.service === "lightBulb" && s.dimmable !== true)
        err(`$services.${name} must be "dimmable": true (it carries the motor's PWM duty)`)
    }
  }
  const scriptPwm = opts.scriptPwm ?? (opts.robot ? ROBOT_REQUIRED.scriptPwm : [])
  for (const p of scriptPwm) pwm.push(`pins.${p} (${gpioText(p)}, PWM started by the firmware)`)
  if (arch && pwm.length > arch.pwm)
    err(
      `${pwm.length} PWM pins but ${archId} has ${arch.pwm} PWM (LEDC) timers: ${pwm.join(", ")}. ` +
        `The runtime gives each PWM pin its own timer and never frees it; pin ${arch.pwm + 1} panics the board ("! out of LEDC timers")`,
    )
  return errs
}
