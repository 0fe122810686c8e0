// The device's call table (protocol v2, docs/protocol.md): sessions, admission by count and bytes,
// exactly-once by per-session sequence numbers, per-service concurrency, deadlines and release.
// Nothing here sends: due answers are flags on the call, read by the sender of the call's link
// (src/rpc/sender.ts); records that belong to no call go to the link the host record came on.
//
// One table per program: module state and plain functions, not a class. DeviceScript compiles
// every method of a class into the image with a prototype entry each, compiles class methods last
// (their property names then land past the 248 one-byte string indices) and reaches `this.x` in
// more bytes than a module variable: as a class this file cost about 1 KB more code.
// Conditions without an else are nested ifs rather than `&&`: the compiler keeps each operand of a
// `&&` in a temporary and tests it twice, about 8 bytes more per `&&` than a nested if. An argument
// the compiler computes with a call (a template string, `a ? b : c`) goes first: it saves every
// non-constant argument before it in a temporary (reject, bare, Call's constructor, Out.error).
// Loops over a whole array index it (`for (let i = 0; i < a.length; i++)`) rather than `for…of`,
// which copies the array into a temporary and clears the loop variable first (about 8 bytes a
// loop; over a `slice()` the copy is needed anyway and `for…of` stays); if statements rather than
// `a ? b : c`, whose value goes through a temporary (about 8 bytes each).
import * as ds from "@devicescript/core"
import { CdrWriter, decodeMessage } from "../cdr/cdr"
import { ByteSource, Bytes, ServiceError } from "../cdr/types"
import { CALL_COST, Call, Entry, logError, GRACE_MS, MAX_LINGERING, MAX_REFUSALS, Out, RESERVE, SESSION_KEEP_MS, SMALL_REQUEST, Session, ackTo, budget, copy, defaultTimeoutMs, errText, fullName, isGone, listVersion, maxInFlight, maxRequestBytes, maxResponseBytes, maxSessions, maxTimeoutMs, rec, remove, retentionMs, settle } from "./core"
import { CallState, Kind, Limit, PROTOCOL_VERSION, RecMin, RecOff, Status } from "../gen/wire"

/** retained responses up to this size are charged in full to the budget (larger ones are sources) */
const RETAINED_CHARGE_MAX = 512

/**
 * A random non-zero u32 from the runtime's entropy source (the ESP32's hardware RNG, the host's
 * crypto in the simulator). Not Math.random: in the simulator it starts from the same seed in every
 * VM process, so a restarted VM drew the same bootId and session ids as the one before.
 */
function rand32(): number {
    const b = Buffer.alloc(4)
    ;(b as any).fillRandom()
    const v = b.getAt(0, "u32")
    if (v === 0) return 1
    return v
}

/** a record of `kind` whose `n`-byte body starts with the u32s `a` and `b` (session and seq, nonce and session…) */
function u32s(kind: number, a: number, b: number, n: number): Buffer {
    const r = rec(kind, n)
    r.setAt(Limit.RecordHeader, "u32", a)
    r.setAt(Limit.RecordHeader + 4, "u32", b)
    return r
}

/** the services served (createService), in list order */
export const entries: Entry[] = []
/** the sessions known, at most maxSessions */
export const sessions: Session[] = []
/** the call records, oldest first */
export const calls: Call[] = []
/** heap charged by the calls (see budget) */
export let used = 0
/** random per program start: a new value tells hosts the program restarted */
export const bootId = rand32()
/**
 * The multi-frame paths (src/rpc/multiframe.ts, which describes each), or undefined: then every
 * request comes whole in its CALL record (`record` refuses any other) and every answer goes
 * in one RESULT. Module variables, not an object's methods: no property names in the string table.
 */
