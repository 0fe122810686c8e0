// The device's call table (protocol v2, docs/protocol.md): sessions, admission by count and bytes,
// exactly-once by per-session sequence numbers, per-service concurrency, deadlines and release.
// Nothing here sends: due answers are flags on the call, read by the sender of the call's link
// (src/rpc/sender.ts); records that belong to no call go to the link the host record came on.
import * as ds from "@devicescript/core"
import { CdrWriter, decodeMessage } from "../lib/cdr"
import { ByteSource, ServiceError } from "../lib/types"
import { CALL_COST, Call, Entry, Out, Policy, RESERVE, SMALL_REQUEST, Session, cfg, errText } from "./core"
import { CallState, Kind, Limit, PROTOCOL_VERSION, Status } from "./wire"

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
    return v === 0 ? 1 : v
}

function u32s(a: number, b: number, n: number): Buffer {
    const r = Buffer.alloc(n)
    r.setAt(0, "u32", a)
    r.setAt(4, "u32", b)
    return r
}

export class CallTable {
    entries: Entry[] = []
    sessions: Session[] = []
    calls: Call[] = []
    /** heap charged by the calls (see cfg.budget) */
    used = 0
    /** random per program start: a new value tells hosts the program restarted */
    bootId = rand32()
    listVersion = 1

    // ---------------------------------------------------------------- sessions
    /** OPEN from a host on `link`: the session answers on that link only */
    open(nonce: number, version: number, link: Out) {
        if (version !== PROTOCOL_VERSION) {
            link.error(0, `host speaks record protocol v${version}, this device v${PROTOCOL_VERSION}`)
            return
        }
        for (const s of this.sessions)
            if (s.nonce === nonce && s.out === link) {
                this.greet(nonce, s.id, link)
                return
            }
        if (this.sessions.length >= cfg.maxSessions) {
            // give up the least recently used session with no calls, idle for a second at least;
            // refuse when there is none (a flood of OPENs cannot push out hosts that are working)
            let lru: Session = null
            const now = ds.millis()
            for (const s of this.sessions) if (!this.hasCalls(s) && now - s.used > 1000 && (!lru || s.used < lru.used)) lru = s
            if (!lru) {
                this.greet(nonce, 0, link)
                return
            }
            this.dropSession(lru)
        }
        let id = rand32()
        while (this.session(id)) id = rand32()
        this.sessions.push(new Session(id, nonce, link))
        this.greet(nonce, id, link)
    }

    /** SESSION (a lost one is asked for again: the host repeats its OPEN with the same nonce) */
    greet(nonce: number, id: number, link: Out) {
        const b = u32s(nonce, id, 12)
        b.setAt(8, "u32", this.bootId)
        link.transient(Kind.SESSION, b)
    }

    session(id: number): Session {
        for (const s of this.sessions) if (s.id === id) return s
        return null
    }

    /**
     * The session, or null after telling the host on `link` it is unknown (program restarted,
     * session given up, or a session of another link: one link never touches another's calls).
     */
    use(id: number, link: Out): Session {
        const s = this.session(id)
        if (s && s.out === link) {
            s.used = ds.millis()
            return s
        }
        const b = u32s(id, this.bootId, 8)
        link.transient(Kind.NOSESSION, b)
        return null
    }

    /** calls of `link`'s sessions in flight (received, queued, run or streamed) */
    linkBusy(link: Out): boolean {
        for (const c of this.calls) if (c.s.out === link && (c.state !== CallState.Done || c.sendOff >= 0)) return true
        return false
    }

    /** forgets every session of `link` (the link now serves another host) */
    dropLink(link: Out) {
        for (const s of this.sessions.slice()) if (s.out === link) this.dropSession(s)
    }

    hasCalls(s: Session) {
        for (const c of this.calls) if (c.s === s) return true
        return false
    }

    dropSession(s: Session) {
        for (const c of this.calls.slice()) if (c.s === s) this.forget(c, "session given up")
        const i = this.sessions.indexOf(s)
        if (i >= 0) this.sessions.insert(i, -1)
    }

    // ---------------------------------------------------------------- lookup and admission
    find(s: Session, seq: number): Call {
        for (const c of this.calls) if (c.s === s && c.seq === seq) return c
        return null
    }

    inFlight(): number {
        let n = 0
        for (const c of this.calls) if (c.state !== CallState.Done || c.sendOff >= 0) n++
        return n
    }

