// The robot's second link: the record protocol v2 over an MQTT 3.1.1 broker (docs/mqtt.md), beside
// Jacdac. A lean client over the runtime's socket primitives (not `startMQTTClient` of
// @devicescript/net, which drops the SUBSCRIBE, hex-formats every packet and died publishing 4 KiB;
// see DEVICESCRIPT.md): one socket, incoming packets parsed from the byte stream with a bounded
// buffer, outgoing packets paced by the broker's PUBACKs.
//
// Incoming: each chunk the runtime hands over (a fiber per chunk: 128-byte reads on the ESP32, the same in
// the simulator: host/sim/sockreads.cjs) is parsed at once, in that fiber, into the call table: no chunk waits in a
// queue, and a packet split across chunks is gathered in one buffer of at most `inMax` bytes
// (charged to the call budget while it is held). Nothing there suspends, so nothing piles up.
// Outgoing: the socket tells only open, data, close and error (runtime/impl_socket.c), never that a
// write went out, and each write is copied into the runtime's queue (50 entries on the ESP32, a
// panic when memory runs out: main/sock.c). So every PUBLISH goes at QoS 1, and the broker's
// PUBACK, which it sends once it has read the PUBLISH (and, MQTT 3.1.1 4.6, in order), tells that
// everything written before it has left: at most `winMax` bytes are written and not yet
// acknowledged (a sender waits; a pong that does not fit is dropped and counted). Every write is
// under 4096 bytes (the ESP32's TLS asserts a record under MBEDTLS_SSL_OUT_CONTENT_LEN), and over
// TLS the window stays under the ESP32's 5,744-byte TCP send buffer, so the runtime's TLS write
// never meets WANT_WRITE (which it mishandles: docs/mqtt.md).
//
// The socket: `ds._socketOpen/_socketWrite/_socketClose` and the `ds._socketOnEvent` callback are
// what the `Socket` class of @devicescript/net wraps (devicescript runtime/impl_socket.c, the same
// in the VM and on the ESP32; their names are built-in strings of the bytecode format). Used
// directly they cost about 1 KB less code than the class, every method of which is compiled.
//
// Every host id (`robots/<name>/in/<host>`) is a link of its own, a "peer": a Sender that publishes
// to `robots/<name>/out/<host>`, so sessions opened by one host are answered to it only. Peers are
// few (MAX_PEERS); a new host takes the least recently used peer with no call in flight (its
// sessions are parked, bound to that host's peer again when it is back; the session table may give
// them up meanwhile like any session) or, when every peer is working, its frame is dropped. After the socket closes, errs, or a CONNACK/PINGRESP does not come, the link reconnects
// by itself with exponential backoff, forever; sessions and running calls are kept.
//
// Settings (read with the settings service, as lib/settings.ts `settingText` gives them: a `.env`
// value's JSON quotes taken off, raw text as it is): ROBOT_NAME, MQTT_URL, MQTT_USER
// (default: the name), MQTT_PASS. Until MQTT_URL is set the link is off; the settings are read
// again now and then (every 10 s at most), so a host can set them while the program runs (the
// simulator rig does), MQTT_URL last.
// (Conditions without an else are nested ifs rather than `&&`: smaller code, see rpc/calls.ts.
// Failures are thrown as text, not as Error objects (5 bytes less each): every catch here reads
// them through errText, which gives a string back as it is.)
import * as ds from "@devicescript/core"
import { settingText } from "../lib/settings"
import { Out, Session, budget, copy, errText, links, maxSessions } from "../rpc/core"
import { Sender } from "../rpc/sender"
import { chargeLink, dropSession, linkBusy, sessions } from "../rpc/calls"
import { noop, parse, startRuntime } from "../rpc/runtime"
import { Limit } from "../gen/wire"

/** hosts served at once over MQTT (each costs PEER_HEAP, so few) */
const MAX_PEERS = 3
/**
 * Heap a peer holds for as long as the link runs (its Sender, fiber and topic), charged to the call
 * budget when it is made: free heap measured with the test firmware's heap probe (in 256-byte
 * steps) was 42,496 bytes with the link up, 40,960 with one peer, 35,840 with four. Uncharged, the
 * soak's floods on both links ran the program out of memory with the budget's 24 KB in use.
 */
