// `robot doctor`: bring-up checks for a real board (or the simulator), one step at a time, each
// answered PASS, FAIL (with what to check) or SKIP (with why). It uses ordinary services: the
// robot's own (`get_state`, `take_picture`, `set_pan`, `drive`, `stop`) and `diagnose`
// (robot_interfaces/srv/Diagnose), which reads registers and a frame on the device. The steps a
// register cannot prove ask the person at the robot: did the wheel turn each way, is the LED on,
// press the button. When the robot has MQTT settings (MQTT_URL, ROBOT_NAME in .env.defaults or
// .env.local, what devtools deploys), a step reaches it through that broker too.
//
// runDoctor() takes a connected node, so the tests run the very same steps against the simulated
// robot (test/host/robot_doctor.test.ts); the command adds the link (--serial, --devtools).
import * as fs from "node:fs"
import * as path from "node:path"
import type { Command } from "commander"
import * as jpeg from "jpeg-js"
import type { RobotNode, ServiceInfo } from "../client/api"
import type { DeviceLimits } from "../client/node"
import { ServiceError } from "../client/errors"
import { Diagnose, Drive, GetState, SetBool, SetPan, TakePicture, Trigger } from "../gen/interfaces"
import { projectCallTypes } from "./types"
import { ARCHS, validateBoardFile } from "../sim/boardcheck"

export type Verdict = "PASS" | "FAIL" | "SKIP"

export interface StepResult {
  step: string
  verdict: Verdict
  /** what was measured */
  detail: string
  /** FAIL: what to check */
  hint?: string
}

export interface DoctorOptions {
  /** Board file for the PWM budget (default boards/<devs.json board>.board.json). */
  boardFile?: string
  /**
   * Asks the person at the robot a yes/no question: before the wheels turn (not with `yes`), and
   * whether the LED is on, then off. Without it nobody is there: the LED step checks the register
   * only and the button step is skipped. It resolves undefined when nobody can answer any more
   * (standard input at its end): that question is a no, and nobody is asked again.
   */
  confirm?: (question: string) => Promise<boolean | undefined>
  /** Skip the question before the motors run. */
  yes?: boolean
  /** How long the button step waits for a press, in ms (default 15000). */
  buttonTimeoutMs?: number
  /**
   * The robot's MQTT settings (see `mqttSettingsFromEnvFiles`): the WiFi/MQTT step reaches the robot
   * through this broker, as a host, within `timeoutMs` (default 20000). Unset: that step is skipped.
   */
  mqtt?: DoctorMqtt
  /** This run's link is MQTT already: the WiFi/MQTT step says so instead of connecting again. */
  linkIsMqtt?: boolean
  /** Prints each result as it is known (default console.log). */
  print?: (line: string) => void
  /** Per-call timeout in ms (default 15000). */
  timeoutMs?: number
  /** What to check when the link step fails (default: the serial port and the firmware). */
  linkHint?: string
}

/** Where the WiFi/MQTT step finds the robot: its broker, its name, the host's credentials there. */
export interface DoctorMqtt {
  url: string
  robot: string
  username?: string
  password?: string
  timeoutMs?: number
}

/**
 * The robot's MQTT settings as devtools deploys them: `.env.defaults`, then `.env.local` (later
 * wins), KEY=VALUE lines, `#` comments, values as JSON text (`"robot1"`) or raw. Returns the URL
 * and ROBOT_NAME when both are set, else undefined (no MQTT_URL: the robot serves Jacdac only;
 * no ROBOT_NAME: its name is its device id, which this step does not know).
 */