    /** a RESULT with no message that is not remembered (busy, stale): the handler never ran, the host retries */
    bounce(s: Session, seq: number, status: number) {
        const b = u32s(s.id, seq, 13)
        b[8] = status
        s.out.transient(Kind.RESULT, b)
    }

    /** answers a call that never ran; remembered so a resent CALL gets the same answer */
    reject(s: Session, seq: number, status: number, msg: string) {
        const c = new Call(s, seq, 0)
        this.calls.push(c)
        this.used += c.cost
        this.fail(c, status, msg)
    }

    /** a new call whose request starts with `dlen` bytes of `d` at `db` */
    admit(s: Session, seq: number, timeoutMs: number, e: Entry, total: number, d: Buffer, db: number, dlen: number) {
        const n = this.inFlight()
        if (n >= cfg.maxInFlight) {
            this.bounce(s, seq, Status.Busy)
            return
        }
        // held: the request buffer, then the decoded request (bytes, strings) that replaces it; the
        // decoding itself briefly holds both (runCall waits for that room)
        const need = CALL_COST + total
        if (need + total > cfg.budget) {
            this.reject(s, seq, Status.ResourceExhausted, `a request of ${total} bytes needs ${need + total} of the ${cfg.budget}-byte budget`)
            return
        }
        // big requests leave a reserve to small calls: an upload, or a host lost in the middle of
        // one, never stops the others (test: services_hostloss.test.ts)
        const limit = total > SMALL_REQUEST ? cfg.budget - RESERVE : cfg.budget
        if (this.used + need > limit) this.reclaim(need, limit)
        if (this.used + need > limit) {
            this.bounce(s, seq, Status.Busy)
            return
        }
        const c = new Call(s, seq, timeoutMs > 0 ? ds.millis() + timeoutMs : ds.millis() + 86400000)
        c.entry = e
        c.ctx.service = e.name
        c.total = total
        c.cost = need
        this.used += need
        if (dlen === total) c.req = d.slice(db, db + dlen)
        else {
            c.req = Buffer.alloc(total)
            c.req.blitAt(0, d, db, dlen)
        }
        c.got = dlen
        c.ackAt = dlen
        this.calls.push(c)
        if (c.got === c.total) this.ready(c)
    }

    /** frees answered calls that are not streaming, oldest first, until `need` more bytes fit `limit` */
    reclaim(need: number, limit: number) {
        for (const c of this.calls.slice()) {
            if (this.used + need <= limit) return
            if (c.state === CallState.Done && c.sendOff < 0 && !c.resultDue) this.forget(c)
        }
    }

    // ---------------------------------------------------------------- request data
    onData(s: Session, seq: number, off: number, d: Buffer, db: number, n: number) {
        const c = this.find(s, seq)
        if (!c) {
            if (!s.isGone(seq)) this.statusOf(s, seq, CallState.Unknown)
            return
        }
        if (c.state !== CallState.Receiving) return // a late duplicate
        if (off > c.got) {
            // a gap: ask once per missing offset (the host also polls on silence)
            if (c.nackAt !== c.got) {
                c.nackAt = c.got
                this.due(c, CallState.Gap)
            }
            return
        }
        if (off + n > c.total) {
            s.out.error(0, "DATA beyond the request's total length")
            return
        }
        const end = off + n
        if (end > c.got) {
            const skip = c.got - off
            c.req.blitAt(c.got, d, db + skip, n - skip)
            c.got = end
            c.t = ds.millis()
            // acknowledge each half window so the host may send more (flow control)
            if (c.got < c.total && c.got - c.ackAt >= s.out.win >> 1) {
                c.ackAt = c.got
                this.due(c, CallState.Receiving)
            }
        }
        if (c.got === c.total) this.ready(c)
    }

    due(c: Call, state: number) {
        c.statusDue = state
        c.s.out.wake()
    }

    /** STATUS for a call with no record (bounded by the transient queue) */
    statusOf(s: Session, seq: number, state: number) {
        const b = u32s(s.id, seq, 13)
        b[8] = state
        s.out.transient(Kind.STATUS, b)
    }

    // ---------------------------------------------------------------- running
    /** the request is complete: run it, or queue it behind its service's policy */
    ready(c: Call) {
        const e = c.entry
        c.state = CallState.Queued
        if (e.policy === Policy.Latest) {
            for (const o of this.calls.slice())
                if (o !== c && o.entry === e) {
                    if (o.state === CallState.Queued) {
                        this.unqueue(o)
                        this.fail(o, Status.Cancelled, "replaced by a newer call")
                    } else if (o.state === CallState.Running) o.ctx.cancel("replaced by a newer call")
                }
        }
        if (e.policy !== Policy.Parallel && e.running > 0) {
            e.queue.push(c)
            return
        }
        this.run(c)
    }

