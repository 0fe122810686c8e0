// Shared by the MQTT tests: the embedded broker on a free loopback port, in-memory MQTT robots
// with test services, a real mosquitto with the config and ACL of docs/mqtt.md, and waits on
// events (never fixed sleeps).
import { spawn, execFileSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { MqttClient } from "mqtt"
import { AddTwoInts, SetBool, TakePicture, Trigger } from "../../packages/host/src/gen/interfaces"
import { ServiceError } from "../../packages/host/src/client/errors"
import type { NodeState, RobotNode } from "../../packages/host/src/client/api"
import { startBroker, type BrokerUser, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { MemoryRobot, type MemoryRobotOptions } from "../../packages/host/src/mqtt/memrobot"

export const ROOT = path.join(__dirname, "..", "..")
export const MOSQUITTO = "/usr/sbin/mosquitto"

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      const port = typeof a === "object" && a ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

/** Handlers a test can hold: `/slow` waits until released (or its signal aborts). */
export interface TestRobot {
  robot: MemoryRobot
  /** runs of `/count` (each answers its run number) */
  counted: number
  /** `/slow` calls started and not released yet */
  readonly slowStarted: number
  /** `/slow` handlers whose signal aborted (the caller cancelled, the deadline passed, the robot dropped the session) */
  slowAborted: number
  /** resolves when the next `/slow` call has started */
  nextSlow(): Promise<void>
  releaseSlow(): void
}

/**
 * A memory robot with `/add_two_ints`, `/fail` (Trigger: throws), `/count` (Trigger: its run
 * number), `/slow` (Trigger: waits until `releaseSlow`), `/set_led` (SetBool), `/take_picture`
 * (a `width`-sized byte picture, for responses larger than a frame).
 */
export async function startTestRobot(options: MemoryRobotOptions): Promise<TestRobot> {
  let slow: (() => void)[] = []
  let slowWaiters: (() => void)[] = []
  const t: TestRobot = {
    robot: undefined as unknown as MemoryRobot,
    counted: 0,
    slowAborted: 0,
    get slowStarted() {
      return slow.length
    },
    nextSlow: () => new Promise<void>((r) => slowWaiters.push(r)),
    releaseSlow() {
      const s = slow
      slow = []
      for (const f of s) f()
    },
  }
  t.robot = await MemoryRobot.start(options, (r) => {
    r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: BigInt.asIntN(64, q.a + q.b) }))
    r.addService(Trigger, "/fail", () => {
      throw new Error("the test handler always fails")
    })
    r.addService(Trigger, "/count", () => ({ success: true, message: String(++t.counted) }))
    r.addService(Trigger, "/slow", (_q, ctx) => {
      return new Promise((resolve, reject) => {
        slow.push(() => resolve({ success: true, message: "released" }))
        ctx.signal.addEventListener("abort", () => {
          t.slowAborted++
          reject(new ServiceError("cancelled", "aborted"))
        })
        const w = slowWaiters
        slowWaiters = []
        for (const f of w) f()
      })
    })
    r.addService(SetBool, "/set_led", (q) => ({ success: true, message: `led ${q.data ? "on" : "off"}` }))
    r.addService(TakePicture, "/take_picture", (q) => {
      const n = 1000 * (q.resolution + 1) * 25
      const data = new Uint8Array(n)
      for (let i = 0; i < n; i++) data[i] = (i * 7) & 255
      return { image: { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "camera" }, format: "raw", data }, width: 1000, height: n / 1000 }
    })
  })
  return t
}

/** Resolves when `node` reaches `state` (now or later); rejects after `timeoutMs`. */
export function waitForState(node: RobotNode, state: NodeState, timeoutMs = 15000): Promise<void> {
  if (node.state === state) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off()
      reject(new Error(`node still ${node.state} after ${timeoutMs} ms (waiting for ${state})`))
    }, timeoutMs)
    const off = node.onStateChange((s) => {
      if (s !== state) return
      clearTimeout(t)
      off()
      resolve()
    })
  })
}