export let mfBegin: (c: Call, d: Buffer, db: number, dlen: number) => void
let mfMore: (c: Call, off: number, d: Buffer, db: number, n: number) => void
let mfAnswer: (w: CdrWriter) => Promise<Bytes>
let mfStalled: (c: Call, now: number) => void
let mfRewind: (c: Call, off: number) => void
/** (the sender's streams: each only for a call with a ByteSource `res`, which only these paths set) */
export let mfChunk: (pkt: Buffer, n: number, c: Call, limit: number, small: boolean) => Promise<number>
export let mfRest: (pkt: Buffer, n: number, list: Call[], rr: number, max: number) => Promise<number>
export let mfWeight: (c: Call) => number

/** (multiframe.ts `multiFrame()`, which the descriptor of a type that can exceed one record calls) */
export function installMultiFrame(
    begin: typeof mfBegin,
    more: typeof mfMore,
    answer: typeof mfAnswer,
    stalled: typeof mfStalled,
    rewind: typeof mfRewind,
    chunk: typeof mfChunk,
    rest: typeof mfRest,
    weight: typeof mfWeight
) {
    mfBegin = begin
    mfMore = more
    mfAnswer = answer
    mfStalled = stalled
    mfRewind = rewind
    mfChunk = chunk
    mfRest = rest
    mfWeight = weight
}

function session(id: number): Session {
    for (let i = 0; i < sessions.length; i++) {
        const s = sessions[i]
        if (s.id === id) return s
    }
    return null
}

/** a call in flight: received, queued, run or streamed (it holds one of maxInFlight) */
function flying(c: Call): boolean {
    // (two returns: smaller code than `||`)
    if (c.state !== CallState.Done) return true
    return c.sendOff >= 0
}

/** calls of `link`'s sessions in flight */
export function linkBusy(link: Out): boolean {
    for (let i = 0; i < calls.length; i++) {
        const c = calls[i]
        if (c.s.out === link) if (flying(c)) return true
    }
    return false
}

export function hasCalls(s: Session) {
    // (a read past the end is undefined)
    let c: Call
    for (let i = 0; (c = calls[i]); i++) if (c.s === s) return true
    return false
}

/** forgets `s` and its calls (a running handler is cancelled and its slot given back) */
export function dropSession(s: Session) {
    for (const c of calls.slice()) if (c.s === s) forget(c, "session given up")
    unrefuse(s, 0, 0xffffffff)
    remove(sessions, s)
}

// ---------------------------------------------------------------- lookup and admission
export function find(s: Session, seq: number): Call {
    for (let i = 0; i < calls.length; i++) {
        const c = calls[i]
        if (c.s === s) if (c.seq === seq) return c
    }
    return null
}

export function inFlight(): number {
    let n = 0
    for (let i = 0; i < calls.length; i++) if (flying(calls[i])) n++
    return n
}

/**
 * A record for `s`'s call `seq` that no call record stands behind, queued on its link (bounded by
 * the transient queue): a RESULT (`kind`) with status `code` and no message, not remembered (busy,
 * stale: the handler never ran, the host retries), or a STATUS with state `code` (a call the
 * device holds no record of). One function for both: their bodies have the same 13 bytes (session,
 * seq, the code at 8, then a u32 0: RESULT's total, STATUS's offset).
 */
export function bare(code: number, kind: number, s: Session, seq: number) {
    const r = u32s(kind, s.id, seq, RecMin.Result)
    r[Limit.RecordHeader + RecOff.ResultStatus] = code
    s.out.transient(r)
}

/**
 * Refused calls (no such service, wrong type, over the limits): their seq is settled at once (the
 * call can never run later) and the answer is kept in a small ring shared by all hosts, for a
 * resent CALL or a POLL, until DONE or the host's ack passes it, retention, or until the ring needs room:
 * then a host that has refusals kept loses its latest, else the oldest goes (a late POLL for it
 * gets "gone"). A flood of refusals costs at most MAX_REFUSALS small records, whoever sends it, and
 * past its first it evicts only its own.
 */
interface Refusal {
    s: Session
    seq: number
    /** the RESULT record: session, seq, status, total = message length, message */
    record: Buffer
    /** when it was refused (kept for retentionMs, like an answer) */
    t: number
}
export const refusals: Refusal[] = []

