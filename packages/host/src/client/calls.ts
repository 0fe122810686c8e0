// The host's call state machine for protocol v2 (docs/protocol.md): one session per device program,
// calls numbered 1, 2, 3… within it, request upload windowed by the device's announced window,
// busy retries with exponential backoff and jitter, go-back-N recovery of lost records, DONE and
// the cumulative ack so the device can forget answered calls, deadlines sent with every call.
// It knows nothing of Jacdac: it sends records through `CallLink` and is fed device records.
import { randomInt } from "node:crypto"
import { ServiceError, errorCodeFromWire, type ErrorCode } from "./errors"
import {
  CALL_HEADER,
  CALLX_HEADER,
  CallState,
  DATA_HEADER,
  PROTOCOL_VERSION,
  RECORD_HEADER,
  RECORD_TAIL,
  WireStatus,
  encodeCall,
  encodeCallx,
  encodeCancel,
  encodeData,
  encodeDone,
  encodeOpen,
  encodePoll,
  type DeviceRecord,
  type HelloRecord,
} from "./records"
import { BUDGET_RESERVE, CALL_COST, SESSION_KEEP_MS, SMALL_REQUEST } from "../gen/wire"

/** What the call engine needs from the node that owns it. */
export interface CallLink {
  /** queue records for the device (packed and sent on the next tick) */
  send(records: Uint8Array[]): void
  /** the largest payload the link carries */
  readonly maxPayload: number
  /** the device's services, when listed, and the list version */
  listed(): { version: number; services: { name: string; hash32: number }[] } | undefined
  /** the list is stale: ask again */
  refreshList(): void
  /**
   * Hold DONE records up to this long (ms) so the next CALL's `ack` can settle them instead (a link
   * where every message costs, such as MQTT); sent sooner once the answers held would take a
   * quarter of the device's budget. 0 or absent: DONE on the next tick.
   */
  readonly doneDelayMs?: number
}

/** Counters kept by a node (for tests and the benchmark). */
export interface CallStats {
  callsStarted: number
  polls: number
  requestResends: number
  busyRetries: number
  sessionsOpened: number
}

/** default time for a call with no `timeoutMs`: to its first answer, then with no progress */
export const DEFAULT_TIMEOUT_MS = 10000

/**
 * The largest response a node takes by default (bytes; `NodeOptions.maxResponseBytes`): the host's
 * own bound, whatever the robot announces in its HELLO (a u32: up to 4 GiB). A call whose RESULT
 * announces more fails with `resource_exhausted` naming both bounds.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024

/**
 * A response's buffer starts at most this big (bytes) and doubles as the bytes arrive (never past
 * the announced total): what a call holds follows what the robot sent, not what it announced.
 */
const FIRST_RESPONSE_BUFFER = 64 * 1024

/**
 * The longest wait a timer holds, in ms (2^31 - 1, about 24.8 days): Node fires a longer timer after
 * 1 ms, so a timeout of 3e9 ms failed its call at once with deadline_exceeded. A call's timer is
 * armed for at most this and armed again while its deadline is ahead.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** A timeout as a timer can hold it: at most MAX_TIMER_MS. */
export function timerMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS)
}
/** Sets what a call holds of its exchange with the device as it is before its first send, in any session. */
function unsend(c: PendingCall) {
  c.session = 0
  c.resTotal = -1
  c.res = undefined
  c.got = 0
  c.acked = 0
  c.sentTo = 0
  c.held = false
  c.cwnd = 0
  c.pollDelay = POLL_FIRST_MS
  c.lastPollAt = 0
  c.lastPollHave = -1
  c.lastResendAt = 0
  c.lastGapOff = -1
  c.resentTo = 0
  c.busyCount = 0
}

/**
 * A call's request goes again at most once per this many ms (besides once per offset per 150 ms),
 * unless the device holds all that the last resend sent: what a robot's STATUS records can make the
 * host send is bounded in time, not by how many it sends
 */
const RESEND_MS = 50

/** silence (ms) before the first POLL of a call; doubles per unanswered POLL up to POLL_MAX_MS */
const POLL_FIRST_MS = 400
const POLL_RUNNING_MS = 1000
const POLL_MAX_MS = 4000

