// Device side of ROS 2-style services: `createService(Type, "name", handler)` like rclpy's
// create_service. All services share one Jacdac server (spec `services/rosservices.md`, class
// 0x1b7e5c2a); each packet payload is a sequence of records described in `docs/protocol.md`.
//
// Guarantees: every call is answered exactly once (a response or a status + message); no exception
// ever escapes a handler (that would restart the program); a retransmitted call id never runs the
// handler twice; requests and responses are split into records and reassembled with gap detection;
// calls in flight are bounded (`Unavailable` "busy" past the bound) so pipelined callers cannot run
// the 64 KB heap out. One sender fiber packs every pending outgoing record into as few packets as
// possible, which matters because the runtime sends only about 50 packets per second.
import * as ds from "@devicescript/core"
import { Server, startServer } from "@devicescript/server"
import { CdrWriter, decodeMessage } from "./cdr"
import { ByteSource, ServiceError, ServiceType, Status } from "./types"

/** Protocol version carried in HELLO. */
export const PROTOCOL_VERSION = 1
/** Largest Jacdac payload; every packet we send is at most this long. */
const MAX_PAYLOAD = 236

// record kinds, host -> device
const K_CALL = 0x01
const K_DATA = 0x02
const K_CANCEL = 0x03
const K_POLL = 0x04
const K_DONE = 0x05
const K_LIST = 0x06
const K_CALLX = 0x07
// record kinds, device -> host
const K_HELLO = 0x81
const K_SERVICE = 0x82
const K_RESULT = 0x83
const K_RDATA = 0x84
const K_STATUS = 0x85
const K_ERROR = 0x86

// call states, as reported in STATUS records
const ST_UNKNOWN = 0
const ST_RECEIVING = 1
const ST_RUNNING = 2
const ST_DONE = 3 // response ready (being sent or retained for resends)
const ST_GONE = 4 // answered and released; only the status is remembered

/** Limits of the service runtime; see {@link configureServices}. */
export interface ServicesConfig {
    /** Largest request accepted, in bytes of CDR (default 16384). Larger: `ResourceExhausted`. */
    maxRequestBytes?: number
    /** Largest response sent, in bytes of CDR (default 262144 = 256 KiB). Larger: `ResourceExhausted`. */
    maxResponseBytes?: number
    /** Calls being received, run or sent at once (default 8). Past it: `Unavailable` "busy". */
    maxInFlight?: number
    /** How long a sent response is kept for resends when the host does not release it (ms, default 10000). */
    retentionMs?: number
}

let maxRequestBytes = 16384
let maxResponseBytes = 262144
let maxInFlight = 8
let retentionMs = 10000
/** answered call ids remembered for de-duplication */
const RING = 48
/**
 * Responses up to this many bytes are copied into the call's record and kept until the record
 * leaves the ring; the host does not send DONE for them (saves host packet space on small calls).
 */
export const SMALL_RESPONSE = 64

/**
 * Sets the limits of the service runtime. Call before or after `createService`; the new limits are
 * announced to hosts in the next HELLO. Allocates nothing.
 */
export function configureServices(cfg: ServicesConfig) {
    if (cfg.maxRequestBytes !== undefined) maxRequestBytes = cfg.maxRequestBytes
    if (cfg.maxResponseBytes !== undefined) maxResponseBytes = cfg.maxResponseBytes
    if (cfg.maxInFlight !== undefined) maxInFlight = Math.max(1, cfg.maxInFlight)
    if (cfg.retentionMs !== undefined) retentionMs = cfg.retentionMs
    if (runtime) runtime.announce()
}

interface Entry {
    name: string
    type: ServiceType<any, any>
    handler: (req: any) => Promise<any>
}

