// Shared state of the device's service runtime (protocol v2, docs/protocol.md): limits, the call
// and session records, the handler's call context, the links' list and the announcement. The call
// table and the host records' verbs are src/rpc/calls.ts, the sender src/rpc/sender.ts (one per
// link), the frame parser and the clock src/rpc/runtime.ts, under its peers the Jacdac carrier src/rpc/server.ts and the MQTT carrier
// src/net/mqtt.ts; src/lib/services.ts is the API.
import * as ds from "@devicescript/core"
import "../cdr/strings" // first: see strings.ts
import { ByteSource } from "../cdr/types"
import type { ServiceType } from "../cdr/cdr"
import { CallState, Limit, Status } from "../gen/wire"

// Limits of the service runtime (see `configureServices`); announced to hosts in HELLO. Module
// variables, not the fields of a `cfg` object: a read is a global's 2 bytes instead of 4, a default
// a global's store instead of a field's (-96 bytes in the least firmware, docs/benchmarks.md
// "Firmware code size"); `configure` (configureServices) sets them.
/**
 * largest request, bytes of CDR. A request that ends in a byte array after fixed-size fields
 * (ServiceType.tail: an upload) is taken up to this size, uncopied; any other request's decoding
 * briefly holds the buffer and its decoded copy, so it is taken up to about half the budget.
 */
export let maxRequestBytes = 20480
/** largest response, bytes of CDR */
export let maxResponseBytes = 262144
/** calls being received, queued, run or streamed at once */
export let maxInFlight = 8
/** bytes of heap for request buffers, retained answers and call records */
export let budget = 24576
/** how long an answer is kept for resends without the host's DONE (ms) */
export let retentionMs = 10000
/** sessions (hosts) known at once on one link (the Jacdac bus; each MQTT host has its own few) */
export let maxSessions = 8
/** the deadline of a call that names none (timeoutMs 0), ms */
export let defaultTimeoutMs = 10000
/** the latest deadline a call may ask for, ms: every call ends, whatever the host sends */
export let maxTimeoutMs = 120000
/** a request still being received is dropped when half a window (or its rest) took longer than this, ms */
export let stallMs = 2000
/** version of the service list, announced in HELLO: CALLX names a service by its index in one version */
export let listVersion = 1

/** Limits of the service runtime; see {@link configureServices}. All are announced in HELLO. */
export interface ServicesConfig {
    /** Largest request accepted, in bytes of CDR (default 20480). Larger: `ResourceExhausted`. */
    maxRequestBytes?: number
    /** Largest response sent, in bytes of CDR (default 262144 = 256 KiB). Larger: `ResourceExhausted`. */
    maxResponseBytes?: number
    /** Calls being received, queued, run or sent at once (default 8). Past it: busy (the host retries). */
    maxInFlight?: number
    /** Heap bytes for requests (charged twice: buffer + decoded copy), retained answers and call records (default 24576). Past it: busy. */
    budget?: number
    /** How long an answer is kept for resends when the host does not release it (ms, default 10000). */
    retentionMs?: number
    /**
     * Sessions (hosts) remembered at once on the Jacdac link (default 8). A new host takes the place of
     * one that never called or has not called for 30 s; otherwise it is told to try later.
     */
    maxSessions?: number
    /** Deadline of a call whose host names none (ms, default 10000). */
    defaultTimeoutMs?: number
    /** Latest deadline a call may ask for (ms, default 120000): a longer one is cut to this. */
    maxTimeoutMs?: number
    /** A request being received is dropped (`DeadlineExceeded`) when half a window takes longer than this (ms, default 2000). */
    stallMs?: number
}