export interface PendingCall {
  seq: number
  service: string
  name: Uint8Array
  hash32: number
  request: Uint8Array
  decode: (b: Uint8Array) => unknown
  resolve: (v: unknown) => void
  reject: (e: ServiceError) => void
  onProgress?: (received: number, total: number) => void
  /** absolute deadline (Date.now() ms) */
  deadline: number
  /** the caller's timeout (ms) */
  timeoutMs: number
  /** the caller set no timeout: the deadline moves forward while the response arrives */
  rolling: boolean
  timer: NodeJS.Timeout | undefined
  /** sent to the device in the current session (needs CANCEL/DONE), 0 when not yet */
  session: number
  resTotal: number
  res: Uint8Array | undefined
  got: number
  /** request bytes the device acknowledged, and sent so far */
  acked: number
  sentTo: number
  /**
   * the CALL went without data and the rest waits for the device's first STATUS receiving: a
   * request that needs DATA records anyway is not streamed before the device admitted it (a busy
   * device would read and drop every byte of it, and over MQTT each 128-byte read costs the
   * device heap: issue 20)
   */
  held: boolean
  /** bytes allowed beyond `acked`: the device's window, halved on every gap (AIMD, as TCP does) */
  cwnd: number
  silence: NodeJS.Timeout | undefined
  pollDelay: number
  lastPollAt: number
  lastPollHave: number
  lastResendAt: number
  lastGapOff: number
  /** where the last resend's bytes ended (sentTo after it) */
  resentTo: number
  busyCount: number
  /**
   * NOSESSIONs that sent the call again in a new session (it never ran): its deadline's error says
   * so, or a call a robot refused with a NOSESSION storm failed as if the robot had been silent
   */
  nosessions: number
  /** do not use the compact CALLX (the device said our list is stale) */
  fullCall: boolean
  /** who asked (CallOptions.owner); undefined for calls without one, which are one owner together */
  owner: object | undefined
  /** the engine's count of started calls when this one started */
  startNo: number
  /** the caller's AbortSignal, and the listener this call added to it */
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

/** the device budget a call may use at most: a big request leaves the reserve for small calls */
const limit = (c: PendingCall, budget: number) => (c.request.length > SMALL_REQUEST ? budget - BUDGET_RESERVE : budget)
/** what a call charges the device's budget while it runs (as packages/device/src/rpc/calls.ts) */
const cost = (c: PendingCall) => CALL_COST + c.request.length
/** `o` goes before `than`: fewer calls active, then served longer ago */
const ahead = (o: Owner, than: Owner | undefined) => !than || o.active < than.active || (o.active === than.active && o.last < than.last)

/** One owner's calls: those not started yet, in the order they were made, and how many are active. */
interface Owner {
  queue: PendingCall[]
  active: number
  /** `startNo` of its last started call: among owners with as many active, the one served longest ago goes first */
  last: number
}

export class CallEngine {
  readonly stats: CallStats = { callsStarted: 0, polls: 0, requestResends: 0, busyRetries: 0, sessionsOpened: 0 }
  /** session id from the device; 0 while none */
  session = 0
  /** the bootId of the program that gave the session (its SESSION record) */
  private sessionBoot = 0
  private nonce = 0
  /** calls started in the current session, when its first was sent, and whether the device answered any */
  private started = 0
  private firstSentAt = 0
  private heard = false
  private openTimer: NodeJS.Timeout | undefined
  private openDelay = 200
  private nextSeq = 1
  private readonly active = new Map<number, PendingCall>()
  /** owners with calls queued or active, each with its queue (see pump) */
  private readonly owners = new Map<object | undefined, Owner>()
  private startNo = 0
  /**
   * the queued call that waits longest for the device's budget, and `startNo` when it began
   * waiting: calls of other owners pass it only while they leave it its room (see next)
   */
  private waiting: { call: PendingCall; since: number } | undefined
  private doneSeqs: number[] = []
  private doneTimer: NodeJS.Timeout | undefined
  private hello: HelloRecord | undefined
  /** a fatal condition (protocol version): every call fails with it */
  private fatal: ServiceError | undefined
  closed = false

  /** `maxResponseBytes`: the host's own bound on one response (see DEFAULT_MAX_RESPONSE_BYTES) */
  constructor(
    private readonly link: CallLink,
    private readonly maxActive: () => number,
    private readonly maxResponseBytes = DEFAULT_MAX_RESPONSE_BYTES,
  ) {}

