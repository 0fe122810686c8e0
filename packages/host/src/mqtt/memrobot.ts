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
// Records are built and parsed by the codecs generated from protocol/protocol.json (packages/host/src/gen/wire.ts).
import { randomInt } from "node:crypto"
import type { IClientOptions, MqttClient } from "mqtt"
import type { Handler } from "../demo/memory"
import { checkRobotName, normalizeName } from "../client/names"
import { ErrorCodes, ServiceError } from "../client/errors"
import { displayUrl, noDelay } from "../client/mqttlink"
import {
  CallState,
  MAX_MESSAGE,
  PROTOCOL_VERSION,
  RDATA_HEADER,
  RESULT_HEADER,
  WireStatus,
  encodeError,
  encodeHello,
  encodeNosession,
  encodeRdata,
  encodeResult,
  encodeService,
  encodeSession,
  encodeStatus,
  packRecords,
  parseHostFrame,
  type HostRecord,
} from "../client/records"
import type { ServiceDescriptor } from "../runtime/types"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"

export type { Handler, HandlerContext } from "../demo/memory"

export interface MemoryRobotOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  url: string
  /** The robot's name (topic root `robots/<name>/`). */
  name: string
  /** User name at the broker (default: the robot's name) and password. */
  username?: string
  password?: string
  /** Frame size announced in HELLO (bytes, default 8192, at most 65535). */
  maxRecord?: number
  /** Calls running at once; more are answered busy (default 32). */
  maxInFlight?: number
  /**
   * The budget announced in HELLO (bytes, default 0xffffffff: none). Not charged here (the model
   * leaves the heap budget out); hosts keep their calls within it, which is what it is for.
   */
  budget?: number
  /** Sessions kept (default 8). */
  maxSessions?: number
  /** Answers kept for a host that has not sent DONE (ms, default 10000). */
  retentionMs?: number
  /** Largest response (bytes, default 1 MiB): `resource_exhausted` beyond. */
  maxResponseBytes?: number
  /** Largest request (bytes of CDR, default maxRecord - 256: every request fits its CALL's frame). */
  maxRequestBytes?: number
  /** Request bytes a host may send beyond what the robot acknowledged (HELLO `window`, default min(65535, 4 x maxRecord)). */
  window?: number
  /** The deadline of a call that names none (timeoutMs 0), ms (default 10000, as the device). */
  defaultTimeoutMs?: number
  /** The latest deadline a call may ask for, ms (default 120000, as the device). */
  maxTimeoutMs?: number
  /** A request still being received is dropped when half a window (or its rest) took longer (ms, default 2000, as the device). */
  stallMs?: number
  /** How long `start` waits for the broker (ms, default 10000). */
  connectTimeoutMs?: number
  /** Keep-alive (s, default 30, as the firmware). */
  keepaliveS?: number
}

/** Counters (tests, the benchmark). */
export interface MemoryRobotStats {
  /** handler runs */
  runs: number
  /** frames received on `in/+` and sent on `out/+` */
  framesIn: number
  framesOut: number
  busy: number
  sessionsOpened: number
  /** records that could not be parsed */
  malformed: number
}

interface Entry {
  name: string
  type: ServiceDescriptor<any, any>
  handler: Handler<any, any>
}

interface Call {
  seq: number
  service: string
  /** the request while it is being received (DATA), else undefined */
  req: Uint8Array | undefined
  got: number
  /** offset last asked for with STATUS(gap) (-1: none), last acknowledged with STATUS(receiving) */
  nackAt: number
  ackAt: number
  stall: NodeJS.Timeout | undefined
  /** the service, once known (runs when the request is complete) */
  entry: Entry | undefined
  /** made when the handler first reads its signal */
  ac: AbortController | undefined
  timer: NodeJS.Timeout | undefined
  /** undefined while running */
  status: number | undefined
  /** the response (status 0) or the UTF-8 error message */
  data: Uint8Array
  answeredAt: number
}