class Call {
    id: number
    entry: Entry
    state: number
    total = 0
    got = 0
    req: Buffer = null
    nackAt = -1
    status = Status.Ok
    res: ByteSource = null
    msg: Buffer = null
    /** next response byte to send; -1 when not streaming */
    sendOff = -1
    /** bumped whenever the stream is rewound, to discard chunks read before the rewind */
    gen = 0
    resultSent = false
    cancelled = false
    /** a small response kept in the ring (no DONE expected) */
    small = false
    t = 0
    constructor(id: number) {
        this.id = id
        this.t = ds.millis()
    }
}

function errText(e: any): string {
    if (e === undefined || e === null) return "unknown error"
    const m = (e as Error).message
    if (m !== undefined && m !== null) {
        const n = (e as Error).name
        return n && n !== "Error" && n !== "ServiceError" ? n + ": " + m : "" + m
    }
    return "" + e
}

class RosServicesServer extends Server implements ds.RosServicesServerSpec {
    entries: Entry[] = []
    calls: Call[] = []
    outQ: Buffer[] = []
    streams: Call[] = []
    bootId: number
    listVersion = 1
    sender: ds.Fiber = null
    helloPending = false
    started = false

    constructor() {
        super(ds.RosServices.spec)
        // random per program start: a new value tells hosts the program restarted
        this.bootId = (Math.floor(Math.random() * 0x7fffffff) ^ Math.floor(ds.millis())) >>> 0
        if (this.bootId === 0) this.bootId = 1
    }

    start() {
        if (this.started) return
        this.started = true
        startServer(this)
        this.sender = this.senderLoop.start()
        const self = this
        setInterval(() => self.sweep(), 1000)
    }

    /** Command `echo`: the raw one-packet round trip (link diagnostics and the benchmark). */
    echo(data: Buffer) {
        return data
    }

    // ---------------------------------------------------------------- incoming
    /** Command `frame`: called by the dispatcher in a fresh fiber for every host packet. */
    async frame(data: Buffer) {
        try {
            this.parseFrame(data)
        } catch (e) {
            // never let anything escape: a malformed frame must not restart the program
            this.queueError(0, "frame: " + errText(e))
        }
    }

    parseFrame(data: Buffer) {
        if (!data || data.length === 0) {
            this.queueError(0, "empty frame")
            return
        }
        let o = 0
        while (o < data.length) {
            if (o + 2 > data.length) {
                this.queueError(o, "truncated record header")
                return
            }
            const kind = data[o]
            const len = data[o + 1]
            const b = o + 2
            const end = b + len
            if (end > data.length) {
                if (len >= 4 && b + 4 <= data.length && kind >= K_CALL && kind <= K_CALLX && kind !== K_LIST)
                    this.reject(data.getAt(b, "u32"), Status.InvalidArgument, "truncated record " + kind)
                else this.queueError(o, "record " + kind + " overruns the frame")
                return
            }
            this.record(kind, data, b, len)
            o = end
        }
    }

    record(kind: number, d: Buffer, b: number, len: number) {
        if (kind === K_LIST) {
            this.announce()
            return
        }
        if (kind < K_CALL || kind > K_CALLX) {
            this.queueError(b - 2, "unknown record kind " + kind)
            return
        }
        if (len < 4) {
            this.queueError(b - 2, "record " + kind + " too short")
            return
        }
        const id = d.getAt(b, "u32")
        if (kind === K_CALL) this.onCall(id, d, b, len)
        else if (kind === K_CALLX) this.onCallX(id, d, b, len)
        else if (kind === K_DATA) this.onData(id, d, b, len)
        else if (kind === K_CANCEL) this.onCancel(id)
        else if (kind === K_POLL) this.onPoll(id, len >= 8 ? d.getAt(b + 4, "u32") : 0)
        else if (kind === K_DONE) this.onDone(id)
    }

    find(id: number): Call {
        const cs = this.calls
        for (let i = cs.length - 1; i >= 0; --i) if (cs[i].id === id) return cs[i]
        return null
    }

    inFlight() {
        let n = 0
        for (const c of this.calls) if (c.state === ST_RECEIVING || c.state === ST_RUNNING || c.sendOff >= 0) n++
        return n
    }