  get limits(): HelloRecord | undefined {
    return this.hello
  }

  // ------------------------------------------------------------------ sessions
  /** A device program appeared or changed (new HELLO bootId): open a session with it. */
  deviceHello(h: HelloRecord, restarted: boolean) {
    this.hello = h
    if (restarted) this.lose("unavailable", "device program restarted")
    if (!this.session) this.open()
    this.pump()
  }

  /** The device is gone: fail what it was doing, forget the session. */
  deviceLost(why: string) {
    this.hello = undefined
    this.lose("unavailable", why)
    clearTimeout(this.openTimer)
    this.openTimer = undefined
  }

  /** The calls sent in the current session, which the device never saw, wait for the next session. */
  private requeue() {
    const again = [...this.active.values()].sort((a, b) => a.seq - b.seq)
    for (const c of again) this.deactivate(c)
    this.session = 0
    this.doneSeqs = []
    this.waiting = undefined
    // back at the head of their owners' queues, in the order they were made
    for (const c of again.reverse()) {
      clearTimeout(c.silence)
      unsend(c)
      c.nosessions++
      this.ownerOf(c).queue.unshift(c)
    }
  }

  /** Every call sent in the current session fails (never resent); the session is forgotten. */
  private lose(code: ErrorCode, why: string) {
    const sent = [...this.active.values()]
    for (const c of sent) this.deactivate(c)
    this.session = 0
    this.doneSeqs = []
    for (const c of sent) this.settle(c, new ServiceError(code, why, c.service))
  }

  private open() {
    if (this.closed || !this.hello) return
    clearTimeout(this.openTimer)
    if (!this.openTimer) this.nonce = randomInt(1, 0xffffffff)
    this.link.send([encodeOpen({ nonce: this.nonce, version: PROTOCOL_VERSION })])
    // the OPEN or the SESSION may be lost; a refusal (table full) backs off
    this.openTimer = setTimeout(() => {
      this.openTimer = undefined
      this.openDelay = Math.min(2000, this.openDelay * 2)
      if (!this.session) this.open()
    }, this.openDelay + randomInt(0, 100))
  }

  setFatal(e: ServiceError) {
    this.fatal = e
    this.lose(e.code, e.detail)
    this.failAll(e.code, e.detail)
  }

  // ------------------------------------------------------------------ device records
  onRecord(r: DeviceRecord) {
    switch (r.kind) {
      case "session":
        if (r.nonce !== this.nonce || this.session) return
        if (r.session === 0) return // refused: the open timer retries with backoff
        clearTimeout(this.openTimer)
        this.openTimer = undefined
        this.openDelay = 200
        this.session = r.session
        this.sessionBoot = r.bootId
        this.nextSeq = 1
        this.started = 0
        this.heard = false
        this.stats.sessionsOpened++
        this.pump()
        return
      case "nosession":
        if (r.session !== this.session || !this.session) return
        // The device gives up a session that made no call for 10 s (an OPEN flood must not fill
        // its table) and one that called only SESSION_KEEP_MS later. So when nothing in this session
        // was ever answered and its first call went out less than that ago, the session was gone
        // before the calls arrived and none of them ran: they go again in a new session. Otherwise
        // they may have run and fail (never resent: at most once).
        // A NOSESSION from another program (its bootId) is a restart: the program that had the
        // session may have run its calls before it ended, so they fail whatever was heard.
        if (r.bootId !== this.sessionBoot) this.lose("unavailable", "device program restarted")
        else if (!this.heard && this.started === this.active.size && Date.now() - this.firstSentAt < SESSION_KEEP_MS) this.requeue()
        else this.lose("unavailable", "the device gave up this host's session (too many hosts)")
        this.open()
        return
      case "result":
      case "rdata":
      case "status": {
        if (r.session !== this.session || !this.session) return
        this.heard = true
        const c = this.active.get(r.seq)
        if (c) this.onCallRecord(c, r)
        return
      }
    }
  }

