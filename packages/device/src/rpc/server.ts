// The record parser and the Jacdac carrier of the record protocol (protocol v2, docs/protocol.md):
// the `rosServices` server (services/rosservices.md) takes `frame` commands, splits them into
// records and hands each to the call table; the Jacdac link's sender answers with `frame_out`
// reports. Other carriers (net/mqtt.ts, started by the program, never by this file) hand their
// frames to `parse` with their own link. A record that cannot be parsed is answered with a (rate-limited) ERROR on the link it came
// from and never changes any call's state.
import * as ds from "@devicescript/core"
import { bounce, entries, find, mfBegin, onCancel, onData, onDone, onPoll, open, reject, sweep, use, ack, admit } from "./calls"
import { Entry, Out, Session, cfg, errText, isGone } from "./core"
import { Sender } from "./sender"
import { Kind, Limit, RecMin, RecOff, Status } from "./wire"

/**
 * The least body length of CALL, CALLX, DATA, CANCEL, POLL, DONE (RecMin.Call … RecMin.Done: 25,
 * 19, 12, 8, 12, 8) as one table: a chain of comparisons costs more code. Checked against
 * protocol/protocol.json by test/host/records_device.test.ts.
 */
const NEED = hex`19 13 0c 08 0c 08`

type DsServer = typeof ds & {
    _onServerPacket(pkt: ds.Packet): Promise<void>
    _serverSend(serviceIndex: number, pkt: ds.Packet): Promise<void>
}
const dss = ds as DsServer

// The Jacdac server, without @devicescript/server (its Server class compiles every method, and
// sendEvent pulls in a SequentialWorker: about 1.7 KB of code the robot never runs). The packets in
// and out are those of its `startServer` with one server: service 0 is the control service (its
// announce report every 500 ms, the identity registers), service 1 is rosServices (command
// `frame`, action `echo`, instanceName `rosServices_0`); statusCode reads [0, 0]; anything else
// is answered "not implemented". Handlers by packet name (`set_<name>`: a register write).
let handlers: any[]
/** the control service's restart counter (announce flags) */
let restarts = 1

function statusCode() {
    return [0, 0]
}
/** (also the MQTT link's parked sessions' link: one function in the image, not two) */
export function noop() {}
/** the product identifier, for both the product and the bootloader register (one function, not two) */
function product() {
    return 0x355724dd
}

/** Starts the Jacdac server of `rt` (once). */
function startJacdac(rt: Runtime) {
    handlers = [
        {
            announce: () => {
                if (restarts < ds.ControlAnnounceFlags.RestartCounterSteady) restarts++
                // flags, packet count, reserved, then the class of each service after the control
                return [restarts | ds.ControlAnnounceFlags.SupportsACK, 0, 0, ds.RosServices.spec.classIdentifier]
            },
            noop,
            identify: noop,
            reset: () => {
                ds.reboot()
            },
            setStatusLight: noop,
            deviceDescription: () => "DeviceScript user-provided servers",
            productIdentifier: product,
            bootloaderProductIdentifier: product,
            firmwareVersion: () => ds._dcfgString("@version"),
            uptime: () => ds.millis() * 1000,
            statusCode,
            set_statusCode: noop,
        },
        {
            /** Command `frame`: run by the dispatcher in a fresh fiber for every host packet. */
            frame: async (data: Buffer) => {
                parse(data, 0, data ? data.length : 0, rt.out)
            },
            /** Action `echo`: the raw one-packet round trip (link diagnostics and the benchmark). */
            echo: (data: Buffer) => data,
            statusCode,
            set_statusCode: noop,
            instanceName: () => ds.RosServices.spec.name + "_0",
        },
    ]
    dss._onServerPacket = onServerPacket
}

/**
 * The runtime's clock: the sweep every 250 ms and the control service's announce every 500 ms, in
 * one fiber of its own. Not setInterval/setTimeout: those bring DeviceScript's timer queue (about
 * 800 bytes of code) into every firmware, one whose program uses no timer too. Nothing escapes it.
 */
async function tick() {
    for (let i = 1; ; i++) {
        await ds.sleep(250)
        sweep()
        if (i & 1) continue
        try {
            await dss._serverSend(0, ds.Control.spec.lookup("announce").response.encode(handlers[0].announce()))
        } catch (e) {
            console.log("rosservices: announce: " + errText(e))
        }
    }
}