/** Sets the limits given (configureServices); allocates nothing. */
export function configure(c: ServicesConfig) {
    if (c.maxRequestBytes !== undefined) maxRequestBytes = c.maxRequestBytes
    if (c.maxResponseBytes !== undefined) maxResponseBytes = c.maxResponseBytes
    if (c.maxInFlight !== undefined) maxInFlight = Math.max(1, c.maxInFlight)
    if (c.budget !== undefined) budget = c.budget
    if (c.retentionMs !== undefined) retentionMs = c.retentionMs
    if (c.maxSessions !== undefined) maxSessions = Math.max(1, c.maxSessions)
    if (c.defaultTimeoutMs !== undefined) defaultTimeoutMs = Math.max(1, c.defaultTimeoutMs)
    if (c.maxTimeoutMs !== undefined) maxTimeoutMs = Math.max(1, c.maxTimeoutMs)
    if (c.stallMs !== undefined) stallMs = Math.max(1, c.stallMs)
}

/**
 * Every link's senders, as the links start: the Jacdac link's (rpc/server.ts), the MQTT link's
 * peers' (net/mqtt.ts). (Here, with the announcement, rather than in rpc/runtime.ts: `listChanged`
 * sets listVersion, which only this module may assign.)
 */
export const links: Out[] = []
/** an announcement is due (`soon` runs) */
let annTimer: boolean

/** the service list changed: new list version, one announcement for a burst of changes */
export function listChanged() {
    listVersion = (listVersion + 1) & 0xffff
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
    for (let i = 0; i < links.length; i++) links[i].announce(true)
}

/**
 * Heap charged to every call record besides its buffers: the record, its context and a retained
 * small answer (`npm run bench` measures about 900 bytes per call in flight, fiber included).
 * With 160 here, answers retained behind one slow call ran the 64 KB heap out (exactly-once test).
 * (protocol/protocol.json `callCost`: the host mirrors the charge to avoid busy retries)
 */
export const CALL_COST = Limit.CallCost
/** requests of at most this many bytes may use the budget's reserve (protocol.json `smallRequest`) */
export const SMALL_REQUEST = Limit.SmallRequest
/** budget bytes big requests leave to small calls (protocol.json `budgetReserve`) */
export const RESERVE = Limit.BudgetReserve
/** settled-seq ranges kept per session above its floor before the session is given up */
export const MAX_RANGES = 24
/** refused calls whose answers are remembered (for a resent CALL or a POLL), shared by all hosts */
export const MAX_REFUSALS = 8
/** handlers still running after their call was released (cancel, deadline); past it new calls are busy */
export const MAX_LINGERING = 16
/** how long a released handler may run on before its fiber is terminated (ms) */
export const GRACE_MS = 1000
/**
 * sessions that made a call are not given up for a new host until idle this long (ms; protocol.json
 * `sessionKeepMs`: the host resends the calls of a session given up before they arrived within it)
 */
export const SESSION_KEEP_MS = Limit.SessionKeepMs
/** bytes per piece of an upload's trailing byte array (Call.tail): 1 << PIECE_BITS */
export const PIECE_BITS = 10
export const PIECE = 1 << PIECE_BITS

/**
 * How calls of one service wait for each other (rpc/policies.ts: `serial`, `latest`): called with
 * the service's entry and a call ready to run (which it runs now or queues), or with null when one
 * of the service's handlers gave its slot back. A service without one runs every call at once.
 * A function rather than a name tested here: a firmware whose services all run in parallel carries
 * none of the policies' code.
 */
export type Concurrency = (e: Entry, c: Call) => void

export interface Entry {
    name: string
    type: ServiceType<any, any>
    handler: (req: any, ctx: CallContext) => Promise<any>
    /** undefined: every call runs at once */
    policy: Concurrency
    /** (the policy's) a handler of this service holds its slot */
    running?: boolean
    /** calls waiting for their turn (with a policy) */
    queue: Call[]
}

/**
 * What a handler learns about its call, as its second argument. `deadline` is the `ds.millis()`
 * by which the caller stops waiting; `cancelled` turns true when the caller cancels, the deadline
 * passes, or (policy "latest") a newer call replaces this one. Allocates nothing per check.
 * @devsWhenUsed (methods a program never calls stay out of its image)
 */
