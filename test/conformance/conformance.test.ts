// One conformance suite for every implementation of the device side (issue 16): the protocol's
// promises (docs/protocol.md) written once against a device factory (./devices.ts) and run against
// the test firmware in the VM over Jacdac, the same firmware over MQTT, and the in-memory MQTT
// robot of the fleet benchmark. Each case gets a fresh host (its own session) from the real host
// client and speaks through it: typed calls, and raw records (packages/host/src/client/records.ts encoders)
// where the case needs frames no polite host sends. A case names the features it needs; an
// implementation that does not model one skips it, saying why (./gaps.ts, the one list, which is
// also the table of README.md). No fixed sleeps except where a case proves that something did
// NOT happen within a time (cancel): there it waits out the handler's own delay.
//
// One device per implementation (one VM boot each). RS_CONFORMANCE=jacdac,memrobot runs some only.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import type { RecordNode } from "../../packages/host/src/client/core"
import { ServiceError } from "../../packages/host/src/client/errors"
import {
  CallState,
  Kind,
  PROTOCOL_VERSION,
  RECORD_HEADER,
  RECORD_MIN,
  WireStatus,
  encodeCall,
  encodeCallx,
  encodeCancel,
  encodeData,
  encodeDone,
  encodeList,
  encodeName,
  encodePoll,
  packRecords,
  rec,
  type DeviceRecord,
} from "../../packages/host/src/client/records"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { Echo, Upload, echo, pattern, uploadHash, type EchoRequest } from "../../harness/services"
import { FACTORIES, FIRMWARE_LIMITS, type Dut } from "./devices"
import { FEATURES, IMPLS, NOT_MODELLED, knownDefect, renderTable, skipReason, tableIn, type Feature, type Impl } from "./gaps"

type Result = Extract<DeviceRecord, { kind: "result" }>
type Status = Extract<DeviceRecord, { kind: "status" }>

/** the next raw seq of each host (a host is reused by the next case unless spoiled) */
const rawSeqs = new WeakMap<RecordNode, number>()

/** A host's raw side: records it sends itself (seqs far above its client's), and every record the device sends it. */
class Raw {
  private readonly got: DeviceRecord[] = []
  private waiters: (() => void)[] = []
  private readonly off: () => void
  /**
   * Set by a case that leaves the host unfit for the next one (its ack moved the session's floor
   * past its client's seqs, or its session was given up): closed instead of reused.
   */
  spoiled = false

  constructor(readonly n: RecordNode) {
    this.off = n.onDeviceRecord((r) => {
      this.got.push(r)
      if (this.got.length > 4000) this.got.splice(0, 1000)
      for (const w of this.waiters.splice(0)) w()
    })
  }

  get session(): number {
    return this.n.session
  }

  /** `k` consecutive fresh seqs (consecutive: settled ones make one range on the device) */
  seqs(k = 1): number {
    const s = rawSeqs.get(this.n) ?? 0x4000_0000
    rawSeqs.set(this.n, s + k)
    return s
  }

  /** sends the records, packed into frames of the link's size */
  async send(...recs: Uint8Array[]): Promise<void> {
    for (const p of packRecords(recs, this.n.limits!.maxRecord)) await this.n.sendRawFrame(p)
  }