  private onCallRecord(c: PendingCall, r: DeviceRecord) {
    const prevDelay = c.pollDelay
    c.pollDelay = POLL_FIRST_MS
    if (r.kind === "result") {
      if (r.status !== WireStatus.ok) {
        const msg = Buffer.from(r.data).toString("utf8")
        if (r.status === WireStatus.busy) {
          this.busy(c)
          return
        }
        if (r.status === WireStatus.stale) {
          // our copy of the service list is out of date: refresh it, call by name meanwhile
          c.fullCall = true
          this.link.refreshList()
          this.sendRequest(c, 0, true)
          return
        }
        this.done(c)
        this.settle(c, new ServiceError(errorCodeFromWire(r.status), msg, c.service))
        return
      }
      if (c.resTotal < 0) {
        // (never past the bound the robot gave in its HELLO, nor past this host's own: the robot's is
        // a u32, and a faulty or hostile one may claim anything; the buffer grows as bytes arrive)
        const own = this.hello?.maxResponseBytes ?? 0
        const host = this.maxResponseBytes
        if (r.total > own || r.total > host) {
          this.done(c)
          const e =
            r.total > own
              ? new ServiceError("internal", `the robot announced a response of ${r.total} bytes, over its own bound of ${own} (maxResponseBytes; this host's: ${host})`, c.service)
              : new ServiceError("resource_exhausted", `the robot announced a response of ${r.total} bytes, over this host's bound of ${host} bytes (maxResponseBytes; the robot's own: ${own})`, c.service)
          this.settle(c, e)
          return
        }
        c.resTotal = r.total
        c.res = new Uint8Array(Math.min(r.total, Math.max(FIRST_RESPONSE_BUFFER, r.data.length)))
      }
      this.accept(c, 0, r.data)
    } else if (r.kind === "rdata") {
      if (c.resTotal < 0) {
        this.poll(c, 0, true) // the RESULT was lost
        return
      }
      this.accept(c, r.offset, r.data)
    } else if (r.kind === "status") {
      switch (r.state) {
        case CallState.unknown:
          // the device never saw the CALL (or lost the request): it has not run, send it again
          if (c.resTotal >= 0) this.settle(c, new ServiceError("unavailable", "the device no longer knows this call", c.service))
          else this.sendRequest(c, 0, true)
          break
        case CallState.gone:
          this.settle(c, new ServiceError("unavailable", "the call was answered, but the device released the response before it arrived", c.service))
          break
        case CallState.gap:
          // a lost chunk: the link is congested or lossy, send less at once
          c.cwnd = Math.max(this.minWindow(), c.cwnd / 2)
          this.sendRequest(c, r.offset, true)
          break
        case CallState.receiving:
          // (the first one for a held request says: admitted, send: the whole window, as for a
          // request sent at once)
          if (r.offset > c.acked || (c.held && r.offset === c.acked)) {
            c.cwnd = c.held ? 0 : Math.min(this.uploadWindow(), c.cwnd + this.link.maxPayload)
            c.held = false
            c.acked = r.offset
            this.sendMore(c)
          } else this.sendRequest(c, r.offset, true) // no progress since the last answer: go back
          break
        case CallState.running:
        case CallState.queued:
          // (the device has the whole request)
          c.acked = c.request.length
          // a slow handler: poll less and less often (each answer costs the device a packet)
          c.pollDelay = Math.min(POLL_MAX_MS, Math.max(POLL_RUNNING_MS, prevDelay * 2))
          this.armSilence(c)
          break
        default:
          this.armSilence(c)
      }
    }
  }

  private accept(c: PendingCall, offset: number, data: Uint8Array) {
    let res = c.res!
    if (offset > c.got) {
      this.poll(c, c.got, true) // gap: go back to the first missing byte
      return
    }
    const end = offset + data.length
    if (end > c.resTotal) {
      this.done(c)
      this.settle(c, new ServiceError("internal", `response data beyond its length (${end} > ${c.resTotal})`, c.service))
      return
    }
    if (end > c.got) {
      if (end > res.length) {
        // doubled, up to the announced total: a response's copies cost at most its size again
        const more = new Uint8Array(Math.min(c.resTotal, Math.max(end, res.length * 2)))
        more.set(res.subarray(0, c.got))
        c.res = res = more
      }
      res.set(data.subarray(c.got - offset), c.got)
      c.got = end
      this.progress(c)
      c.onProgress?.(c.got, c.resTotal)
    }
    if (c.got === c.resTotal) {
      this.done(c)
      let v: unknown
      try {
        v = c.decode(res)
      } catch (e) {
        this.settle(c, new ServiceError("internal", `cannot decode the response: ${(e as Error).message}`, c.service))
        return
      }
      this.settle(c, undefined, v)
      return
    }
    this.armSilence(c)
  }