export function mqttSettingsFromEnvFiles(dir: string): { url: string; robot: string } | undefined {
  const env: Record<string, string> = {}
  for (const f of [".env.defaults", ".env.local"]) {
    let text: string
    try {
      text = fs.readFileSync(path.join(dir, f), "utf8")
    } catch {
      continue
    }
    for (const line of text.split(/\r?\n/)) {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line)
      if (!m) continue
      let v = m[2]!
      if (v.startsWith('"')) {
        try {
          v = String(JSON.parse(v))
        } catch {
          // raw text that happens to start with a quote
        }
      }
      env[m[1]!] = v
    }
  }
  return env.MQTT_URL && env.ROBOT_NAME ? { url: env.MQTT_URL, robot: env.ROBOT_NAME } : undefined
}

/** Adler-32 of `data` (the same sum `diagnose` computes on the device). */
export function adler32(data: Uint8Array): number {
  let a = 1
  let b = 0
  for (const x of data) {
    a = (a + x) % 65521
    b = (b + a) % 65521
  }
  return b * 65536 + a
}

const hex = (n: number, w = 2) => `0x${n.toString(16).padStart(w, "0")}`

/** A step's checks: throw `Fail` (or any error) to fail, return `skip(...)` to skip. */
class Fail extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message)
  }
}
const SKIP = Symbol("skip")
const skip = (why: string) => ({ [SKIP]: why })

/**
 * Runs every step against `node` and returns the results (also printed one by one). A step that
 * fails does not stop the next ones, except that without a link nothing else runs.
 */
