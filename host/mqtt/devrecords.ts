// The device's half of the record codec of protocol v2 (docs/protocol.md), in TypeScript: host
// records parsed, device records built. The firmware has its own (src/rpc/); this one serves the
// in-memory MQTT robot (host/mqtt/memrobot.ts). Kinds and layouts come from host/client/wire.ts
// (generated from protocol/protocol.json) and host/client/records.ts.
import { FrameError, Kind, PROTOCOL_VERSION, RECORD_HEADER, rec } from "../client/records"

export type HostRecord =
  | { kind: "open"; nonce: number; version: number }
  | { kind: "call"; session: number; seq: number; ack: number; timeoutMs: number; hash32: number; total: number; name: string; data: Uint8Array }
  | { kind: "callx"; session: number; seq: number; ack: number; timeoutMs: number; listVersion: number; index: number; data: Uint8Array }
  | { kind: "data"; session: number; seq: number; offset: number; data: Uint8Array }
  | { kind: "cancel"; session: number; seq: number }
  | { kind: "poll"; session: number; seq: number; have: number }
  | { kind: "done"; session: number; seqs: number[] }
  | { kind: "list" }

const utf8 = new TextDecoder("utf-8", { fatal: false })
const enc = new TextEncoder()
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength)

/**
 * Splits a host frame into records. Records before a bad one are returned with the error (the
 * device answers ERROR with its offset and still serves the good ones).
 */
export function parseHostFrame(payload: Uint8Array): { records: HostRecord[]; error?: { offset: number; message: string } } {
  const records: HostRecord[] = []
  let o = 0
  try {
    while (o < payload.length) {
      if (o + RECORD_HEADER > payload.length) throw new FrameError("truncated record header")
      const kind = payload[o]!
      const len = dv(payload).getUint16(o + 1, true)
      const body = payload.subarray(o + RECORD_HEADER, o + RECORD_HEADER + len)
      if (body.length !== len) throw new FrameError(`record 0x${kind.toString(16)} overruns the frame`)
      const v = dv(body)
      const need = (n: number) => {
        if (len < n) throw new FrameError(`record 0x${kind.toString(16)} too short (${len} < ${n})`)
      }
      const u32 = (at: number) => v.getUint32(at, true)
      switch (kind) {
        case Kind.OPEN:
          need(5)
          records.push({ kind: "open", nonce: u32(0), version: body[4]! })
          break
        case Kind.CALL: {
          need(25)
          const nlen = body[24]!
          if (25 + nlen > len) throw new FrameError("CALL name overruns the record")
          records.push({
            kind: "call",
            session: u32(0),
            seq: u32(4),
            ack: u32(8),
            timeoutMs: u32(12),
            hash32: u32(16),
            total: u32(20),
            name: utf8.decode(body.subarray(25, 25 + nlen)),
            data: body.subarray(25 + nlen),
          })
          break
        }
        case Kind.CALLX:
          need(19)
          records.push({ kind: "callx", session: u32(0), seq: u32(4), ack: u32(8), timeoutMs: u32(12), listVersion: v.getUint16(16, true), index: body[18]!, data: body.subarray(19) })
          break
        case Kind.DATA:
          need(12)
          records.push({ kind: "data", session: u32(0), seq: u32(4), offset: u32(8), data: body.subarray(12) })
          break
        case Kind.CANCEL:
          need(8)
          records.push({ kind: "cancel", session: u32(0), seq: u32(4) })
          break
        case Kind.POLL:
          need(12)
          records.push({ kind: "poll", session: u32(0), seq: u32(4), have: u32(8) })
          break
        case Kind.DONE: {
          need(4)
          if ((len - 4) % 4) throw new FrameError("DONE with a partial seq")
          const seqs: number[] = []
          for (let i = 4; i < len; i += 4) seqs.push(u32(i))
          records.push({ kind: "done", session: u32(0), seqs })
          break
        }
        case Kind.LIST:
          records.push({ kind: "list" })
          break
        default:
          throw new FrameError(`unknown record kind 0x${kind.toString(16)}`)
      }
      o += RECORD_HEADER + len
    }
  } catch (e) {
    return { records, error: { offset: o, message: (e as Error).message } }
  }
  return { records }
}

