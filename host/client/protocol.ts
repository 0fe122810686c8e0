// Host side of the record protocol of docs/protocol.md (Jacdac service rosServices, 0x1b7e5c2a):
// each `frame` command / `frame_out` report payload is a sequence of records
// `kind u8, len u8, body[len]`, all integers little-endian.

export const ROS_SERVICES_CLASS = 0x1b7e5c2a
export const CMD_FRAME = 0x80
export const REPORT_FRAME_OUT = 0x81
/** Largest Jacdac payload. */
export const MAX_PAYLOAD = 236
export const PROTOCOL_VERSION = 1
/** Responses of at most this many bytes are kept by the device without a DONE (src/lib/services.ts). */
export const SMALL_RESPONSE = 64

export const Kind = {
  CALL: 0x01,
  DATA: 0x02,
  CANCEL: 0x03,
  POLL: 0x04,
  DONE: 0x05,
  LIST: 0x06,
  CALLX: 0x07,
  HELLO: 0x81,
  SERVICE: 0x82,
  RESULT: 0x83,
  RDATA: 0x84,
  STATUS: 0x85,
  ERROR: 0x86,
} as const

/** Call states in STATUS records. */
export const CallState = { unknown: 0, receiving: 1, running: 2, done: 3, gone: 4 } as const

/** Header bytes of each record kind before its data (kind + len + fixed fields). */
export const CALL_HEADER = 2 + 13
export const CALLX_HEADER = 2 + 6
export const DATA_HEADER = 2 + 8
export const RESULT_HEADER = 2 + 9
export const RDATA_HEADER = 2 + 8

export type DeviceRecord =
  | { kind: "hello"; bootId: number; listVersion: number; count: number; maxRequestBytes: number; maxResponseBytes: number; maxInFlight: number; version: number }
  | { kind: "service"; listVersion: number; index: number; hash32: number; name: string; type: string }
  | { kind: "result"; callId: number; status: number; total: number; data: Uint8Array }
  | { kind: "rdata"; callId: number; offset: number; data: Uint8Array }
  | { kind: "status"; callId: number; state: number; offset: number }
  | { kind: "error"; offset: number; message: string }

export class FrameError extends Error {
  override readonly name = "FrameError"
}

const utf8 = new TextDecoder("utf-8", { fatal: false })
const enc = new TextEncoder()

function dv(b: Uint8Array) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength)
}

/** Splits a device payload into records. Throws FrameError on a record that overruns or is too short. */
export function parseDeviceFrame(payload: Uint8Array): DeviceRecord[] {
  const out: DeviceRecord[] = []
  let o = 0
  while (o < payload.length) {
    if (o + 2 > payload.length) throw new FrameError(`truncated record header at ${o}`)
    const kind = payload[o]!
    const len = payload[o + 1]!
    const body = payload.subarray(o + 2, o + 2 + len)
    if (body.length !== len) throw new FrameError(`record 0x${kind.toString(16)} at ${o} overruns the frame`)
    const v = dv(body)
    const need = (n: number) => {
      if (len < n) throw new FrameError(`record 0x${kind.toString(16)} too short (${len} < ${n})`)
    }
    switch (kind) {
      case Kind.HELLO:
        need(19)
        out.push({
          kind: "hello",
          bootId: v.getUint32(0, true),
          listVersion: v.getUint16(4, true),
          count: v.getUint16(6, true),
          maxRequestBytes: v.getUint32(8, true),
          maxResponseBytes: v.getUint32(12, true),
          maxInFlight: v.getUint16(16, true),
          version: body[18]!,
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
      case Kind.RESULT:
        need(9)
        out.push({ kind: "result", callId: v.getUint32(0, true), status: body[4]!, total: v.getUint32(5, true), data: body.subarray(9) })
        break
      case Kind.RDATA:
        need(8)
        out.push({ kind: "rdata", callId: v.getUint32(0, true), offset: v.getUint32(4, true), data: body.subarray(8) })
        break
      case Kind.STATUS:
        need(9)
        out.push({ kind: "status", callId: v.getUint32(0, true), state: body[4]!, offset: v.getUint32(5, true) })
        break
      case Kind.ERROR:
        need(2)
        out.push({ kind: "error", offset: v.getUint16(0, true), message: utf8.decode(body.subarray(2)) })
        break
      default:
        throw new FrameError(`unknown record kind 0x${kind.toString(16)} at ${o}`)
    }
    o += 2 + len
  }
  return out
}

function rec(kind: number, body: Uint8Array): Uint8Array {
  if (body.length > 255) throw new FrameError(`record body of ${body.length} bytes (max 255)`)
  const r = new Uint8Array(2 + body.length)
  r[0] = kind
  r[1] = body.length
  r.set(body, 2)
  return r
}

/** UTF-8 bytes of a service name with its leading slash. */
export function encodeName(name: string): Uint8Array {
  const n = enc.encode(name.startsWith("/") ? name : "/" + name)
  if (n.length > 200) throw new FrameError(`service name of ${n.length} bytes (max 200)`)
  return n
}

export function callRecord(callId: number, hash32: number, total: number, name: Uint8Array, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(13 + name.length + data.length)
  const v = dv(b)
  v.setUint32(0, callId >>> 0, true)
  v.setUint32(4, hash32 >>> 0, true)
  v.setUint32(8, total >>> 0, true)
  b[12] = name.length
  b.set(name, 13)
  b.set(data, 13 + name.length)
  return rec(Kind.CALL, b)
}

/** Compact CALL: the service by its index in list `listVersion`; the whole request in one record. */
export function callxRecord(callId: number, listVersion: number, index: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(6 + data.length)
  dv(b).setUint32(0, callId >>> 0, true)
  b[4] = listVersion & 0xff
  b[5] = index
  b.set(data, 6)
  return rec(Kind.CALLX, b)
}

export function dataRecord(callId: number, offset: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + data.length)
  const v = dv(b)
  v.setUint32(0, callId >>> 0, true)
  v.setUint32(4, offset >>> 0, true)
  b.set(data, 8)
  return rec(Kind.DATA, b)
}

export function idRecord(kind: typeof Kind.CANCEL | typeof Kind.DONE | typeof Kind.LIST, id: number): Uint8Array {
  const b = new Uint8Array(4)
  dv(b).setUint32(0, id >>> 0, true)
  return rec(kind, b)
}

export function pollRecord(callId: number, have: number): Uint8Array {
  const b = new Uint8Array(8)
  const v = dv(b)
  v.setUint32(0, callId >>> 0, true)
  v.setUint32(4, have >>> 0, true)
  return rec(Kind.POLL, b)
}

/** Packs records into payloads of at most MAX_PAYLOAD bytes, in order. */
export function packRecords(records: Uint8Array[]): Uint8Array[] {
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
    if (r.length > MAX_PAYLOAD) throw new FrameError(`record of ${r.length} bytes does not fit a packet`)
    if (n + r.length > MAX_PAYLOAD) flush()
    cur.push(r)
    n += r.length
  }
  flush()
  return out
}
