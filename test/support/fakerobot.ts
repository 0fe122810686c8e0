// The device end of the record protocol as a hostile or faulty robot plays it, whatever carries its
// frames (MQTT: test/host/client_hostile_robot.test.ts; Jacdac: client_hostile_robot_jacdac.test.ts):
// it reads the host's records with the generated decoders and answers with records made with the
// generated encoders (packages/host/src/gen/wire.ts), as its test scripts. A carrier subclass
// delivers the host's frames to `onFrame` and sends records in `send`.
import assert from "node:assert/strict"
import { Trigger } from "../../packages/host/src/gen/interfaces"
import {
  PROTOCOL_VERSION,
  WireStatus,
  CallState,
  encodeHello,
  encodeResult,
  encodeService,
  encodeSession,
  encodeStatus,
  parseHostFrame,
  type HelloRecord,
  type HostRecord,
} from "../../packages/host/src/client/records"
import { max } from "./victim"

export const MiB = 1 << 20

/** What a fake robot lists: Trigger services by name. */
export const TRIGGER = { hash32: Trigger.hash32, type: Trigger.fullName }

/** A fake robot's HELLO unless its test says otherwise. */
export class FakeRobotHello implements Omit<HelloRecord, "kind"> {
  version = PROTOCOL_VERSION
  minVersion = PROTOCOL_VERSION
  bootId = 0x1234
  listVersion = 1
  count = 1
  maxRequestBytes = 8192
  maxResponseBytes = 1 << 20
  budget = 0xffffffff
  maxInFlight = 32
  window = 32768
  maxRecord = 8192
}

/** A HELLO record: FakeRobotHello's figures, with `o`'s. */
export const hello = (o: Partial<HelloRecord>) => encodeHello({ ...new FakeRobotHello(), ...o })

/** `records` packed into one frame. */
export function frame(...records: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(records))
}

/** A RESULT carrying a whole Trigger response. */
export function triggerResult(session: number, seq: number, message: string): Uint8Array {
  const data = Trigger.response.encode({ success: true, message })
  return encodeResult({ session, seq, status: WireStatus.ok, total: data.length, data })
}

/**
 * The good robot's calls while the attack ran: none failed, the slowest under `slowestMs`
 * (default 1 s), at least `calls` made.
 */
export function servedMeanwhile(v: { ms: number[]; failures: string[] }, calls = 1, slowestMs = 1000) {
  assert.deepEqual(v.failures, [])
  assert.ok(v.ms.length >= calls, `the good robot was called ${v.ms.length} times meanwhile`)
  assert.ok(max(v.ms) < slowestMs, `the good robot's slowest call took ${max(v.ms).toFixed(0)} ms`)
}

/**
 * A robot's record logic. By default it answers LIST with `hello` and one SERVICE per name of
 * `services`, and OPEN with a session; `onRecord` sees every record (after the default answer) and
 * may answer more. `host` names who sent a frame as the carrier knows it (an MQTT host id; on
 * Jacdac, where a command does not say who sent it, the bus).
 */
export abstract class FakeRobotCore {
  hello: Omit<HelloRecord, "kind"> = new FakeRobotHello()
  services = ["/trigger"]
  /** answer LIST (false: the test's onRecord does, or nothing does) */
  answerList = true
  /** the type of each service (Trigger unless named here) */
  types = new Map<string, { hash32: number; fullName: string }>()
  session = 77
  /** the host's last OPEN nonce, per host */
  readonly nonces = new Map<string, number>()
  /** records received, by kind */
  readonly seen = new Map<string, number>()
  onRecord: (host: string, r: HostRecord) => void = () => {}

  /** One frame of records to `host`. */
  abstract send(host: string, ...records: Uint8Array[]): void

  /** One frame of host records from `host` (the carrier calls it). */
  protected onFrame(host: string, payload: Uint8Array) {
    const { records } = parseHostFrame(payload)
    for (const r of records) {
      this.seen.set(r.kind, (this.seen.get(r.kind) ?? 0) + 1)
      if (r.kind === "list" && this.answerList) this.send(host, encodeHello(this.hello), ...this.serviceRecords())
      if (r.kind === "open") {
        this.nonces.set(host, r.nonce)
        this.send(host, encodeSession({ nonce: r.nonce, session: this.session, bootId: this.hello.bootId }))
      }
      this.onRecord(host, r)
    }
  }

  /**
   * Serves calls as a device does, simply: a CALL's request gathered from its DATA records
   * (STATUS receiving after each, from what it holds), then `answer` with the whole request.
   */
  serve(answer: (host: string, session: number, seq: number, request: Uint8Array) => void) {
    const calls = new Map<number, { total: number; have: Uint8Array[]; got: number }>()
    const complete = (host: string, session: number, seq: number) => {
      const c = calls.get(seq)!
      if (c.got < c.total) return
      calls.delete(seq)
      answer(host, session, seq, Buffer.concat(c.have))
    }
    this.onRecord = (host, r) => {
      if (r.kind === "callx") answer(host, r.session, r.seq, r.data)
      if (r.kind === "call") {
        calls.set(r.seq, { total: r.total, have: [r.data], got: r.data.length })
        if (r.data.length < r.total) this.send(host, encodeStatus({ session: r.session, seq: r.seq, state: CallState.receiving, offset: r.data.length }))
        complete(host, r.session, r.seq)
      }
      if (r.kind === "data") {
        const c = calls.get(r.seq)
        if (!c || r.offset !== c.got) return
        c.have.push(r.data.slice())
        c.got += r.data.length
        this.send(host, encodeStatus({ session: r.session, seq: r.seq, state: CallState.receiving, offset: c.got }))
        complete(host, r.session, r.seq)
      }
    }
  }

  serviceRecords(): Uint8Array[] {
    return this.services.map((name, index) => {
      const t = this.types.get(name)
      return encodeService({ listVersion: this.hello.listVersion, index, name, ...(t ? { hash32: t.hash32, type: t.fullName } : TRIGGER) })
    })
  }
}