    unqueue(c: Call) {
        const q = c.entry.queue
        const i = q.indexOf(c)
        if (i >= 0) q.insert(i, -1)
    }

    run(c: Call) {
        if (ds.millis() > c.ctx.deadline) {
            this.fail(c, Status.DeadlineExceeded, "the caller's deadline passed before the call ran")
            return
        }
        if (c.ctx.cancelled) {
            this.fail(c, Status.Cancelled, c.ctx.reason)
            return
        }
        c.state = CallState.Running
        c.released = false
        c.entry.running++
        c.t = ds.millis()
        this.runCall.start(c)
    }

    /** the next queued calls of `e` that may run now */
    next(e: Entry) {
        while (e.queue.length > 0 && (e.policy === Policy.Parallel || e.running === 0)) {
            const c = e.queue.shift()
            if (c.state === CallState.Queued) this.run(c)
        }
    }

    /** gives the handler's slot back (it returned, or its deadline released it) */
    releaseSlot(c: Call) {
        if (c.released || c.entry === null) return
        c.released = true
        c.entry.running--
        this.next(c.entry)
    }

    /** runs in its own fiber; catches everything (an escaped exception restarts the program) */
    async runCall(c: Call) {
        let status = Status.Ok
        let msg = ""
        let src: ByteSource = null
        try {
            let req: any
            // decoding holds the buffer and the decoded copy at once: wait until both fit
            // (answers waiting for their host are not released for it: the sweep frees memory in time)
            while (this.used + c.total > cfg.budget) {
                if (c.ctx.cancelled) throw new ServiceError(Status.Cancelled, c.ctx.reason)
                if (ds.millis() > c.ctx.deadline) throw new ServiceError(Status.DeadlineExceeded, "no memory to decode the request before the deadline")
                await ds.sleep(20)
            }
            try {
                // the whole request must be one message: bytes left over are a malformed request
                req = decodeMessage(c.entry.type.request, c.req)
            } catch (e) {
                throw new ServiceError(Status.InvalidArgument, "request: " + errText(e))
            }
            c.req = null
            const res = await c.entry.handler(req, c.ctx)
            try {
                const w = new CdrWriter()
                c.entry.type.response.encode(w, res)
                src = w.finish()
            } catch (e) {
                throw new ServiceError(Status.Internal, "response: " + errText(e))
            }
            if (src.length > cfg.maxResponseBytes) {
                const n = src.length
                src = null
                throw new ServiceError(Status.ResourceExhausted, `response of ${n} bytes exceeds maxResponseBytes=${cfg.maxResponseBytes}`)
            }
            if (src.length <= Limit.SmallResponse) src = bufferSource(await src.read(0, src.length))
        } catch (e) {
            src = null
            if (e instanceof ServiceError) {
                status = (e as ServiceError).code
                msg = (e as ServiceError).message
            } else {
                status = Status.Internal
                msg = errText(e)
            }
            if (status === Status.Ok || status === Status.Busy || status === Status.Stale) status = Status.Internal
        }
        try {
            this.finish(c, status, src, msg)
        } catch (e) {
            console.log("rosservices: finish failed: " + errText(e))
        }
    }

    finish(c: Call, status: number, src: ByteSource, msg: string) {
        this.releaseSlot(c)
        // released at its deadline, dropped with its session, or forgotten: nobody waits for it
        if (c.state !== CallState.Running || this.calls.indexOf(c) < 0) return
        if (c.hostGone) {
            this.forget(c)
            return
        }
        if (c.ctx.cancelled && status === Status.Ok) {
            // replaced (policy "latest") or past its deadline: a handler's own error is kept
            status = Status.Cancelled
            msg = c.ctx.reason
        }
        if (status !== Status.Ok) {
            this.fail(c, status, msg)
            return
        }
        c.req = null
        c.status = Status.Ok
        c.res = src
        c.state = CallState.Done
        this.charge(c, CALL_COST + Math.min(src.length, RETAINED_CHARGE_MAX))
        this.rewind(c, 0)
    }

    charge(c: Call, cost: number) {
        this.used += cost - c.cost
        c.cost = cost
    }