export async function runDoctor(node: RobotNode, opts: DoctorOptions = {}): Promise<StepResult[]> {
  const print = opts.print ?? ((l: string) => console.log(l))
  const timeoutMs = opts.timeoutMs ?? 15000
  const results: StepResult[] = []
  const linkHint = opts.linkHint ?? "is the board flashed and running src/main.ts? Is the port right (robot doctor --serial /dev/ttyACM0)?"
  /** why the link went away during the run (a board unplugged or reset): the steps after it are not run */
  let linkLost: string | undefined
  const step = async (name: string, hintOnError: string, f: () => Promise<string | { [SKIP]: string }>) => {
    let r: StepResult
    if (linkLost) r = { step: name, verdict: "SKIP", detail: `not run: the link to the robot was lost (${linkLost})` }
    else
      try {
        const out = await f()
        r = typeof out === "string" ? { step: name, verdict: "PASS", detail: out } : { step: name, verdict: "SKIP", detail: out[SKIP] }
      } catch (e) {
        const err = e as Error
        // the link gone, not this step's part: say so, with what to check for the link, and stop asking the robot
        const gone = e instanceof ServiceError && e.code === "unavailable" && node.state !== "connected"
        if (gone) linkLost = err.message
        r = { step: name, verdict: "FAIL", detail: err.message, hint: gone ? linkHint : e instanceof Fail ? e.hint : hintOnError }
      }
    results.push(r)
    print(`${r.verdict}  ${r.step}: ${r.detail}`)
    if (r.hint) print(`      check: ${r.hint}`)
    return r
  }
  const call = <Req, Res>(type: Parameters<RobotNode["createClient"]>[0], name: string, req: Req) =>
    node.createClient(type as never, name).call(req as never, { timeoutMs }) as Promise<Res>
  // nobody answers once standard input has ended: no more questions
  let confirm = opts.confirm
  /** true or false, or undefined when nobody answered (and nobody is asked again) */
  const ask = async (question: string) => {
    const a = await confirm?.(question)
    if (a === undefined && confirm) {
      confirm = undefined
      print("      (no answer: standard input has ended, so no; nobody is asked again)")
    }
    return a
  }

  let services: ServiceInfo[] = []
  const link = await step("link and protocol", linkHint, async () => {
    services = await node.listServices({ timeoutMs })
    const limits = (node as { limits?: DeviceLimits }).limits
    if (!limits) throw new Fail("the device answered no protocol hello (limits unknown)", "the firmware's createService runtime is not running")
    return `protocol version ${limits.protocolVersion}, boot ${limits.bootId}, requests up to ${limits.maxRequestBytes} B, responses up to ${limits.maxResponseBytes} B, ${limits.maxInFlight} in flight`
  })
  if (link.verdict === "FAIL") return results
  /**
   * The steps that check this package's example robot (its camera, servo, motors, LED, button,
   * battery) call its services: a robot that does not serve them is not that robot, and the step
   * is skipped, not failed.
   */
  const missing = (...names: string[]) => {
    const absent = names.filter((n) => !services.some((s) => s.name === n))
    return absent.length ? skip(`the robot does not serve ${absent.join(", ")} (the example robot's; robot service list shows what it serves)`) : undefined
  }

  await step("services and type hashes", "regenerate and rebuild the firmware (`npx robot gen`, then `npx devicescript build`) and run or flash it again, so that both sides use the same interfaces", async () => {
    const bad: string[] = []
    // the example robot's firmware serves all of them: one missing there is a build without it
    const robotServices = ["/get_state", "/take_picture", "/set_pan", "/drive", "/stop", "/diagnose"]
    if (services.some((s) => s.name === "/get_state")) for (const want of robotServices) if (!services.some((s) => s.name === want)) bad.push(`${want} missing`)
    for (const s of services) {
      const d = projectCallTypes()[s.type]
      if (!d) bad.push(`${s.name}: type ${s.type} unknown to this project`)
      else if (d.hash32 !== s.hash32) bad.push(`${s.name}: type hash ${hex(s.hash32 >>> 0, 8)} on the robot, ${hex(d.hash32 >>> 0, 8)} here`)
    }
    if (bad.length) throw new Error(bad.join("; "))
    return `${services.length} services, every type hash matches`
  })

  let hw: { hardware: string; pwm_pins: number } = { hardware: "?", pwm_pins: 0 }
  await step("ArduChip and OV2640", "camera wiring: CS/SCK/MISO/MOSI (SPI) and SDA/SCL with pull-ups (I2C), camera supply 3.3-5 V", async () => {
    const absent = missing("/diagnose")
    if (absent) return absent
    const d = await call<unknown, { hardware: string; pwm_pins: number; arduchip_revision: number; sensor_id: number }>(Diagnose, "diagnose", { check: 0, chunk_size: 0 })
    hw = d
    if (d.hardware === "simulator") return skip("the simulator has no ArduChip or OV2640 registers (simulated camera)")
    if (d.sensor_id >> 8 !== 0x26) throw new Fail(`sensor id ${hex(d.sensor_id, 4)} is not an OV2640`, "I2C address 0x30, SDA/SCL pull-ups")
    return `SPI test register echoed 0x55/0xAA; ArduChip revision ${hex(d.arduchip_revision)}; OV2640 id ${hex(d.sensor_id, 4)}`
  })

  let picture: Uint8Array | undefined
  await step("one capture (160x120)", "camera supply and wiring; a timeout means the capture-done bit never set (is the sensor clocked?)", async () => {
    const absent = missing("/take_picture")
    if (absent) return absent
    const r = await call<unknown, { image: { data: Uint8Array; format: string }; width: number; height: number }>(TakePicture, "take_picture", { resolution: 0, quality: 0 })
    const data = r.image.data
    picture = data
    const first = Array.from(data.subarray(0, 2), (x) => hex(x)).join(" ")
    // The board's frame is what the FIFO length register counts: padding may follow FF D9.
    let end = -1
    for (let i = 1; i < data.length && end < 0; i++) if (data[i - 1] === 0xff && data[i] === 0xd9) end = i + 1
    if (first !== "0xff 0xd8" || end < 0)
      throw new Fail(
        `${data.length} bytes, first ${first}, ${end < 0 ? "no FF D9" : `FF D9 at byte ${end}`}: not a whole JPEG`,
        "no FF D8 at the start: the driver's dummy-byte detection (src/drivers/arducam.ts begin); no FF D9: a truncated FIFO read or a FIFO overflow",
      )
    let img: { width: number; height: number }
    try {
      img = jpeg.decode(data, { useTArray: true })
    } catch (e) {
      throw new Fail(`${data.length} bytes from FF D8 to FF D9 but jpeg-js cannot decode it: ${(e as Error).message}`, "the sensor's JPEG set-up (init tables)")
    }
    if (img.width !== 160 || img.height !== 120)
      throw new Fail(`decoded ${img.width}x${img.height}, asked 160x120`, "the size tables (zoom output registers 0x5A-0x5C)")
    const padding = data.length - end ? ` (${data.length - end} bytes of FIFO padding after it)` : ""
    return `starts ${first}, FF D9 at byte ${end} of ${data.length}${padding}, decoded on the host: ${img.width}x${img.height}`
  })

  await step("same frame in chunks and in one read", "SPI burst reads: the FIFO read pointer, the read-pointer reset of a re-read, transfers within 4096 bytes", async () => {
    const absent = missing("/diagnose")
    if (absent) return absent
    if (!picture) return skip("no picture from the previous step")
    const d = await call<unknown, { frame_length: number; sum_chunked: number; sum_whole: number }>(Diagnose, "diagnose", { check: 1, chunk_size: 200 })
    const host = adler32(picture)
    const text = `${d.frame_length} bytes; Adler-32 chunked ${hex(d.sum_chunked, 8)}, one read ${hex(d.sum_whole, 8)}, as received ${hex(host, 8)}`
    if (d.frame_length !== picture.length || d.sum_chunked !== host || d.sum_whole !== host) throw new Error(text)
    return text
  })

  await step("servo sweep", "servo signal on SERVO_PAN, servo supply (5 V buck, bulk capacitor), SERVO_MIN_US/SERVO_MAX_US", async () => {
    const absent = missing("/set_pan")
    if (absent) return absent
    const got: number[] = []
    for (const angle of [-45, 0, 45, 0]) {
      const r = await call<unknown, { angle: number }>(SetPan, "set_pan", { angle })
      if (Math.abs(r.angle - angle) > 1) throw new Error(`asked ${angle}°, the servo reports ${r.angle}°`)
      got.push(Math.round(r.angle))
    }
    return `-45°, 0°, 45°, 0°: the servo reported ${got.join("°, ")}° (watch it move: the report is the register, not the horn)`
  })

  const noMotors = missing("/drive", "/get_state", "/stop")
  // (nobody is asked to lift a robot that has no motors to run)
  const motorsOk = !noMotors && (opts.yes || (await ask("The wheels will turn for half a second each way, one wheel at a time. Lift the robot. Go on?")) === true)
  for (const side of ["left", "right"] as const) {
    await step(`motor ${side}`, `DRV8833 wiring (MOTOR_${side === "left" ? "L" : "R"}_PWM / _DIR), nSLEEP high, motor supply`, async () => {
      if (noMotors) return noMotors
      if (!motorsOk) return skip("not confirmed (answer y, or pass --yes)")
      const read: string[] = []
      try {
        for (const speed of [0.4, -0.4]) {
          await call(Drive, "drive", { left: side === "left" ? speed : 0, right: side === "right" ? speed : 0, duration_ms: 500 })
          const s = await call<unknown, { left_speed: number; right_speed: number }>(GetState, "get_state", {})
          const v = side === "left" ? s.left_speed : s.right_speed
          if (Math.abs(v - speed) > 0.01) throw new Error(`asked ${speed}, get_state reads ${v}`)
          read.push(`${speed > 0 ? "forwards" : "backwards"} at ${speed} (get_state read ${v.toFixed(3)})`)
          await new Promise((r) => setTimeout(r, 500))
        }
        return `ran ${read.join(", then ")} for 500 ms each; did the ${side} wheel turn forwards, then backwards?`
      } finally {
        await call(Trigger, "stop", {}).catch(() => undefined)
      }
    })
  }

  await step("status LED", "LED_STATUS (GPIO21) through 330R to GND, and the LED's polarity", async () => {
    const absent = missing("/set_led", "/get_state")
    if (absent) return absent
    let looked = 0
    const seen: string[] = []
    for (const on of [true, false]) {
      const r = await call<unknown, { success: boolean; message: string }>(SetBool, "set_led", { data: on })
      const s = await call<unknown, { led_on: boolean }>(GetState, "get_state", {})
      if (!r.success || s.led_on !== on) throw new Error(`asked ${on ? "on" : "off"}: set_led said "${r.message}", get_state led_on ${s.led_on}`)
      if (confirm) {
        const seenIt = await ask(`Is the status LED ${on ? "on" : "off"} now?`)
        // (no answer at all: nobody is there to look, and the registers are all this step has)
        if (seenIt === false) throw new Error(`the register says ${on ? "on" : "off"}, the LED was not seen ${on ? "on" : "off"}`)
        if (seenIt) looked++
      }
      seen.push(on ? "on" : "off")
    }
    return looked === 2 ? `switched on, then off, and seen both ways` : `switched on, then off (registers only: nobody was asked to look)`
  })

  await step("user button", "BUTTON (GPIO0, the DevKitC BOOT button) to GND; the internal pull-up", async () => {
    const absent = missing("/get_state")
    if (absent) return absent
    if (!confirm) return skip("nobody to press it (run robot doctor at the robot, with a terminal to answer in)")
    const pressed = async () => (await call<unknown, { button_pressed: boolean }>(GetState, "get_state", {})).button_pressed
    if (await pressed()) throw new Error("the button reads pressed before anyone was asked to press it (shorted to GND, or no pull-up?)")
    const waitMs = opts.buttonTimeoutMs ?? 15000
    print(`      Press the user button now (within ${waitMs / 1000} s).`)
    const t0 = Date.now()
    while (Date.now() - t0 < waitMs) {
      if (await pressed()) return `pressed after ${((Date.now() - t0) / 1000).toFixed(1)} s`
      await new Promise((r) => setTimeout(r, 100)) // get_state is a poll: the button has no event the host sees
    }
    throw new Error(`not pressed within ${waitMs / 1000} s (get_state button_pressed stayed false)`)
  })

  await step(
    "WiFi and MQTT",
    "WIFI_SSID/WIFI_PWD in .env.local (deployed with the program); MQTT_URL must be reachable from the robot's WiFi (not 127.0.0.1); MQTT_USER/MQTT_PASS as the broker knows them; mqtts needs a publicly trusted certificate on a DNS name; the robot's log says `mqtt: …` (@robot-services/device's README, \"The MQTT link\")",
    async () => {
      if (opts.linkIsMqtt) return "this run goes through MQTT already (the link step)"
      const m = opts.mqtt
      if (!m) return skip("no MQTT_URL and ROBOT_NAME settings (.env.defaults, .env.local): the robot serves Jacdac only")
      const timeout = m.timeoutMs ?? 20000
      const { connect } = require("../client/node") as typeof import("../client/node")
      const { mqttTransport } = require("../client/mqtt") as typeof import("../client/mqtt")
      const { displayUrl } = require("../client/mqttlink") as typeof import("../client/mqttlink")
      const where = `robot ${m.robot} did not answer through ${displayUrl(m.url)} within ${timeout / 1000} s`
      const t0 = Date.now()
      const n = (await connect({ transport: mqttTransport({ url: m.url, robot: m.robot, username: m.username, password: m.password, connectTimeoutMs: timeout }) })) as unknown as import("../client/mqtt").MqttNode & RobotNode
      try {
        let rtt = -1
        let last = ""
        while (rtt < 0 && Date.now() - t0 < timeout) {
          const e0 = Date.now()
          try {
            await n.echo(new Uint8Array([1, 2, 3, 4]), { timeoutMs: Math.max(500, Math.min(3000, timeout - (Date.now() - t0))) })
            rtt = Date.now() - e0
          } catch (e) {
            last = (e as Error).message
            await new Promise((r) => setTimeout(r, 250)) // the robot may still be connecting: its presence has no event here
          }
        }
        if (rtt < 0) throw new Error(`${where} (${last})`)
        const left = Math.max(1000, timeout - (Date.now() - t0))
        // a call through the broker too: the example robot's get_state, else the robot's own list
        if (missing("/get_state")) return `robot ${m.robot} answered through ${displayUrl(m.url)}: echo ${rtt} ms, ${(await n.listServices({ timeoutMs: left })).length} services listed`
        const s = await n.createClient(GetState as never, "get_state").call({} as never, { timeoutMs: left })
        return `robot ${m.robot} answered through ${displayUrl(m.url)}: echo ${rtt} ms, get_state uptime ${(s as { uptime_ms: number }).uptime_ms} ms`
      } finally {
        await n.close()
      }
    },
  )

  await step("battery", "BAT_SENSE divider (200k/100k) and BAT_SCALE; a 2S pack reads 6.6-8.4 V", async () => {
    const absent = missing("/get_state")
    if (absent) return absent
    const s = await call<unknown, { battery_voltage: number; battery_percentage: number }>(GetState, "get_state", {})
    const v = s.battery_voltage
    if (!(v >= 6.0 && v <= 8.8)) throw new Error(`${v.toFixed(2)} V is outside 6.0-8.8 V for a 2S pack`)
    return `${v.toFixed(2)} V (${s.battery_percentage.toFixed(0)} %)`
  })

  await step("PWM budget", "boards/*.board.json: at most 4 PWM pins on an ESP32 (docs/hardware.md, PWM budget)", async () => {
    // the budget is the example robot's motor and servo pins (its diagnose says how many it started)
    const absent = missing("/diagnose")
    if (absent) return absent
    const file = opts.boardFile ?? defaultBoardFile()
    const id = path.basename(file).replace(/\.board\.json$/, "")
    if (!opts.boardFile && !fs.existsSync(file) && builtInBoards(path.dirname(path.dirname(file))).includes(id))
      return skip(`${id} is one of DeviceScript's built-in boards (no ${path.relative(process.cwd(), file)} to check): pass --board <file> to check a board file`)
    const errs = validateBoardFile(file, { robot: true })
    if (errs.length) throw new Error(errs.join("; "))
    const arch = ARCHS[(JSON.parse(require("node:fs").readFileSync(file, "utf8")) as { archId: string }).archId]!
    if (hw.pwm_pins > arch.pwm) throw new Error(`the firmware started ${hw.pwm_pins} PWM pins, over ${arch.pwm}`)
    const onDevice = hw.hardware === "simulator" ? "the simulator has no LEDC limit" : `the firmware has started ${hw.pwm_pins} PWM pins so far`
    return `${path.basename(file)} fits ${arch.pwm} PWM timers; ${onDevice}`
  })
  return results
}

