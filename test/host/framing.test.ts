// The record framing of docs/protocol.md v2 (host side): golden bytes, every truncation, corrupt
// lengths, packing into 236-byte payloads, a v1 device recognised by its HELLO.
import assert from "node:assert/strict"
import { describe, test } from "node:test"
import {
  FrameError,
  JACDAC_PAYLOAD as MAX_PAYLOAD,
  PROTOCOL_VERSION,
  VersionError,
  encodeCall,
  encodeCallx,
  encodeCancel,
  encodeData,
  encodeDone,
  encodeList,
  encodeName,
  encodeOpen,
  encodePoll,
  packRecords,
  parseDeviceFrame,
  parseHostFrame,
  encodeRecord,
} from "../../packages/host/src/client/records"

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))

describe("host records", () => {
  const head = { session: 0x0a0b0c0d, seq: 0x01020304, ack: 0x01020300, timeoutMs: 5000 }
  test("CALL golden bytes", () => {
    const r = encodeCall({ ...head, hash32: 0x7c3ca47f, total: 3, name: encodeName("add"), data: Uint8Array.of(9, 8, 7) })
    assert.deepEqual(r, hex("11 2000 0d0c0b0a 04030201 00030201 88130000 7fa43c7c 03000000 04 2f616464 090807"))
  })
  test("compact CALLX golden bytes", () => {
    assert.deepEqual(encodeCallx({ ...head, listVersion: 0x1ff, index: 2, data: Uint8Array.of(5, 6) }), hex("12 1500 0d0c0b0a 04030201 00030201 88130000 ff01 02 0506"))
  })
  test("OPEN, DATA, POLL, CANCEL, DONE, LIST golden bytes", () => {
    assert.deepEqual(encodeOpen({ nonce: 0x11223344, version: PROTOCOL_VERSION }), hex("10 0500 44332211 02"))
    assert.deepEqual(encodeData({ session: 5, seq: 6, offset: 0x100, data: Uint8Array.of(1) }), hex("13 0d00 05000000 06000000 00010000 01"))
    assert.deepEqual(encodePoll({ session: 5, seq: 0xffffffff, have: 7 }), hex("15 0c00 05000000 ffffffff 07000000"))
    assert.deepEqual(encodeCancel({ session: 5, seq: 1 }), hex("14 0800 05000000 01000000"))
    assert.deepEqual(encodeDone({ session: 5, seqs: [2, 3] }), hex("16 0c00 05000000 02000000 03000000"))
    assert.deepEqual(encodeList(), hex("17 0000"))
  })
  test("the golden host records decode back to what was encoded (the device's side: the in-memory robot, tests)", () => {
    const golden = hex("10 0500 44332211 02" + "14 0800 05000000 01000000" + "16 0c00 05000000 02000000 03000000" + "17 0000" + "12 1500 0d0c0b0a 04030201 00030201 88130000 ff01 02 0506")
    assert.deepEqual(parseHostFrame(golden), {
      records: [
        { kind: "open", nonce: 0x11223344, version: 2 },
        { kind: "cancel", session: 5, seq: 1 },
        { kind: "done", session: 5, seqs: [2, 3] },
        { kind: "list" },
        { kind: "callx", ...head, listVersion: 0x1ff, index: 2, data: Uint8Array.of(5, 6) },
      ],
    })
    const call = hex("11 2000 0d0c0b0a 04030201 00030201 88130000 7fa43c7c 03000000 04 2f616464 090807")
    assert.deepEqual(parseHostFrame(call).records, [{ kind: "call", ...head, hash32: 0x7c3ca47f, total: 3, name: "/add", data: Uint8Array.of(9, 8, 7) }])
    // a bad record: the good ones before it, and the error at its offset
    const bad = parseHostFrame(hex("17 0000" + "15 0200 0102"))
    assert.deepEqual(bad.records, [{ kind: "list" }])
    assert.equal(bad.error?.offset, 3)
    assert.match(bad.error?.message ?? "", /POLL too short \(2 < 12 bytes\)/)
  })
  test("names get their leading slash; too long is refused", () => {
    assert.deepEqual(encodeName("a"), encodeName("/a"))
    assert.throws(() => encodeName("x".repeat(201)), FrameError)
  })
  test("a record body over 65535 bytes is refused", () => {
    assert.throws(() => encodeData({ session: 1, seq: 1, offset: 0, data: new Uint8Array(65536 - 12) }), FrameError)
  })
})