export class CallContext {
    deadline: number
    cancelled = false
    /** why the call was cancelled, when it was */
    reason = ""
    constructor(public service: string, deadline: number) {
        this.deadline = deadline
    }
    /** milliseconds left until the caller's deadline (negative once past) */
    remainingMs(): number {
        return this.deadline - ds.millis()
    }
    cancel(reason: string) {
        if (this.cancelled) return
        this.cancelled = true
        this.reason = reason
    }
    /** Sleeps `ms`, waking early when the call is cancelled. Resolves true if it slept the whole time. */
    async sleep(ms: number): Promise<boolean> {
        const end = ds.millis() + ms
        while (!this.cancelled) {
            const left = end - ds.millis()
            if (left <= 0) return true
            await ds.sleep(Math.min(left, 25))
        }
        return false
    }
}

/**
 * One host's session: its calls are numbered 1, 2, 3… and never run twice (docs/protocol.md).
 * It belongs to the link that opened it (`out`): its answers go out there only, and records
 * naming it that arrive on another link are answered NOSESSION. Made in one place (calls.ts
 * `open`), as an object literal: a class costs a constructor function.
 */
export interface Session {
    id: number
    nonce: number
    out: Out
    /** every seq <= floor is settled and forgotten */
    floor: number
    /** sorted disjoint ranges [lo, hi, lo, hi…] of settled seqs above the floor */
    gone: number[]
    /** last record from the host (ms) */
    used: number
    /** when this session last started a call (undefined: never) */
    called?: number
}

// (the sessions' settled seqs: module functions, not methods, as every method costs a prototype entry)
export function isGone(s: Session, seq: number): boolean {
    if (seq <= s.floor) return true
    const g = s.gone
    for (let i = 0; i < g.length; i += 2) if (seq >= g[i]) if (seq <= g[i + 1]) return true
    return false
}

/** Marks `seq` settled in `s`; false when the ranges overflow (the session must then be given up). */
export function settle(s: Session, seq: number): boolean {
    if (isGone(s, seq)) return true
    const g = s.gone
    // i: the first range starting after seq (a read past the end is undefined: never < seq)
    let i = 0
    while (g[i] < seq) i += 2
    // [seq, seq] goes there, then takes in the next range if it starts at seq + 1 and is taken
    // into the one before if that ends at seq - 1 (past the end: undefined, never equal)
    g.insert(i, 2)
    g[i] = seq
    g[i + 1] = seq
    if (g[i + 2] === seq + 1) {
        g[i + 1] = g[i + 3]
        g.insert(i + 2, -2)
    }
    if (i > 0)
        if (g[i - 1] === seq - 1) {
            g[i - 1] = g[i + 1]
            g.insert(i, -2)
        }
    compact(s)
    return g.length <= 2 * MAX_RANGES
}

/** The host promises never to send anything about seqs <= `ack` again. */
export function ackTo(s: Session, ack: number) {
    if (ack <= s.floor) return
    s.floor = ack
    const g = s.gone
    // (an empty list reads undefined: never <= ack)
    while (g[0] <= ack) {
        if (g[1] > ack) {
            g[0] = ack + 1
            break
        }
        g.insert(0, -2)
    }
    compact(s)
}

function compact(s: Session) {
    const g = s.gone
    while (g[0] === s.floor + 1) {
        s.floor = g[1]
        g.insert(0, -2)
    }
}

/**
 * A call, and the context its handler gets (it extends CallContext rather than holding one: one
 * object per call, and `c.cancelled` where `c.ctx.cancelled` was, 2 bytes less at each of 15 uses).
 * @devsWhenUsed (methods a program never calls stay out of its image)
 */