const PEER_HEAP = 1600
// (the keep-alive announced in CONNECT is 30 s, written in its bytes; a PINGREQ goes out every half of it)
/** half the keep-alive, ms (written as the number: the compiler computes `30 * 1000 / 2` at run time) */
const PING_MS = 15000
/** how long a CONNACK, a PINGRESP or a PUBACK for a full window may take (ms) */
const REPLY_MS = 10000
/** largest single socket write: a TLS record on the ESP32 must stay under 4096 bytes */
const PIECE = 4000
/** QoS 1 PUBLISHes written and not yet acknowledged, at most (each is 1-2 of the runtime's 50 queue entries) */
const MAX_UNACKED = 32

/** A peer: the Sender of one host id, with the host's fields (one object, no wrapper to read through). */
interface Peer extends Sender {
    /** the host's id, the last level of its topics */
    id: string
    /** `robots/<name>/out/<id>` */
    topic: string
    /** last frame from the host (ms) */
    used: number
}

/** A parked session, with the topic of the host it belongs to (`robots/<name>/out/<host>`). */
interface Parked extends Session {
    topic: string
}

// (module state without initializers: each is set before it is read, and an initializer is code)
/** the link started */
let started: boolean
/** the runtime's socket primitives (see the header) */
type Net = typeof ds & {
    _socketOpen(host: string, port: number): number
    _socketClose(): number
    _socketWrite(buf: Buffer): number
    _socketOnEvent: (event: string, arg: Buffer | string) => void
}
/** why the stream from the broker cannot be read on ("": it can) */
let fault: string
/** bytes written on the connection, and bytes the broker's PUBACKs acknowledged (cumulative) */
let sent: number
let acked: number
/**
 * `sent` after each QoS 1 PUBLISH not acknowledged yet, oldest first; a new array for each
 * connection (its identity: a frame waiting for room is dropped when it changes), null while
 * disconnected
 */
let ends: number[]
/** bytes written and not acknowledged, at most (16 KB; 4 KB over TLS: see the header) */
let winMax: number
/** next PUBLISH packet id (1-65535) */
let pid = 0
/** pongs dropped for want of room (logged now and then) */
let pongsDropped: number
/** the socket opened (its "open" event came, and CONNECT was written) */
let opened: boolean
/** the CONNECT packet (see out) */
let hello: Buffer
/** why the socket ended ("": it has not) */
let ended: string
/** the connection's fiber (mqttMain), while it waits for the socket */
let waiter: ds.Fiber
/** CONNACK received on the connection: frames may be published */
let up: boolean
/** `robots/<name>/` */
let base: string
/** `robots/<name>/in/` and `robots/<name>/echo/` */
let inT: string
let echoT: string
const peers: Peer[] = []
/**
 * The link of a parked session (its host's peer went to another host): sends nothing. (Its `win`
 * and `dropped` are never read: records reach a session only through its own link, and only a
 * Sender counts what it drops.)
 */
const PARKED = { wake: noop, transient: noop, error: noop, announce: noop } as Partial<Out> as Out
/** parked sessions, oldest first: bound to the host's peer again when it is back */
const parked: Parked[] = []
/** payload bytes per frame (HELLO maxRecord) and the largest PUBLISH accepted (remaining length) */
let frameMax: number
let inMax: number
/** when the last "hosts have calls in flight" line was logged (undefined: never) */
let peerLogAt: number

// incoming stream (each reset when a connection ends; undefined reads as 0 before the first):
// bytes of the fixed header read (0: none), the packet's type byte and remaining length, the
// body being gathered (null: none, or the packet is skipped), its bytes still to come
let hn: number
let ptype: number
let len: number
let body: Buffer
let need: number
/** until CONNACK: its deadline; then the next PINGREQ, or the deadline of the PINGRESP (ms) */
let due: number
let pingOut: boolean
let pingAt: number
/** when the CONNACK came (undefined: not yet) */
let upAt: number