describe("packRecords", () => {
  test("keeps order, never exceeds 236 bytes, fills packets", () => {
    const recs = Array.from({ length: 40 }, (_, i) => encodeData({ session: 1, seq: i, offset: 0, data: new Uint8Array(i * 3) }))
    const packets = packRecords(recs)
    const flat = Buffer.concat(packets.map((p) => Buffer.from(p)))
    assert.deepEqual(flat, Buffer.concat(recs.map((r) => Buffer.from(r))))
    for (const p of packets) assert.ok(p.length <= MAX_PAYLOAD)
    // greedy: no packet could have taken the next packet's first record
    let o = 0
    for (let i = 0; i + 1 < packets.length; i++) {
      o += packets[i]!.length
      const nextLen = flat.readUInt16LE(o + 1) + 3
      assert.ok(packets[i]!.length + nextLen > MAX_PAYLOAD)
    }
  })
  test("a record bigger than a packet is an error, not a truncation", () => {
    const big = new Uint8Array(MAX_PAYLOAD + 1)
    assert.throws(() => packRecords([big]), FrameError)
  })
})

describe("device frames", () => {
  const hello = hex("90 1c00 02 02 78563412 0200 0100 00100000 00000400 00600000 0800 b003 ec00")
  const service = hex("91 0d00 0200 00 02 7fa43c7c 2f61 742f73")
  const session = hex("92 0c00 44332211 0d0c0b0a 78563412")
  const result = hex("93 1000 0d0c0b0a 01000000 00 03000000 0a0b0c")
  const rdata = hex("94 0e00 0d0c0b0a 01000000 03000000 0d0e")
  const status = hex("95 0d00 0d0c0b0a 02000000 02 00000000")
  const error = hex("96 0400 0500 6f6b")
  const nosession = hex("97 0800 0d0c0b0a 78563412")
  const parts = [hello, service, session, result, rdata, status, error, nosession]
  const frame = Uint8Array.from(Buffer.concat(parts.map((b) => Buffer.from(b))))

  test("golden frame parses to the expected records", () => {
    assert.deepEqual(parseDeviceFrame(frame), [
      {
        kind: "hello",
        version: 2,
        minVersion: 2,
        bootId: 0x12345678,
        listVersion: 2,
        count: 1,
        maxRequestBytes: 4096,
        maxResponseBytes: 262144,
        budget: 24576,
        maxInFlight: 8,
        window: 944,
        maxRecord: 236,
      },
      { kind: "service", listVersion: 2, index: 0, hash32: 0x7c3ca47f, name: "/a", type: "t/s" },
      { kind: "session", nonce: 0x11223344, session: 0x0a0b0c0d, bootId: 0x12345678 },
      { kind: "result", session: 0x0a0b0c0d, seq: 1, status: 0, total: 3, data: Uint8Array.of(10, 11, 12) },
      { kind: "rdata", session: 0x0a0b0c0d, seq: 1, offset: 3, data: Uint8Array.of(13, 14) },
      { kind: "status", session: 0x0a0b0c0d, seq: 2, state: 2, offset: 0 },
      { kind: "error", offset: 5, message: "ok" },
      { kind: "nosession", session: 0x0a0b0c0d, bootId: 0x12345678 },
    ])
  })

  test("the expected records encode back to the golden bytes (the device's side)", () => {
    assert.deepEqual(Buffer.concat(parseDeviceFrame(frame).map((r) => Buffer.from(encodeRecord(r)))), Buffer.from(frame))
  })

  test("truncated at every offset: the whole records before it, or a FrameError, never a phantom record", () => {
    const bounds = new Set<number>()
    let o = 0
    for (const r of parts) bounds.add((o += r.length))
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
    for (const r of parts) {
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
    assert.throws(() => parseDeviceFrame(hex("93 0400 01000000")), /too short/)
    assert.throws(() => parseDeviceFrame(hex("90 0200 0202")), /too short/)
    assert.throws(() => parseDeviceFrame(hex("99 0000")), /unknown record kind/)
  })

  test("a device of another protocol version is named, with the side to update", () => {
    // a v1 HELLO: 2-byte record header, version 1 at body offset 18
    const v1 = hex("81 14 78563412 0200 0100 00100000 00000400 0800 01 00")
    assert.throws(() => parseDeviceFrame(v1), (e: unknown) => e instanceof VersionError && /v1, this host v2: update the device firmware/.test(e.message))
    const v3 = Buffer.from(hello)
    v3[3] = 3
    v3[4] = 3
    assert.throws(() => parseDeviceFrame(v3), (e: unknown) => e instanceof VersionError && /v3, this host v2: update the host/.test(e.message))
  })
})