    onCall(id: number, d: Buffer, b: number, len: number) {
        const old = this.find(id)
        if (old) {
            // a retransmitted CALL: never run twice, answer like a POLL from the start
            this.onPoll(id, 0)
            return
        }
        if (len < 13) {
            this.reject(id, Status.InvalidArgument, "malformed CALL record")
            return
        }
        const hash = d.getAt(b + 4, "u32")
        const total = d.getAt(b + 8, "u32")
        const nlen = d[b + 12]
        if (13 + nlen > len) {
            this.reject(id, Status.InvalidArgument, "malformed CALL record: name overruns it")
            return
        }
        let name = d.slice(b + 13, b + 13 + nlen).toString()
        if (name.length === 0 || name[0] !== "/") name = "/" + name
        const db = b + 13 + nlen
        const dlen = len - 13 - nlen
        let entry: Entry = null
        for (const e of this.entries) if (e.name === name) entry = e
        if (!entry) {
            this.reject(id, Status.Unimplemented, "no service " + name)
            return
        }
        if (entry.type.hash !== hash) {
            this.reject(
                id,
                Status.TypeMismatch,
                `${name} has type ${entry.type.name} (hash ${hex32(entry.type.hash)}), the call used hash ${hex32(hash)}`
            )
            return
        }
        if (total > maxRequestBytes) {
            this.reject(id, Status.ResourceExhausted, `request of ${total} bytes exceeds maxRequestBytes=${maxRequestBytes}`)
            return
        }
        if (dlen > total) {
            this.reject(id, Status.InvalidArgument, "CALL carries more data than its total length")
            return
        }
        this.admit(id, entry, total, d, db, dlen)
    }

    /**
     * Compact CALL for a request that fits one record: `callId u32, listVersion u8, index u8,
     * data…`, naming the service by its index in the list the host holds (whose hash the host
     * has checked). A different list version is answered `Unavailable` "stale: …" (not remembered).
     */
    onCallX(id: number, d: Buffer, b: number, len: number) {
        if (this.find(id)) {
            this.onPoll(id, 0)
            return
        }
        if (len < 6) {
            this.reject(id, Status.InvalidArgument, "malformed CALLX record")
            return
        }
        const ver = d[b + 4]
        const idx = d[b + 5]
        if (ver !== (this.listVersion & 0xff) || idx >= this.entries.length) {
            this.queueRaw(id, Status.Unavailable, `stale: the service list is now version ${this.listVersion}`)
            return
        }
        const dlen = len - 6
        if (dlen > maxRequestBytes) {
            this.reject(id, Status.ResourceExhausted, `request of ${dlen} bytes exceeds maxRequestBytes=${maxRequestBytes}`)
            return
        }
        this.admit(id, this.entries[idx], dlen, d, b + 6, dlen)
    }

    admit(id: number, entry: Entry, total: number, d: Buffer, db: number, dlen: number) {
        const n = this.inFlight()
        if (n >= maxInFlight) {
            // not remembered: the handler never ran, so the host may retry with the same id
            this.queueRaw(id, Status.Unavailable, `busy: ${n} calls in flight (maxInFlight=${maxInFlight})`)
            return
        }
        const c = new Call(id)
        c.entry = entry
        c.total = total
        c.state = ST_RECEIVING
        if (dlen === total) {
            c.req = d.slice(db, db + dlen)
            c.got = dlen
        } else {
            c.req = Buffer.alloc(total)
            c.req.blitAt(0, d, db, dlen)
            c.got = dlen
        }
        this.remember(c)
        if (c.got === c.total) this.run(c)
    }

