// The record codecs generated from protocol/protocol.json (issue 16, "record layouts written once"):
// every kind of both directions round-trips, each field lands at the offset the table gives it, a
// body shorter than the kind's least length or a field out of range is refused with the kind and
// field named, the generator refuses a table whose offsets do not add up, the Jacdac spec agrees with
// the table, and the generated code and doc tables are checked for drift (`robot gen --check` fails
// when a doc table is edited by hand). The golden bytes are in framing.test.ts; what the real
// firmware sends and accepts is in records_device.test.ts.
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, test } from "node:test"
import * as wire from "../../packages/host/src/gen/wire"
import {
  CMD_ECHO,
  CMD_FRAME,
  FrameError,
  Kind,
  RECORD_HEADER,
  RECORD_MIN,
  REPORT_FRAME_OUT,
  ROS_SERVICES_CLASS,
  decodeDeviceRecord,
  decodeHostRecord,
  encodeRecord,
  parseHostFrame,
  type DeviceRecord,
  type HostRecord,
} from "../../packages/host/src/client/records"
import { checkJacdacSpec, layouts, loadProtocolTable, parseJacdacSpec, protocolOutputs, ProtocolTableError, type Layout } from "../../packages/host/src/codegen/protocol"

const repo = path.resolve(__dirname, "../..")
const table = loadProtocolTable(repo)
const all = layouts(table)
const MAXV = { u8: 0xff, u16: 0xffff, u32: 0xffffffff } as const

/** A record of kind `l` in one of three shapes: all zero/empty, all at their maximum, mixed. */
function sample(l: Layout, shape: 0 | 1 | 2): HostRecord | DeviceRecord {
  const r: Record<string, unknown> = { kind: l.name.toLowerCase() }
  l.fields.forEach((f, i) => {
    if (l.lengthFields.has(f.name)) return
    r[f.name] = shape === 0 ? 0 : shape === 1 ? MAXV[f.type] : (0x9e3779b9 * (i + 1)) % (MAXV[f.type] + 1)
  })
  for (const t of l.tail) {
    if (t.type === "utf8") r[t.name] = ["", "é".repeat(127) + "x", "/héllo wörld ✓ 😀"][shape]
    else if (t.type === "bytes") r[t.name] = Uint8Array.from({ length: [0, 200, 7][shape]! }, (_, k) => (k * 13 + 5) & 255)
    else r[t.name] = Array.from({ length: [t.min ?? 0, 50, 3][shape]! }, (_, k) => (shape === 1 ? 0xffffffff - k : k * 0x01010101))
  }
  return r as unknown as HostRecord | DeviceRecord
}

const decode = (l: Layout, body: Uint8Array) => (l.dir === "host" ? decodeHostRecord(l.value, body) : decodeDeviceRecord(l.value, body))