/** `msg` as UTF-8, cut to Limit.MaxMessage bytes (the message of an error RESULT) */
function msgBytes(msg: string): Buffer {
    const m = Buffer.from(msg)
    if (m.length > Limit.MaxMessage) return copy(m, 0, Limit.MaxMessage)
    return m
}

/** answers a call that never ran and never will */
export function reject(msg: string, status: number, s: Session, seq: number) {
    if (!settle(s, seq)) {
        dropSession(s)
        return
    }
    // full: a host that has refusals kept gives up its latest, else the oldest goes
    if (refusals.length >= MAX_REFUSALS) {
        let i = refusals.length - 1
        while (i > 0) {
            if (refusals[i].s === s) break
            i--
        }
        refusals.insert(i, -1)
    }
    const m = msgBytes(msg)
    const r = u32s(Kind.RESULT, s.id, seq, RecMin.Result + m.length)
    r[Limit.RecordHeader + RecOff.ResultStatus] = status
    r.setAt(Limit.RecordHeader + RecOff.ResultTotal, "u32", m.length)
    r.blitAt(Limit.RecordHeader + RecOff.ResultData, m, 0, m.length)
    refusals.push({ s, seq, record: r, t: ds.millis() })
    s.out.transient(r)
}

/** forgets `s`'s refusals of seqs `lo` to `hi` */
function unrefuse(s: Session, lo: number, hi: number) {
    for (let i = refusals.length - 1; i >= 0; i--) {
        const r = refusals[i]
        if (r.s === s) if (r.seq >= lo) if (r.seq <= hi) refusals.insert(i, -1)
    }
}

// ---------------------------------------------------------------- request data
export function due(c: Call, state: number) {
    c.statusDue = state
    c.s.out.wake()
}

// ---------------------------------------------------------------- running
/** the request is complete: run it, or give it to its service's policy (rpc/policies.ts) */
export function ready(c: Call) {
    const e = c.entry
    c.state = CallState.Queued
    const p = e.policy
    if (p) p(e, c)
    else run(c)
}

/** runs `c` now (a policy: when its turn came); fails it instead when it was cancelled or its deadline passed */
export function run(c: Call) {
    if (ds.millis() > c.deadline) {
        fail(c, Status.DeadlineExceeded, "the caller's deadline passed before the call ran")
        return
    }
    if (c.cancelled) {
        fail(c, Status.Cancelled, c.reason)
        return
    }
    c.state = CallState.Running
    c.released = false
    c.t = ds.millis()
    // a running handler also holds its fiber and its frames: charged another CALL_COST until it
    // returns (finish and fail charge the answer alone; a released one lingers at CALL_COST)
    charge(c, c.cost + CALL_COST)
    c.fiber = runCall.start(c)
}

/** handlers released before they returned, until they return or are terminated */
export const lingering: Call[] = []

/**
 * gives the handler's slot back: it returned, or (`lingers`) it was released before returning
 * (cancelled, past its deadline, its session given up). A released handler's context says
 * `cancelled`; its answer is dropped; if it has not returned GRACE_MS later its fiber is
 * terminated (sweep). Until then it is charged CALL_COST and counted in `lingering`.
 */
function releaseSlot(c: Call, lingers: boolean) {
    if (c.released) return
    c.released = true
    const e = c.entry
    if (lingers) if (c.fiber) {
        c.killAt = ds.millis() + GRACE_MS
        lingering.push(c)
        used += CALL_COST
    }
    // the service's policy runs its next call
    const p = e.policy
    if (p) p(e, null)
}

/** the handler of `c` returned or was terminated: its lingering charge ends */
function unlinger(c: Call) {
    if (!(c.killAt > 0)) return
    c.killAt = 0
    used -= CALL_COST
    remove(lingering, c)
}