/** the announcement after a burst of list changes (20 ms after the first) */
async function soon(rt: Runtime) {
    await ds.sleep(20)
    rt.annTimer = false
    rt.announce()
}

/** every packet for the server; nothing escapes it (an exception here would restart the program) */
async function onServerPacket(pkt: ds.Packet) {
    try {
        if (pkt.isReport) return
        const i = pkt.serviceIndex
        const h = handlers[i]
        if (!h) return
        ;(i ? ds.RosServices.spec : ds.Control.spec).assign(pkt)
        const sp = pkt.spec
        if (sp) {
            const m = h[(pkt.isRegSet ? "set_" : "") + sp.name]
            if (m) {
                if (pkt.isRegSet) {
                    await m(pkt.decode())
                    return
                }
                if (pkt.isRegGet) {
                    const r = await m()
                    if (r !== undefined) {
                        await dss._serverSend(i, sp.encode(r))
                        return
                    }
                } else if (pkt.isAction) {
                    const v = await m(pkt.decode())
                    if (sp.response) await dss._serverSend(i, sp.response.encode(v))
                    return
                }
            }
        }
        await dss._serverSend(i, pkt.notImplemented())
    } catch (e) {
        console.log("rosservices: packet: " + errText(e))
    }
}

export class Runtime {
    /** the Jacdac link */
    out: Sender
    /** every link: the Jacdac link first, then the peers of other links (net/mqtt.ts registers its own) */
    links: Sender[]
    annTimer: boolean

    /** Starts the Jacdac link and the sweep timer (once: {@link startRuntime} makes it). */
    constructor() {
        // Jacdac: 236-byte packets, the runtime's 20 ms send slot, a window of four packets
        this.out = new Sender(Limit.JacdacPayload, null, 20, cfg.window)
        this.links = [this.out]
        const spec = ds.RosServices.spec.lookup("frameOut")
        this.out.send = async (p: Buffer, n: number) => {
            await dss._serverSend(1, spec.encode(n === p.length ? p : p.slice(0, n)))
        }
        startJacdac(this)
        tick.start()
    }

    /** the service list changed: new list version, one announcement for a burst of changes */
    listChanged() {
        cfg.listVersion = (cfg.listVersion + 1) & 0xffff
        if (this.annTimer) return
        this.annTimer = true
        soon.start(this)
    }

    /** HELLO and the service list on every link */
    announce() {
        for (const l of this.links) l.announce(true)
    }
}

/** The runtime once {@link startRuntime} made it (undefined before). */
export let current: Runtime

/**
 * Makes and starts the runtime (once) and returns it: the Jacdac link and the sweep timer. Other
 * links (net/mqtt.ts) call it and add their peers to `links`; this file imports none of them.
 */
export function startRuntime(): Runtime {
    if (!current) {
        current = new Runtime()
    }
    return current
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
    // NEED: the least body length of CALL, CALLX, DATA, CANCEL, POLL, DONE (0: not a call record)
    const need = kind > Kind.OPEN && kind < Kind.LIST ? NEED[kind - Kind.CALL] : 0
    if (need === 0) {
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
    } else call(kind, s, seq, d, b, len, at)
}

/** CALL (service by name and hash) or CALLX (by index in the list the host holds) */
function call(kind: number, s: Session, seq: number, d: Buffer, b: number, len: number, at: number) {
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
        const idx = d[b + RecOff.CallxIndex]
        if (d.getAt(b + RecOff.CallxListVersion, "u16") !== cfg.listVersion || idx >= entries.length) {
            bounce(s, seq, Status.Stale)
            return
        }
        e = entries[idx]
    } else {
        const hash = d.getAt(b + RecOff.CallHash32, "u32")
        total = d.getAt(b + RecOff.CallTotal, "u32")
        const nlen = d[b + RecOff.CallNameLen]
        db = b + RecOff.CallName + nlen
        if (RecOff.CallName + nlen > len) {
            s.out.error(at, "CALL name overruns the record")
            return
        }
        let name = d.slice(b + RecOff.CallName, db).toString()
        if (name[0] !== "/") name = "/" + name
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
        s.out.error(at, "CALL carries more data than its total length")
        return
    }
    if (dlen < total && !mfBegin) {
        reject(s, seq, Status.ResourceExhausted, `request of ${total} bytes not whole in its CALL: no DATA records here`)
        return
    }
    admit(s, seq, timeoutMs, e, total, d, db, dlen)
}