/**
 * Serves this program's services over MQTT too, beside Jacdac (once; docs/mqtt.md): in the
 * background it waits for the MQTT_URL setting, connects, serves and reconnects. Starts the
 * runtime under the links (rpc/runtime.ts) if no `createService` did yet, not the Jacdac link. Never throws; failures are logged and retried.
 * A firmware that never calls it carries none of the MQTT link's code.
 */
export function startMqttLink() {
    if (started) return
    started = true
    startRuntime()
    mqttMain.start()
}

async function mqttMain() {
    try {
        let url: string
        for (let wait = 1000; !(url = await settingText("MQTT_URL")); wait = Math.min(wait * 2, 10000)) {
            if (wait === 1000) console.log("mqtt: off (no MQTT_URL setting)")
            await ds.sleep(wait)
        }
        let name = await settingText("ROBOT_NAME")
        if (!name) name = ds.deviceIdentifier("self")
        let user = await settingText("MQTT_USER")
        if (!user) user = name
        const pass = await settingText("MQTT_PASS")
        // mqtt://host[:port] or mqtts://host[:port] (TLS)
        // (indexOf, not startsWith: a function more in the image for two prefix checks)
        const tls = url.indexOf("mqtts://") === 0
        // (after the first "//": at 5 or 6 in a URL of either scheme, and any other is refused
        // below; each slice's argument computed first, or the method is saved to a temporary)
        let i = url.indexOf("//") + 2
        let host = url.slice(i)
        // (up to a "/", if any)
        i = (host + "/").indexOf("/")
        host = host.slice(0, i)
        let port = 1883
        if (tls) port = 8883
        i = host.indexOf(":")
        if (i >= 0) {
            port = parseInt(host.slice(i + 1))
            host = host.slice(0, i)
        }
        // (a flag set by single tests: smaller code than `||`)
        let bad = !(port > 0)
        if (!host) bad = true
        if (!tls) if (url.indexOf("mqtt://") !== 0) bad = true
        if (bad) {
            console.log(`mqtt: off (bad MQTT_URL '${url}')`)
            return
        }
        // the host tools' rule (host client/names.ts ROBOT_NAME), which the embedded broker holds
        // identities to: a name outside it could be served by another broker but never addressed
        bad = name.length > 32
        for (let k = 0; k < name.length; k++) if ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-".indexOf(name[k]) < 0) bad = true
        if (bad) {
            console.log(`mqtt: off (ROBOT_NAME '${name}' is not 1-32 characters of [A-Za-z0-9_-])`)
            return
        }
        base = "robots/" + name + "/"
        inT = base + "in/"
        echoT = base + "echo/"
        // frames from the memory budget (clamp(budget / 12, 236, 4096): 2048 by default). With
        // 3072 a 256 KiB answer every 250 ms to a host that read and another that did not ran the
        // heap out (a frame and the piece of the answer read into it are in the heap at once,
        // beside answers held for hosts); 1024 held but streamed at 1.6 MB/s in the VM, 2048 at 4.6.
        frameMax = Math.max(Limit.JacdacPayload, Math.min(4096, Math.floor(budget / 12)))
        inMax = frameMax + 128
        winMax = 16384
        if (tls) winMax = 4096
        // CONNECT: MQTT 3.1.1; flags: user name, will retain, will, clean session (0xa6; 0xe6 with
        // the password); keep-alive 30 s (0x1e)
        const strs = ["robot-" + name, base + "online", "offline", user]
        if (pass) strs.push(pass)
        hello = mpkt(hex`00 04 4d 51 54 54 04 a6 00 1e`, strs, 0)
        if (pass) hello[10] = 0xe6
        console.log(`mqtt: ${base} at ${url}`)
        // (a negative port asks the runtime for TLS)
        if (tls) port = -port
        let wait = 500
        while (true) {
            upAt = undefined
            // one connection: CONNECT, then read until it fails (it throws why it ended)
            try {
                opened = false
                ended = ""
                fault = ""
                sent = acked = pongsDropped = 0
                ;(ds as Net)._socketOnEvent = onSocket
                // (the line the Socket class of @devicescript/net logs)
                console.debug(`connecting to ${tls ? "tls" : "tcp"}://${host}:${Math.abs(port)}`)
                if ((ds as Net)._socketOpen(host, port) !== 0) throw "can't connect"
                ends = []
                pingOut = false
                try {
                    // REPLY_MS for the socket to open, then REPLY_MS for the CONNACK
                    due = ds.millis() + REPLY_MS
                    while (true) {
                        const now = ds.millis()
                        if (now >= due) {
                            // (the first of these is thrown below; a PINGREQ is then not written)
                            if (!opened) stop("connect timed out")
                            if (!up) stop("no CONNACK")
                            if (pingOut) stop("no PINGRESP")
                            pingOut = true
                            pingAt = now
                            due = now + REPLY_MS
                            // PINGREQ
                            out(Buffer.alloc(3), 0xc0, null)
                        }
                        if (fault) throw fault
                        if (ended) throw ended
                        waiter = ds.Fiber.self()
                        await ds.suspend(due - now)
                        waiter = null
                    }
                } finally {
                    up = false
                    ends = null
                    waiter = null
                    if (body) chargeLink(-body.length)
                    body = null
                    hn = need = 0
                    if (pongsDropped > 0) console.log(`mqtt: ${pongsDropped} pongs dropped (no room to send them)`)
                    // (a socket that ended is closed already)
                    if (!ended) (ds as Net)._socketClose()
                    ended = "closed"
                }
            } catch (e) {
                console.log("mqtt: " + errText(e))
            }
            // a connection that stayed up 10 s starts the backoff over (one dropped at once, e.g.
            // by a robot of the same name taking its client id, keeps backing off)
            // (`now - undefined` is NaN, never > 10000)
            if (ds.millis() - upAt > 10000) wait = 500
            // (the call first: a value before it in the expression is saved to a temporary)
            await ds.sleep((0.75 + Math.random() / 2) * wait)
            wait = Math.min(wait * 2, 30000)
        }
    } catch (e) {
        console.log("mqtt: stopped: " + errText(e))
    }
}