  /**
   * Takes the first record matching `pred` (from those received since the last take), waiting up
   * to `timeoutMs`; `retry` is run every 400 ms meanwhile (a lost or rate-limited answer).
   */
  async next<R extends DeviceRecord>(what: string, pred: (r: DeviceRecord) => r is R, opts?: { timeoutMs?: number; retry?: () => Promise<void> }): Promise<R>
  async next(what: string, pred: (r: DeviceRecord) => boolean, opts?: { timeoutMs?: number; retry?: () => Promise<void> }): Promise<DeviceRecord>
  async next(what: string, pred: (r: DeviceRecord) => boolean, opts: { timeoutMs?: number; retry?: () => Promise<void> } = {}): Promise<DeviceRecord> {
    const end = Date.now() + (opts.timeoutMs ?? 15000)
    let again = Date.now() + 500
    for (;;) {
      const i = this.got.findIndex(pred)
      if (i >= 0) return this.got.splice(i, 1)[0]!
      const now = Date.now()
      if (now > end) throw new Error(`no ${what} within ${opts.timeoutMs ?? 15000} ms; got ${this.got.map((r) => r.kind).join(" ")}`)
      if (opts.retry && now >= again) {
        again = now + 500
        await opts.retry()
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, Math.min(end, opts.retry ? again : end) - Date.now()))
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  /** forgets the records received so far */
  clear() {
    this.got.length = 0
  }

  /**
   * The RESULT for `seq` of this host's session. Records that belong to no call (refusals, busy)
   * may be left out when a host's share of the device's queue is full: the host asks again with
   * POLL, as the client does (every 500 ms here, unless `retry` says otherwise).
   */
  async result(seq: number, opts: { timeoutMs?: number; retry?: () => Promise<void> } = {}): Promise<Result> {
    const session = this.session
    const retry = opts.retry ?? (() => this.send(encodePoll({ session, seq, have: 0 })))
    const r = await this.next(`RESULT ${seq}`, (r): r is Result => r.kind === "result" && r.session === session && r.seq === seq, { ...opts, retry })
    if (r.status !== WireStatus.ok || r.data.length >= r.total) return r
    // the rest of the response in RDATA records (a RESULT may carry only the start of it)
    const data = new Uint8Array(r.total)
    data.set(r.data)
    let have = r.data.length
    while (have < r.total) {
      const at = have
      const d = await this.next(`RDATA ${seq} at ${at}`, (x): x is Extract<DeviceRecord, { kind: "rdata" }> => x.kind === "rdata" && x.session === session && x.seq === seq && x.offset <= at && x.offset + x.data.length > at, {
        retry: () => this.send(encodePoll({ session, seq, have: at })),
      })
      data.set(d.data.subarray(at - d.offset), at)
      have = d.offset + d.data.length
    }
    return { ...r, data }
  }

  /** the STATUS for `seq` of this host's session */
  status(seq: number, opts?: { timeoutMs?: number; retry?: () => Promise<void> }): Promise<Status> {
    return this.next(`STATUS ${seq}`, (r): r is Status => r.kind === "status" && r.session === this.session && r.seq === seq, opts)
  }

  /** the answer of a POLL for `seq` (STATUS or RESULT), the POLL resent until it comes */
  async poll(seq: number): Promise<Result | Status> {
    const p = () => this.send(encodePoll({ session: this.session, seq, have: 0 }))
    await p()
    return this.next(`POLL answer ${seq}`, (r): r is Result | Status => (r.kind === "result" || r.kind === "status") && r.session === this.session && r.seq === seq, { retry: p })
  }

  /** CALL by name (the whole request in the record) */
  call(seq: number, service: string, hash32: number, req: Uint8Array, o: { ack?: number; timeoutMs?: number; total?: number; session?: number } = {}): Uint8Array {
    return encodeCall({ session: o.session ?? this.session, seq, ack: o.ack ?? 0, timeoutMs: o.timeoutMs ?? 10000, hash32, total: o.total ?? req.length, name: encodeName(service), data: req })
  }

  echo(seq: number, req: EchoRequest, o: { ack?: number; timeoutMs?: number } = {}): Uint8Array {
    return this.call(seq, "/echo", Echo.hash32, Echo.request.encode(req), o)
  }

  close() {
    this.off()
  }
}

const text = (r: Result) => Echo.response.decode(r.data).text
const message = (r: Result) => Buffer.from(r.data).toString("utf8")

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p
  } catch (e) {
    assert.ok(e instanceof ServiceError, `expected ServiceError, got ${e}`)
    return e
  }
  assert.fail("expected the call to fail")
}

/** the handler's counters of mode 9: [started, completed] */
async function counters9(n: RecordNode): Promise<[number, number]> {
  const [a, b] = (await n.createClient(Echo, "echo").call(echo("", { mode: 10 }))).text.split("/").map(Number)
  return [a!, b!]
}

interface Case {
  title: string
  needs?: Feature[]
  run(dut: Dut, h: Raw): Promise<void>
}

