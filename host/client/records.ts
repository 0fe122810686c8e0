// Host side of the record codec of protocol v2 (docs/protocol.md): each `frame` command / `frame_out`
// report payload is a sequence of records `kind u8, len u16, body[len]`, integers little-endian.
// Kinds, states, statuses and limits come from the generated host/client/wire.ts (protocol/protocol.json).
import { Kind, PROTOCOL_VERSION, RECORD_HEADER } from "./wire"

export { CallState, INTERNAL_STATUS, JACDAC_PAYLOAD, Kind, MAX_MESSAGE, PROTOCOL_VERSION, RECORD_HEADER, SMALL_RESPONSE, WireStatus } from "./wire"

/** The Jacdac service class that carries the records (services/rosservices.md). */
export const ROS_SERVICES_CLASS = 0x1b7e5c2a
export const CMD_FRAME = 0x80
export const REPORT_FRAME_OUT = 0x81
export const CMD_ECHO = 0x82

/** Header bytes of each record kind before its data (record header + fixed fields). */
export const CALL_HEADER = RECORD_HEADER + 25
export const CALLX_HEADER = RECORD_HEADER + 19
export const DATA_HEADER = RECORD_HEADER + 12

export interface Hello {
  kind: "hello"
  version: number
  minVersion: number
  bootId: number
  listVersion: number
  count: number
  maxRequestBytes: number
  maxResponseBytes: number
  budget: number
  maxInFlight: number
  window: number
  maxRecord: number
}

export type DeviceRecord =
  | Hello
  | { kind: "service"; listVersion: number; index: number; hash32: number; name: string; type: string }
  | { kind: "session"; nonce: number; session: number; bootId: number }
  | { kind: "result"; session: number; seq: number; status: number; total: number; data: Uint8Array }
  | { kind: "rdata"; session: number; seq: number; offset: number; data: Uint8Array }
  | { kind: "status"; session: number; seq: number; state: number; offset: number }
  | { kind: "error"; offset: number; message: string }
  | { kind: "nosession"; session: number; bootId: number }

export class FrameError extends Error {
  override readonly name = "FrameError"
}

/** Thrown for a frame from a device that speaks another version of the record protocol. */
export class VersionError extends FrameError {
  constructor(readonly deviceVersion: number) {
    super(
      deviceVersion < PROTOCOL_VERSION
        ? `the device speaks record protocol v${deviceVersion}, this host v${PROTOCOL_VERSION}: update the device firmware (rebuild and flash it, or restart the simulator with this checkout)`
        : `the device speaks record protocol v${deviceVersion}, this host v${PROTOCOL_VERSION}: update the host (npm install in a checkout as new as the firmware)`,
    )
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: false })
const enc = new TextEncoder()

function dv(b: Uint8Array) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength)
}

/** A v1 HELLO (`0x81, 20, …`, version byte 1 at body offset 18): v1 had 2-byte record headers. */
function v1Hello(p: Uint8Array): boolean {
  return p.length >= 22 && p[0] === 0x81 && p[1] === 20 && p[2 + 18] === 1
}

/** Splits a device payload into records. Throws FrameError on a record that overruns or is too short,
 * VersionError on a frame of another protocol version. */
export function parseDeviceFrame(payload: Uint8Array): DeviceRecord[] {
  const out: DeviceRecord[] = []
  let o = 0
  while (o < payload.length) {
    if (o + RECORD_HEADER > payload.length) {
      if (o === 0 && v1Hello(payload)) throw new VersionError(1)
      throw new FrameError(`truncated record header at ${o}`)
    }
    const kind = payload[o]!
    const len = dv(payload).getUint16(o + 1, true)
    const body = payload.subarray(o + RECORD_HEADER, o + RECORD_HEADER + len)
    if (body.length !== len) {
      if (o === 0 && v1Hello(payload)) throw new VersionError(1)
      throw new FrameError(`record 0x${kind.toString(16)} at ${o} overruns the frame`)
    }
    const v = dv(body)
    const need = (n: number) => {
      if (len < n) throw new FrameError(`record 0x${kind.toString(16)} too short (${len} < ${n})`)
    }
    switch (kind) {
      case Kind.HELLO:
        need(2)
        if (body[0] !== PROTOCOL_VERSION) throw new VersionError(body[0]!)
        need(28)
        out.push({
          kind: "hello",
          version: body[0]!,
          minVersion: body[1]!,
          bootId: v.getUint32(2, true),
          listVersion: v.getUint16(6, true),
          count: v.getUint16(8, true),
          maxRequestBytes: v.getUint32(10, true),
          maxResponseBytes: v.getUint32(14, true),
          budget: v.getUint32(18, true),
          maxInFlight: v.getUint16(22, true),
          window: v.getUint16(24, true),
          maxRecord: v.getUint16(26, true),
        })
        break
      case Kind.SERVICE: {
        need(8)
        const nlen = body[3]!
        if (8 + nlen > len) throw new FrameError("SERVICE name overruns the record")
        out.push({
          kind: "service",
          listVersion: v.getUint16(0, true),
          index: body[2]!,
          hash32: v.getUint32(4, true),
          name: utf8.decode(body.subarray(8, 8 + nlen)),
          type: utf8.decode(body.subarray(8 + nlen)),
        })
        break
      }
      case Kind.SESSION:
        need(12)
        out.push({ kind: "session", nonce: v.getUint32(0, true), session: v.getUint32(4, true), bootId: v.getUint32(8, true) })
        break
      case Kind.RESULT:
        need(13)
        out.push({
          kind: "result",
          session: v.getUint32(0, true),
          seq: v.getUint32(4, true),
          status: body[8]!,
          total: v.getUint32(9, true),
          data: body.subarray(13),
        })
        break
      case Kind.RDATA:
        need(12)
        out.push({ kind: "rdata", session: v.getUint32(0, true), seq: v.getUint32(4, true), offset: v.getUint32(8, true), data: body.subarray(12) })
        break
      case Kind.STATUS:
        need(13)
        out.push({ kind: "status", session: v.getUint32(0, true), seq: v.getUint32(4, true), state: body[8]!, offset: v.getUint32(9, true) })
        break
      case Kind.ERROR:
        need(2)
        out.push({ kind: "error", offset: v.getUint16(0, true), message: utf8.decode(body.subarray(2)) })
        break
      case Kind.NOSESSION:
        need(8)
        out.push({ kind: "nosession", session: v.getUint32(0, true), bootId: v.getUint32(4, true) })
        break
      default:
        throw new FrameError(`unknown record kind 0x${kind.toString(16)} at ${o}`)
    }
    o += RECORD_HEADER + len
  }
  return out
}