/**
 * An MQTT packet of `strs` (each a u16 big-endian length, then its UTF-8 bytes, then `gap` zero
 * bytes) after the bytes of `pre`, with 3 bytes free at the start for `out` to fill.
 */
function mpkt(pre: Buffer, strs: string[], gap: number): Buffer {
    let n = 3 + pre.length
    for (const t of strs) n += 2 + gap + t.byteLength
    const b = Buffer.alloc(n)
    b.blitAt(3, pre, 0, pre.length)
    n = 3 + pre.length
    for (const t of strs) {
        const k = t.byteLength
        // (a byte store keeps the low 8 bits: no `& 255`)
        b[n] = k >> 8
        b[n + 1] = k
        b.blitAt(n + 2, t, 0, k)
        n += 2 + gap + k
    }
    return b
}

/**
 * Writes one whole packet now: `b` holds 3 free bytes, then the packet's remaining bytes (at most
 * 16383: every packet here is, frames and CONNECT with settings of at most a Jacdac report each);
 * `first` its first byte. A `topic` makes it a QoS 1 PUBLISH whose variable header starts at 3
 * (the topic and a new packet id are written here; its PUBACK acknowledges it and all before it).
 * Written in writes of at most PIECE bytes. Called only while connected. False when nothing was
 * written: the connection is ending, a non-retained PUBLISH does not fit the window, or the socket
 * refused the write (the stream is then broken: the connection ends).
 */