interface Session {
  id: number
  host: string
  nonce: number
  /** every seq <= floor is settled */
  floor: number
  /** settled seqs above the floor: sorted disjoint ranges [lo, hi, lo, hi…] (at most MAX_RANGES) */
  settled: number[]
  calls: Map<number, Call>
  lastUsed: number
}

/** settled-seq ranges a session may hold above its floor before it is given up (as the device: packages/device/src/rpc/core.ts) */
const MAX_RANGES = 24
const enc = new TextEncoder()

export class MemoryRobot {
  readonly name: string
  readonly url: string
  bootId = randomInt(1, 0xffffffff)
  readonly stats: MemoryRobotStats = { runs: 0, framesIn: 0, framesOut: 0, busy: 0, sessionsOpened: 0, malformed: 0 }
  private readonly services: Entry[] = []
  private listVersion = 1
  private readonly sessions = new Map<number, Session>()
  private readonly outbox = new Map<string, Uint8Array[]>()
  private flushScheduled = false
  private running = 0
  private lastErrorAt = 0
  private sweepTimer: NodeJS.Timeout | undefined
  private client: MqttClient | undefined
  private backoff = 500
  private readonly maxRecord: number
  private readonly maxInFlight: number
  private readonly maxSessions: number
  private readonly retentionMs: number
  private readonly window: number
  private readonly defaultTimeoutMs: number
  private readonly maxTimeoutMs: number
  private readonly stallMs: number
  /** Requests the robot takes (announced in HELLO). */
  readonly maxRequestBytes: number
  private readonly maxResponseBytes: number
  private closed = false

  private constructor(private readonly options: MemoryRobotOptions) {
    checkRobotName(options.name)
    this.name = options.name
    this.url = displayUrl(options.url)
    this.maxRecord = Math.max(256, Math.min(65535, options.maxRecord ?? 8192))
    this.maxInFlight = options.maxInFlight ?? 32
    this.maxSessions = options.maxSessions ?? 8
    this.retentionMs = options.retentionMs ?? 10000
    this.maxResponseBytes = options.maxResponseBytes ?? 1 << 20
    this.maxRequestBytes = options.maxRequestBytes ?? this.maxRecord - 256
    this.window = Math.max(1, Math.min(65535, options.window ?? 4 * this.maxRecord))
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS
    this.maxTimeoutMs = options.maxTimeoutMs ?? 120000
    this.stallMs = options.stallMs ?? 2000
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
    const n = normalizeName(name)
    const e: Entry = { name: n, type, handler }
    const i = this.services.findIndex((s) => s.name === n)
    if (i >= 0) this.services[i] = e
    else this.services.push(e)
    this.listVersion = (this.listVersion + 1) & 0xffff
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
    this.bootId = randomInt(1, 0xffffffff)
    await this.connect()
  }