    onData(id: number, d: Buffer, b: number, len: number) {
        const c = this.find(id)
        if (!c) {
            this.status(id, ST_UNKNOWN, 0)
            return
        }
        if (len < 8) {
            this.queueError(b - 2, "DATA record too short")
            return
        }
        if (c.state !== ST_RECEIVING) return // a late duplicate
        const off = d.getAt(b + 4, "u32")
        const n = len - 8
        if (off > c.got) {
            // gap: ask once per missing offset (the host also polls on silence)
            if (c.nackAt !== c.got) {
                c.nackAt = c.got
                this.status(id, ST_RECEIVING, c.got)
            }
            return
        }
        if (off + n > c.total) {
            this.fail(c, Status.InvalidArgument, "DATA beyond the request's total length")
            return
        }
        const end = off + n
        if (end > c.got) {
            const skip = c.got - off
            c.req.blitAt(c.got, d, b + 8 + skip, n - skip)
            c.got = end
            c.t = ds.millis()
        }
        if (c.got === c.total) this.run(c)
    }

    onCancel(id: number) {
        const c = this.find(id)
        if (!c) return
        if (c.state === ST_RUNNING) {
            c.cancelled = true
            return
        }
        if (c.state === ST_RECEIVING || c.state === ST_DONE) this.release(c, Status.Cancelled)
    }

    onDone(id: number) {
        const c = this.find(id)
        if (c && c.state === ST_DONE) this.release(c, c.status)
    }

    onPoll(id: number, have: number) {
        const c = this.find(id)
        if (!c) this.status(id, ST_UNKNOWN, 0)
        else if (c.state === ST_RECEIVING) {
            c.nackAt = c.got
            this.status(id, ST_RECEIVING, c.got)
        } else if (c.state === ST_RUNNING) this.status(id, ST_RUNNING, 0)
        else if (c.state === ST_DONE) {
            if (c.status !== Status.Ok || !c.res) this.queueResult(c)
            else this.rewind(c, have)
        } else {
            // released: only the status survives
            if (c.status === Status.Ok) this.queueRaw(c.id, Status.Unavailable, "response released before it was read")
            else this.queueResult(c)
        }
    }

    // ---------------------------------------------------------------- call lifecycle
    remember(c: Call) {
        this.calls.push(c)
        // forget the oldest released calls beyond the ring size
        let gone = 0
        for (const x of this.calls) if (settled(x)) gone++
        while (gone > RING) {
            for (let i = 0; i < this.calls.length; ++i)
                if (settled(this.calls[i])) {
                    this.calls.insert(i, -1)
                    break
                }
            gone--
        }
    }

    /** answers a call that never ran, remembering it so a retransmission gets the same answer */
    reject(id: number, status: number, msg: string) {
        let c = this.find(id)
        if (!c) {
            c = new Call(id)
            this.remember(c)
        }
        this.fail(c, status, msg)
    }

    fail(c: Call, status: number, msg: string) {
        c.req = null
        c.res = null
        c.status = status
        c.msg = Buffer.from(msg.length > 200 ? msg.slice(0, 200) : msg)
        c.state = ST_GONE
        this.dropStream(c)
        this.queueResult(c)
    }

    run(c: Call) {
        c.state = ST_RUNNING
        c.t = ds.millis()
        this.runCall.start(c)
    }

    /** runs in its own fiber; catches everything */
    async runCall(c: Call) {
        let status = Status.Ok
        let msg = ""
        let src: ByteSource = null
        try {
            let req: any
            try {
                // the whole request must be one message: bytes left over are a malformed request
                req = decodeMessage(c.entry.type.request, c.req)
            } catch (e) {
                throw new ServiceError(Status.InvalidArgument, "request: " + errText(e))
            }
            c.req = null
            const res = await c.entry.handler(req)
            try {
                const w = new CdrWriter()
                c.entry.type.response.encode(w, res)
                src = w.finish()
            } catch (e) {
                throw new ServiceError(Status.Internal, "response: " + errText(e))
            }
            if (src.length <= SMALL_RESPONSE) {
                // keep small answers as one plain buffer: cheap to retain for resends
                src = bufferSource(await src.read(0, src.length))
                c.small = true
            }
            if (src.length > maxResponseBytes) {
                const n = src.length
                src = null
                throw new ServiceError(Status.ResourceExhausted, `response of ${n} bytes exceeds maxResponseBytes=${maxResponseBytes}`)
            }
        } catch (e) {
            src = null
            if (e instanceof ServiceError) {
                status = (e as ServiceError).status
                msg = (e as ServiceError).message
            } else {
                status = Status.Internal
                msg = errText(e)
            }
            if (status === Status.Ok) status = Status.Internal
        }
        try {
            this.finish(c, status, src, msg)
        } catch (e) {
            console.log("rosservices: finish failed: " + errText(e))
        }
    }

