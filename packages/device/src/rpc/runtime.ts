// The service runtime under the links (protocol v2, docs/protocol.md): the record parser, the list of
// links and the clock. Each link imports this file and registers its senders in `links`: the Jacdac
// link (rpc/server.ts, started by createService) and the MQTT link (net/mqtt.ts, started by the
// program); this file imports neither, and neither imports the other. A record that cannot be parsed
// is answered with a (rate-limited) ERROR on the link it came from and never changes any call's state.
import * as ds from "@devicescript/core"
import { bare, entries, find, mfBegin, onCancel, onData, onDone, onPoll, open, reject, sweep, use, ack, admit } from "./calls"
import { Entry, Out, Session, cfg, errText, fullName, isGone } from "./core"
import { Sender } from "./sender"
import { Kind, Limit, RecMin, RecOff, Status } from "../gen/wire"

/**
 * The least body length of CALL, CALLX, DATA, CANCEL, POLL, DONE (RecMin.Call … RecMin.Done: 25,
 * 19, 12, 8, 12, 8) as one table: a chain of comparisons costs more code. Checked against
 * protocol/protocol.json by test/host/records_device.test.ts.
 */
const NEED = hex`19 13 0c 08 0c 08`

/** (the MQTT link's parked sessions' link: one function in the image for its four methods) */
export function noop() {}

/**
 * The runtime's clock: the sweep every 250 ms, in one fiber of its own. Not setInterval: that
 * brings DeviceScript's timer queue (about 800 bytes of code) into every firmware, one whose
 * program uses no timer too. `sweep` catches its own errors.
 */
async function tick() {
    while (true) {
        await ds.sleep(250)
        sweep()
    }
}

/**
 * Every link's senders, as the links start: the Jacdac link's (rpc/server.ts), the MQTT link's
 * peers' (net/mqtt.ts).
 */
export const links: Sender[] = []
/** an announcement is due (`soon` runs) */
let annTimer: boolean
/** the clock runs */
let ticking: boolean

/** Starts the runtime's clock (once). Each link calls it when it starts; it starts no link. */
export function startRuntime() {
    if (ticking) return
    ticking = true
    tick.start()
}

/** the service list changed: new list version, one announcement for a burst of changes */
export function listChanged() {
    cfg.listVersion = (cfg.listVersion + 1) & 0xffff
    if (annTimer) return
    annTimer = true
    soon.start()
}

/** the announcement after a burst of list changes (20 ms after the first) */
async function soon() {
    await ds.sleep(20)
    annTimer = false
    announce()
}

/** HELLO and the service list on every link */
export function announce() {
    for (const l of links) l.announce(true)
}

/**
 * Parses the frame in `d` from `from` to `end` (the records a host sent on `link`). Never throws:
 * a frame that breaks the parser is answered ERROR on its link, nothing else (on every link; an
 * exception escaping a Jacdac command would restart the program).
 */
export function parse(d: Buffer, from: number, end: number, link: Out) {
    try {
        if (!d || end <= from) {
            link.error(0, "empty frame")
            return
        }
        let o = from
        while (o < end) {
            if (o + Limit.RecordHeader > end) {
                link.error(o - from, "truncated record header")
                return
            }
            const kind = d[o]
            const len = d.getAt(o + 1, "u16")
            const b = o + Limit.RecordHeader
            if (b + len > end) {
                link.error(o - from, `record ${kind} overruns the frame`)
                return
            }
            record(kind, d, b, len, link, o - from)
            o = b + len
        }
    } catch (e) {
        link.error(0, "frame: " + errText(e))
    }
}