/** runs in its own fiber; catches everything (an escaped exception restarts the program) */
async function runCall(c: Call) {
    let status = Status.Ok
    // (msg and src are set before they are read: no initializers)
    let msg: string
    /** a Buffer (one RESULT) or, with the multi-frame paths, a ByteSource (streamed) */
    let src: Bytes
    try {
        let req: any
        // decoding holds the buffer and the decoded copy at once: wait until both fit
        // (answers waiting for their host are not released for it: the sweep frees memory in time)
        if (!c.tail)
            while (used + c.total > budget) {
                if (c.cancelled) throw new ServiceError(Status.Cancelled, c.reason)
                if (ds.millis() > c.deadline) throw new ServiceError(Status.DeadlineExceeded, "no memory to decode the request before the deadline")
                await ds.sleep(20)
            }
        try {
            // the whole request must be one message: bytes left over are a malformed request
            req = decodeMessage(c.entry.type.request, c.req, c.tail)
        } catch (e) {
            throw new ServiceError(Status.InvalidArgument, "request: " + errText(e))
        }
        c.req = null
        c.tail = null
        const res = await c.entry.handler(req, c)
        const w = new CdrWriter()
        try {
            c.entry.type.response.encode(w, res)
        } catch (e) {
            throw new ServiceError(Status.Internal, "response: " + errText(e))
        }
        // (bytes written: the header, the closed segments and the current chunk)
        const n = w.base + w.n
        if (n > maxResponseBytes) throw new ServiceError(Status.ResourceExhausted, `response of ${n} bytes exceeds maxResponseBytes=${maxResponseBytes}`)
        if (mfAnswer) src = await mfAnswer(w)
        else {
            // (without the multi-frame paths: every type fits one record, so the writer holds
            // Buffers only, no byte array field, and the answer goes in one RESULT record,
            // refused if it would not fit a Jacdac packet's)
            if (n > Limit.JacdacPayload - Limit.RecordHeader - RecMin.Result) throw new ServiceError(Status.ResourceExhausted, `response of ${n} bytes does not fit one record`)
            const out = Buffer.alloc(n)
            let o = 0
            for (let i = 0; i < w.segs.length; i++) {
                out.blitAt(o, w.segs[i] as Buffer, 0, w.lens[i])
                o += w.lens[i]
            }
            if (w.buf) out.blitAt(o, w.buf, 0, w.n)
            src = out
        }
    } catch (e) {
        src = null
        if (e instanceof ServiceError) {
            status = (e as ServiceError).code
            msg = (e as ServiceError).message
        } else {
            status = Status.Internal
            msg = errText(e)
        }
        // (single tests: smaller code than `||`)
        if (status === Status.Ok) status = Status.Internal
        if (status === Status.Busy) status = Status.Internal
        if (status === Status.Stale) status = Status.Internal
    }
    // (the call's end, written here: its one caller)
    try {
        unlinger(c)
        releaseSlot(c, false)
        // released at its deadline, dropped with its session, or forgotten: nobody waits for it
        if (c.state !== CallState.Running) return
        // (forgotten: only `forget` takes a call out of the table, and sets its cost to 0, which a
        // running call never has: `run` charges it CALL_COST more)
        if (!(c.cost > 0)) return
        if (c.cancelled)
            if (status === Status.Ok) {
                // replaced (policy "latest") or past its deadline: a handler's own error is kept
                status = Status.Cancelled
                msg = c.reason
            }
        if (status !== Status.Ok) {
            fail(c, status, msg)
            return
        }
        c.req = null
        c.status = Status.Ok
        c.state = CallState.Done
        c.t = ds.millis()
        charge(c, CALL_COST + Math.min(src.length, RETAINED_CHARGE_MAX))
        if (src instanceof Buffer) {
            // one RESULT, sent as an error's is (in flight until sent, as a stream is)
            c.msg = src as Buffer
            resend(c)
        } else {
            c.res = src as ByteSource
            mfRewind(c, 0)
        }
    } catch (e) {
        logError("finish failed", e)
    }
}

