// The multi-frame paths of the call runtime (protocol v2, docs/protocol.md "Loss recovery and flow
// control"): requests received in DATA records (windowed, acknowledged, gaps asked for, stalls
// dropped; an upload's trailing byte array in pieces) and responses streamed in RESULT + RDATA
// records from a ByteSource (rewound from the host's `have`). A program carries this file only when
// it uses a service type whose request or response can exceed one record: `robot gen` writes such a
// type's descriptor (and every action's) as `multiFrame(serviceType(...))`, and that call installs
// these paths in the call table. A program whose types all fit one record has none of it: a CALL
// that does not carry its whole request is refused (calls.ts `record`, resource_exhausted) and every
// answer goes in one RESULT record (calls.ts `finish`). Measured: 2.3 KB of the least firmware.
import * as ds from "@devicescript/core"
import { CdrWriter, Segments, finishMessage } from "../cdr/cdr"
import { ByteSource, Bytes } from "../cdr/types"
import { Call, PIECE, PIECE_BITS, errText, stallMs } from "./core"
import { due, fail, installMultiFrame, ready } from "./calls"
import { head } from "./sender"
import { CallState, Kind, Limit, RecMin, RecOff, Status } from "../gen/wire"

/**
 * Installs the multi-frame paths and returns `t` (a service or action descriptor): written by
 * `robot gen` around the descriptor of every type whose request or response can exceed one record.
 */
export function multiFrame<T>(t: T): T {
    installMultiFrame(begin, more, answer, stalled, rewind, chunk, rest, weight)
    return t
}

/** a request whose bytes do not all come in its CALL: its buffers and its first `dlen` bytes of `d` at `db` */
function begin(c: Call, d: Buffer, db: number, dlen: number) {
    // an upload's trailing bytes go to pieces of PIECE bytes, each taken when its first byte
    // arrives (put): one buffer of 20 KiB may not be found in a heap split by other calls and the
    // runtime's read events, where twenty of 1 KiB are (an OutOfMemory restart before issue 16's
    // fix: conformance "uploads"); the host sends what its CALL did not carry once told (STATUS
    // receiving)
    const at = c.entry.type.tail
    if (at > 0 && c.total > at) {
        c.req = Buffer.alloc(at)
        c.tail = []
    } else c.req = Buffer.alloc(c.total)
    put(c, 0, d, db, dlen)
    c.got = dlen
    c.ackAt = dlen
    // a request still to come is acknowledged at once: the host sends it only once admitted
    due(c, CallState.Receiving)
}

/** DATA for `c`, a call still being received */
function more(c: Call, off: number, d: Buffer, db: number, n: number) {
    const s = c.s
    if (off > c.got) {
        // a gap: ask once per missing offset (the host also polls on silence)
        if (c.nackAt !== c.got) {
            c.nackAt = c.got
            due(c, CallState.Gap)
        }
        return
    }
    if (off + n > c.total) {
        s.out.error("DATA beyond the request's total length", 0)
        return
    }
    const end = off + n
    if (end > c.got) {
        const skip = c.got - off
        put(c, c.got, d, db + skip, n - skip)
        c.got = end
        // acknowledge each half window so the host may send more (flow control); the stall clock
        // (c.t) restarts only then: a trickle of bytes does not keep a slot (sweep, stallMs)
        if (c.got < c.total)
            if (c.got - c.ackAt >= s.out.win >> 1) {
                c.ackAt = c.got
                c.t = ds.millis()
                due(c, CallState.Receiving)
            }
    }
    if (c.got === c.total) {
        // the trailing byte array as received, for the decoder (never copied)
        // (a loop, not `map`: the only `map` in an image brings the runtime's polyfill)
        if (c.tail) {
            const lens: number[] = []
            for (const b of c.tail as Buffer[]) lens.push(b.length)
            c.tail = new Segments(c.tail, lens, c.total - c.req.length)
        }
        ready(c)
    }
}

/** copies `n` bytes of `d` from `db` into the request at `off` (across `req` and the tail's pieces) */
function put(c: Call, off: number, d: Buffer, db: number, n: number) {
    const at = c.req.length
    while (n > 0) {
        let k = n
        if (off < at) {
            if (k > at - off) k = at - off
            c.req.blitAt(off, d, db, k)
        } else {
            // (bytes arrive in order: a piece is new only when its first byte comes)
            const o = (off - at) & (PIECE - 1)
            let b = c.tail[(off - at) >> PIECE_BITS]
            if (!b) c.tail.push((b = Buffer.alloc(Math.min(PIECE, c.total - off))))
            if (k > PIECE - o) k = PIECE - o
            b.blitAt(o, d, db, k)
        }
        off += k
        db += k
        n -= k
    }
}

