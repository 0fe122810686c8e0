// The record framing of docs/protocol.md (host side): golden bytes, every truncation, corrupt
// lengths, packing into 236-byte payloads.
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import {
  FrameError,
  Kind,
  MAX_PAYLOAD,
  callRecord,
  callxRecord,
  dataRecord,
  encodeName,
  idRecord,
  packRecords,
  parseDeviceFrame,
  pollRecord,
} from "../../host/client/records"

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))

describe("host records", () => {
  test("CALL golden bytes", () => {
    const r = callRecord(0x01020304, 0x7c3ca47f, 3, encodeName("add"), Uint8Array.of(9, 8, 7))
    assert.deepEqual(r, hex("01 14 04030201 7fa43c7c 03000000 04 2f616464 090807"))
  })
  test("compact CALLX golden bytes", () => {
    assert.deepEqual(callxRecord(0x01020304, 0x1ff, 2, Uint8Array.of(5, 6)), hex("07 08 04030201 ff 02 0506"))
  })
  test("DATA, POLL, CANCEL, DONE, LIST golden bytes", () => {
    assert.deepEqual(dataRecord(5, 0x100, Uint8Array.of(1)), hex("02 09 05000000 00010000 01"))
    assert.deepEqual(pollRecord(0xffffffff, 7), hex("04 08 ffffffff 07000000"))
    assert.deepEqual(idRecord(Kind.CANCEL, 1), hex("03 04 01000000"))
    assert.deepEqual(idRecord(Kind.DONE, 2), hex("05 04 02000000"))
    assert.deepEqual(idRecord(Kind.LIST, 3), hex("06 04 03000000"))
  })
  test("names get their leading slash; too long is refused", () => {
    assert.deepEqual(encodeName("a"), encodeName("/a"))
    assert.throws(() => encodeName("x".repeat(201)), FrameError)
  })
  test("a record body over 255 bytes is refused", () => {
    assert.throws(() => dataRecord(1, 0, new Uint8Array(248)), FrameError)
  })
})

describe("packRecords", () => {
  test("keeps order, never exceeds 236 bytes, fills packets", () => {
    const recs = Array.from({ length: 40 }, (_, i) => dataRecord(i, 0, new Uint8Array(i * 3)))
    const packets = packRecords(recs)
    const flat = Buffer.concat(packets.map((p) => Buffer.from(p)))
    assert.deepEqual(flat, Buffer.concat(recs.map((r) => Buffer.from(r))))
    for (const p of packets) assert.ok(p.length <= MAX_PAYLOAD)
    // greedy: no packet could have taken the next packet's first record
    let o = 0
    for (let i = 0; i + 1 < packets.length; i++) {
      o += packets[i]!.length
      const nextLen = flat[o + 1]! + 2
      assert.ok(packets[i]!.length + nextLen > MAX_PAYLOAD)
    }
  })
  test("a record bigger than a packet is an error, not a truncation", () => {
    const big = new Uint8Array(MAX_PAYLOAD + 1)
    assert.throws(() => packRecords([big]), FrameError)
  })
})

describe("device frames", () => {
  const hello = hex("81 14 78563412 0200 0100 00100000 00000400 0800 01 00")
  const service = hex("82 0d 0200 00 02 7fa43c7c 2f61 742f73")
  const result = hex("83 0c 01000000 00 03000000 0a0b0c")
  const rdata = hex("84 0a 01000000 03000000 0d0e")
  const status = hex("85 09 02000000 02 00000000")
  const error = hex("86 04 0500 6f6b")
  const frame = Uint8Array.from(Buffer.concat([hello, service, result, rdata, status, error].map((b) => Buffer.from(b))))

  test("golden frame parses to the expected records", () => {
    assert.deepEqual(parseDeviceFrame(frame), [
      { kind: "hello", bootId: 0x12345678, listVersion: 2, count: 1, maxRequestBytes: 4096, maxResponseBytes: 262144, maxInFlight: 8, version: 1 },
      { kind: "service", listVersion: 2, index: 0, hash32: 0x7c3ca47f, name: "/a", type: "t/s" },
      { kind: "result", callId: 1, status: 0, total: 3, data: Uint8Array.of(10, 11, 12) },
      { kind: "rdata", callId: 1, offset: 3, data: Uint8Array.of(13, 14) },
      { kind: "status", callId: 2, state: 2, offset: 0 },
      { kind: "error", offset: 5, message: "ok" },
    ])
  })

  test("truncated at every offset: the whole records before it, or a FrameError, never a phantom record", () => {
    const bounds = new Set<number>()
    let o = 0
    for (const r of [hello, service, result, rdata, status, error]) bounds.add((o += r.length))
    const full = parseDeviceFrame(frame)
    for (let k = 0; k < frame.length; k++) {
      const cut = frame.subarray(0, k)
      if (k === 0 || bounds.has(k)) {
        const recs = parseDeviceFrame(cut)
        assert.deepEqual(recs, full.slice(0, recs.length))
      } else assert.throws(() => parseDeviceFrame(cut), FrameError, `cut at ${k}`)
    }
  })

  test("records are self-delimiting: frames split at any record boundary parse to the same records", () => {
    const full = parseDeviceFrame(frame)
    let o = 0
    for (const r of [hello, service, result, rdata, status, error]) {
      o += r.length
      const recs = [...parseDeviceFrame(frame.subarray(0, o)), ...parseDeviceFrame(frame.subarray(o))]
      assert.deepEqual(recs, full)
    }
  })

  test("corrupt length bytes and kinds give FrameError or a shorter, still well-formed parse", () => {
    for (let i = 0; i < frame.length; i++) {
      for (const v of [0, 1, 0x7f, 0xff]) {
        const f = Buffer.from(frame)
        f[i] = v
        try {
          for (const r of parseDeviceFrame(f)) assert.ok(typeof r.kind === "string")
        } catch (e) {
          assert.ok(e instanceof FrameError, `byte ${i}=${v}: ${e}`)
        }
      }
    }
  })

  test("records too short for their kind are refused", () => {
    assert.throws(() => parseDeviceFrame(hex("83 04 01000000")), /too short/)
    assert.throws(() => parseDeviceFrame(hex("81 02 0000")), /too short/)
    assert.throws(() => parseDeviceFrame(hex("99 00")), /unknown record kind/)
  })
})