  /** Announces `offline` (retained) and disconnects cleanly; running handlers are aborted. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const c = this.client
    this.client = undefined
    this.dropSessions()
    clearTimeout(this.sweepTimer)
    if (!c) return
    if (c.connected) await c.publishAsync(`robots/${this.name}/online`, "offline", { qos: 0, retain: true }).catch(() => {})
    await c.endAsync(false).catch(() => {})
  }

  private dropSessions() {
    for (const s of this.sessions.values()) for (const c of s.calls.values()) this.abort(c)
    this.sessions.clear()
    this.outbox.clear()
    this.running = 0
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
    const { records, error } = parseHostFrame(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength))
    for (const r of records) this.onRecord(host, r)
    if (error) {
      this.stats.malformed++
      const now = Date.now()
      if (now - this.lastErrorAt >= 200) {
        this.lastErrorAt = now
        this.send(host, errorRecord(error.offset, error.message))
      }
    }
  }

  private onRecord(host: string, r: HostRecord) {
    switch (r.kind) {
      case "list":
        this.send(host, this.hello(), ...this.services.map((s, i) => encodeService({ listVersion: this.listVersion, index: i, hash32: s.type.hash32, name: s.name, type: s.type.fullName })))
        return
      case "open":
        this.open(host, r.nonce, r.version)
        return
      case "call":
      case "callx":
        this.call(host, r)
        return
      case "poll": {
        const s = this.session(host, r.session, true)
        if (s) this.poll(host, s, r.seq, r.have)
        return
      }
      case "data": {
        const s = this.session(host, r.session, true)
        if (s) this.data(host, s, r.seq, r.offset, r.data)
        return
      }
      case "done": {
        const s = this.session(host, r.session, false)
        if (s) for (const seq of r.seqs) this.settle(s, seq)
        return
      }
      case "cancel": {
        const s = this.session(host, r.session, false)
        if (s) this.settle(s, r.seq)
        return
      }
    }
  }

  private hello(): Uint8Array {
    return encodeHello({
      version: PROTOCOL_VERSION,
      minVersion: PROTOCOL_VERSION,
      bootId: this.bootId,
      listVersion: this.listVersion,
      count: this.services.length,
      maxRequestBytes: this.maxRequestBytes,
      maxResponseBytes: this.maxResponseBytes,
      budget: this.options.budget ?? 0xffffffff,
      maxInFlight: this.maxInFlight,
      window: this.window,
      maxRecord: this.maxRecord,
    })
  }

  // ------------------------------------------------------------------ sessions
  private open(host: string, nonce: number, version: number) {
    if (version !== PROTOCOL_VERSION) {
      this.send(host, errorRecord(0, `OPEN for record protocol v${version}; this device speaks v${PROTOCOL_VERSION}`))
      return
    }
    const now = Date.now()
    for (const s of this.sessions.values()) {
      if (s.host === host && s.nonce === nonce) {
        s.lastUsed = now
        this.send(host, encodeSession({ nonce, session: s.id, bootId: this.bootId }))
        return
      }
    }
    if (this.sessions.size >= this.maxSessions) {
      let lru: Session | undefined
      for (const s of this.sessions.values()) if (!s.calls.size && now - s.lastUsed > 1000 && (!lru || s.lastUsed < lru.lastUsed)) lru = s
      if (!lru) {
        this.send(host, encodeSession({ nonce, session: 0, bootId: this.bootId })) // refused: every session is working
        return
      }
      this.sessions.delete(lru.id)
    }
    let id = randomInt(1, 0xffffffff)
    while (this.sessions.has(id)) id = randomInt(1, 0xffffffff)
    this.sessions.set(id, { id, host, nonce, floor: 0, settled: [], calls: new Map(), lastUsed: now })
    this.stats.sessionsOpened++
    this.send(host, encodeSession({ nonce, session: id, bootId: this.bootId }))
  }

  /** the session `id` of `host`; undefined (and NOSESSION when `answer`) if there is none */
  private session(host: string, id: number, answer: boolean): Session | undefined {
    const s = this.sessions.get(id)
    if (s && s.host === host) {
      s.lastUsed = Date.now()
      return s
    }
    if (answer) this.send(host, encodeNosession({ session: id, bootId: this.bootId }))
    return undefined
  }

  private isSettled(s: Session, seq: number): boolean {
    if (seq <= s.floor) return true
    const g = s.settled
    for (let i = 0; i < g.length; i += 2) if (seq >= g[i]! && seq <= g[i + 1]!) return true
    return false
  }

  /** the host will never mention `seq` again: forget its answer, abort it if running */
  private settle(s: Session, seq: number) {
    if (this.isSettled(s, seq)) return
    const c = s.calls.get(seq)
    if (c) {
      s.calls.delete(seq)
      if (c.status === undefined) this.abort(c)
    }
    const g = s.settled
    let i = 0
    while (i < g.length && g[i]! < seq) i += 2
    const joinPrev = i > 0 && g[i - 1] === seq - 1
    const joinNext = i < g.length && g[i] === seq + 1
    if (joinPrev && joinNext) g.splice(i - 1, 2)
    else if (joinPrev) g[i - 1] = seq
    else if (joinNext) g[i] = seq
    else g.splice(i, 0, seq, seq)
    compact(s)
    if (g.length > 2 * MAX_RANGES) this.dropSession(s) // too many gaps: the host hears NOSESSION
  }