const CASES: Case[] = [
  {
    title: "LIST: HELLO with the version, bootId and limits, then one SERVICE per service of that list version",
    async run(_dut, h) {
      const list = () => h.send(encodeList())
      await list()
      const hello = await h.next("HELLO", (r): r is Extract<DeviceRecord, { kind: "hello" }> => r.kind === "hello", { retry: list })
      assert.equal(hello.version, PROTOCOL_VERSION)
      assert.ok(hello.minVersion <= PROTOCOL_VERSION)
      assert.equal(hello.bootId, h.n.limits!.bootId)
      assert.equal(hello.maxInFlight, FIRMWARE_LIMITS.maxInFlight)
      assert.equal(hello.maxRequestBytes, FIRMWARE_LIMITS.maxRequestBytes)
      assert.ok(hello.window > 0 && hello.maxRecord >= 236, `window ${hello.window}, maxRecord ${hello.maxRecord}`)
      assert.ok(hello.budget >= hello.maxRequestBytes, "the budget holds the largest request")
      const byIndex = new Map<number, Extract<DeviceRecord, { kind: "service" }>>()
      while (byIndex.size < hello.count) {
        const s = await h.next("SERVICE", (r): r is Extract<DeviceRecord, { kind: "service" }> => r.kind === "service" && r.listVersion === hello.listVersion)
        assert.ok(s.index < hello.count, `SERVICE index ${s.index} of ${hello.count}`)
        byIndex.set(s.index, s)
      }
      const byName = new Map([...byIndex.values()].map((s) => [s.name, s]))
      for (const [name, d] of [
        ["/add_two_ints", AddTwoInts],
        ["/echo", Echo],
        ["/upload", Upload],
      ] as const) {
        assert.equal(byName.get(name)?.hash32, d.hash32, name)
        assert.equal(byName.get(name)?.type, d.fullName, name)
      }
    },
  },
  {
    title: "calls answer; a handler's error, invalid_argument, an unknown service and a wrong type hash get their status",
    async run(_dut, h) {
      assert.deepEqual(await h.n.createClient(AddTwoInts, "add_two_ints").call({ a: 40n, b: 2n }), { sum: 42n })
      const c = h.n.createClient(Echo, "echo")
      assert.equal((await c.call(echo("hello", { size: 300 }))).text, "hello")
      const boom = await failure(c.call(echo("boom", { mode: 1 })))
      assert.equal(boom.code, "internal")
      assert.match(boom.detail, /boom/)
      const bad = await failure(c.call(echo("no good", { mode: 2 })))
      assert.equal(bad.code, "invalid_argument")
      assert.match(bad.detail, /no good/)
      const s = h.seqs(2)
      const req = Echo.request.encode(echo("x"))
      await h.send(h.call(s, "/nope", Echo.hash32, req), h.call(s + 1, "/echo", AddTwoInts.hash32, req))
      const unimpl = await h.result(s)
      assert.equal(unimpl.status, WireStatus.unimplemented)
      assert.match(message(unimpl), /\/nope/)
      const mism = await h.result(s + 1)
      assert.equal(mism.status, WireStatus.type_mismatch)
      assert.match(message(mism), /\/echo/)
    },
  },
  {
    title: "a CALLX of another list version, or of an index past the list, is answered stale and not remembered: the same seq by name then runs",
    async run(_dut, h) {
      const s = h.seqs()
      const list = () => h.send(encodeList())
      await list()
      const { listVersion, count } = await h.next("HELLO", (r): r is Extract<DeviceRecord, { kind: "hello" }> => r.kind === "hello", { retry: list })
      const req = Echo.request.encode(echo("fresh"))
      await h.send(encodeCallx({ session: h.session, seq: s, ack: 0, timeoutMs: 5000, listVersion: (listVersion + 7) & 0xffff, index: 0, data: req }))
      assert.equal((await h.result(s)).status, WireStatus.stale)
      for (const index of [count, 255]) {
        h.clear()
        await h.send(encodeCallx({ session: h.session, seq: s, ack: 0, timeoutMs: 5000, listVersion, index, data: req }))
        assert.equal((await h.result(s)).status, WireStatus.stale, `index ${index} of ${count}`)
      }
      await h.send(h.call(s, "/echo", Echo.hash32, req))
      const r = await h.result(s)
      assert.equal(r.status, WireStatus.ok)
      assert.equal(text(r), "fresh")
    },
  },
  {
    title: "exactly once: a CALL sent 3 times in a frame and again later runs once; after DONE or the ack a resend is gone and never runs",
    async run(_dut, h) {
      const s = h.seqs(4)
      h.spoiled = true // (the acks below settle every seq of this session's client too)
      const count = (seq: number, ack = 0) => h.echo(seq, echo("", { mode: 4 }), { ack })
      await h.send(count(s), count(s), count(s))
      const first = await h.result(s)
      assert.equal(first.status, WireStatus.ok)
      const ran = Number(text(first))
      h.clear()
      await h.send(count(s))
      assert.equal(Number(text(await h.result(s))), ran, "a resent CALL is answered from memory")
      await h.send(encodeDone({ session: h.session, seqs: [s] }))
      await h.send(count(s))
      assert.equal((await h.status(s)).state, CallState.gone)
      // s+1 runs; the CALL of s+2 acknowledges everything up to s+1: a resend of s+1 is gone
      await h.send(count(s + 1))
      assert.equal(Number(text(await h.result(s + 1))), ran + 1)
      await h.send(count(s + 2, s + 1))
      assert.equal(Number(text(await h.result(s + 2))), ran + 2)
      await h.send(count(s + 1, s + 1))
      assert.equal((await h.status(s + 1)).state, CallState.gone)
      await h.send(count(s + 3, s + 2))
      assert.equal(Number(text(await h.result(s + 3))), ran + 3, "a duplicate ran the handler")
    },
  },
  {
    title: "busy: calls beyond maxInFlight are answered busy, not remembered (the same seq runs later)",
    async run(_dut, h) {
      const k = FIRMWARE_LIMITS.maxInFlight + 1
      const s = h.seqs(k)
      await h.send(...Array.from({ length: k }, (_, i) => h.echo(s + i, echo("", { mode: 9, delay_ms: 1500 }))))
      const answers = await Promise.all(Array.from({ length: k }, (_, i) => h.result(s + i, { timeoutMs: 20000 })))
      const busy = answers.filter((r) => r.status === WireStatus.busy)
      const ran = answers.filter((r) => r.status === WireStatus.ok)
      assert.ok(busy.length >= 1, `none of ${k} calls was busy`)
      assert.equal(busy.length + ran.length, k, `statuses ${answers.map((r) => r.status)}`)
      for (const r of ran) assert.equal(text(r), "completed")
      // the same seq again runs: a busy answer is not kept. (A device still finishing the other
      // calls, or another host's, may be busy again for a moment, as any client retries it: a
      // remembered busy would be answered for as long as the device keeps answers, 10 s.)
      const again = busy[0]!.seq
      let r = busy[0]!
      for (let tries = 0; tries < 10 && r.status !== WireStatus.ok; tries++) {
        if (tries) await new Promise((ok) => setTimeout(ok, 200))
        await h.send(h.echo(again, echo("", { mode: 9, delay_ms: 10 })))
        r = await h.result(again)
      }
      assert.equal(r.status, WireStatus.ok, "a busy answer was remembered (busy for 2 s of retries)")
      assert.equal(text(r), "completed")
    },
  },
  {
    title: "one host cannot take every slot: another host's call is answered while it holds all it may",
    async run(dut, h) {
      const k = FIRMWARE_LIMITS.maxInFlight
      const s = h.seqs(k)
      const answers = Promise.all(Array.from({ length: k }, (_, i) => h.result(s + i, { timeoutMs: 20000 })))
      await h.send(...Array.from({ length: k }, (_, i) => h.echo(s + i, echo("", { mode: 9, delay_ms: 3000 }))))
      const t1 = performance.now()
      for (;;) {
        const r = await h.poll(s)
        if (r.kind === "status" && r.state === CallState.running) break
        assert.ok(performance.now() - t1 < 5000, `the first call never ran: ${JSON.stringify(r)}`)
      }
      const other = await dut.host()
      const t0 = performance.now()
      assert.deepEqual(await other.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 2n }, { timeoutMs: 10000 }), { sum: 3n })
      const took = performance.now() - t0
      assert.ok(took < 1500, `the other host waited ${Math.round(took)} ms for a slot`)
      const st = (await answers).map((r) => r.status)
      assert.ok(st.includes(WireStatus.busy), `the host took every slot: ${st}`)
      await other.close()
    },
  },
  {
    title: "deadlines: handlers that never return are answered deadline_exceeded and their slots come back; timeoutMs 0 is the default deadline",
    async run(_dut, h) {
      const c = h.n.createClient(Echo, "echo")
      const stuck = Array.from({ length: FIRMWARE_LIMITS.maxInFlight }, () => failure(c.call(echo("", { mode: 7 }), { timeoutMs: 800 })))
      for (const e of await Promise.all(stuck)) assert.equal(e.code, "deadline_exceeded")
      const add = h.n.createClient(AddTwoInts, "add_two_ints")
      const many = await Promise.all(Array.from({ length: FIRMWARE_LIMITS.maxInFlight }, (_, i) => add.call({ a: BigInt(i), b: 1n }, { timeoutMs: 10000 })))
      assert.deepEqual(many.map((r) => r.sum), Array.from({ length: FIRMWARE_LIMITS.maxInFlight }, (_, i) => BigInt(i + 1)))
      const s = h.seqs()
      const t0 = performance.now()
      await h.send(h.echo(s, echo("", { mode: 7 }), { timeoutMs: 0 }))
      const r = await h.result(s, { timeoutMs: FIRMWARE_LIMITS.defaultTimeoutMs + 8000 })
      const took = performance.now() - t0
      assert.equal(r.status, WireStatus.deadline_exceeded)
      assert.ok(took >= FIRMWARE_LIMITS.defaultTimeoutMs - 300, `answered after ${Math.round(took)} ms, before the default deadline`)
    },
  },
  {
    title: "CANCEL stops a running handler (its context is cancelled), and a POLL then hears gone",
    async run(_dut, h) {
      const [started0, completed0] = await counters9(h.n)
      const s = h.seqs()
      const delay = 1200
      await h.send(h.echo(s, echo("", { mode: 9, delay_ms: delay })))
      const t0 = performance.now()
      for (;;) {
        const r = await h.poll(s)
        assert.equal(r.kind, "status", "the call ended before it was cancelled")
        if ((r as Status).state === CallState.running) break
        assert.ok(performance.now() - t0 < 5000, "the call never ran")
      }
      await h.send(encodeCancel({ session: h.session, seq: s }))
      const after = await h.poll(s)
      assert.ok(after.kind === "status" && after.state === CallState.gone, `after CANCEL: ${JSON.stringify(after)}`)
      // the handler would have completed by now had it not been cancelled
      const left = delay + 400 - (performance.now() - t0)
      if (left > 0) await new Promise((r) => setTimeout(r, left))
      const [started1, completed1] = await counters9(h.n)
      assert.equal(started1 - started0, 1)
      assert.equal(completed1, completed0, "the cancelled handler ran to its end")
    },
  },
  {
    title: "POLL of a call never sent: unknown; of a settled one: gone; records of an unknown session: NOSESSION with the bootId",
    async run(_dut, h) {
      const s = h.seqs()
      const r = await h.poll(s)
      assert.ok(r.kind === "status" && r.state === CallState.unknown, JSON.stringify(r))
      await h.send(encodeDone({ session: h.session, seqs: [s] }))
      const g = await h.poll(s)
      assert.ok(g.kind === "status" && g.state === CallState.gone, JSON.stringify(g))
      const other = (h.session ^ 0x5a5a5a5a) >>> 0
      for (const r of [h.call(s + 1, "/echo", Echo.hash32, Echo.request.encode(echo("x")), { session: other }), encodePoll({ session: other, seq: 1, have: 0 })]) {
        await h.send(r)
        const n = await h.next("NOSESSION", (x): x is Extract<DeviceRecord, { kind: "nosession" }> => x.kind === "nosession" && x.session === other, { retry: () => h.send(r) })
        assert.equal(n.bootId, h.n.limits!.bootId)
      }
    },
  },
  {
    title: "settled seqs: a session keeps 24 settled ranges above its floor; one more and it is given up (NOSESSION)",
    async run(dut) {
      // a host of its own: a reused one's session may hold ranges already (a raw seq an earlier
      // case left unsettled), and the count here must be exact
      const h = new Raw(await dut.host())
      try {
        const s = h.seqs(60)
        const seqs = Array.from({ length: 24 }, (_, i) => s + 2 * i)
        const done = encodeDone({ session: h.session, seqs })
        await h.send(done)
        // (a frame may be lost: over MQTT one is dropped while every peer has calls in flight, e.g.
        // the earlier cases' handlers that run to their deadline; DONE is sent again with the POLL,
        // as often as needed, and a DONE that was never applied leaves the seq unknown: a failure)
        const g = await h.next("STATUS gone for a settled seq", (r) => r.kind === "status" && r.seq === s + 2 && r.state !== CallState.unknown, {
          retry: async () => {
            await h.send(done)
            await h.send(encodePoll({ session: h.session, seq: s + 2, have: 0 }))
          },
        })
        assert.ok(g.kind === "status" && g.state === CallState.gone, `a settled seq: ${JSON.stringify(g)}`)
        const kept = await h.poll(s + 1)
        assert.ok(kept.kind === "status" && kept.state === CallState.unknown, `with 24 ranges: ${JSON.stringify(kept)}`)
        const session = h.session
        const more = encodeDone({ session, seqs: [s + 50] })
        await h.send(more)
        const poll = encodePoll({ session, seq: s + 1, have: 0 })
        await h.send(poll)
        await h.next("NOSESSION", (r) => r.kind === "nosession" && r.session === session, {
          retry: async () => {
            await h.send(more)
            await h.send(poll)
          },
        })
      } finally {
        h.close()
        await h.n.close()
      }
    },
  },
  {
    title: "uploads: a request in DATA records; STATUS receiving tells what is held, a gap is asked for; the whole request is what the handler gets",
    async run(_dut, h) {
      // through the client: 16 KiB in DATA records under the window
      const big = pattern(16384)
      assert.deepEqual(await h.n.createClient(Upload, "upload").call({ data: big }, { timeoutMs: 60000 }), { length: big.length, hash: uploadHash(big) })
      // by hand: 600 bytes of data (within any window), sent in pieces with a gap
      const data = pattern(600).map((b) => b ^ 0x55)
      const req = Upload.request.encode({ data })
      const s = h.seqs()
      await h.send(h.call(s, "/upload", Upload.hash32, req.subarray(0, 100), { total: req.length }))
      // (STATUS receiving says what is held; the host goes on from there)
      const held = await h.poll(s)
      assert.ok(held.kind === "status" && held.state === CallState.receiving && held.offset > 0 && held.offset <= 100, `after the CALL: ${JSON.stringify(held)}`)
      const at = held.kind === "status" ? held.offset : 0
      await h.send(encodeData({ session: h.session, seq: s, offset: 300, data: req.subarray(300, 400) }))
      // (STATUS receiving may still come: the device's at admission, or a second answer to the POLL)
      const gap = await h.next("STATUS gap", (r) => r.kind === "status" && r.seq === s && r.state !== CallState.receiving)
      assert.ok(gap.kind === "status" && gap.state === CallState.gap && gap.offset === at, `a DATA past what is held: ${JSON.stringify(gap)}`)
      for (let o = at; o < req.length; o += 150) await h.send(encodeData({ session: h.session, seq: s, offset: o, data: req.subarray(o, Math.min(req.length, o + 150)) }))
      const r = await h.result(s)
      assert.equal(r.status, WireStatus.ok)
      assert.deepEqual(Upload.response.decode(r.data), { length: data.length, hash: uploadHash(data) })
    },
  },
  {
    title: "refusals with a long message (an unknown service of a 180-byte name: about 200 bytes of RESULT) reach the host: on the CALL, on one POLL, and through the client as unimplemented",
    async run(_dut, h) {
      // (its CALL, with the request, still fits one Jacdac packet)
      const name = "/" + "n".repeat(179)
      const s = h.seqs()
      await h.send(h.call(s, name, Echo.hash32, Echo.request.encode(echo("x"))))
      // no POLLs meanwhile: the answer to the CALL itself must come
      const first = await h.result(s, { timeoutMs: 5000, retry: async () => {} })
      assert.equal(first.status, WireStatus.unimplemented)
      assert.match(message(first), /^no service \/nnnn/)
      const p = () => h.send(encodePoll({ session: h.session, seq: s, have: 0 }))
      await p()
      const again = await h.next(`POLL answer ${s}`, (r): r is Result => r.kind === "result" && r.session === h.session && r.seq === s, { timeoutMs: 5000, retry: async () => {} })
      assert.equal(message(again), message(first))
      const viaClient = await failure(h.n.createClient(Echo, name).call(echo("x"), { timeoutMs: 5000 }))
      assert.equal(viaClient.code, "unimplemented", viaClient.message)
    },
  },
  {
    title: "refusals: an unknown service's answer is given again on a resent CALL and on POLL; DONE forgets it (gone)",
    async run(_dut, h) {
      const s = h.seqs()
      const call = h.call(s, "/nope", Echo.hash32, Echo.request.encode(echo("x")))
      await h.send(call)
      const first = await h.result(s)
      assert.equal(first.status, WireStatus.unimplemented)
      const again = await h.poll(s)
      assert.ok(again.kind === "result" && again.status === WireStatus.unimplemented && message(again) === message(first), JSON.stringify(again))
      await h.send(call)
      const resent = await h.result(s, { retry: () => h.send(call) })
      assert.equal(message(resent), message(first))
      await h.send(encodeDone({ session: h.session, seqs: [s] }))
      const g = await h.poll(s)
      assert.ok(g.kind === "status" && g.state === CallState.gone, JSON.stringify(g))
    },
  },
  {
    title: "refusals are remembered in a bounded ring: after 9 from one host the one before its newest is gone, its oldest and newest answered",
    needs: ["refusal-ring"],
    async run(_dut, h) {
      const s = h.seqs(9)
      const req = Echo.request.encode(echo("x"))
      for (let i = 0; i < 9; i++) {
        const c = h.call(s + i, "/nope", Echo.hash32, req)
        await h.send(c)
        assert.equal((await h.result(s + i, { retry: () => h.send(c) })).status, WireStatus.unimplemented)
      }
      // (a full ring: a host that has refusals kept gives up its latest, so a flood keeps evicting its own)
      const evicted = await h.poll(s + 7)
      assert.ok(evicted.kind === "status" && evicted.state === CallState.gone, JSON.stringify(evicted))
      const oldest = await h.poll(s)
      assert.ok(oldest.kind === "result" && oldest.status === WireStatus.unimplemented, JSON.stringify(oldest))
      const newest = await h.poll(s + 8)
      assert.ok(newest.kind === "result" && newest.status === WireStatus.unimplemented, JSON.stringify(newest))
    },
  },
  {
    title: "a request over the budget is refused resource_exhausted naming the budget",
    needs: ["budget"],
    async run(_dut, h) {
      const e = await failure(h.n.createClient(Echo, "echo").call(echo("x".repeat(13000)), { timeoutMs: 20000 }))
      assert.equal(e.code, "resource_exhausted")
      assert.match(e.detail, /budget/)
    },
  },
  {
    title: '"latest": a newer call cancels the running one',
    needs: ["policies"],
    async run(_dut, h) {
      const c = h.n.createClient(Echo, "echo_latest")
      const first = c.call(echo("", { mode: 9, delay_ms: 5000 }), { timeoutMs: 20000 })
      await new Promise((r) => setImmediate(r))
      const second = c.call(echo("", { mode: 9, delay_ms: 10 }), { timeoutMs: 20000 })
      const e = await failure(first)
      assert.equal(e.code, "cancelled")
      assert.equal((await second).text, "completed")
    },
  },
  {
    title: "malformed and truncated records are answered ERROR and change nothing: the call they name runs on",
    async run(_dut, h) {
      const s = h.seqs(2)
      await h.send(h.echo(s, echo("", { mode: 9, delay_ms: 1500 })))
      const session = h.session
      const cancel = encodeCancel({ session, seq: s })
      const name = encodeName("/echo")
      // (another seq: a record naming the running call is a resend, answered before it is read further)
      const overrun = encodeCall({ session, seq: s + 1, ack: 0, timeoutMs: 1, hash32: Echo.hash32, total: 0, name, data: new Uint8Array(0) })
      overrun[RECORD_HEADER + 24] = 200 // nameLen past the record's end
      const bad: [string, Uint8Array][] = [
        ["a record that overruns the frame", new Uint8Array([Kind.CANCEL, 200, 0, 1, 2, 3])],
        ["a CANCEL one byte short", rec(Kind.CANCEL, cancel.subarray(RECORD_HEADER, RECORD_HEADER + RECORD_MIN.CANCEL - 1))],
        ["a DONE one byte short", rec(Kind.DONE, encodeDone({ session, seqs: [s] }).subarray(RECORD_HEADER, RECORD_HEADER + RECORD_MIN.DONE - 1))],
        ["an unknown kind", rec(0x7e, new Uint8Array(8))],
        ["a CALL whose name overruns it", overrun],
        ["a header cut short", new Uint8Array([Kind.POLL, 12])],
      ]
      for (const [what, frame] of bad) {
        await h.n.sendRawFrame(frame)
        await h.next(`ERROR for ${what}`, (r) => r.kind === "error", { retry: () => h.n.sendRawFrame(frame) })
      }
      const r = await h.result(s, { timeoutMs: 15000 })
      assert.equal(r.status, WireStatus.ok)
      assert.equal(text(r), "completed", "a malformed record cancelled the call")
      const never = await h.poll(s + 1)
      assert.ok(never.kind === "status" && never.state === CallState.unknown, `the broken CALL left a call: ${JSON.stringify(never)}`)
      assert.deepEqual(await h.n.createClient(AddTwoInts, "add_two_ints").call({ a: 2n, b: 2n }), { sum: 4n })
    },
  },
]