describe("generated record codecs", () => {
  test("the table has every kind of both directions, and the host module one codec pair per kind", () => {
    assert.deepEqual(all.map((l) => l.name).sort(), Object.keys(Kind).sort())
    for (const l of all) {
      const P = l.name[0] + l.name.slice(1).toLowerCase()
      assert.equal(typeof (wire as Record<string, unknown>)[`encode${P}`], "function", `encode${P}`)
      assert.equal(typeof (wire as Record<string, unknown>)[`decode${P}`], "function", `decode${P}`)
    }
    for (const k of ["OPEN", "CALL", "CALLX", "DATA", "CANCEL", "POLL", "DONE", "LIST"]) assert.equal(all.find((l) => l.name === k)?.dir, "host", k)
    for (const k of ["HELLO", "SERVICE", "SESSION", "RESULT", "RDATA", "STATUS", "ERROR", "NOSESSION"]) assert.equal(all.find((l) => l.name === k)?.dir, "device", k)
  })

  test("every kind round-trips: zero, maximum and mixed values; the header names the kind and the body length", () => {
    for (const l of all) {
      for (const shape of [0, 1, 2] as const) {
        const r = sample(l, shape)
        const bytes = encodeRecord(r)
        const what = `${l.name} shape ${shape}`
        assert.equal(bytes[0], l.value, what)
        const len = bytes[1]! | (bytes[2]! << 8)
        assert.equal(len, bytes.length - RECORD_HEADER, what)
        assert.ok(len >= RECORD_MIN[l.name as keyof typeof RECORD_MIN], what)
        const back = decode(l, bytes.subarray(RECORD_HEADER))
        assert.deepEqual(back, r, what)
        assert.deepEqual(encodeRecord(back), bytes, `${what}: encoded again`)
        // the frame parser of the other side gives the same record
        if (l.dir === "host") assert.deepEqual(parseHostFrame(bytes), { records: [r] }, what)
        else assert.deepEqual(wire.decodeDeviceRecord(l.value, bytes.subarray(RECORD_HEADER)), r, what)
      }
    }
  })

  test("each fixed field lands at the offset the table gives it", () => {
    for (const l of all) {
      for (const f of l.fields) {
        if (l.lengthFields.has(f.name)) continue
        const r = sample(l, 0) as unknown as Record<string, unknown>
        const v = { u8: 0xa5, u16: 0xb1b2, u32: 0xc1c2c3c4 }[f.type]
        r[f.name] = v
        const body = encodeRecord(r as unknown as HostRecord).subarray(RECORD_HEADER)
        const dv = new DataView(body.buffer, body.byteOffset, body.byteLength)
        const got = f.type === "u8" ? body[f.at] : f.type === "u16" ? dv.getUint16(f.at, true) : dv.getUint32(f.at, true)
        assert.equal(got, v, `${l.name}.${f.name} at ${f.at}`)
        // and nothing else is touched
        const others = [...body].filter((b, i) => b !== 0 && (i < f.at || i >= f.at + { u8: 1, u16: 2, u32: 4 }[f.type]))
        assert.deepEqual(others, [], `${l.name}.${f.name}: only its own bytes`)
      }
      // a length field holds its tail item's length
      for (const t of l.tail) {
        if (!t.lengthFrom) continue
        const lf = l.fields.find((f) => f.name === t.lengthFrom)!
        const r = sample(l, 2) as unknown as Record<string, unknown>
        const body = encodeRecord(r as unknown as HostRecord).subarray(RECORD_HEADER)
        assert.equal(body[lf.at], new TextEncoder().encode(r[t.name] as string).length, `${l.name}.${lf.name}`)
      }
    }
  })

  test("a body one byte shorter than the kind's least length is refused naming the kind; the least length decodes", () => {
    for (const l of all) {
      const min = RECORD_MIN[l.name as keyof typeof RECORD_MIN]
      assert.equal(min, l.min)
      if (min > 0) assert.throws(() => decode(l, new Uint8Array(min - 1)), (e: unknown) => e instanceof FrameError && e.message.includes(`${l.name} too short (${min - 1} < ${min}`), l.name)
      const r = decode(l, new Uint8Array(min))
      assert.equal(r.kind, l.name.toLowerCase())
    }
    assert.throws(() => decodeHostRecord(Kind.HELLO, new Uint8Array(28)), /unknown record kind 0x90/, "a device kind is not a host record")
    assert.throws(() => decodeDeviceRecord(Kind.CALL, new Uint8Array(25)), /unknown record kind 0x11/, "a host kind is not a device record")
  })

  test("lengths that overrun the record and partial repeated values are refused", () => {
    const call = new Uint8Array(25 + 3)
    call[24] = 4
    assert.throws(() => decodeHostRecord(Kind.CALL, call), /CALL name overruns the record/)
    const service = new Uint8Array(8 + 1)
    service[3] = 2
    assert.throws(() => decodeDeviceRecord(Kind.SERVICE, service), /SERVICE name overruns the record/)
    assert.throws(() => decodeHostRecord(Kind.DONE, new Uint8Array(10)), /DONE seqs: a partial u32/)
  })

  test("fields out of range are refused with the kind and field named, never wrapped", () => {
    const poll = { session: 1, seq: 2, have: 3 }
    assert.throws(() => wire.encodePoll({ ...poll, session: -1 }), /POLL session: -1 is not a u32/)
    assert.throws(() => wire.encodePoll({ ...poll, seq: 2 ** 32 }), /POLL seq: 4294967296 is not a u32/)
    assert.throws(() => wire.encodePoll({ ...poll, have: 1.5 }), /POLL have: 1.5 is not a u32/)
    assert.throws(() => wire.encodePoll({ ...poll, have: NaN }), /POLL have: NaN is not a u32/)
    assert.throws(() => wire.encodeStatus({ session: 1, seq: 1, state: 256, offset: 0 }), /STATUS state: 256 is not a u8/)
    const callx = { session: 1, seq: 1, ack: 0, timeoutMs: 1, listVersion: 1, index: 0, data: new Uint8Array(0) }
    assert.throws(() => wire.encodeCallx({ ...callx, listVersion: 0x10000 }), /CALLX listVersion: 65536 is not a u16/)
    const call = { session: 1, seq: 1, ack: 0, timeoutMs: 1, hash32: 1, total: 0, data: new Uint8Array(0) }
    assert.throws(() => wire.encodeCall({ ...call, name: "/" + "x".repeat(255) }), /CALL name: 256 bytes \(at most 255: its length is a u8\)/)
    assert.ok(wire.encodeCall({ ...call, name: "/" + "x".repeat(254) }).length === 3 + 25 + 255)
    assert.throws(() => wire.encodeDone({ session: 1, seqs: [] }), /DONE seqs: 0 values \(at least 1\)/)
    assert.throws(() => wire.encodeDone({ session: 1, seqs: [1, -2] }), /DONE seqs: -2 is not a u32/)
    assert.throws(() => wire.encodeRdata({ session: 1, seq: 1, offset: 0, data: new Uint8Array(65536 - 12) }), /RDATA record body of 65536 bytes/)
    for (const e of [() => wire.encodePoll({ ...poll, session: -1 })]) assert.throws(e, FrameError)
  })

  test("decoded data is a view of the frame (no copy); text is UTF-8", () => {
    const bytes = wire.encodeRdata({ session: 1, seq: 2, offset: 3, data: Uint8Array.of(1, 2, 3) })
    const r = decodeDeviceRecord(Kind.RDATA, bytes.subarray(RECORD_HEADER))
    assert.ok(r.kind === "rdata" && r.data.buffer === bytes.buffer)
    const e = wire.encodeError({ offset: 4, message: "naïve ✓" })
    assert.deepEqual(decodeDeviceRecord(Kind.ERROR, e.subarray(RECORD_HEADER)), { kind: "error", offset: 4, message: "naïve ✓" })
  })
})