  /** a default-timeout call keeps its time while the response keeps arriving */
  private progress(c: PendingCall) {
    if (!c.rolling) return
    const d = Date.now() + DEFAULT_TIMEOUT_MS
    if (d - c.deadline < 250) return
    c.deadline = d
    clearTimeout(c.timer)
    c.timer = setTimeout(this.onExpire, DEFAULT_TIMEOUT_MS, c)
  }

  // ------------------------------------------------------------------ calls
  start<Res>(
    service: string,
    name: Uint8Array,
    hash32: number,
    request: Uint8Array,
    decode: (b: Uint8Array) => Res,
    options: { timeoutMs?: number; signal?: AbortSignal; onProgress?: (r: number, t: number) => void; owner?: object },
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (this.closed) {
        reject(new ServiceError("unavailable", "node closed", service))
        return
      }
      if (this.fatal) {
        reject(new ServiceError(this.fatal.code, this.fatal.detail, service))
        return
      }
      const lim = this.hello
      if (lim && request.length > lim.maxRequestBytes) {
        reject(new ServiceError("resource_exhausted", `request of ${request.length} bytes exceeds maxRequestBytes=${lim.maxRequestBytes}`, service))
        return
      }
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
      const signal = options.signal
      if (signal?.aborted) {
        reject(new ServiceError("cancelled", "the call was aborted", service))
        return
      }
      // (every field written here, in one order, and no closure made per call: a call costs the
      // host a few microseconds, docs/benchmarks.md "Where an MQTT call's time goes")
      const c: PendingCall = {
        seq: 0,
        service,
        name,
        hash32,
        request,
        decode,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: options.onProgress,
        deadline: Date.now() + timeoutMs,
        timeoutMs,
        rolling: options.timeoutMs === undefined,
        timer: undefined,
        session: 0,
        resTotal: -1,
        res: undefined,
        got: 0,
        acked: 0,
        sentTo: 0,
        held: false,
        cwnd: 0,
        silence: undefined,
        pollDelay: POLL_FIRST_MS,
        lastPollAt: 0,
        lastPollHave: -1,
        lastResendAt: 0,
        lastGapOff: -1,
        resentTo: 0,
        busyCount: 0,
        nosessions: 0,
        fullCall: false,
        owner: options.owner,
        startNo: 0,
        signal,
        onAbort: undefined,
      }
      c.timer = setTimeout(this.onExpire, timerMs(timeoutMs), c)
      if (signal) {
        c.onAbort = () => this.abandon(c, "cancelled", "the call was aborted")
        signal.addEventListener("abort", c.onAbort, { once: true })
      }
      this.ownerOf(c).queue.push(c)
      this.pump()
    })
  }

  private readonly onExpire = (c: PendingCall) => this.expire(c)
  private expire(c: PendingCall) {
    const left = c.deadline - Date.now()
    if (left > MAX_TIMER_MS / 2) {
      c.timer = setTimeout(this.onExpire, timerMs(left), c)
      return
    }
    const ms = c.rolling ? `no answer or progress within ${DEFAULT_TIMEOUT_MS} ms` : `no answer within ${c.timeoutMs} ms`
    // ("never ran" only when no session holds it now: one it was sent in and that did not answer may have run it)
    const why = c.nosessions
      ? `: the robot answered NOSESSION ${c.nosessions} times (each session it gave was gone when the call came${c.session === 0 ? "; the call never ran" : ""})`
      : ""
    this.abandon(c, "deadline_exceeded", ms + why)
  }

  /**
   * bytes of device budget our active calls take (as packages/device/src/rpc/calls.ts charges:
   * per-call cost + request), of those started after the `since`-th start when given
   */
  private budgetInUse(since = 0): number {
    let n = 0
    for (const c of this.active.values()) if (c.resTotal < 0 && c.startNo > since) n += cost(c)
    return n
  }

  private ownerOf(c: PendingCall): Owner {
    let o = this.owners.get(c.owner)
    if (!o) this.owners.set(c.owner, (o = { queue: [], active: 0, last: 0 }))
    return o
  }

  /** an owner with nothing queued or active is forgotten (the map holds only owners with calls) */
  private forgetIdle(c: PendingCall, o: Owner) {
    if (!o.active && !o.queue.length) this.owners.delete(c.owner)
  }

  private deactivate(c: PendingCall) {
    if (this.active.get(c.seq) !== c) return
    this.active.delete(c.seq)
    const o = this.owners.get(c.owner)!
    o.active--
    this.forgetIdle(c, o)
  }

  private unqueue(c: PendingCall) {
    const o = this.owners.get(c.owner)
    const i = o ? o.queue.indexOf(c) : -1
    if (i < 0) return
    o!.queue.splice(i, 1)
    this.forgetIdle(c, o!)
  }

  /**
   * Starts queued calls while the window (`maxActive`) has room. The bridge is one host to the
   * device, so its clients share the window: each call has an owner (a bridge client), and the
   * next call is the head of the owner with the fewest calls active (then the one served longest
   * ago), so a client that asks little never waits behind the queue of one that asks a lot (issue
   * 20). Fewest active rather than plain turns: with turns, a client of long calls (pictures) would
   * gather more and more of the window as the short calls of the others end. An owner's own calls
   * start in the order they were made.
   */
  pump() {
    if (this.closed || !this.hello || !this.session) return
    while (this.active.size < this.maxActive()) {
      const c = this.next()
      if (!c) return
      const o = this.owners.get(c.owner)!
      o.queue.shift()
      o.active++
      o.last = c.startNo = ++this.startNo
      if (this.waiting?.call === c) this.waiting = undefined
      if (this.started++ === 0) this.firstSentAt = Date.now()
      c.seq = this.nextSeq++
      c.session = this.session
      this.active.set(c.seq, c)
      this.stats.callsStarted++
      this.sendRequest(c, 0, false)
    }
  }

  /**
   * The next call to start, or undefined: one scan over the owners (O(owners + active)).
   *
   * Budget: a call starts when its charge fits beside the active calls' (as the device admits
   * them), and a big request only while the device's reserve stays free for small calls. A head
   * that does not fit holds back its own owner's later calls, not the other owners': it becomes
   * `waiting` (the one of the owner first in line, when several wait), and other calls pass it
   * only while their charge, with that of the calls that passed it before, leaves it its room. So
   * its wait ends once the calls that were active when it began waiting are answered: small calls
   * beside a big upload go on, and they can never keep it waiting for ever (they could, by keeping
   * the budget used).
   *
   * The last free slot of the window goes only to an owner with no call active, so the call of a
   * client that had none starts at once, not after one of the busy clients' calls ends (on a robot
   * whose sender shares its link between the responses in flight, that can be seconds). Keeping the slot only while another owner has calls
   * queued would not do: a client calling one call at a time has none queued between its calls,
   * and the busy client would take the slot back each time. Calls without an owner (a program's
   * own calls through the client, the CLI) are one client and keep the whole window; a lone bridge
   * client gets maxActive - 1 (5 of the default window of 6, the device's share for one host).
   */
  private next(): PendingCall | undefined {
    const budget = this.hello!.budget
    const idle = this.active.size === 0
    const inUse = this.budgetInUse()
    const lastSlot = this.active.size + 1 >= this.maxActive()
    let w = this.waiting
    if (w && this.owners.get(w.call.owner)?.queue[0] !== w.call) w = this.waiting = undefined
    const room = w ? limit(w.call, budget) - cost(w.call) - this.budgetInUse(w.since) : Infinity
    let best: Owner | undefined
    let blocked: Owner | undefined
    for (const [key, o] of this.owners) {
      const c = o.queue[0]
      if (!c || (lastSlot && o.active > 0 && key !== undefined)) continue
      if (idle || (inUse + cost(c) <= limit(c, budget) && (c === w?.call || cost(c) <= room))) {
        if (ahead(o, best)) best = o
      } else if (ahead(o, blocked)) blocked = o
    }
    if (!w && blocked) {
      // once: the scan again, with the blocked call's room kept
      this.waiting = { call: blocked.queue[0]!, since: this.startNo }
      return this.next()
    }
    return best?.queue[0]
  }

  /** every seq <= this is settled on the host (sent with every CALL) */
  private ack(): number {
    let low = this.nextSeq
    for (const s of this.active.keys()) if (s < low) low = s
    return low - 1
  }

  /** sends the request from byte `from` (0: the CALL record first), up to the device's window */
  private sendRequest(c: PendingCall, from: number, resend: boolean) {
    const now = Date.now()
    if (resend) {
      // one resend per offset per 150 ms: answers to records already on the way must not trigger
      // more; and one per RESEND_MS in all, unless the device holds all that the last one sent (a
      // new loss): a robot reporting ever new offsets had the host send a window per 16-byte STATUS
      const since = now - c.lastResendAt
      if (since < 150 && from === c.lastGapOff) return
      if (since < RESEND_MS && from < c.resentTo) return
      this.stats.requestResends++
    }
    c.lastResendAt = now
    c.lastGapOff = from
    if (from > c.acked) c.acked = from
    const recs: Uint8Array[] = []
    const req = c.request
    const max = this.link.maxPayload
    let off = from
    if (from === 0) {
      // (the remaining time in whole ms, as a u32)
      const session = this.session
      const seq = c.seq
      const ack = this.ack()
      const timeoutMs = Math.min(0xffffffff, Math.max(1, Math.ceil(c.deadline - now)))
      this.ackCovers(ack)
      const index = c.fullCall ? -1 : this.compactIndex(c, max)
      const listed = this.link.listed()
      if (index >= 0 && listed) {
        recs.push(encodeCallx({ session, seq, ack, timeoutMs, listVersion: listed.version, index, data: req }))
        off = req.length
      } else {
        // a request that does not fit the CALL record goes after the device admitted it
        const room = max - CALL_HEADER - c.name.length
        const n = req.length <= room ? req.length : 0
        c.held = n < req.length
        recs.push(encodeCall({ session, seq, ack, timeoutMs, hash32: c.hash32, total: req.length, name: c.name, data: req.subarray(0, n) }))
        off = n
      }
    }
    c.sentTo = off
    this.link.send(recs)
    if (!c.held) this.sendMore(c)
    if (resend) c.resentTo = c.sentTo
    this.armSilence(c)
  }

  /**
   * The least a call's send window shrinks to: the device acknowledges every half window, so a
   * host that stops sending with less than that unacknowledged would wait for its silence timer
   * (a POLL, 400 ms) before the next acknowledgement
   */
  private minWindow(): number {
    return Math.min(this.uploadWindow(), (this.uploadWindow() >> 1) + this.link.maxPayload)
  }

  /**
   * the device's upload window (HELLO; before it, the Jacdac link's four packets), at least one DATA
   * record's bytes: with a window of 0 an upload never moved and its call waited for its deadline
   */
  private uploadWindow(): number {
    return Math.max(this.hello?.window ?? 944, this.link.maxPayload - DATA_HEADER)
  }

  /** request data up to what the device's window allows beyond what it acknowledged */
  private sendMore(c: PendingCall) {
    const req = c.request
    if (c.cwnd <= 0) c.cwnd = this.uploadWindow()
    const limit = Math.min(req.length, Math.max(c.acked, 0) + c.cwnd)
    const max = this.link.maxPayload
    const recs: Uint8Array[] = []
    while (c.sentTo < limit) {
      const n = Math.min(limit - c.sentTo, max - DATA_HEADER)
      recs.push(encodeData({ session: this.session, seq: c.seq, offset: c.sentTo, data: req.subarray(c.sentTo, c.sentTo + n) }))
      c.sentTo += n
    }
    if (recs.length) this.link.send(recs)
  }

  /** index for a compact CALLX: the request fits one record and the listed hash matches */
  private compactIndex(c: PendingCall, max: number): number {
    const l = this.link.listed()
    if (!l || c.request.length > max - CALLX_HEADER) return -1
    const i = l.services.findIndex((s) => s.name === c.service)
    if (i < 0 || i > 255 || l.services[i]!.hash32 !== c.hash32) return -1
    return i
  }

  private poll(c: PendingCall, have: number, onGap: boolean) {
    const now = Date.now()
    // one POLL per missing offset per 300 ms: chunks already on the way must not trigger more
    if (onGap && c.lastPollHave === have && now - c.lastPollAt < 300) return
    c.lastPollAt = now
    c.lastPollHave = have
    this.stats.polls++
    this.link.send([encodePoll({ session: this.session, seq: c.seq, have })])
    this.armSilence(c)
  }

  private armSilence(c: PendingCall) {
    clearTimeout(c.silence)
    c.silence = setTimeout(this.onSilence, c.pollDelay, c)
  }

  private readonly onSilence = (c: PendingCall) => {
    if (this.active.get(c.seq) !== c || c.session !== this.session) return
    // (while the device still receives the request, no backing off: it drops a request that made
    // no progress for its stallMs, 2 s, and 400 + 800 + 1,600 ms of unanswered POLLs outlived it;
    // services_faults "an upload survives a 1.3 s outage of the link")
    if (c.resTotal >= 0 || c.acked >= c.request.length) c.pollDelay = Math.min(POLL_MAX_MS, c.pollDelay * 2)
    this.poll(c, c.got, false)
  }

  private busy(c: PendingCall) {
    // the device ran nothing: try again with the same seq after an exponential backoff with jitter
    this.stats.busyRetries++
    const base = Math.min(1000, 20 * 2 ** Math.min(c.busyCount++, 6))
    clearTimeout(c.silence)
    c.silence = setTimeout(() => {
      if (this.active.get(c.seq) !== c || c.session !== this.session) return
      c.acked = 0
      c.sentTo = 0
      this.sendRequest(c, 0, false)
    }, base / 2 + randomInt(0, Math.ceil(base)))
  }

  /** the response arrived (or an error answer): tell the device it may forget the call */
  private done(c: PendingCall) {
    if (c.session !== this.session || !this.session) return
    this.doneSeqs.push(c.seq)
    const delay = this.link.doneDelayMs ?? 0
    if (delay <= 0) {
      if (this.doneSeqs.length === 1) setImmediate(this.onFlushDone)
      return
    }
    // each answer the device retains costs it about CALL_COST of its budget
    const full = this.doneSeqs.length * CALL_COST >= (this.hello?.budget ?? 0) / 4
    if (full || !this.doneTimer) {
      clearTimeout(this.doneTimer)
      this.doneTimer = full ? undefined : setTimeout(() => {
        this.doneTimer = undefined
        this.flushDone()
      }, delay)
      if (full) setImmediate(this.onFlushDone)
    }
  }

  /** a CALL carries `ack`: the DONEs held for seqs up to it are not needed any more */
  private ackCovers(ack: number) {
    if (!this.doneSeqs.length || !(this.link.doneDelayMs ?? 0)) return
    this.doneSeqs = this.doneSeqs.filter((s) => s > ack)
  }

  private readonly onFlushDone = () => this.flushDone()
  private flushDone() {
    const seqs = this.doneSeqs
    this.doneSeqs = []
    if (!seqs.length || !this.session) return
    const per = Math.floor((this.link.maxPayload - RECORD_HEADER - RECORD_TAIL.DONE) / 4)
    for (let i = 0; i < seqs.length; i += per) this.link.send([encodeDone({ session: this.session, seqs: seqs.slice(i, i + per) })])
  }

  private abandon(c: PendingCall, code: ErrorCode, msg: string) {
    this.unqueue(c)
    if (c.session && c.session === this.session && this.active.get(c.seq) === c) this.link.send([encodeCancel({ session: this.session, seq: c.seq })])
    this.settle(c, new ServiceError(code, msg, c.service))
  }

  private settle(c: PendingCall, err: ServiceError | undefined, value?: unknown) {
    clearTimeout(c.timer)
    clearTimeout(c.silence)
    if (c.onAbort) c.signal!.removeEventListener("abort", c.onAbort)
    this.deactivate(c)
    this.unqueue(c)
    // later records for this seq find nothing; a second settle is a no-op
    const res = c.resolve
    const rej = c.reject
    c.resolve = () => {}
    c.reject = () => {}
    if (err) rej(err)
    else res(value)
    this.pump()
  }

  /** fails every call, sent or waiting */
  failAll(code: ErrorCode, msg: string) {
    const active = [...this.active.values()]
    for (const c of active) this.deactivate(c)
    const all = [...active, ...[...this.owners.values()].flatMap((o) => o.queue)]
    this.owners.clear()
    this.waiting = undefined
    for (const c of all) this.settle(c, new ServiceError(code, msg, c.service))
  }

  close() {
    this.failAll("unavailable", "node closed")
    this.closed = true
    clearTimeout(this.openTimer)
    clearTimeout(this.doneTimer)
  }
}