const only = process.env.RS_CONFORMANCE?.split(",").filter(Boolean) as Impl[] | undefined
/** RS_CONFORMANCE_CASE: run only the cases whose title matches this regular expression */
const pick = process.env.RS_CONFORMANCE_CASE

test("the table of test/conformance/README.md is the skip list (gaps.ts), and every listed feature is needed by a case", () => {
  const readme = readFileSync(join(__dirname, "README.md"), "utf8")
  assert.equal(tableIn(readme), renderTable(), "README.md's table differs from gaps.ts: run `node --import tsx test/conformance/gaps.ts --write`")
  const needed = new Set(CASES.flatMap((c) => c.needs ?? []))
  for (const f of Object.keys(FEATURES)) assert.ok(needed.has(f as Feature), `no case needs ${f}`)
  for (const impl of IMPLS) for (const f of Object.keys(NOT_MODELLED[impl])) assert.ok(f in FEATURES, `${impl}: unknown feature ${f}`)
})

for (const impl of IMPLS) {
  if (only && !only.includes(impl)) continue
  describe(`conformance: ${impl}`, () => {
    let dut: Dut | undefined
    // Hosts are reused from case to case: the device keeps a session that called in the last 30 s
    // from being taken over by a new host (issue 16), so a new host per case would wait for one.
    const pool: RecordNode[] = []
    before(async () => {
      dut = await FACTORIES[impl]()
    })
    after(async () => {
      await dut?.close()
    })
    for (const c of CASES) {
      if (pick && !new RegExp(pick).test(c.title)) continue
      const defect = knownDefect(impl, c.title)
      test(c.title, { skip: skipReason(impl, c.needs), todo: defect ? `known defect: ${defect}` : undefined }, async () => {
        const h = new Raw(pool.pop() ?? (await dut!.host()))
        let ok = false
        try {
          await c.run(dut!, h)
          ok = true
        } catch (e) {
          ;(e as Error).message += `\n(${impl}: ${dut!.log()})`
          throw e
        } finally {
          h.close()
          if (ok && !h.spoiled && h.n.session) pool.push(h.n)
          else await h.n.close()
        }
      })
    }
  })
}
