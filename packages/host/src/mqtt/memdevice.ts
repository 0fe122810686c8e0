// The device side of the record protocol v2 (docs/protocol.md) in memory, whatever carries its
// frames: sessions, calls, answers, retention and the exactly-once rule, with host-side handlers
// like MemoryNode's (packages/host/src/demo/memory.ts). The in-memory MQTT robot (memrobot.ts)
// carries its frames over the broker; what it models and leaves out of the firmware
// (packages/device/src/rpc/) is listed there and in test/conformance/README.md.
// Records are built and parsed by the codecs generated from protocol/protocol.json (packages/host/src/gen/wire.ts).
import { randomInt } from "node:crypto"
import type { Handler } from "../demo/memory"
import { normalizeName } from "../client/names"
import { ErrorCodes, ServiceError } from "../client/errors"
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
  parseHostFrame,
  type HostRecord,
} from "../client/records"
import type { ServiceDescriptor } from "../runtime/types"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"

/** The device's limits (each as the firmware's, by default). */
export interface RecordDeviceOptions {
  /** The robot's name (in error messages). */
  name: string
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
}

/** What the device counts (the link adds its frames). */
export interface RecordDeviceStats {
  /** handler runs */
  runs: number
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

/**
 * The device side of the protocol for the hosts of one link: `frame(host, bytes)` takes a host's
 * frame, and `send(host, records)` (given by the link) carries the records it answers with; the
 * link packs them into frames of `maxRecord` bytes.
 */
export class RecordDevice {
  bootId = randomInt(1, 0xffffffff)
  readonly maxRecord: number
  /** Requests the robot takes (announced in HELLO). */
  readonly maxRequestBytes: number
  private readonly services: Entry[] = []
  private listVersion = 1
  private readonly sessions = new Map<number, Session>()
  private running = 0
  private lastErrorAt = 0
  private sweepTimer: NodeJS.Timeout | undefined
  private readonly name: string
  private readonly maxInFlight: number
  private readonly maxSessions: number
  private readonly retentionMs: number
  private readonly window: number
  private readonly defaultTimeoutMs: number
  private readonly maxTimeoutMs: number
  private readonly stallMs: number
  private readonly maxResponseBytes: number

  constructor(
    private readonly options: RecordDeviceOptions,
    private readonly send: (host: string, ...records: Uint8Array[]) => void,
    readonly stats: RecordDeviceStats = { runs: 0, busy: 0, sessionsOpened: 0, malformed: 0 },
  ) {
    this.name = options.name
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

  /** Adds (or replaces) a service; the list version changes (hosts holding the old list hear `stale`). */
  addService<Req, Res>(type: ServiceDescriptor<Req, Res>, name: string, handler: Handler<Req, Res>): void {
    const n = normalizeName(name)
    const e: Entry = { name: n, type, handler }
    const i = this.services.findIndex((s) => s.name === n)
    if (i >= 0) this.services[i] = e
    else this.services.push(e)
    this.listVersion = (this.listVersion + 1) & 0xffff
  }

  /** A frame from `host`: its records handled in order; ERROR (at most one per 200 ms) for what does not parse. */
  frame(host: string, bytes: Uint8Array) {
    const { records, error } = parseHostFrame(bytes)
    for (const r of records) this.onRecord(host, r)
    if (error) this.error(host, error.offset, error.message)
  }

  /** Every session forgotten and every running handler aborted (the link went, or the program restarts). */
  dropSessions() {
    for (const s of this.sessions.values()) for (const c of s.calls.values()) this.abort(c)
    this.sessions.clear()
    this.running = 0
  }

  /** Stops the retention sweep (the device is gone). */
  close() {
    this.dropSessions()
    clearTimeout(this.sweepTimer)
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