function out(b: Buffer, first: number, topic: string): boolean {
    if (fault) return false
    const m = b.length
    const rl = m - 3
    let st = 0
    if (rl < 128) st = 1
    // the packet's length
    const n = m - st
    // (the window: room, or nothing unacknowledged; only a retained PUBLISH, `online`, goes
    // regardless, as CONNECT, SUBSCRIBE and PINGREQ do)
    if (first === 0x32)
        if (ends.length > 0) {
            if (sent - acked + n > winMax) return false
            if (ends.length >= MAX_UNACKED) return false
        }
    // the remaining length in 1 byte (rl, at 2) or 2 (low 7 bits and a continuation bit at 1, the
    // rest at 2), then the first byte before it (over the 128 at 1 for a 1-byte length)
    b[2] = rl >> (7 - 7 * st)
    b[1] = rl | 128
    b[st] = first
    if (topic) {
        const tl = topic.byteLength
        b[3] = tl >> 8
        b[4] = tl
        b.blitAt(5, topic, 0, tl)
        // the packet id: 1-65535, never 0
        pid = (pid % 65535) + 1
        b[5 + tl] = pid >> 8
        b[6 + tl] = pid
    }
    for (let o = st; o < m; o += PIECE) {
        const k = Math.min(PIECE, m - o)
        if ((ds as Net)._socketWrite(k === m ? b : copy(b, o, k)) !== 0) {
            stop("a socket write failed")
            return false
        }
    }
    sent += n
    if (topic) ends.push(sent)
    return true
}

/** A QoS 1 PUBLISH of the `n` bytes of `src` from `from` on `topic`, written now or dropped (see out). */
function publish(topic: string, src: Buffer | string, from: number, n: number, first: number): boolean {
    const at = 7 + topic.byteLength
    const b = Buffer.alloc(at + n)
    b.blitAt(at, src, from, n)
    return out(b, first, topic)
}

/** ends the connection for `why` (the connection's fiber throws it; "": only wakes that fiber) */
function stop(why: string) {
    if (!fault) fault = why
    const f = waiter
    if (f) if (f.suspended) f.resume(null)
}

/** The runtime's socket events (one fiber each): data is parsed here and now. Never throws. */
function onSocket(event: string, arg: Buffer | string) {
    try {
        if (event === "data") {
            // the chunk parsed here and now (throws on bytes that are no MQTT a broker sends: the
            // link reconnects)
            if (ends) if (!fault) if (!ended) {
                const d = arg as Buffer
                const n = d.length
                let o = 0
                while (o < n) {
                    if (need > 0) {
                        // the rest of a packet that spans reads: gathered in `body`, or skipped
                        const k = Math.min(need, n - o)
                        if (body) body.blitAt(body.length - need, d, o, k)
                        need -= k
                        o += k
                        if (need === 0) if (body) {
                            const b = body
                            body = null
                            chargeLink(-b.length)
                            packet(ptype, b, 0, b.length)
                        }
                        continue
                    }
                    // fixed header: the type byte, then the remaining length in 1 to 4 bytes of 7 bits
                    // (least significant first)
                    const x = d[o]
                    o++
                    if (!(hn > 0)) {
                        ptype = x
                        len = 0
                        hn = 1
                        continue
                    }
                    len += (x & 127) << (7 * hn - 7)
                    if ((x & 0x80) !== 0) {
                        if (++hn === 5) throw "bad packet length"
                        continue
                    }
                    hn = 0
                    const k = ptype >> 4
                    if (((BROKER_TYPES >> k) & 1) === 0) throw "unexpected packet type " + k
                    // (at most 64 bytes but for a PUBLISH, whose limit `inMax` is higher)
                    if (len > 64) {
                        if (k !== 3) throw "bad packet length"
                        if (len > inMax) {
                            // a PUBLISH larger than any frame: skipped, never held
                            console.log(`mqtt: skipped a message of ${len} bytes (at most ${inMax})`)
                            need = len
                            continue
                        }
                    }
                    if (o + len <= n) {
                        // the whole packet is in this chunk: parsed in place
                        packet(ptype, d, o, o + len)
                        o += len
                    } else {
                        // gathered, and charged to the call budget while held
                        body = Buffer.alloc(len)
                        chargeLink(len)
                        need = len
                    }
                }
            }
        } else if (event === "open") {
            // CONNECT at once; then REPLY_MS for the CONNACK
            opened = true
            out(hello, 0x10, null)
            due = ds.millis() + REPLY_MS
        }
        else if (!ended) {
            ended = "socket: " + arg
            if (event === "close") ended = "connection closed"
        }
    } catch (e) {
        stop(errText(e))
    }
    // (the connection's fiber looks at the socket's state again)
    stop("")
}