    finish(c: Call, status: number, src: ByteSource, msg: string) {
        c.req = null
        c.t = ds.millis()
        if (c.cancelled) {
            c.status = Status.Cancelled
            c.state = ST_GONE
            return
        }
        if (status !== Status.Ok) {
            this.fail(c, status, msg)
            return
        }
        c.status = Status.Ok
        c.res = src
        c.state = ST_DONE
        this.rewind(c, 0)
    }

    /** (re)starts sending the response from byte `off` (0 also resends RESULT) */
    rewind(c: Call, off: number) {
        if (!c.res) return
        if (off > c.res.length) off = c.res.length
        c.gen++
        c.sendOff = off
        if (off === 0) c.resultSent = false
        c.t = ds.millis()
        if (this.streams.indexOf(c) < 0) this.streams.push(c)
        this.wake()
    }

    dropStream(c: Call) {
        c.sendOff = -1
        const i = this.streams.indexOf(c)
        if (i >= 0) this.streams.insert(i, -1)
    }

    release(c: Call, status: number) {
        this.dropStream(c)
        c.req = null
        c.res = null
        c.status = status
        c.state = ST_GONE
    }

    /** frees stale partial requests and unreleased responses */
    sweep() {
        try {
            const now = ds.millis()
            for (const c of this.calls) {
                if (now - c.t < retentionMs) continue
                if (c.state === ST_RECEIVING) this.release(c, Status.DeadlineExceeded)
                else if (c.state === ST_DONE && c.sendOff < 0 && !c.small) this.release(c, c.status)
            }
        } catch (e) {
            console.log("rosservices: sweep: " + errText(e))
        }
    }

    // ---------------------------------------------------------------- outgoing
    queueRec(kind: number, body: Buffer) {
        const r = Buffer.alloc(2 + body.length)
        r[0] = kind
        r[1] = body.length
        r.blitAt(2, body, 0, body.length)
        this.outQ.push(r)
        this.wake()
    }

    queueResult(c: Call) {
        this.queueRaw(c.id, c.status, c.msg ? c.msg.toString() : "")
    }

    /** RESULT with a non-Ok status: callId, status, total = message length, message */
    queueRaw(id: number, status: number, msg: string) {
        let m = Buffer.from(msg)
        if (m.length > MAX_PAYLOAD - 2 - 9) m = m.slice(0, MAX_PAYLOAD - 2 - 9)
        const b = Buffer.alloc(9 + m.length)
        b.setAt(0, "u32", id)
        b[4] = status
        b.setAt(5, "u32", m.length)
        b.blitAt(9, m, 0, m.length)
        this.queueRec(K_RESULT, b)
    }

    status(id: number, state: number, off: number) {
        const b = Buffer.alloc(9)
        b.setAt(0, "u32", id)
        b[4] = state
        b.setAt(5, "u32", off)
        this.queueRec(K_STATUS, b)
    }

    queueError(off: number, msg: string) {
        let m = Buffer.from(msg)
        if (m.length > 200) m = m.slice(0, 200)
        const b = Buffer.alloc(2 + m.length)
        b.setAt(0, "u16", off)
        b.blitAt(2, m, 0, m.length)
        this.queueRec(K_ERROR, b)
    }

