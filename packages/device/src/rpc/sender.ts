// The device's sender (protocol v2, docs/protocol.md), one per link (the Jacdac carrier, each MQTT
// peer): one fiber packs everything due on that link into packets of at most `max` bytes: the
// answers of the calls whose session belongs to the link, and the records that belong to no call.
// Nothing is queued without a bound: announcements are one flag, each call has at most one STATUS
// and one RESULT due (flags on the call), records that belong to no call go to a queue bounded in
// bytes, ERROR records are rate-limited. A bulk response always gets half of each packet, so small
// answers keep moving beside it and it never starves behind them.
import * as ds from "@devicescript/core"
import { Call, Out, budget, copy, logError, listVersion, maxInFlight, maxRequestBytes, maxResponseBytes, rec } from "./core"
import { bootId, calls, entries, mfChunk, mfRest, mfWeight } from "./calls"
import { CallState, Kind, Limit, PROTOCOL_VERSION, RecMin, RecOff, Status } from "../gen/wire"

/** bytes of records that belong to no call (STATUS for unknown calls, busy, SESSION…) */
const TRANSIENT_MAX = 480
/** at most one ERROR record per this many ms; the next one counts those left out */
const ERROR_GAP_MS = 200

/** a shared sender is filling or sending a packet (shared senders take turns: one packet in the heap) */
let sharedBusy: boolean

/**
 * The sender of one link. `max`: payload bytes per packet (announced as HELLO `maxRecord`); `send`
 * gets a buffer whose first `pre` bytes are free for the carrier's own header, then `n` payload
 * bytes (`pre + n` bytes in all); `period`: the carrier's send slot in ms (0: none); `win`: the upload window announced in
 * HELLO; `shared`: take turns with the other shared senders (MQTT peers share one socket).
 */
export class Sender implements Out {
    q: Buffer[] = []
    qBytes = 0
    /** sessions this link may hold (unset: maxSessions) */
    maxSessions: number
    /** records left out because the transient queue was full (diagnostics) */
    dropped = 0
    err: Buffer
    /** when the last ERROR was queued (undefined: never; `now - undefined` is NaN, never < the gap) */
    errAt: number
    /** announcement progress: -1 nothing due, 0 HELLO next, i + 1 service i next */
    ann = -1
    rr = 0
    fiber: ds.Fiber
    /** payload bytes of the packet `fill` returned last (set with it) */
    len: number
    pre = 0
    shared: boolean

    constructor(
        public max: number,
        public send: (pkt: Buffer, n: number) => Promise<void>,
        public period: number,
        public win: number
    ) {
        // (its fiber first runs once the maker yields: `send` and the rest may be set after this)
        this.fiber = loop.start(this)
    }

    wake() {
        const f = this.fiber
        if (f) if (f.suspended) f.resume(null)
    }

    transient(r: Buffer) {
        const n = r.length
        // each owner may queue a quarter of the bytes: a host flooding POLLs or refused CALLs
        // crowds out only its own records (one pass: a loop per record would trip the watchdog).
        // The owner is the session a record answers (every kind here but SESSION starts with
        // it); SESSION and NOSESSION records are all owner 0: a NOSESSION names a session this
        // device does not know, any number of which can be made up, and as owners of their own they
        // filled the queue and dropped other hosts' answers (test: services_attack.test.ts
        // "records for sessions the device does not know"). An owner with nothing queued may queue
        // one record of any size the queue has room for: a refusal's message (up to 200 bytes) is
        // longer than a quarter, and was dropped every time (test: conformance "refusals with a long
        // message").
        const who = owner(r)
        let mine = n
        const q = this.q
        for (let i = 0; i < q.length; i++) if (owner(q[i]) === who) mine += q[i].length
        // (a flag set by single tests: smaller code than `||` and `&&`)
        let full = this.qBytes + n > TRANSIENT_MAX
        if (mine > TRANSIENT_MAX >> 2) if (mine > n) full = true
        if (full) {
            this.dropped++
            return
        }
        q.push(r)
        this.qBytes += n
        this.wake()
    }