/**
 * The packet types a broker sends this client, one bit each: CONNACK 2, PUBLISH 3, PUBACK 4,
 * SUBACK 9, PINGRESP 13: (1 << 2) | (1 << 3) | (1 << 4) | (1 << 9) | (1 << 13), written as the
 * number (the compiler would compute that expression at start-up). One test of a bit instead of a
 * chain of five comparisons.
 */
const BROKER_TYPES = 0x221c

/** One packet from the broker, its body in `d[o..end)`. */
function packet(t: number, d: Buffer, o: number, end: number) {
    const k = t >> 4
    if (k === 3) {
        // PUBLISH: topic, (a packet id at QoS 1/2: the robot subscribes at QoS 0), payload.
        // (With under 2 bytes the topic's length is read past the body, from the next packet or
        // past the buffer's end, where a byte reads as undefined and the length as 0: `to` alone is
        // beyond `end` then.)
        const tl = (d[o] << 8) | d[o + 1]
        const to = o + 2
        // (the call first: a value before it in the expression is saved to a temporary)
        const p = Math.min(t & 6, 2) + to + tl
        if (p > end) throw "bad PUBLISH"
        const topic = copy(d, to, tl).toString()
        const isIn = topic.indexOf(inT) === 0
        if (!isIn) if (topic.indexOf(echoT) !== 0) return
        // (the broker matched `+`: one topic level; an empty one is not a host)
        // (after the "/" that follows "in" or "echo")
        const host = topic.slice(topic.indexOf("/", base.length) + 1)
        if (!host) return
        if (!isIn) {
            // (written now or dropped: nothing waits here)
            if (!publish(base + "pong/" + host, d, p, end - p, 0x32)) pongsDropped++
            return
        }
        const peer = peerFor(host)
        if (!peer) return
        parse(d, p, end, peer)
    } else if (k === 2) {
        // CONNACK: session present, return code
        let rc = d[o + 1]
        if (end - o !== 2) rc = 255
        if (rc !== 0) {
            // (the return codes' names are written here, not as a module-level array that every image
            // would build at start-up and whose strings would take low string numbers)
            let why = ["", "unacceptable protocol version", "client id rejected", "server unavailable", "bad user name or password", "not authorized"][rc]
            if (!why) why = "bad CONNACK"
            throw `broker refused the connection: ${rc} ${why}`
        }
        up = true
        upAt = ds.millis()
        due = upAt + PING_MS
        // SUBSCRIBE: packet id 1, each filter at QoS 0
        out(mpkt(hex`00 01`, [base + "in/+", base + "echo/+"], 1), 0x82, null)
        publish(base + "online", "online", 0, 6, 0x33)
        console.log("mqtt: online")
    } else if (k === 9) {
        // SUBACK: packet id, a return code per topic (0x80: refused, e.g. by the broker's ACL)
        for (let i = o + 2; i < end; ++i) if ((d[i] & 0x80) !== 0) console.log(`mqtt: the broker refused a subscription under ${base}`)
    } else if (k === 4) {
        // PUBACK: the broker read the oldest unacknowledged PUBLISH and everything before it
        // (not Array shift: its polyfill would be in the image for this alone)
        // (an entry is a count of bytes written, never 0; past the end it reads as undefined)
        const a = ends[0]
        if (a > 0) {
            acked = a
            ends.insert(0, -1)
        }
    } else {
        // PINGRESP: the next PINGREQ half a keep-alive after the last
        pingOut = false
        due = pingAt + PING_MS
    }
}