    /** answers `status` + message; the answer is kept until DONE, the host's ack or retention */
    fail(c: Call, status: number, msg: string) {
        c.req = null
        c.res = null
        c.sendOff = -1
        c.state = CallState.Done
        c.status = status
        let m = Buffer.from(msg)
        if (m.length > Limit.MaxMessage) m = m.slice(0, Limit.MaxMessage)
        c.msg = m
        c.t = ds.millis()
        this.charge(c, CALL_COST + m.length)
        c.resultDue = true
        c.s.out.wake()
    }

    /** (re)starts sending the response from byte `off` (0 also resends RESULT) */
    rewind(c: Call, off: number) {
        if (!c.res) return
        if (off > c.res.length) off = c.res.length
        c.gen++
        c.sendOff = off
        if (off === 0) c.resultSent = false
        c.t = ds.millis()
        c.s.out.wake()
    }

    /**
     * Removes the call: its seq is settled for good, unless `why` is given (its session is going
     * away; a running handler is cancelled and its slot given back).
     */
    forget(c: Call, why?: string) {
        const i = this.calls.indexOf(c)
        if (i < 0) return
        this.calls.insert(i, -1)
        this.used -= c.cost
        c.cost = 0
        c.sendOff = -1
        c.req = null
        c.res = null
        c.ctx.cancel(why || "forgotten")
        if (c.state === CallState.Queued) this.unqueue(c)
        if (why) {
            if (c.state === CallState.Running) this.releaseSlot(c)
        } else if (!c.s.settle(c.seq)) this.dropSession(c.s)
    }

    // ---------------------------------------------------------------- host records
    onCancel(s: Session, seq: number) {
        const c = this.find(s, seq)
        if (!c) {
            // settle it anyway: a CALL still on its way must never run
            if (!s.settle(seq)) this.dropSession(s)
            return
        }
        if (c.state === CallState.Running) {
            c.hostGone = true
            c.ctx.cancel("cancelled by the caller")
        } else this.forget(c)
    }

    onDone(s: Session, seq: number) {
        const c = this.find(s, seq)
        if (!c) {
            if (!s.settle(seq)) this.dropSession(s)
        } else if (c.state === CallState.Done) this.forget(c)
    }

    onPoll(s: Session, seq: number, have: number) {
        const c = this.find(s, seq)
        if (!c) this.statusOf(s, seq, s.isGone(seq) ? CallState.Gone : CallState.Unknown)
        else if (c.state !== CallState.Done) this.due(c, c.state)
        else if (c.status !== Status.Ok) {
            c.resultDue = true
            c.s.out.wake()
        } else if (c.res) this.rewind(c, have)
        else this.due(c, CallState.Gone)
    }

    /** the host's cumulative ack: it will never ask about seqs <= ack again */
    ack(s: Session, ack: number) {
        if (ack <= s.floor) return
        // the floor first: forgetting the calls below it must not add settled ranges (many at
        // once overflowed the range list and cost the host its session)
        s.ackTo(ack)
        for (const c of this.calls.slice())
            if (c.s === s && c.seq <= ack) {
                if (c.state === CallState.Running) {
                    c.hostGone = true
                    c.ctx.cancel("cancelled by the caller")
                } else this.forget(c)
            }
    }

    // ---------------------------------------------------------------- housekeeping
    /** deadlines, stale partial requests, unreleased answers; runs every 250 ms */
    sweep() {
        const now = ds.millis()
        for (const c of this.calls.slice()) {
            if (c.state === CallState.Receiving) {
                if (now - c.t > cfg.retentionMs || now > c.ctx.deadline) this.fail(c, Status.DeadlineExceeded, "the request was still incomplete at its deadline")
            } else if (c.state === CallState.Queued || c.state === CallState.Running) {
                if (now > c.ctx.deadline) {
                    // a handler that never returns must not hold its slot: release it at the deadline
                    c.ctx.cancel("deadline exceeded")
                    if (c.state === CallState.Queued) this.unqueue(c)
                    this.fail(c, Status.DeadlineExceeded, "no answer within the caller's deadline")
                    this.releaseSlot(c)
                }
            } else if (c.sendOff < 0 && !c.resultDue && now - c.t > cfg.retentionMs) this.forget(c)
        }
    }
}

function bufferSource(b: Buffer): ByteSource {
    return {
        length: b.length,
        read: async (offset: number, length: number) => b.slice(offset, Math.min(b.length, offset + length)),
    }
}