/** the RESULT of `c.msg` (an error's message, or a whole response) is due; a response counts as in flight until sent */
function resend(c: Call) {
    c.resultDue = true
    if (c.status === Status.Ok) c.sendOff = 0
    c.s.out.wake()
}

function charge(c: Call, cost: number) {
    used += cost - c.cost
    c.cost = cost
}

/** answers `status` + message; the answer is kept until DONE, the host's ack or retention */
export function fail(c: Call, status: number, msg: string) {
    c.req = null
    c.tail = null
    c.res = null
    c.sendOff = -1
    c.state = CallState.Done
    c.status = status
    const m = msgBytes(msg)
    c.msg = m
    c.t = ds.millis()
    charge(c, CALL_COST + m.length)
    resend(c)
}

/**
 * Removes the call: its seq is settled for good, unless `why` is given (its session is going
 * away; a running handler is cancelled and its slot given back).
 */
function forget(c: Call, why?: string) {
    if (!remove(calls, c)) return
    used -= c.cost
    c.cost = 0
    c.sendOff = -1
    c.req = null
    c.tail = null
    c.res = null
    // (two calls: smaller code than `why || "forgotten"`)
    if (why) c.cancel(why)
    else c.cancel("forgotten")
    if (c.state === CallState.Queued) remove(c.entry.queue, c)
    if (c.state === CallState.Running) releaseSlot(c, true)
    if (!why) if (!settle(c.s, c.seq)) dropSession(c.s)
}

// ---------------------------------------------------------------- housekeeping
/**
 * The runtime's clock (started by runtime.ts `startRuntime`): every 250 ms, deadlines, stale partial
 * requests, unreleased answers, in one fiber of its own. Not setInterval: that brings DeviceScript's
 * timer queue (about 800 bytes of code) into every firmware, one whose program uses no timer too.
 * The sweep is written in the loop, not a function of its own (-20 bytes); nothing escapes it (an
 * exception would end the fiber, and the program would sweep no more).
 */
export async function tick() {
    while (true) {
        await ds.sleep(250)
        try {
            const now = ds.millis()
            // handlers that ignored their cancellation for GRACE_MS are stopped for good
            // (from the end: unlinger takes out only the call at i, and no copy of the list is made)
            for (let i = lingering.length - 1; i >= 0; i--) {
                const c = lingering[i]
                if (now >= c.killAt) {
                    c.fiber.terminate()
                    unlinger(c)
                }
            }
            // refusals are kept as long as answers; sessions that never called, for 10 s
            // (in the order they came)
            // (a read past the end is undefined)
            while (refusals[0]) {
                if (now - refusals[0].t <= retentionMs) break
                refusals.insert(0, -1)
            }
            // (from the end: dropping a session with no calls takes out only the session at i)
            for (let i = sessions.length - 1; i >= 0; i--) {
                const s = sessions[i]
                if (s.called === undefined) if (now - s.used > 10000) if (!hasCalls(s)) dropSession(s)
            }
            for (const c of calls.slice()) {
                if (c.state === CallState.Receiving) mfStalled(c, now)
                // (queued or running: the other states of a call)
                else if (c.state !== CallState.Done) {
                    if (now > c.deadline) {
                        // a handler that never returns must not hold its slot: release it at the deadline
                        c.cancel("deadline exceeded")
                        if (c.state === CallState.Queued) remove(c.entry.queue, c)
                        fail(c, Status.DeadlineExceeded, "no answer within the caller's deadline")
                        releaseSlot(c, true)
                    }
                } else if (c.sendOff < 0) if (!c.resultDue) if (now - c.t > retentionMs) forget(c)
            }
        } catch (e) {
            logError("sweep", e)
        }
    }
}

/**
 * Charges `n` bytes (negative: gives them back) that a link holds outside any call (the MQTT link's
 * packet being received, its frame waiting to be written, and each peer's own heap for as long as
 * the peer lives) to the budget, so admission by bytes counts them as on Jacdac (src/net/mqtt.ts).
 */
export function chargeLink(n: number) {
    used += n
}