    error(msg: string, offset: number) {
        const now = ds.millis()
        if (this.err) return
        if (now - this.errAt < ERROR_GAP_MS) return
        // (messages here are the runtime's own, all short)
        const m = Buffer.from(msg)
        const r = rec(Kind.ERROR, RecMin.Error + m.length)
        r.setAt(Limit.RecordHeader + RecOff.ErrorOffset, "u16", offset)
        r.blitAt(Limit.RecordHeader + RecOff.ErrorMessage, m, 0, m.length)
        this.err = r
        this.errAt = now
        this.wake()
    }

    announce(fresh?: boolean) {
        // a LIST while an announcement is under way does not restart it (a LIST flood would
        // otherwise keep the HELLO going out forever and no host would see the whole list)
        if (this.ann < 0) this.ann = 0
        if (fresh) this.ann = 0
        this.wake()
    }
}

/** whose share of the transient queue the record `r` takes */
function owner(r: Buffer): number {
    const kind = r[0]
    if (kind === Kind.SESSION) return 0
    if (kind === Kind.NOSESSION) return 0
    return r.getAt(Limit.RecordHeader, "u32")
}

/** the packet length what `work` found due needs (set with its result; read at once) */
let dueBytes: number

/**
 * What is due on `s`'s link: 0 nothing to send; bit 1: something other than bulk streams is due;
 * bit 2: a bulk stream is. `list` (unless null: the loop's decision) gets the link's calls;
 * `dueBytes` the carrier's `pre` bytes and the answers and records due (each is written whole or
 * not at all), or at least the whole packet when an announcement or a stream is due. One scan for
 * both the loop's decision and `fill`.
 */
function work(s: Sender, list: Call[]): number {
    let w = 0
    let d = s.pre + s.qBytes
    const e = s.err
    if (e) d += e.length
    // (transient records or an ERROR: a queued record is never empty)
    if (d > s.pre) w = 1
    if (s.ann >= 0) {
        w = 1
        d += s.max
    }
    for (let i = 0; i < calls.length; i++) {
        const c = calls[i]
        if (c.s.out === s) {
            if (list) list.push(c)
            if (c.statusDue >= 0) {
                w |= 1
                d += Limit.RecordHeader + RecMin.Status
            }
            if (c.resultDue) {
                w |= 1
                const m = c.msg
                if (m) d += Limit.RecordHeader + RecMin.Result + m.length
            }
            // (a streamed response: only with the multi-frame paths, which weigh it)
            if (c.res) {
                w |= mfWeight(c)
                d += s.max
            }
        }
    }
    dueBytes = d
    return w
}

async function loop(s: Sender) {
    // The runtime throttles what a program sends with a token bucket: each send costs one
    // period (20 ms) and up to 5 periods of credit build up while it is quiet (jdiface.c,
    // throttle_send_pkt); a send without credit waits *before* it goes, and a packet the runtime
    // cannot queue at once costs it another period. `tt` mirrors the bucket's time from this
    // sender's own sends, corrected by every send that had to wait, and charges the control
    // service's announce (a send every 500 ms). A bulk stream alone sends only while two sends'
    // worth of credit is left over, so an answer that becomes due during a stream goes out at
    // once (with half a packet of the stream beside it) instead of a slot later, while the
    // stream keeps the link's rate. Without credit the loop sleeps until just before the slot
    // and fills the packet then, so answers finishing meanwhile share it. A link without a slot
    // (period 0: MQTT) sends at once and yields after each packet. (Measured: bench/run.ts,
    // small_call_p99_during_bulk_ms.)
    const period = s.period
    /** the runtime's throttle time: a send at `now` waits until max(tt, now - 5 periods) + period */
    let tt = 0
    let taxAt = ds.millis()
    while (true) {
        let held = false
        try {
            // (the decision lists no calls: a wake allocates nothing; `fill` lists them once per packet)
            const w = work(s, null)
            if (w === 0) {
                await ds.suspend(60000)
                // let the other fibers woken by the same host packet queue their answers too
                await ds.sleep(0)
                continue
            }
            if (period > 0) {
                const now = ds.millis()
                // the control announce (every 500 ms, src/rpc/server.ts) spends a send of the same budget
                // (in one step: after an idle hour a loop would run 7,200 times at once)
                const k = Math.floor((now - taxAt) / 500)
                tt += k * period
                taxAt += k * 500
                tt = Math.max(tt, now - 5 * period)
                if ((w & 1) !== 0) {
                    const wait = tt + period - 1 - now
                    if (wait > 0) await ds.sleep(wait)
                } else {
                    // a stream alone leaves two sends of credit to answers (and an announce)
                    const wait = tt + 3 * period - now
                    if (wait > 0) {
                        await ds.suspend(wait)
                        continue
                    }
                }
            }
            if (s.shared) {
                while (sharedBusy) await ds.sleep(1)
                sharedBusy = held = true
            }
            let pkt = await fill(s)
            if (pkt) {
                const now = ds.millis()
                tt = Math.max(tt, now - 5 * period) + period
                await s.send(pkt, s.len)
                // a send that waited shows where the runtime's throttle time really is (a
                // packet the runtime could not queue at once costs it another slot)
                const end = ds.millis()
                if (end - now > 2) if (end > tt) tt = end
            }
            // (an idle fiber must not hold its last packet: up to 4 KB per MQTT peer)
            pkt = null
        } catch (e) {
            logError("sender", e)
            await ds.sleep(20)
        }
        if (held) sharedBusy = false
        // (a socket write does not suspend: without this a long stream trips the watchdog)
        if (period === 0) await ds.sleep(0)
    }
}

