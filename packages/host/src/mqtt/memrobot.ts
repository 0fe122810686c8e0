// An in-memory MQTT robot: a TypeScript model of the DEVICE side of the record protocol v2
// (docs/protocol.md) on the topics of docs/mqtt.md, with host-side handlers like MemoryNode's
// (packages/host/src/demo/memory.ts). It is a load-test and test model, NOT the firmware (packages/device/src/rpc/ is): it
// exists so the fleet benchmark can run 1,000 robots in one process and so the host client's MQTT
// path can be tested without a VM. Each robot is its own MQTT connection, as real robots are.
//
// Implemented: presence (retained `online`, will `offline`), echo -> pong, LIST -> HELLO + SERVICE,
// OPEN -> SESSION (bounded sessions, least recently used idle one given up, else refused), CALL and
// CALLX carrying the whole request in their frame -> handler -> RESULT (+ RDATA when the response
// is bigger than a frame), POLL -> STATUS/RESULT/RDATA from `have`, DONE, CANCEL (aborts the
// handler), the cumulative `ack`, NOSESSION for unknown sessions, busy (maxInFlight, and each
// session's share: one host never takes the last two slots), stale (CALLX of an old list),
// deadlines (timeoutMs 0: the default, capped at the maximum; the handler's signal aborts;
// `deadline_exceeded`), retention of answers (`retentionMs`), ERROR for malformed records (one per
// 200 ms), requests spanning frames (CALL with `total` beyond its data, then DATA records:
// STATUS(receiving) every half `window`, STATUS(gap) for a DATA past what is held, dropped when
// stalled for `stallMs`). Exactly once per session: a (session, seq) that ran, or was settled,
// never runs again (floor + at most 24 settled ranges above it, as the device: a session needing
// more is given up). Left out (test/conformance/README.md lists it, the suite skips by it): the
// heap budget, the bounded ring of refusals, concurrency policies ("serial"/"latest"), the sender's
// pacing and fairness.
// The protocol itself is memdevice.ts (RecordDevice); this file is the robot's MQTT connection:
// presence, echo, the frames of `in/<host>` to the device and its records to `out/<host>`.
import { randomInt } from "node:crypto"
import type { IClientOptions, MqttClient } from "mqtt"
import type { Handler } from "../demo/memory"
import { checkRobotName } from "../client/names"
import { displayUrl, noDelay } from "../client/mqttlink"
import { packRecords } from "../client/records"
import type { ServiceDescriptor } from "../runtime/types"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { RecordDevice, type RecordDeviceOptions, type RecordDeviceStats } from "./memdevice"

export type { Handler, HandlerContext } from "../demo/memory"

export interface MemoryRobotOptions extends RecordDeviceOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  url: string
  /** The robot's name (topic root `robots/<name>/`). */
  name: string
  /** User name at the broker (default: the robot's name) and password. */
  username?: string
  password?: string
  /** How long `start` waits for the broker (ms, default 10000). */
  connectTimeoutMs?: number
  /** Keep-alive (s, default 30, as the firmware). */
  keepaliveS?: number
}

/** Counters (tests, the benchmark). */
export interface MemoryRobotStats extends RecordDeviceStats {
  /** frames received on `in/+` and sent on `out/+` */
  framesIn: number
  framesOut: number
}

export class MemoryRobot {
  readonly name: string
  readonly url: string
  readonly stats: MemoryRobotStats = { runs: 0, framesIn: 0, framesOut: 0, busy: 0, sessionsOpened: 0, malformed: 0 }
  private readonly device: RecordDevice
  private readonly outbox = new Map<string, Uint8Array[]>()
  private flushScheduled = false
  private client: MqttClient | undefined
  private backoff = 500
  private closed = false

  private constructor(private readonly options: MemoryRobotOptions) {
    checkRobotName(options.name)
    this.name = options.name
    this.url = displayUrl(options.url)
    this.device = new RecordDevice(options, (host, ...recs) => this.send(host, ...recs), this.stats)
  }

  /** The program's boot id (HELLO, SESSION, NOSESSION); a new one at each `restart`. */
  get bootId(): number {
    return this.device.bootId
  }

  /** Requests the robot takes (announced in HELLO). */
  get maxRequestBytes(): number {
    return this.device.maxRequestBytes
  }

  /**
   * A robot connected to the broker and announced `online` (retained). Rejects with an Error naming
   * the broker when it cannot connect within `connectTimeoutMs`. Add services before or after.
   */
  static async start(options: MemoryRobotOptions, services?: (robot: MemoryRobot) => void): Promise<MemoryRobot> {
    const r = new MemoryRobot(options)
    services?.(r)
    await r.connect()
    return r
  }