/** one record of `len` body bytes at `b`; `at`: its offset in the frame (for ERROR records) */
function record(kind: number, d: Buffer, b: number, len: number, link: Out, at: number) {
    if (kind === Kind.LIST) {
        link.announce()
        return
    }
    if (kind === Kind.OPEN) {
        if (len < RecMin.Open) link.error(at, "OPEN too short")
        else open(d.getAt(b, "u32"), d[b + RecOff.OpenVersion], link)
        return
    }
    // every other record names a call: session u32 (at 0), seq u32, then its own fields (the
    // same offsets in CALL, CALLX, DATA, CANCEL, POLL, DONE: RecOff.CallSeq is RecOff.DataSeq…);
    // NEED: the least body length of CALL, CALLX, DATA, CANCEL, POLL, DONE (undefined: not a call
    // record; an index past the table, or below it, which the VM takes as unsigned, reads undefined)
    const need = NEED[kind - Kind.CALL]
    if (!need) {
        link.error(at, "unknown record kind " + kind)
        return
    }
    if (len < need) {
        link.error(at, `record ${kind} too short (${len} < ${need})`)
        return
    }
    const s = use(d.getAt(b, "u32"), link)
    if (!s) return
    const seq = d.getAt(b + RecOff.CallSeq, "u32")
    if (kind === Kind.DATA) onData(s, seq, d.getAt(b + RecOff.DataOffset, "u32"), d, b + RecOff.DataData, len - RecOff.DataData)
    else if (kind === Kind.POLL) onPoll(s, seq, d.getAt(b + RecOff.PollHave, "u32"))
    else if (kind === Kind.CANCEL) onCancel(s, seq)
    else if (kind === Kind.DONE) {
        for (let i = RecOff.DoneSeqs; i + 4 <= len; i += 4) onDone(s, d.getAt(b + i, "u32"))
    } else {
        // CALL (service by name and hash) or CALLX (by index in the list the host holds)
        // session, seq, ack and timeoutMs are at the same offsets in CALL and CALLX
        ack(s, d.getAt(b + RecOff.CallAck, "u32"))
        if (isGone(s, seq) || find(s, seq)) {
            // a resent CALL: never run twice, answer like a POLL from the start (STATUS(gone) once
            // its answer is released)
            onPoll(s, seq, 0)
            return
        }
        const timeoutMs = d.getAt(b + RecOff.CallTimeoutMs, "u32")
        let e: Entry = null
        let total = len - RecOff.CallxData
        let db = b + RecOff.CallxData
        if (kind === Kind.CALLX) {
            // (an index past the list reads undefined)
            if (d.getAt(b + RecOff.CallxListVersion, "u16") === cfg.listVersion) e = entries[d[b + RecOff.CallxIndex]]
            if (!e) {
                bare(s, seq, Kind.RESULT, Status.Stale)
                return
            }
        } else {
            const hash = d.getAt(b + RecOff.CallHash32, "u32")
            total = d.getAt(b + RecOff.CallTotal, "u32")
            const nlen = d[b + RecOff.CallNameLen]
            db = b + RecOff.CallName + nlen
            if (RecOff.CallName + nlen > len) {
                link.error(at, "CALL name overruns the record")
                return
            }
            const name = fullName(d.slice(b + RecOff.CallName, db).toString())
            for (const x of entries) if (x.name === name) e = x
            if (!e) {
                reject(s, seq, Status.Unimplemented, "no service " + name)
                return
            }
            if (e.type.hash !== hash) {
                reject(s, seq, Status.TypeMismatch, `${name} has type ${e.type.name} (hash32 ${e.type.hash}), the call used hash32 ${hash}`)
                return
            }
        }
        const dlen = len - (db - b)
        if (total > cfg.maxRequestBytes) {
            reject(s, seq, Status.ResourceExhausted, `request of ${total} bytes exceeds maxRequestBytes=${cfg.maxRequestBytes}`)
            return
        }
        if (dlen > total) {
            link.error(at, "CALL carries more data than its total length")
            return
        }
        if (dlen < total)
            if (!mfBegin) {
                reject(s, seq, Status.ResourceExhausted, `request of ${total} bytes not whole in its CALL: no DATA records here`)
                return
            }
        admit(s, seq, timeoutMs, e, total, d, db, dlen)
    }
}