  private dropSession(s: Session) {
    for (const c of s.calls.values()) this.abort(c)
    this.sessions.delete(s.id)
  }

  /** every seq <= ack is settled */
  private ackUpTo(s: Session, ack: number) {
    if (ack <= s.floor) return
    for (const [seq, c] of s.calls) {
      if (seq > ack) continue
      s.calls.delete(seq)
      if (c.status === undefined) this.abort(c)
    }
    s.floor = ack
    const g = s.settled
    while (g.length > 0 && g[0]! <= ack) {
      if (g[1]! > ack) {
        g[0] = ack + 1
        break
      }
      g.splice(0, 2)
    }
    compact(s)
  }

  private abort(c: Call) {
    clearTimeout(c.timer)
    clearTimeout(c.stall)
    c.req = undefined
    if (c.status === undefined) {
      c.status = WireStatus.cancelled
      this.running--
      c.ac ??= new AbortController()
      c.ac.abort(new ServiceError("cancelled", "the call was settled by the host"))
    }
  }

  // ------------------------------------------------------------------ calls
  private call(host: string, r: Extract<HostRecord, { kind: "call" | "callx" }>) {
    const s = this.session(host, r.session, true)
    if (!s) return
    this.ackUpTo(s, r.ack)
    if (this.isSettled(s, r.seq)) {
      this.send(host, encodeStatus({ session: s.id, seq: r.seq, state: CallState.gone, offset: 0 }))
      return
    }
    if (s.calls.has(r.seq)) {
      this.poll(host, s, r.seq, 0) // a duplicate: answered like a POLL, never run again
      return
    }
    let entry: Entry | undefined
    if (r.kind === "callx") {
      entry = r.listVersion === this.listVersion ? this.services[r.index] : undefined
      if (!entry) {
        this.send(host, encodeResult({ session: s.id, seq: r.seq, status: WireStatus.stale, total: 0, data: new Uint8Array(0) })) // not remembered
        return
      }
    } else {
      entry = this.services.find((e) => e.name === r.name)
    }
    const total = r.kind === "call" ? r.total : r.data.length
    if (r.data.length > total) {
      this.error(host, 0, "CALL carries more data than its total length")
      return
    }
    const service = entry?.name ?? (r.kind === "call" ? r.name : "?")
    const c: Call = { seq: r.seq, service, req: undefined, got: 0, nackAt: -1, ackAt: 0, stall: undefined, entry, ac: undefined, timer: undefined, status: undefined, data: new Uint8Array(0), answeredAt: 0 }
    // refused whatever the load (as the device: remembered, never run)
    let refusal: ServiceError | undefined
    if (!entry) refusal = new ServiceError("unimplemented", `no service ${service} on robot ${this.name}`)
    else if (r.kind === "call" && r.hash32 !== entry.type.hash32) {
      refusal = new ServiceError("type_mismatch", `${service} is ${entry.type.fullName} (hash32 ${entry.type.hash32}), the caller sent hash32 ${r.hash32}`)
    } else if (total > this.maxRequestBytes) refusal = new ServiceError("resource_exhausted", `request of ${total} bytes exceeds maxRequestBytes=${this.maxRequestBytes}`)
    if (refusal) {
      s.calls.set(r.seq, c)
      this.running++
      return this.answer(host, s, c, refusal)
    }
    // each session keeps to its share: one host's calls never take the last two slots (as the device)
    let mine = 0
    for (const x of s.calls.values()) if (x.status === undefined) mine++
    if (this.running >= this.maxInFlight || mine >= (this.maxInFlight > 3 ? this.maxInFlight - 2 : 1)) {
      this.stats.busy++
      this.send(host, encodeResult({ session: s.id, seq: r.seq, status: WireStatus.busy, total: 0, data: new Uint8Array(0) })) // not remembered: never ran
      return
    }
    s.calls.set(r.seq, c)
    this.running++
    const timeoutMs = Math.min(r.timeoutMs || this.defaultTimeoutMs, this.maxTimeoutMs)
    c.timer = setTimeout(() => {
      if (c.status !== undefined) return
      c.ac ??= new AbortController()
      c.ac.abort(new ServiceError("deadline_exceeded", "deadline passed"))
      const why = c.req ? "the request was still incomplete at its deadline" : `${service} did not answer within ${timeoutMs} ms`
      this.answer(host, s, c, new ServiceError("deadline_exceeded", why))
    }, timeoutMs)
    if (r.data.length === total) return this.run(host, s, c, r.data)
    // the rest comes in DATA records
    c.req = new Uint8Array(total)
    c.req.set(r.data)
    c.got = r.data.length
    c.ackAt = c.got
    this.armStall(host, s, c)
    // acknowledged at once: the host sends the rest only once admitted (as the device)
    this.send(host, encodeStatus({ session: s.id, seq: r.seq, state: CallState.receiving, offset: c.got }))
  }