/** The ids of DeviceScript's built-in boards, as the project's @devicescript/core declares them (@dsboard/<id>); [] when it is not installed. */
function builtInBoards(project: string): string[] {
  try {
    const core = path.dirname(require.resolve("@devicescript/core/package.json", { paths: [project] }))
    const text = fs.readFileSync(path.join(core, "src", "devicescript-boards.d.ts"), "utf8")
    return Array.from(text.matchAll(/declare module "@dsboard\/([A-Za-z0-9_]+)"/g), (m) => m[1]!)
  } catch {
    return []
  }
}

function defaultBoardFile(): string {
  const { loadConfig } = require("../config") as typeof import("../config")
  const { config, dir } = loadConfig()
  return path.join(dir, "boards", `${config.board}.board.json`)
}

interface DoctorCliOptions {
  serial?: string | boolean
  devtools?: string | boolean
  mqtt?: string
  robot?: string
  yes?: boolean
  board?: string
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("bring-up checks for a robot, step by step: link, services, camera, capture, servo, motors both ways, LED, button, WiFi/MQTT, battery, PWM budget")
    .option("--serial [path]", "USB serial port of the board (first Jacdac port when no path)")
    .option("--devtools [url]", "devtools WebSocket (a board behind `devs devtools --serial`, or the simulator)")
    .option("--mqtt <url>", "the robot is on this MQTT broker (with --robot <name>; credentials in the URL or ROBOT_MQTT_USER/ROBOT_MQTT_PASSWORD)")
    .option("--robot <name>", "with --mqtt: the robot's name (its ROBOT_NAME setting)")
    .option("-y, --yes", "run the motors without asking first")
    .option("--board <file>", "board file for the PWM budget (default from devs.json)")
    .action(async (o: DoctorCliOptions) => {
      if (o.serial === undefined && o.devtools === undefined && o.mqtt === undefined) {
        console.error("robot doctor: say how to reach the robot: --serial [path], --devtools [url] or --mqtt <url> --robot <name>")
        process.exitCode = 2
        return
      }
      if ((o.mqtt === undefined) !== (o.robot === undefined)) {
        console.error("robot doctor: --mqtt <url> and --robot <name> go together")
        process.exitCode = 2
        return
      }
      const { connect } = require("../client/node") as typeof import("../client/node")
      let node: RobotNode
      let linkHint: string | undefined
      if (o.mqtt !== undefined) {
        const { mqttTransport } = require("../client/mqtt") as typeof import("../client/mqtt")
        const u = new URL(o.mqtt)
        const creds = u.username
          ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
          : { username: process.env.ROBOT_MQTT_USER || undefined, password: process.env.ROBOT_MQTT_PASSWORD || undefined }
        node = await connect({ transport: mqttTransport({ url: o.mqtt, robot: o.robot!, ...creds }) })
        linkHint = `is robot ${o.robot} on WiFi with MQTT_URL pointing at this broker (its settings, docs/mqtt.md)? \`robot service list --mqtt ${o.mqtt}\` lists the robots there`
      } else {
        node = (await (require("./link") as typeof import("./link")).connectLink(o)).node
      }
      try {
        // standard input at its end (`< /dev/null`, a closed pipe) answers nothing: undefined, taken as
        // no (runDoctor then asks nobody again)
        const confirm = async (q: string): Promise<boolean | undefined> => {
          const rl = (require("node:readline") as typeof import("node:readline")).createInterface({ input: process.stdin, output: process.stdout })
          try {
            return await new Promise<boolean | undefined>((resolve) => {
              let answered = false
              // (closed before an answer: the input ended; after one, it is this function's own close)
              rl.once("close", () => {
                if (answered) return
                resolve(undefined)
              })
              rl.question(`${q} [y/N] `, (a) => {
                answered = true
                resolve(/^y(es)?$/i.test(a.trim()))
              })
            })
          } finally {
            rl.close()
          }
        }
        const { loadConfig } = require("../config") as typeof import("../config")
        const settings = o.mqtt === undefined ? mqttSettingsFromEnvFiles(loadConfig().dir) : undefined
        const mqtt = settings && {
          ...settings,
          username: process.env.ROBOT_MQTT_USER || undefined,
          password: process.env.ROBOT_MQTT_PASSWORD || undefined,
        }
        const results = await runDoctor(node, { yes: o.yes, confirm, boardFile: o.board, linkHint, mqtt, linkIsMqtt: o.mqtt !== undefined })
        const failed = results.filter((r) => r.verdict === "FAIL").length
        console.log(failed ? `\n${failed} step(s) FAILED` : "\nall steps passed or were skipped")
        process.exitCode = failed ? 1 : 0
      } finally {
        await node.close()
      }
    })
}