/** Polls `f` on every event-loop turn set by `interval` (ms) until it is true; rejects after `timeoutMs`. */
export async function until(f: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The embedded broker on a free loopback port. */
export function embeddedBroker(options: { users?: BrokerUser[]; port?: number } = {}): Promise<EmbeddedBroker> {
  return startBroker({ host: "127.0.0.1", port: options.port ?? 0, users: options.users })
}

/**
 * The in-memory robot's own MQTT connection: what reaches the robot (its `message` events), and the
 * only client the broker lets publish as that robot (a misbehaving robot).
 */
export function robotClient(t: TestRobot | MemoryRobot): MqttClient {
  const r = t instanceof MemoryRobot ? t : t.robot
  const c = (r as unknown as { client: MqttClient | undefined }).client
  if (!c) throw new Error(`memory robot ${r.name} is not connected`)
  return c
}

/** A raw mqtt client (for misbehaving robots and hosts); resolves once connected. */
export function rawClient(url: string, options: { username?: string; password?: string; clientId?: string } = {}): Promise<MqttClient> {
  const mqtt = require("mqtt") as typeof import("mqtt")
  const c = mqtt.connect(url, { ...options, reconnectPeriod: 0, protocolVersion: 4 })
  return new Promise((resolve, reject) => {
    c.once("connect", () => resolve(c))
    c.once("error", (e) => {
      c.end(true)
      reject(e)
    })
  })
}

/** The fenced block after `<!-- name -->` in docs/mqtt.md (the docs are what the tests run). */
export function docBlock(name: string): string {
  const text = fs.readFileSync(path.join(ROOT, "docs", "mqtt.md"), "utf8")
  const m = new RegExp(`<!-- ${name} -->\\s*\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``).exec(text)
  if (!m) throw new Error(`docs/mqtt.md has no block marked <!-- ${name} -->`)
  return m[1]!
}

export interface Mosquitto {
  url: string
  port: number
  /** the broker's process id */
  pid: number
  log: string[]
  /** SIGKILL: no goodbye to any client, no wills sent */
  kill(): Promise<void>
  close(): Promise<void>
}

/**
 * The ACL file of docs/mqtt.md for these users: as written, plus, as the docs say, a copy of the
 * `user bridge` block for each further host user (role "host") with its name in place of `bridge`.
 */
export function mosquittoAcl(users: { name: string; role?: string }[]): string {
  const acl = docBlock("mosquitto-acl")
  const m = /^user bridge\n(?:topic .*\n)+/m.exec(acl)
  if (!m) throw new Error("docs/mqtt.md: the mosquitto ACL has no `user bridge` block of topic lines")
  const more = users.filter((u) => u.role === "host" && u.name !== "bridge").map((u) => m[0].replace(/\bbridge\b/g, u.name))
  return acl + (more.length ? "\n" + more.join("\n") : "")
}

/**
 * Debian's mosquitto on a free loopback port with the config, ACL file and users of docs/mqtt.md
 * (the file paths replaced by a temporary folder's; host users besides `bridge` get their block of
 * the ACL, see mosquittoAcl). Resolves once it listens.
 */
export async function startMosquitto(users: { name: string; password: string; role?: string }[], port?: number): Promise<Mosquitto> {
  const p = port ?? (await freePort())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-mosquitto-"))
  const aclFile = path.join(dir, "acl")
  const pwFile = path.join(dir, "passwd")
  fs.writeFileSync(aclFile, mosquittoAcl(users))
  fs.writeFileSync(pwFile, "")
  for (const u of users) execFileSync("/usr/bin/mosquitto_passwd", ["-b", pwFile, u.name, u.password])
  let conf = docBlock("mosquitto-conf")
    .replace(/^listener .*$/m, `listener ${p} 127.0.0.1`)
    .replace(/^password_file .*$/m, `password_file ${pwFile}`)
    .replace(/^acl_file .*$/m, `acl_file ${aclFile}`)
  conf += "\nlog_dest stderr\nlog_type all\n"
  // as root, mosquitto would switch to the `mosquitto` user, who cannot read this folder
  if (process.getuid?.() === 0) conf += "user root\n"
  const confFile = path.join(dir, "mosquitto.conf")
  fs.writeFileSync(confFile, conf)
  const child: ChildProcess = spawn(MOSQUITTO, ["-c", confFile], { stdio: ["ignore", "ignore", "pipe"] })
  const log: string[] = []
  let buf = ""
  const listening = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`mosquitto did not start within 10 s:\n${log.join("\n")}`)), 10000)
    child.stderr!.on("data", (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split("\n")
      buf = lines.pop()!
      log.push(...lines)
      if (lines.some((l) => / running$/.test(l))) {
        clearTimeout(t)
        resolve()
      }
    })
    child.once("exit", (code) => {
      clearTimeout(t)
      reject(new Error(`mosquitto exited (${code}):\n${log.join("\n")}`))
    })
  })
  await listening
  return {
    url: `mqtt://127.0.0.1:${p}`,
    port: p,
    pid: child.pid!,
    log,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise<void>((r) => child.once("exit", () => r()))
      child.kill("SIGKILL")
      await gone
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise<void>((r) => child.once("exit", () => r()))
        child.kill("SIGTERM")
        await gone
      }
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** MQTT's variable-length integer (the fixed header's remaining length). */
export function varint(n: number): number[] {
  const out: number[] = []
  do {
    const b = n % 128
    n = Math.floor(n / 128)
    out.push(n > 0 ? b | 128 : b)
  } while (n > 0)
  return out
}