/** One record: kind, u16 length, body. */
export function rec(kind: number, body: Uint8Array): Uint8Array {
  if (body.length > 0xffff) throw new FrameError(`record body of ${body.length} bytes (max 65535)`)
  const r = new Uint8Array(RECORD_HEADER + body.length)
  r[0] = kind
  dv(r).setUint16(1, body.length, true)
  r.set(body, RECORD_HEADER)
  return r
}

/** UTF-8 bytes of a service name with its leading slash. */
export function encodeName(name: string): Uint8Array {
  const n = enc.encode(name.startsWith("/") ? name : "/" + name)
  if (n.length > 200) throw new FrameError(`service name of ${n.length} bytes (max 200)`)
  return n
}

export function openRecord(nonce: number, version = PROTOCOL_VERSION): Uint8Array {
  const b = new Uint8Array(5)
  dv(b).setUint32(0, nonce >>> 0, true)
  b[4] = version
  return rec(Kind.OPEN, b)
}

export function listRecord(): Uint8Array {
  return rec(Kind.LIST, new Uint8Array(0))
}

/** The fields every CALL and CALLX start with. */
export interface CallHead {
  session: number
  seq: number
  /** every seq <= ack is settled on the host: the device may forget it */
  ack: number
  /** the caller's remaining time (ms; 0: none) */
  timeoutMs: number
}

function head(b: Uint8Array, h: CallHead) {
  const v = dv(b)
  v.setUint32(0, h.session >>> 0, true)
  v.setUint32(4, h.seq >>> 0, true)
  v.setUint32(8, h.ack >>> 0, true)
  v.setUint32(12, Math.max(0, Math.min(0xffffffff, Math.round(h.timeoutMs))), true)
}

export function callRecord(h: CallHead, hash32: number, total: number, name: Uint8Array, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(25 + name.length + data.length)
  head(b, h)
  const v = dv(b)
  v.setUint32(16, hash32 >>> 0, true)
  v.setUint32(20, total >>> 0, true)
  b[24] = name.length
  b.set(name, 25)
  b.set(data, 25 + name.length)
  return rec(Kind.CALL, b)
}

/** Compact CALL: the service by its index in list `listVersion`; the whole request in this record. */
export function callxRecord(h: CallHead, listVersion: number, index: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(19 + data.length)
  head(b, h)
  dv(b).setUint16(16, listVersion & 0xffff, true)
  b[18] = index
  b.set(data, 19)
  return rec(Kind.CALLX, b)
}

export function dataRecord(session: number, seq: number, offset: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(12 + data.length)
  const v = dv(b)
  v.setUint32(0, session >>> 0, true)
  v.setUint32(4, seq >>> 0, true)
  v.setUint32(8, offset >>> 0, true)
  b.set(data, 12)
  return rec(Kind.DATA, b)
}

export function cancelRecord(session: number, seq: number): Uint8Array {
  const b = new Uint8Array(8)
  dv(b).setUint32(0, session >>> 0, true)
  dv(b).setUint32(4, seq >>> 0, true)
  return rec(Kind.CANCEL, b)
}

export function pollRecord(session: number, seq: number, have: number): Uint8Array {
  const b = new Uint8Array(12)
  const v = dv(b)
  v.setUint32(0, session >>> 0, true)
  v.setUint32(4, seq >>> 0, true)
  v.setUint32(8, have >>> 0, true)
  return rec(Kind.POLL, b)
}

/** DONE for several calls of one session. */
export function doneRecord(session: number, seqs: readonly number[]): Uint8Array {
  const b = new Uint8Array(4 + 4 * seqs.length)
  const v = dv(b)
  v.setUint32(0, session >>> 0, true)
  seqs.forEach((s, i) => v.setUint32(4 + 4 * i, s >>> 0, true))
  return rec(Kind.DONE, b)
}

/** Packs records into payloads of at most `max` bytes, in order. */
export function packRecords(records: Uint8Array[], max = 236): Uint8Array[] {
  const out: Uint8Array[] = []
  let cur: Uint8Array[] = []
  let n = 0
  const flush = () => {
    if (!n) return
    const p = new Uint8Array(n)
    let o = 0
    for (const r of cur) {
      p.set(r, o)
      o += r.length
    }
    out.push(p)
    cur = []
    n = 0
  }
  for (const r of records) {
    if (r.length > max) throw new FrameError(`record of ${r.length} bytes does not fit a packet of ${max}`)
    if (n + r.length > max) flush()
    cur.push(r)
    n += r.length
  }
  flush()
  return out
}