describe("the protocol table and its generator", () => {
  /** a copy of the table with `edit` applied, in a temp project; returns the loader's error */
  function withTable(edit: (t: Record<string, any>) => void): () => unknown {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-proto-"))
    fs.mkdirSync(path.join(dir, "protocol"))
    const t = JSON.parse(fs.readFileSync(path.join(repo, "protocol/protocol.json"), "utf8"))
    edit(t)
    fs.writeFileSync(path.join(dir, "protocol/protocol.json"), JSON.stringify(t))
    return () => {
      try {
        return loadProtocolTable(dir)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  const refuses = (edit: (t: Record<string, any>) => void, re: RegExp) => assert.throws(withTable(edit), (e: unknown) => e instanceof ProtocolTableError && re.test(e.message), String(re))

  test("offsets must follow one another: a gap, an overlap or a wrong type is refused, naming the field", () => {
    refuses((t) => (t.kinds.CALL.fields[5].at = 21), /kind CALL: field total: at 21, but it follows hash32 u32 at 16 and starts at 20/)
    refuses((t) => (t.kinds.HELLO.fields[2].type = "u16"), /kind HELLO: field listVersion: at 6, but it follows bootId u16 at 2 and starts at 4/)
    refuses((t) => (t.kinds.POLL.fields[2].type = "u64"), /kind POLL: field have: type "u64"/)
    refuses((t) => (t.kinds.CALL.tail[0].lengthFrom = "nope"), /kind CALL: tail item name: lengthFrom "nope" is not a fixed field/)
    refuses((t) => delete t.kinds.CALL.tail[0].lengthFrom, /kind CALL: tail item name: only the last tail item may run to the end/)
    refuses((t) => (t.kinds.LIST.value = 0x16), /kinds DONE and LIST share the value 22/)
    refuses((t) => t.kinds.DATA.fields.push({ name: "seq", type: "u8", at: 12 }), /kind DATA: two fields named "seq"/)
    refuses((t) => (t.jacdac.class = "1b7e5c2a"), /jacdac.class: "1b7e5c2a" is not a hex number/)
  })

  test("services/rosservices.md (the device's Jacdac class and codes) agrees with protocol.json and the host's constants", () => {
    const md = fs.readFileSync(path.join(repo, table.jacdac.spec), "utf8")
    const spec = parseJacdacSpec(md, table.jacdac.spec)
    assert.equal(spec.classIdentifier, ROS_SERVICES_CLASS)
    const code = (kind: string, name: string) => spec.packets.find((p) => p.kind === kind && p.name === name && !p.derived)?.identifier
    assert.equal(code("command", "frame"), CMD_FRAME)
    assert.equal(code("report", "frame_out"), REPORT_FRAME_OUT)
    assert.equal(code("command", "echo"), CMD_ECHO)
    // the spec lists every kind of each direction and the u16 length (it said `len u8` before)
    for (const l of all) assert.match(md, new RegExp(`\\| ${l.name} \\|`), l.name)
    assert.match(md, /`kind u8, len u16, body\[len\]`/)
    assert.doesNotMatch(md, /len u8/)
    // the device is built from the spec: the class the firmware build compiled agrees too
    const built = path.join(repo, ".devicescript/services.json")
    if (fs.existsSync(built)) {
      const svc = (JSON.parse(fs.readFileSync(built, "utf8")) as { camelName: string; classIdentifier: number }[]).find((s) => s.camelName === "rosServices")
      assert.equal(svc?.classIdentifier, ROS_SERVICES_CLASS)
    }
  })

  test("a spec whose class or codes drift from protocol.json is refused, naming each difference", () => {
    const md = fs.readFileSync(path.join(repo, table.jacdac.spec), "utf8")
    assert.doesNotThrow(() => checkJacdacSpec(md, table))
    const bad = md.replace("identifier: 0x1b7e5c2a", "identifier: 0x1b7e5c2b").replace("command frame @ 0x80", "command frame @ 0x83")
    assert.throws(
      () => checkJacdacSpec(bad, table),
      (e: unknown) => e instanceof ProtocolTableError && /identifier 0x1b7e5c2b, protocol\/protocol.json says 0x1b7e5c2a/.test(e.message) && /command frame @ 0x83, protocol\/protocol.json says @ 0x80/.test(e.message),
    )
  })

  test("the generated code and doc tables are up to date (both wire.ts, docs/protocol.md, services/rosservices.md)", () => {
    const outs = protocolOutputs(repo)
    assert.deepEqual(outs.map((o) => o.file).sort(), ["docs/protocol.md", "packages/device/services/rosservices.md", "packages/device/src/gen/wire.ts", "packages/host/src/gen/wire.ts", "services/rosservices.md"])
    for (const o of outs) assert.equal(fs.readFileSync(path.join(repo, o.file), "utf8"), o.content, `${o.file} is stale: run \`npx robot gen\``)
  })

  test("robot gen --check fails when a doc table is edited by hand or the spec drifts; robot gen restores the table", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-proto-gen-"))
    try {
      // a copy of the project (the generated interface modules import the runtime next to them)
      for (const f of ["devs.json", "package.json", "packages", "src", "protocol", "services", "docs/protocol.md"]) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
        fs.cpSync(path.join(repo, f), path.join(dir, f), { recursive: true })
      }
      fs.symlinkSync(path.join(repo, "node_modules"), path.join(dir, "node_modules"))
      const run = (...args: string[]) => spawnSync(process.execPath, [path.join(dir, "packages/host/bin/robot.js"), "gen", ...args], { cwd: dir, encoding: "utf8", timeout: 120_000 })
      const ok = run("--check")
      assert.equal(ok.status, 0, ok.stderr)
      const doc = path.join(dir, "docs/protocol.md")
      const good = fs.readFileSync(doc, "utf8")
      fs.writeFileSync(doc, good.replace("| 25 | a call by service name", "| 24 | a call by service name"))
      const stale = run("--check")
      assert.equal(stale.status, 1)
      assert.match(stale.stderr, /out of date[\s\S]*docs\/protocol\.md/)
      assert.equal(run().status, 0)
      assert.equal(fs.readFileSync(doc, "utf8"), good, "robot gen writes the table back")
      const spec = path.join(dir, "packages/device/services/rosservices.md")
      fs.writeFileSync(spec, fs.readFileSync(spec, "utf8").replace("report frame_out @ 0x81", "report frame_out @ 0x84"))
      const drift = run("--check")
      assert.equal(drift.status, 1)
      assert.match(drift.stderr, /services\/rosservices\.md disagrees with protocol\/protocol\.json:\n {2}report frame_out @ 0x84, protocol\/protocol\.json says @ 0x81/)
      fs.writeFileSync(doc, good.replace(/<!-- robot gen: host records[^\n]*\n/, ""))
      const nomark = run("--check")
      assert.equal(nomark.status, 1)
      assert.match(nomark.stderr, /docs\/protocol\.md: no generated region "host records"/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