export class Call extends CallContext {
    // (admit, the only maker of calls, sets entry, total, cost, got and ackAt at once; the fields
    // first set where they are used, or only compared where undefined answers as their initial
    // value would, start undefined: an initializer is code, 6 bytes each)
    state: number
    entry: Entry
    total: number
    got: number
    req: Buffer
    /**
     * the request's trailing byte array (ServiceType.tail), received apart from `req`: pieces of
     * PIECE bytes, then (once complete) a Segments over them for the decoder; null if none
     */
    tail: any
    /** offset last asked for with STATUS(gap), undefined none (compared to `got` only) */
    nackAt: number
    /** offset last acknowledged with STATUS(receiving) (upload flow control) */
    ackAt: number
    /** the answer's status (set with `msg`, before a RESULT is due) */
    status: number
    res: ByteSource
    msg: Buffer
    /** next response byte to send; -1 when not streaming */
    sendOff = -1
    /** bumped whenever the stream is rewound, to discard chunks read before the rewind (undefined before the first) */
    gen: number
    resultSent: boolean
    /** an error RESULT is due */
    resultDue: boolean
    /** a STATUS with this state is due, -1 or undefined none (tested `>= 0`) */
    statusDue: number
    /**
     * the call holds no handler slot: not run yet (a queued call whose deadline passes holds none
     * to give back), or its handler returned or was released; `run` takes the slot
     */
    released = true
    /** the handler's fiber (while it runs) */
    fiber: ds.Fiber
    /** released before its handler returned: when its fiber is terminated (0 or undefined: not lingering) */
    killAt: number
    /** heap charged to the budget */
    cost: number
    /** last activity (ms) */
    t: number
    // (the arguments that are computed come first: the compiler saves the ones before a call in
    // temporaries)
    constructor(deadline: number, service: string, public s: Session, public seq: number) {
        super(service, deadline)
        this.state = CallState.Receiving
        this.t = ds.millis()
    }
}

/**
 * A service's or an action's name as it is served: with a leading `/`, added when missing (the one
 * place of the rule on the device: createService, createActionServer and a CALL's name).
 */
export function fullName(name: string): string {
    if (name[0] === "/") return name
    return "/" + name
}

/**
 * A record as it goes on the wire: kind u8, body length u16, then the `n`-byte body (zeroed) at
 * Limit.RecordHeader. Made whole at once: the sender queues and copies it as it is.
 */
export function rec(kind: number, n: number): Buffer {
    const r = Buffer.alloc(Limit.RecordHeader + n)
    r[0] = kind
    r.setAt(1, "u16", n)
    return r
}

/**
 * A copy of the `n` bytes of `b` from `a`: not Buffer `slice`, whose DeviceScript polyfill (137
 * bytes with its prototype entry) a firmware then carries for the library alone (and Buffer
 * `setLength` is declared but not in the VM: "undefined called").
 */
export function copy(b: Buffer, a: number, n: number): Buffer {
    const r = Buffer.alloc(n)
    r.blitAt(0, b, a, n)
    return r
}

/**
 * Removes the first `x` from `a`; false if it is not there. Not Array `indexOf` and `shift`: their
 * DeviceScript polyfills (about 160 bytes with their prototype entries) would be in every firmware
 * for the library alone.
 */
export function remove(a: any[], x: any): boolean {
    for (let i = 0; i < a.length; i++)
        if (a[i] === x) {
            a.insert(i, -1)
            return true
        }
    return false
}

/**
 * Logs "rosservices: <what>: <error text>" (the catches that must let nothing escape: one call of
 * this instead of a format and a print at each, about 10 bytes less each)
 */
export function logError(what: string, e: any) {
    console.log("rosservices: " + what + ": " + errText(e))
}

export function errText(e: any): string {
    // (`== null`: undefined or null, one test)
    if (e == null) return "unknown error"
    // (its message, else itself, as text: if statements, smaller code than `a ? b : c`)
    let m = e.message
    if (m == null) m = e
    const s = "" + m
    // (a string's slice is native; a shorter string comes back whole)
    return s.slice(0, Limit.MaxMessage)
}

/** What the call table needs from a link's sender (src/rpc/sender.ts). */
export interface Out {
    /** request bytes a host may send beyond what the device acknowledged (announced in HELLO) */
    win: number
    /** the sender has something new to send */
    wake(): void
    /** a record (`rec`) that belongs to no call (a bounded queue, in which each session may hold a quarter) */
    transient(r: Buffer): void
    /** an ERROR record (rate-limited) */
    error(msg: string, offset: number): void
    /** HELLO and the service list are due (coalesced: an announcement in progress is not restarted unless `fresh`) */
    announce(fresh?: boolean): void
    /** records left out because the transient queue was full (diagnostics) */
    dropped: number
    /** sessions this link may hold at once (unset: maxSessions) */
    maxSessions?: number
}