    /** HELLO then one SERVICE record per service */
    announce() {
        if (!this.started) return
        const h = Buffer.alloc(20)
        h.setAt(0, "u32", this.bootId)
        h.setAt(4, "u16", this.listVersion)
        h.setAt(6, "u16", this.entries.length)
        h.setAt(8, "u32", maxRequestBytes)
        h.setAt(12, "u32", maxResponseBytes)
        h.setAt(16, "u16", maxInFlight)
        h[18] = PROTOCOL_VERSION
        h[19] = 0
        this.queueRec(K_HELLO, h)
        for (let i = 0; i < this.entries.length; ++i) {
            const e = this.entries[i]
            const nm = Buffer.from(e.name)
            const ty = Buffer.from(e.type.name)
            const b = Buffer.alloc(8 + nm.length + ty.length)
            b.setAt(0, "u16", this.listVersion)
            b[2] = i
            b[3] = nm.length
            b.setAt(4, "u32", e.type.hash)
            b.blitAt(8, nm, 0, nm.length)
            b.blitAt(8 + nm.length, ty, 0, ty.length)
            this.queueRec(K_SERVICE, b)
        }
    }

    listChanged() {
        this.listVersion = (this.listVersion + 1) & 0xffff
        if (this.helloPending) return
        this.helloPending = true
        // let a burst of createService calls settle into one announcement
        const self = this
        setTimeout(() => {
            self.helloPending = false
            self.announce()
        }, 20)
    }

    wake() {
        const f = this.sender
        if (f && f.suspended) f.resume(null)
    }

    async senderLoop() {
        // The runtime throttles sends (about one per 20 ms once its small burst budget is spent)
        // and `_send` waits for the slot *before* sending. Filling a packet and then waiting
        // would leave out whatever is queued during the wait, so once sends are being throttled
        // the loop sleeps until just before the next slot and fills the packet then.
        let lastEnd = 0
        let paced = false
        let period = 20
        while (true) {
            try {
                if (this.outQ.length === 0 && this.streams.length === 0) {
                    paced = false
                    await ds.suspend(60000)
                    // let the other fibers woken by the same host packet (handlers finishing
                    // together) queue their answers too, so they share one packet
                    await ds.sleep(0)
                    continue
                }
                if (paced && this.pending() < MAX_PAYLOAD) {
                    // (with a full packet's worth queued there is nothing to wait for)
                    const w = lastEnd + period - 1 - ds.millis()
                    if (w > 0) await ds.sleep(w)
                }
                const pkt = await this.fill()
                if (pkt) {
                    const t = ds.millis()
                    await this._send(ds.RosServices.spec.lookup("frameOut").encode(pkt))
                    const now = ds.millis()
                    if (paced) period = Math.max(10, Math.min(40, now - lastEnd))
                    else if (now - t >= 8) {
                        paced = true
                        period = Math.min(40, now - t)
                    }
                    lastEnd = now
                }
            } catch (e) {
                console.log("rosservices: sender: " + errText(e))
                await ds.sleep(20)
            }
        }
    }

    /** bytes waiting to be sent (records and response data), counted up to one packet */
    pending() {
        let n = 0
        for (const r of this.outQ) n += r.length
        for (const c of this.streams) {
            if (n >= MAX_PAYLOAD) break
            if (c.res && c.sendOff >= 0) n += 10 + c.res.length - c.sendOff
        }
        return n
    }