/**
 * One packet of what is due: announcements, transient records, call answers, then streams.
 * Returns the buffer (`pre` free bytes, then `len` payload bytes; its length is exactly
 * `pre + len`), or null when nothing is due.
 */
async function fill(s: Sender): Promise<Buffer> {
    const pre = s.pre
    const list: Call[] = []
    const bulk = work(s, list)
    // The buffer is sized to what is due when that is known before: the answers and records of
    // this link (each is written whole or not at all), when no announcement or stream is due and
    // they fit one packet; else the whole packet, cut to what was written. (Measured, stop 32:
    // a zeroed buffer of the full frame, 2 KB on MQTT, for every packet was most of the VM's
    // allocation and collection per call.)
    const max = Math.min(pre + s.max, dueBytes)
    const pkt = Buffer.alloc(max)
    // a bulk stream keeps half of every packet
    let ctl = max
    if ((bulk & 2) !== 0) ctl -= s.max >> 1
    let n = pre
    // this link's calls first (each has at most one STATUS and one RESULT due: bounded by the
    // calls in flight, which each host gets its share of), round-robin from a moving start so no
    // call is always last; then records that belong to no call (a queue where a flooding host
    // crowds out only itself), ERROR, announcements; bulk streams fill the rest
    const k = list.length
    let rr = s.rr
    if (k > 0) {
        rr = (rr + 1) % k
        s.rr = rr
    }
    for (let j = 0; j < k; ++j) {
        const c = list[(rr + j) % k]
        // (after head, n is at the body's offset 8: STATUS state, RESULT status; nested ifs, not
        // `&&`: smaller code, see calls.ts)
        if (c.statusDue >= 0)
            if (n + (Limit.RecordHeader + RecMin.Status) <= ctl) {
                n = head(pkt, n, Kind.STATUS, c, RecMin.Status)
                pkt[n] = c.statusDue
                // offset: bytes held (receiving, gap); 0 otherwise
                // (the buffer is zeroed: only a call being received has an offset to write)
                if (c.state === CallState.Receiving) pkt.setAt(n + (RecOff.StatusOffset - RecOff.StatusState), "u32", c.got)
                n += RecMin.Status - RecOff.StatusState
                c.statusDue = -1
            }
        const m = c.msg
        if (c.resultDue)
            if (m)
                if (n + (Limit.RecordHeader + RecMin.Result) + m.length <= (n === pre ? max : ctl)) {
                    n = head(pkt, n, Kind.RESULT, c, RecMin.Result + m.length)
                    pkt[n] = c.status
                    pkt.setAt(n + (RecOff.ResultTotal - RecOff.ResultStatus), "u32", m.length)
                    pkt.blitAt(n + (RecOff.ResultData - RecOff.ResultStatus), m, 0, m.length)
                    n += RecOff.ResultData - RecOff.ResultStatus + m.length
                    c.resultDue = false
                    // (a whole response: no longer in flight)
                    c.sendOff = -1
                }
        // (a small stream's next piece goes with the answers)
        if (c.res) n = await mfChunk(pkt, n, c, ctl, true)
    }
    // (a read past the end is undefined)
    while (s.q[0]) {
        const r = s.q[0]
        if (n + r.length > ctl) break
        s.q.insert(0, -1)
        s.qBytes = s.qBytes - r.length
        pkt.blitAt(n, r, 0, r.length)
        n += r.length
    }
    const e = s.err
    if (e)
        if (n + e.length <= ctl) {
            pkt.blitAt(n, e, 0, e.length)
            n += e.length
            s.err = null
        }
    // HELLO (ann 0), then SERVICE record ann - 1 (body fields at Limit.RecordHeader + RecOff…)
    while (s.ann >= 0) {
        const i = s.ann
        let r: Buffer
        if (i === 0) {
            r = rec(Kind.HELLO, RecMin.Hello)
            r[Limit.RecordHeader + RecOff.HelloVersion] = PROTOCOL_VERSION
            r[Limit.RecordHeader + RecOff.HelloMinVersion] = PROTOCOL_VERSION
            r.setAt(Limit.RecordHeader + RecOff.HelloBootId, "u32", bootId)
            r.setAt(Limit.RecordHeader + RecOff.HelloListVersion, "u16", listVersion)
            r.setAt(Limit.RecordHeader + RecOff.HelloCount, "u16", entries.length)
            r.setAt(Limit.RecordHeader + RecOff.HelloMaxRequestBytes, "u32", maxRequestBytes)
            r.setAt(Limit.RecordHeader + RecOff.HelloMaxResponseBytes, "u32", maxResponseBytes)
            r.setAt(Limit.RecordHeader + RecOff.HelloBudget, "u32", budget)
            r.setAt(Limit.RecordHeader + RecOff.HelloMaxInFlight, "u16", maxInFlight)
            r.setAt(Limit.RecordHeader + RecOff.HelloWindow, "u16", s.win)
            r.setAt(Limit.RecordHeader + RecOff.HelloMaxRecord, "u16", s.max)
        } else {
            const e = entries[i - 1]
            if (!e) {
                s.ann = -1
                break
            }
            const nm = Buffer.from(e.name)
            const ty = Buffer.from(e.type.name)
            r = rec(Kind.SERVICE, RecMin.Service + nm.length + ty.length)
            r.setAt(Limit.RecordHeader + RecOff.ServiceListVersion, "u16", listVersion)
            r[Limit.RecordHeader + RecOff.ServiceIndex] = i - 1
            r[Limit.RecordHeader + RecOff.ServiceNameLen] = nm.length
            r.setAt(Limit.RecordHeader + RecOff.ServiceHash32, "u32", e.type.hash)
            r.blitAt(Limit.RecordHeader + RecOff.ServiceName, nm, 0, nm.length)
            r.blitAt(Limit.RecordHeader + RecOff.ServiceName + nm.length, ty, 0, ty.length)
        }
        if (n + r.length > (n === pre ? max : ctl)) break
        pkt.blitAt(n, r, 0, r.length)
        n += r.length
        s.ann = s.ann + 1
    }
    if (mfRest) n = await mfRest(pkt, n, list, rr, max)
    if (n === pre) return null
    s.len = n - pre
    if (n < max) return copy(pkt, 0, n)
    return pkt
}

/**
 * record header (kind u8, body length u16) + session + seq of STATUS, RESULT or RDATA (the same
 * offsets in the three); returns the offset after them (STATUS state, RESULT status, RDATA offset)
 */
export function head(pkt: Buffer, n: number, kind: number, c: Call, len: number): number {
    pkt[n] = kind
    pkt.setAt(n + 1, "u16", len)
    pkt.setAt(n + Limit.RecordHeader, "u32", c.s.id)
    pkt.setAt(n + (Limit.RecordHeader + RecOff.ResultSeq), "u32", c.seq)
    return n + (Limit.RecordHeader + RecOff.ResultStatus)
}