/** The peer serving `host`: its own, a new one, or the least recently used idle one; null if all are busy. */
function peerFor(host: string): Peer {
    const now = ds.millis()
    let p: Peer = null
    // (the least use time of an idle peer so far: every peer's is at most `now`)
    let at = now + 1
    for (const q of peers) {
        if (q.id === host) {
            q.used = now
            return q
        }
        if (q.used < at)
            if (!linkBusy(q)) {
                p = q
                at = q.used
            }
    }
    if (peers.length < MAX_PEERS) {
        // upload window: two frames. The simulator hands the firmware whatever the host's TCP
        // stack has (a 12 KB upload sent at once arrived as one 12 KB buffer and ran the heap out
        // beside the request's own two copies); the ESP32 reads 128 bytes at a time.
        // (`q` is read when the sender sends, after this)
        const q = new Sender(
            frameMax,
            async (b: Buffer, n: number) => {
                await publishFrame(q, b, n)
            },
            0,
            2 * frameMax
        ) as Peer
        q.shared = true
        // one host id, a few sessions: the Jacdac bus's sessions are never pushed out by MQTT hosts
        q.maxSessions = 4
        // (its id, use time and topic are set below, as a reused peer's are)
        peers.push(q)
        chargeLink(PEER_HEAP)
        links.push(q)
        p = q
    } else if (p) {
        // the host that used it last has been quiet longest: its sessions are parked, not
        // forgotten (a host that opened a session and calls a while later keeps it)
        for (const x of sessions)
            if (x.out === p) {
                x.out = PARKED
                ;(x as Parked).topic = p.topic
                parked.push(x as Parked)
            }
        // parked sessions never take the last session slots (the hosts on peers and a Jacdac host
        // keep room): beyond maxSessions - MAX_PEERS - 1 (written as the number: 4) the oldest is
        // given up
        while (parked.length > Math.max(0, maxSessions - 4)) {
            dropSession(parked[0])
            parked.insert(0, -1)
        }
        p.q = []
        p.qBytes = 0
        p.err = null
        p.ann = -1
    } else {
        // (`now - undefined` is NaN, never <= 5000)
        if (!(now - peerLogAt <= 5000)) console.log(`mqtt: ${MAX_PEERS} hosts have calls in flight: a frame from ${host} is dropped`)
        peerLogAt = now
        return null
    }
    p.id = host
    p.used = now
    p.topic = base + "out/" + host
    // room for the PUBLISH header: type, 2 length bytes, topic, packet id
    p.pre = 7 + p.topic.byteLength
    // the host's parked sessions are its own again (and those the session table gave up are let go)
    for (let i = parked.length - 1; i >= 0; --i) {
        const x = parked[i]
        // (not Array indexOf: its polyfill would be in the image for this alone)
        let live = false
        for (const y of sessions) if (y === x) live = true
        if (live) {
            if (x.topic !== p.topic) continue
            x.out = p
        }
        parked.insert(i, -1)
    }
    p.wake()
    return p
}

/**
 * Publishes a frame the peer's sender filled (`b`: `pre` free bytes, then `n` payload bytes) at
 * QoS 1, once the window has room for it; meanwhile the frame is charged to the call budget.
 */
async function publishFrame(p: Peer, b: Buffer, n: number) {
    // dropped while disconnected (the protocol recovers), or if the peer changed hosts meanwhile
    // (its room for the header is not this topic's: the sender's buffers are `pre + n` bytes)
    if (!up) {
        await ds.sleep(50)
        return
    }
    if (b.length - n !== p.pre) return
    chargeLink(b.length)
    try {
        // written once the packet fits the window; dropped when the connection ended, or the
        // broker acknowledged nothing for REPLY_MS (it then ends)
        const s = ends
        const end = ds.millis() + REPLY_MS
        // the host the packet was filled for: while it waits, the peer may go to another host (it
        // is idle once its answers are out), whose id can be as long: its records never go there
        const id = p.id
        // (polled: in the VM a socket event does not wake the program's loop, so a fiber
        // suspended until the PUBACK would wait for its timeout; 1 ms costs 1.7 MB/s -> 0.5)
        // (single tests: smaller code than `&&`)
        while (ends === s) {
            if (p.id !== id) break
            if (out(b, 0x32, p.topic)) break
            if (ds.millis() > end) stop("no PUBACK")
            else await ds.sleep(1)
        }
    } finally {
        chargeLink(-b.length)
    }
}