    /** packs queued records, then response data (smallest remaining first), into one payload */
    async fill(): Promise<Buffer> {
        const pkt = Buffer.alloc(MAX_PAYLOAD)
        let n = 0
        while (this.outQ.length > 0 && n + this.outQ[0].length <= MAX_PAYLOAD) {
            const r = this.outQ.shift()
            pkt.blitAt(n, r, 0, r.length)
            n += r.length
        }
        // smallest remaining first: small answers go out at once, bulk fills the rest.
        // Work on a snapshot: other fibers may add, rewind or drop streams while we await a read.
        const list = this.streams.slice()
        if (list.length > 1) list.sort((a, b) => a.res.length - a.sendOff - (b.res.length - b.sendOff))
        for (const c of list) {
            if (MAX_PAYLOAD - n <= 12) break
            if (this.streams.indexOf(c) < 0 || !c.res || c.sendOff < 0) continue
            const gen = c.gen
            const off = c.sendOff
            const src = c.res
            const first = !c.resultSent
            const hdr = first ? 11 : 10
            const room = Math.min(MAX_PAYLOAD - n - hdr, src.length - off)
            let chunk: Buffer = null
            if (room > 0) chunk = await src.read(off, room)
            // the call may have been rewound, released or cancelled while reading
            if (c.gen !== gen || c.res !== src || c.sendOff !== off) continue
            const clen = chunk ? chunk.length : 0
            if (MAX_PAYLOAD - n < hdr + clen) break // something else took the room meanwhile
            if (first) {
                pkt[n] = K_RESULT
                pkt[n + 1] = 9 + clen
                pkt.setAt(n + 2, "u32", c.id)
                pkt[n + 6] = Status.Ok
                pkt.setAt(n + 7, "u32", src.length)
                if (clen) pkt.blitAt(n + 11, chunk, 0, clen)
                c.resultSent = true
            } else {
                pkt[n] = K_RDATA
                pkt[n + 1] = 8 + clen
                pkt.setAt(n + 2, "u32", c.id)
                pkt.setAt(n + 6, "u32", off)
                if (clen) pkt.blitAt(n + 10, chunk, 0, clen)
            }
            n += hdr + clen
            c.sendOff = off + clen
            c.t = ds.millis()
            if (c.sendOff >= src.length || clen === 0) this.dropStream(c)
        }
        if (n === 0) return null
        return pkt.slice(0, n)
    }
}

/** released, or a small answer already sent: may leave the ring */
function settled(c: Call) {
    return c.state === ST_GONE || (c.state === ST_DONE && c.small && c.sendOff < 0)
}

function bufferSource(b: Buffer): ByteSource {
    return {
        length: b.length,
        read: async (offset: number, length: number) => b.slice(offset, Math.min(b.length, offset + length)),
    }
}

function hex32(v: number) {
    let s = ""
    for (let i = 7; i >= 0; --i) s += "0123456789abcdef"[(v >>> (i * 4)) & 15]
    return "0x" + s
}

let runtime: RosServicesServer = null

/**
 * Serves `handler` as the ROS service `name` (a leading `/` is added when missing) of type `type`,
 * like rclpy's `create_service`. The handler may be async and slow: each call runs in its own fiber.
 * Throw `ServiceError(status, message)` to answer with that status; any other exception is answered
 * as `Internal` with its message. Allocates one small record per service; starts the shared Jacdac
 * server and its sender fiber on first use. Throws if `name` is already served.
 */
export function createService<Req, Res>(
    type: ServiceType<Req, Res>,
    name: string,
    handler: (req: Req) => Promise<Res> | Res
) {
    if (!runtime) runtime = new RosServicesServer()
    let n = name
    if (n.length === 0 || n[0] !== "/") n = "/" + n
    for (const e of runtime.entries) if (e.name === n) throw new Error("service " + n + " already exists")
    runtime.entries.push({ name: n, type, handler: handler as (req: any) => Promise<any> })
    runtime.start()
    runtime.listChanged()
}

/** Stops serving `name`; calls already running finish. Returns false if it was not served. */
export function removeService(name: string): boolean {
    if (!runtime) return false
    let n = name
    if (n.length === 0 || n[0] !== "/") n = "/" + n
    for (let i = 0; i < runtime.entries.length; ++i)
        if (runtime.entries[i].name === n) {
            runtime.entries.insert(i, -1)
            runtime.listChanged()
            return true
        }
    return false
}

/** Counters for diagnostics and the benchmark: calls tracked and in flight. */
export function serviceStats(): { tracked: number; inFlight: number; queued: number } {
    if (!runtime) return { tracked: 0, inFlight: 0, queued: 0 }
    return { tracked: runtime.calls.length, inFlight: runtime.inFlight(), queued: runtime.outQ.length }
}