export interface HelloFields {
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

export function helloRecord(h: HelloFields): Uint8Array {
  const b = new Uint8Array(28)
  const v = dv(b)
  b[0] = PROTOCOL_VERSION
  b[1] = PROTOCOL_VERSION
  v.setUint32(2, h.bootId >>> 0, true)
  v.setUint16(6, h.listVersion & 0xffff, true)
  v.setUint16(8, h.count, true)
  v.setUint32(10, h.maxRequestBytes, true)
  v.setUint32(14, h.maxResponseBytes, true)
  v.setUint32(18, h.budget, true)
  v.setUint16(22, h.maxInFlight, true)
  v.setUint16(24, h.window, true)
  v.setUint16(26, h.maxRecord, true)
  return rec(Kind.HELLO, b)
}

export function serviceRecord(listVersion: number, index: number, hash32: number, name: string, type: string): Uint8Array {
  const n = enc.encode(name)
  const t = enc.encode(type)
  const b = new Uint8Array(8 + n.length + t.length)
  const v = dv(b)
  v.setUint16(0, listVersion & 0xffff, true)
  b[2] = index
  b[3] = n.length
  v.setUint32(4, hash32 >>> 0, true)
  b.set(n, 8)
  b.set(t, 8 + n.length)
  return rec(Kind.SERVICE, b)
}

export function sessionRecord(nonce: number, session: number, bootId: number): Uint8Array {
  const b = new Uint8Array(12)
  const v = dv(b)
  v.setUint32(0, nonce >>> 0, true)
  v.setUint32(4, session >>> 0, true)
  v.setUint32(8, bootId >>> 0, true)
  return rec(Kind.SESSION, b)
}

/** RESULT: status 0 with `total` response bytes (the first of them in `data`), or an error with its message. */
export function resultRecord(session: number, seq: number, status: number, total: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(13 + data.length)
  const v = dv(b)
  v.setUint32(0, session >>> 0, true)
  v.setUint32(4, seq >>> 0, true)
  b[8] = status
  v.setUint32(9, total >>> 0, true)
  b.set(data, 13)
  return rec(Kind.RESULT, b)
}

export function rdataRecord(session: number, seq: number, offset: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(12 + data.length)
  const v = dv(b)
  v.setUint32(0, session >>> 0, true)
  v.setUint32(4, seq >>> 0, true)
  v.setUint32(8, offset >>> 0, true)
  b.set(data, 12)
  return rec(Kind.RDATA, b)
}

export function statusRecord(session: number, seq: number, state: number, offset: number): Uint8Array {
  const b = new Uint8Array(13)
  const v = dv(b)
  v.setUint32(0, session >>> 0, true)
  v.setUint32(4, seq >>> 0, true)
  b[8] = state
  v.setUint32(9, offset >>> 0, true)
  return rec(Kind.STATUS, b)
}

export function errorRecord(offset: number, message: string): Uint8Array {
  const m = enc.encode(message).subarray(0, 200)
  const b = new Uint8Array(2 + m.length)
  dv(b).setUint16(0, Math.min(offset, 0xffff), true)
  b.set(m, 2)
  return rec(Kind.ERROR, b)
}

export function nosessionRecord(session: number, bootId: number): Uint8Array {
  const b = new Uint8Array(8)
  dv(b).setUint32(0, session >>> 0, true)
  dv(b).setUint32(4, bootId >>> 0, true)
  return rec(Kind.NOSESSION, b)
}

/** Bytes of a RESULT record besides its data, and of an RDATA record. */
export const RESULT_HEADER = RECORD_HEADER + 13
export const RDATA_HEADER = RECORD_HEADER + 12