// ---------------------------------------------------------------- host records
/**
 * The least body length of CALL, CALLX, DATA, CANCEL, POLL, DONE (RecMin.Call … RecMin.Done: 25,
 * 19, 12, 8, 12, 8) as one table: a chain of comparisons costs more code. Checked against
 * protocol/protocol.json by test/host/records_device.test.ts.
 */
const NEED = hex`19 13 0c 08 0c 08`

/**
 * One record of `len` body bytes at `d[b]` from a host on `link`; `at`: its offset in the frame
 * (for ERROR records). The verbs of each kind (OPEN, CALL, POLL, …) are written here, their one
 * caller, rather than as a function each: a function costs the image a 16-byte header and its call
 * (-28 bytes for each one merged, docs/benchmarks.md "Firmware code size").
 */
export function record(kind: number, d: Buffer, b: number, len: number, link: Out, at: number) {
    if (kind === Kind.LIST) {
        link.announce()
        return
    }
    if (kind === Kind.OPEN) {
        // OPEN: the session answers on `link` only
        if (len < RecMin.Open) {
            link.error("OPEN too short", at)
            return
        }
        const nonce = d.getAt(b, "u32")
        const version = d[b + RecOff.OpenVersion]
        if (version !== PROTOCOL_VERSION) {
            link.error(`host speaks record protocol v${version}, this device v${PROTOCOL_VERSION}`, 0)
            return
        }
        // the session this nonce opened on this link (a lost SESSION is asked for again), else a
        // new one; SESSION with session 0: refused (one SESSION record below for the three)
        let id = 0
        let n = 0
        for (let i = 0; i < sessions.length; i++) {
            const s = sessions[i]
            if (s.out === link) {
                if (id === 0) if (s.nonce === nonce) id = s.id
                n++
            }
        }
        if (id === 0) {
            let most = link.maxSessions
            if (!(most > 0)) most = maxSessions
            let room = n < most
            if (!room) {
                // give up this link's least recently used session with no calls, idle for a second, that
                // never called or whose last call is SESSION_KEEP_MS old; refuse when there is
                // none (a flood of OPENs cannot push out hosts that are working or called recently).
                // (`!(now - s.called <= KEEP)` holds for a session that never called, whose
                // `called` is undefined: one test; `best` starts at `now`, above every idle one's `used`)
                let lru: Session = null
                const now = ds.millis()
                let best = now
                for (let i = 0; i < sessions.length; i++) {
                    const s = sessions[i]
                    if (s.out === link)
                        if (now - s.used > 1000)
                            if (!(now - s.called <= SESSION_KEEP_MS))
                                if (s.used < best)
                                    if (!hasCalls(s)) {
                                        lru = s
                                        best = s.used
                                    }
                }
                if (lru) {
                    dropSession(lru)
                    room = true
                }
            }
            if (room) {
                id = rand32()
                while (session(id)) id = rand32()
                sessions.push({ id, nonce, out: link, floor: 0, gone: [], used: ds.millis() })
            }
        }
        const r = u32s(Kind.SESSION, nonce, id, RecMin.Session)
        r.setAt(Limit.RecordHeader + RecOff.SessionBootId, "u32", bootId)
        link.transient(r)
        return
    }
    // every other record names a call: session u32 (at 0), seq u32, then its own fields (the
    // same offsets in CALL, CALLX, DATA, CANCEL, POLL, DONE: RecOff.CallSeq is RecOff.DataSeq…);
    // NEED: the least body length of CALL, CALLX, DATA, CANCEL, POLL, DONE (undefined: not a call
    // record; an index past the table, or below it, which the VM takes as unsigned, reads undefined)
    const need = NEED[kind - Kind.CALL]
    if (need === undefined) {
        link.error("unknown record kind " + kind, at)
        return
    }
    if (len < need) {
        link.error(`record ${kind} too short (${len} < ${need})`, at)
        return
    }
    // the session, else the host on `link` is told it is unknown (program restarted, session given
    // up, or a session of another link: one link never touches another's calls)
    const sid = d.getAt(b, "u32")
    const s = session(sid)
    if (s?.out !== link) {
        link.transient(u32s(Kind.NOSESSION, sid, bootId, RecMin.Nosession))
        return
    }
    s.used = ds.millis()
    const seq = d.getAt(b + RecOff.CallSeq, "u32")
    // (POLL's `have`; 0 for a resent CALL, answered like a POLL from the start)
    let have = 0
    // the call the record names (found once for DATA, CANCEL and POLL; again for a CALL, after its ack)
    let c = find(s, seq)
    if (kind === Kind.DATA) {
        if (!c) {
            if (!isGone(s, seq)) bare(CallState.Unknown, Kind.STATUS, s, seq)
            return
        }
        // (a late duplicate otherwise; a call is received in pieces only with the multi-frame paths)
        if (c.state === CallState.Receiving) mfMore(c, d.getAt(b + RecOff.DataOffset, "u32"), d, b + RecOff.DataData, len - RecOff.DataData)
        return
    }
    if (kind === Kind.CANCEL) {
        // a running handler is told (its context turns cancelled) and its slot is free at once
        if (c) forget(c, "cancelled by the caller")
        // settled with or without a call (one settle for both: smaller code): a CALL still on its
        // way must never run
        if (!settle(s, seq)) dropSession(s)
        return
    }
    if (kind === Kind.DONE) {
        for (let i = RecOff.DoneSeqs; i + 4 <= len; i += 4) {
            const q = d.getAt(b + i, "u32")
            const c = find(s, q)
            if (!c) {
                unrefuse(s, q, q)
                if (!settle(s, q)) dropSession(s)
            } else if (c.state === CallState.Done) forget(c)
        }
        return
    }
    if (kind === Kind.POLL) have = d.getAt(b + RecOff.PollHave, "u32")
    else {
        // CALL (service by name and hash) or CALLX (by index in the list the host holds):
        // session, seq, ack and timeoutMs are at the same offsets in CALL and CALLX.
        // The ack first: the host will never ask about seqs <= ack again (the floor before
        // forgetting the calls below it, which must not add settled ranges: many at once
        // overflowed the range list and cost the host its session)
        const ack = d.getAt(b + RecOff.CallAck, "u32")
        if (ack > s.floor) {
            ackTo(s, ack)
            unrefuse(s, 0, s.floor)
            for (const c of calls.slice())
                if (c.s === s)
                    if (c.seq <= ack) {
                        // (two calls: smaller code than a conditional argument)
                        if (c.state === CallState.Running) forget(c, "cancelled by the caller")
                        else forget(c)
                    }
        }
        // a resent CALL is never run twice: it is answered like a POLL from the start below
        // (STATUS(gone) once its answer is released)
        c = find(s, seq)
        if (!isGone(s, seq))
            if (!c) {
                // a new call
                const timeoutMs = d.getAt(b + RecOff.CallTimeoutMs, "u32")
                let e: Entry = null
                let total = len - RecOff.CallxData
                let db = b + RecOff.CallxData
                if (kind === Kind.CALLX) {
                    // (an index past the list reads undefined)
                    if (d.getAt(b + RecOff.CallxListVersion, "u16") === listVersion) e = entries[d[b + RecOff.CallxIndex]]
                    if (!e) {
                        bare(Status.Stale, Kind.RESULT, s, seq)
                        return
                    }
                } else {
                    const hash = d.getAt(b + RecOff.CallHash32, "u32")
                    total = d.getAt(b + RecOff.CallTotal, "u32")
                    const nlen = d[b + RecOff.CallNameLen]
                    db = b + RecOff.CallName + nlen
                    if (RecOff.CallName + nlen > len) {
                        link.error("CALL name overruns the record", at)
                        return
                    }
                    const name = fullName(copy(d, b + RecOff.CallName, nlen).toString())
                    for (let i = 0; i < entries.length; i++) if (entries[i].name === name) e = entries[i]
                    if (!e) {
                        reject("no service " + name, Status.Unimplemented, s, seq)
                        return
                    }
                    if (e.type.hash !== hash) {
                        reject(`${name} has type ${e.type.name} (hash32 ${e.type.hash}), the call used hash32 ${hash}`, Status.TypeMismatch, s, seq)
                        return
                    }
                }
                const dlen = len - (db - b)
                if (total > maxRequestBytes) {
                    reject(`request of ${total} bytes exceeds maxRequestBytes=${maxRequestBytes}`, Status.ResourceExhausted, s, seq)
                    return
                }
                if (dlen > total) {
                    link.error("CALL carries more data than its total length", at)
                    return
                }
                if (dlen < total)
                    if (!mfBegin) {
                        reject(`request of ${total} bytes not whole in its CALL: no DATA records here`, Status.ResourceExhausted, s, seq)
                        return
                    }
                // admission: each host keeps its share: one host's calls never take the last two
                // slots (issue 16; one slot of 1-3)
                let n = 0
                let mine = 0
                for (let i = 0; i < calls.length; i++) {
                    const c = calls[i]
                    if (flying(c)) {
                        n++
                        if (c.s === s) mine++
                    }
                }
                // (and handlers released but not yet returned or terminated hold memory the budget does not see)
                let busy = lingering.length >= MAX_LINGERING
                if (n >= maxInFlight) busy = true
                if (mine > 0) if (mine + 2 >= maxInFlight) busy = true
                if (busy) {
                    bare(Status.Busy, Kind.RESULT, s, seq)
                    return
                }
                // held: the request buffer, then the decoded request (bytes, strings) that replaces it; the
                // decoding itself briefly holds both (runCall waits for that room), except for a request whose
                // trailing byte array is received into a buffer of its own and handed over as it is
                const tail = e.type.tail
                const need = CALL_COST + total
                // (and the fiber that decodes it: see run)
                let whole = need + total + CALL_COST
                if (tail > 0) if (total > tail) whole = need + RESERVE
                if (whole > budget) {
                    reject(`a request of ${total} bytes needs ${whole} of the ${budget}-byte budget`, Status.ResourceExhausted, s, seq)
                    return
                }
                // big requests leave a reserve to small calls: an upload, or a host lost in the middle of
                // one, never stops the others (test: services_hostloss.test.ts)
                let limit = budget
                if (total > SMALL_REQUEST) limit -= RESERVE
                // (frees answered calls that are not streaming, oldest first, until the request fits)
                if (used + need > limit)
                    for (const c of calls.slice()) {
                        if (used + need <= limit) break
                        if (c.state === CallState.Done) if (c.sendOff < 0) if (!c.resultDue) forget(c)
                    }
                if (used + need > limit) {
                    bare(Status.Busy, Kind.RESULT, s, seq)
                    return
                }
                // every deadline is finite: 0 means the default, and no call may ask for more than the maximum
                let t = defaultTimeoutMs
                if (timeoutMs > 0) t = Math.min(timeoutMs, maxTimeoutMs)
                const c = new Call(ds.millis() + t, e.name, s, seq)
                s.called = c.t
                c.entry = e
                c.total = total
                c.cost = need
                used += need
                calls.push(c)
                // (a request still to come: only with the multi-frame paths, checked above)
                if (dlen < total) mfBegin(c, d, db, dlen)
                else {
                    c.req = copy(d, db, dlen)
                    ready(c)
                }
                return
            }
    }
    // POLL
    if (!c) {
        for (let i = 0; i < refusals.length; i++) {
            const r = refusals[i]
            if (r.s === s)
                if (r.seq === seq) {
                    link.transient(r.record)
                    return
                }
        }
        let st = CallState.Unknown
        if (isGone(s, seq)) st = CallState.Gone
        bare(st, Kind.STATUS, s, seq)
    }
    else if (c.state !== CallState.Done) due(c, c.state)
    else if (c.msg) resend(c)
    else if (c.res) mfRewind(c, have)
    else due(c, CallState.Gone)
}