  /** DATA: more request bytes of a call being received */
  private data(host: string, s: Session, seq: number, off: number, d: Uint8Array) {
    const c = s.calls.get(seq)
    if (!c) {
      if (!this.isSettled(s, seq)) this.send(host, encodeStatus({ session: s.id, seq, state: CallState.unknown, offset: 0 }))
      return
    }
    const req = c.req
    if (!req || c.status !== undefined) return // a late duplicate
    if (off > c.got) {
      // a gap: asked for once per missing offset (the host also polls on silence)
      if (c.nackAt !== c.got) {
        c.nackAt = c.got
        this.send(host, encodeStatus({ session: s.id, seq, state: CallState.gap, offset: c.got }))
      }
      return
    }
    if (off + d.length > req.length) {
      this.error(host, 0, "DATA beyond the request's total length")
      return
    }
    const end = off + d.length
    if (end <= c.got) return
    req.set(d.subarray(c.got - off), c.got)
    c.got = end
    if (c.got === req.length) {
      clearTimeout(c.stall)
      c.req = undefined
      this.run(host, s, c, req)
      return
    }
    // acknowledged each half window (the host may send more); only that restarts the stall clock
    if (c.got - c.ackAt >= this.window >> 1) {
      c.ackAt = c.got
      this.send(host, encodeStatus({ session: s.id, seq, state: CallState.receiving, offset: c.got }))
      this.armStall(host, s, c)
    }
  }

  private armStall(host: string, s: Session, c: Call) {
    clearTimeout(c.stall)
    c.stall = setTimeout(() => {
      if (c.status !== undefined || !c.req) return
      c.req = undefined
      this.answer(host, s, c, new ServiceError("deadline_exceeded", `the request stalled: under ${this.window >> 1} bytes in ${this.stallMs} ms`))
    }, this.stallMs)
  }

  /** the whole request is there: decode it and run the handler */
  private run(host: string, s: Session, c: Call, data: Uint8Array) {
    const entry = c.entry!
    let req: unknown
    try {
      req = entry.type.request.decode(data)
    } catch (e) {
      return this.answer(host, s, c, new ServiceError("invalid_argument", `request: ${(e as Error).message}`))
    }
    this.stats.runs++
    let out: unknown
    try {
      out = entry.handler(req, {
        get signal() {
          c.ac ??= new AbortController()
          return c.ac.signal
        },
        service: c.service,
      })
    } catch (e) {
      return this.answer(host, s, c, e)
    }
    if (!isThenable(out)) return this.answer(host, s, c, undefined, entry, out)
    out.then(
      (v) => this.answer(host, s, c, undefined, entry, v),
      (e) => this.answer(host, s, c, e),
    )
  }

  private error(host: string, offset: number, message: string) {
    this.stats.malformed++
    const now = Date.now()
    if (now - this.lastErrorAt < 200) return
    this.lastErrorAt = now
    this.send(host, errorRecord(offset, message))
  }