  /** Adds (or replaces) a service; the list version changes (hosts holding the old list hear `stale`). */
  addService<Req, Res>(type: ServiceDescriptor<Req, Res>, name: string, handler: Handler<Req, Res>): this {
    this.device.addService(type, name, handler)
    return this
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.client?.connected ?? false
  }

  // ------------------------------------------------------------------ presence
  private connect(): Promise<void> {
    const mqtt = require("mqtt") as typeof import("mqtt")
    const o = this.options
    const opts: IClientOptions = {
      clientId: `robot-${this.name}`,
      username: o.username ?? this.name,
      password: o.password,
      clean: true,
      keepalive: o.keepaliveS ?? 30,
      protocolVersion: 4,
      reconnectPeriod: 500,
      connectTimeout: o.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: `robots/${this.name}/online`, payload: Buffer.from("offline"), qos: 0, retain: true },
      log: () => {},
    }
    const c = mqtt.connect(o.url, opts)
    this.client = c
    c.on("connect", () => {
      noDelay(c)
      this.backoff = 500
      c.options.reconnectPeriod = 500
      c.subscribe([`robots/${this.name}/in/+`, `robots/${this.name}/echo/+`], { qos: 0 })
      c.publish(`robots/${this.name}/online`, "online", { qos: 0, retain: true })
    })
    c.on("close", () => {
      // exponential backoff with jitter, as the firmware (0.5 s doubling up to 30 s)
      this.backoff = Math.min(30000, this.backoff * 2)
      c.options.reconnectPeriod = Math.round(this.backoff / 2 + randomInt(0, Math.ceil(this.backoff / 2)))
    })
    c.on("error", () => {})
    c.on("message", (topic: string, payload: Buffer) => this.onMessage(topic, payload))
    const timeoutMs = o.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        clearTimeout(t)
        c.off("connect", onConnect)
        c.off("error", onError)
        if (!e) return resolve()
        c.end(true)
        reject(e)
      }
      const onConnect = () => done()
      const onError = (e: Error) => done(new Error(`memory robot ${this.name}: cannot connect to ${this.url}: ${e.message}`))
      const t = setTimeout(() => done(new Error(`memory robot ${this.name}: no answer from ${this.url} within ${timeoutMs} ms`)), timeoutMs)
      c.on("connect", onConnect)
      c.on("error", onError)
    })
  }

  /** Drops the connection without a DISCONNECT (power loss, WiFi gone): the broker publishes the will `offline`. */
  async disconnect(): Promise<void> {
    const c = this.client
    this.client = undefined
    this.dropSessions()
    if (c) await c.endAsync(true).catch(() => {})
  }

  /** Connects again after `disconnect` (same program: same bootId, no sessions). */
  async reconnect(): Promise<void> {
    if (this.client) return
    await this.connect()
  }

  /** A new program: connection dropped (will), new bootId, no sessions, connected again. */
  async restart(): Promise<void> {
    await this.disconnect()
    this.device.bootId = randomInt(1, 0xffffffff)
    await this.connect()
  }

  /** Announces `offline` (retained) and disconnects cleanly; running handlers are aborted. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const c = this.client
    this.client = undefined
    this.device.close()
    this.outbox.clear()
    if (!c) return
    if (c.connected) await c.publishAsync(`robots/${this.name}/online`, "offline", { qos: 0, retain: true }).catch(() => {})
    await c.endAsync(false).catch(() => {})
  }

  private dropSessions() {
    this.device.dropSessions()
    this.outbox.clear()
  }

  // ------------------------------------------------------------------ incoming
  private onMessage(topic: string, payload: Buffer) {
    // robots/<name>/in/<host> | robots/<name>/echo/<host>
    const parts = topic.split("/")
    const host = parts[3]
    if (parts.length !== 4 || !host) return
    if (parts[2] === "echo") {
      this.client?.publish(`robots/${this.name}/pong/${host}`, payload, { qos: 0 })
      return
    }
    if (parts[2] !== "in") return
    this.stats.framesIn++
    this.device.frame(host, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength))
  }

  // ------------------------------------------------------------------ outgoing
  private send(host: string, ...recs: Uint8Array[]) {
    const q = this.outbox.get(host)
    if (q) for (const r of recs) q.push(r)
    else this.outbox.set(host, recs)
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => this.flush())
  }

  private flush() {
    this.flushScheduled = false
    const c = this.client
    const all = [...this.outbox]
    this.outbox.clear()
    if (!c?.connected) return
    for (const [host, recs] of all) {
      for (const frame of packRecords(recs, this.device.maxRecord)) {
        this.stats.framesOut++
        c.publish(`robots/${this.name}/out/${host}`, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), { qos: 0 })
      }
    }
  }
}
