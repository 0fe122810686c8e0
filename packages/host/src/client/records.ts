// Framing of protocol v2 (docs/protocol.md) on the host, for both directions: each `frame` command /
// `frame_out` report payload is a sequence of records `kind u8, len u16, body[len]`, integers
// little-endian. This file splits frames into records, packs records into frames and recognises a
// device of another protocol version; it knows no record layout. The record types, their encoders
// and decoders (both directions), kinds, states, statuses, limits and the Jacdac codes are generated
// from protocol/protocol.json into packages/host/src/gen/wire.ts and re-exported here.
import { FrameError, JACDAC_PAYLOAD, Kind, PROTOCOL_VERSION, RECORD_HEADER, RECORD_MIN, decodeDeviceRecord, decodeHostRecord, type DeviceRecord, type HostRecord } from "../gen/wire"
import { normalizeName } from "./names"

export * from "../gen/wire"

/** Bytes of a record of each kind before its variable part (record header + fixed fields). */
export const CALL_HEADER = RECORD_HEADER + RECORD_MIN.CALL
export const CALLX_HEADER = RECORD_HEADER + RECORD_MIN.CALLX
export const DATA_HEADER = RECORD_HEADER + RECORD_MIN.DATA
export const RESULT_HEADER = RECORD_HEADER + RECORD_MIN.RESULT
export const RDATA_HEADER = RECORD_HEADER + RECORD_MIN.RDATA

/** Thrown for a frame from a device that speaks another version of the record protocol. */
export class VersionError extends FrameError {
  override readonly name: string = "VersionError"
  constructor(readonly deviceVersion: number) {
    super(
      deviceVersion < PROTOCOL_VERSION
        ? `the device speaks record protocol v${deviceVersion}, this host v${PROTOCOL_VERSION}: update the device firmware (rebuild and flash it, or restart the simulator with this checkout)`
        : `the device speaks record protocol v${deviceVersion}, this host v${PROTOCOL_VERSION}: update the host (npm install in a checkout as new as the firmware)`,
    )
  }
}

const enc = new TextEncoder()

/** A v1 HELLO (`0x81, 20, …`, version byte 1 at body offset 18): v1 had 2-byte record headers. */
function v1Hello(p: Uint8Array): boolean {
  return p.length >= 22 && p[0] === 0x81 && p[1] === 20 && p[2 + 18] === 1
}

/**
 * Calls `each(kind, body)` for every record of `payload` in order, with `pos.at` the record's offset
 * (still set when this or `each` throws). Throws FrameError at a header that is cut off or a record
 * that overruns the payload.
 */
export function splitRecords(payload: Uint8Array, each: (kind: number, body: Uint8Array) => void, pos = { at: 0 }): void {
  let o = 0
  while (o < payload.length) {
    pos.at = o
    if (o + RECORD_HEADER > payload.length) throw new FrameError(`truncated record header at ${o}`)
    const kind = payload[o]!
    const len = payload[o + 1]! | (payload[o + 2]! << 8)
    const body = payload.subarray(o + RECORD_HEADER, o + RECORD_HEADER + len)
    if (body.length !== len) throw new FrameError(`record 0x${kind.toString(16)} at ${o} overruns the frame`)
    each(kind, body)
    o += RECORD_HEADER + len
  }
}

/** Splits a device payload into records. Throws FrameError on a record that overruns or is too short,
 * VersionError on a frame of another protocol version. Data fields are views of `payload`. */
export function parseDeviceFrame(payload: Uint8Array): DeviceRecord[] {
  const { records, error } = readDeviceFrame(payload)
  if (error) throw error
  return records
}

/**
 * Splits a device payload into records: those before a bad one, with the FrameError of the bad one
 * (the host still handles them: a faulty record does not cost the others of its frame). Throws
 * VersionError on a frame of another protocol version. Data fields are views of `payload`.
 */
export function readDeviceFrame(payload: Uint8Array): { records: DeviceRecord[]; error?: FrameError } {
  const records: DeviceRecord[] = []
  try {
    splitRecords(payload, (kind, body) => {
      // HELLO starts with the version: judge the version before the layout (it may differ)
      if (kind === Kind.HELLO && body.length >= 1 && body[0] !== PROTOCOL_VERSION) throw new VersionError(body[0]!)
      records.push(decodeDeviceRecord(kind, body))
    })
  } catch (e) {
    if (e instanceof VersionError) throw e
    if (records.length === 0 && v1Hello(payload)) throw new VersionError(1)
    return { records, error: e instanceof FrameError ? e : new FrameError((e as Error).message) }
  }
  return { records }
}

/**
 * Splits a host frame into records (the device's side: the in-memory robot, tests). Records before
 * a bad one are returned with the error, at the bad record's offset (the device answers ERROR with
 * it and still serves the good ones).
 */
export function parseHostFrame(payload: Uint8Array): { records: HostRecord[]; error?: { offset: number; message: string } } {
  const records: HostRecord[] = []
  const pos = { at: 0 }
  try {
    splitRecords(payload, (kind, body) => records.push(decodeHostRecord(kind, body)), pos)
  } catch (e) {
    return { records, error: { offset: pos.at, message: (e as Error).message } }
  }
  return { records }
}

/** One record from a kind and a raw body (tests: malformed records; the codecs build valid ones). */
export function rec(kind: number, body: Uint8Array): Uint8Array {
  if (body.length > 0xffff) throw new FrameError(`record body of ${body.length} bytes (max 65535)`)
  const r = new Uint8Array(RECORD_HEADER + body.length)
  r[0] = kind
  r[1] = body.length & 0xff
  r[2] = body.length >> 8
  r.set(body, RECORD_HEADER)
  return r
}

/** UTF-8 bytes of a service name with its leading slash. Throws FrameError over 200 bytes. */
export function encodeName(name: string): Uint8Array {
  const n = enc.encode(normalizeName(name))
  if (n.length > 200) throw new FrameError(`service name of ${n.length} bytes (max 200)`)
  return n
}

/** Packs records into payloads of at most `max` bytes, in order. */
export function packRecords(records: Uint8Array[], max = JACDAC_PAYLOAD): Uint8Array[] {
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