  /** the handler's outcome: remembered (for POLLs and duplicates) and sent */
  private answer(host: string, s: Session, c: Call, err: unknown, entry?: Entry, value?: unknown) {
    if (c.status !== undefined) return // settled, cancelled or timed out meanwhile: dropped
    clearTimeout(c.timer)
    clearTimeout(c.stall)
    c.req = undefined
    this.running--
    c.answeredAt = Date.now()
    if (err === undefined && entry) {
      try {
        const bytes = entry.type.response.encode(value)
        if (bytes.length > this.maxResponseBytes) err = new ServiceError("resource_exhausted", `response of ${bytes.length} bytes exceeds maxResponseBytes=${this.maxResponseBytes}`)
        else {
          c.status = WireStatus.ok
          c.data = bytes
        }
      } catch (e) {
        err = new ServiceError("internal", `handler returned a bad response: ${(e as Error).message}`)
      }
    }
    if (c.status === undefined) {
      const se = err instanceof ServiceError ? err : new ServiceError("internal", (err as Error)?.message ?? String(err))
      c.status = ErrorCodes[se.code]
      c.data = enc.encode(se.detail).subarray(0, 200)
    }
    if (this.sessions.get(s.id) !== s || s.calls.get(c.seq) !== c) return
    this.sendAnswer(host, s, c, 0)
    this.armSweep()
  }

  /** RESULT (from 0) or RDATA (from `have`) up to the end of the response */
  private sendAnswer(host: string, s: Session, c: Call, have: number) {
    if (c.status !== WireStatus.ok) {
      this.send(host, encodeResult({ session: s.id, seq: c.seq, status: c.status!, total: 0, data: c.data }))
      return
    }
    const total = c.data.length
    const recs: Uint8Array[] = []
    let off = have
    if (have <= 0) {
      const n = Math.min(total, this.maxRecord - RESULT_HEADER)
      recs.push(encodeResult({ session: s.id, seq: c.seq, status: WireStatus.ok, total, data: c.data.subarray(0, n) }))
      off = n
    }
    const per = this.maxRecord - RDATA_HEADER
    for (; off < total; off += per) recs.push(encodeRdata({ session: s.id, seq: c.seq, offset: off, data: c.data.subarray(off, Math.min(total, off + per)) }))
    this.send(host, ...recs)
  }

  private poll(host: string, s: Session, seq: number, have: number) {
    if (this.isSettled(s, seq)) return this.send(host, encodeStatus({ session: s.id, seq, state: CallState.gone, offset: 0 }))
    const c = s.calls.get(seq)
    if (!c) return this.send(host, encodeStatus({ session: s.id, seq, state: CallState.unknown, offset: 0 }))
    if (c.status === undefined) return this.send(host, encodeStatus({ session: s.id, seq, state: c.req ? CallState.receiving : CallState.running, offset: c.req ? c.got : 0 }))
    this.sendAnswer(host, s, c, Math.min(have, c.data.length))
  }

  /** answers no host has acknowledged are released after retentionMs (a later POLL hears `gone`) */
  private armSweep() {
    if (this.sweepTimer) return
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined
      const old = Date.now() - this.retentionMs
      let left = false
      for (const s of this.sessions.values()) {
        for (const c of [...s.calls.values()]) {
          if (c.status === undefined) continue
          if (c.answeredAt <= old) this.settle(s, c.seq)
          else left = true
        }
      }
      if (left) this.armSweep()
    }, Math.min(1000, this.retentionMs))
    this.sweepTimer.unref()
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
      for (const frame of packRecords(recs, this.maxRecord)) {
        this.stats.framesOut++
        c.publish(`robots/${this.name}/out/${host}`, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), { qos: 0 })
      }
    }
  }
}

/** settled ranges that start just above the floor join it */
function compact(s: Session) {
  const g = s.settled
  while (g.length > 0 && g[0] === s.floor + 1) {
    s.floor = g[1]!
    g.splice(0, 2)
  }
}

/** ERROR for the record at `offset`; the message cut to MAX_MESSAGE bytes, as the device does. */
function errorRecord(offset: number, message: string): Uint8Array {
  return encodeError({ offset: Math.min(offset, 0xffff), message: enc.encode(message).subarray(0, MAX_MESSAGE) })
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function"
}