/** the encoded response: one Buffer up to Limit.SmallResponse bytes (sent in one RESULT), else a stream */
async function answer(w: CdrWriter): Promise<Bytes> {
    const src = finishMessage(w)
    return src.length <= Limit.SmallResponse ? await src.read(0, src.length) : src
}

/** a request still being received: dropped at its deadline, or when half a window (or its rest) took longer than stallMs */
function stalled(c: Call, now: number) {
    if (now > c.deadline) fail(c, Status.DeadlineExceeded, "the request was still incomplete at its deadline")
    else if (now - c.t > stallMs) fail(c, Status.DeadlineExceeded, "the request stalled (half a window took longer than stallMs)")
}

/** (re)starts sending the streamed response from byte `off` (0 also resends RESULT) */
function rewind(c: Call, off: number) {
    if (!c.res) return
    if (off > c.res.length) off = c.res.length
    // (undefined before the first rewind: `| 0` makes it 0)
    c.gen = (c.gen + 1) | 0
    c.sendOff = off
    if (off === 0) c.resultSent = false
    c.t = ds.millis()
    c.s.out.wake()
}

/** streams with at most this many bytes left go with the small answers (the sender's `fill`) */
const SMALL_STREAM = 160

/** what sending `c`'s stream is to its sender (sender.ts `work`): 0 nothing, 1 a small stream, 2 a bulk one */
function weight(c: Call): number {
    return c.sendOff < 0 ? 0 : c.res.length - c.sendOff > SMALL_STREAM ? 2 : 1
}

/** the bulk streams of `list` (round-robin from `rr`) fill the packet up to `max` (the sender's `fill`) */
async function rest(pkt: Buffer, n: number, list: Call[], rr: number, max: number): Promise<number> {
    const k = list.length
    for (let j = 0; j < k && max - n > Limit.RecordHeader + RecMin.Result; ++j) {
        const c = list[(rr + j) % k]
        if (c.res) n = await chunk(pkt, n, c, max, false)
    }
    return n
}

/**
 * the next piece of `c`'s streamed response (RESULT first, then RDATA), within `limit`, if it is
 * streaming (and `small`: if at most SMALL_STREAM bytes are left); returns the new end
 */
async function chunk(pkt: Buffer, n: number, c: Call, limit: number, small: boolean): Promise<number> {
    const gen = c.gen
    const off = c.sendOff
    const src = c.res
    if (off < 0 || (small && src.length - off > SMALL_STREAM)) return n
    const first = !c.resultSent
    const hdr = first ? Limit.RecordHeader + RecMin.Result : Limit.RecordHeader + RecMin.Rdata
    const room = Math.min(limit - n - hdr, src.length - off)
    if (room < 0 || (room === 0 && !first)) return n
    let data: Buffer = null
    if (room > 0) {
        try {
            data = await src.read(off, room)
            if (!data || data.length !== room) throw new Error(`gave ${data ? data.length : 0} bytes at ${off}, expected ${room}`)
        } catch (e) {
            // a failing source fails its own call only
            if (c.res === src) fail(c, Status.Internal, "response: " + errText(e))
            return n
        }
    }
    // the call may have been rewound, released or cancelled while reading
    if (c.gen !== gen || c.res !== src || c.sendOff !== off) return n
    const len = data ? data.length : 0
    if (first) {
        n = head(pkt, n, Kind.RESULT, c, RecMin.Result + len)
        pkt[n] = Status.Ok
        pkt.setAt(n + (RecOff.ResultTotal - RecOff.ResultStatus), "u32", src.length)
        n += RecOff.ResultData - RecOff.ResultStatus
        c.resultSent = true
    } else {
        n = head(pkt, n, Kind.RDATA, c, RecMin.Rdata + len)
        pkt.setAt(n, "u32", off)
        n += RecOff.RdataData - RecOff.RdataOffset
    }
    if (len > 0) pkt.blitAt(n, data, 0, len)
    n += len
    c.sendOff = off + len
    c.t = ds.millis()
    if (c.sendOff >= src.length) c.sendOff = -1
    return n
}
