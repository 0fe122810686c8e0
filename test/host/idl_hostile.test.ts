// Hostile and pathological interface files: sets built to make the loader, `robot gen` and the
// generated code fail in ways other than a diagnostic (exponential work, stack overflows, values the
// type's own codec refuses, identifiers that break the generated TypeScript). Each test was written
// against the defect it names and failed before its fix.
import { describe, test } from "node:test"
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { definitionsOf, loadSources, MAX_FIELDS, MAX_VALUES, type SourceFile } from "../../packages/host/src/idl/load"
import { formatShow, MAX_SHOW_LINES } from "../../packages/host/src/cli/interface"
import { jsonSchema } from "../../packages/host/src/bridge/foxglove/schema"
import { messageDescriptor } from "../../packages/host/src/runtime/codec"
import { fromJson, ValueError } from "../../packages/host/src/calls/json"
import { diagsOf } from "../support/idl"
import { tsNames } from "../../packages/host/src/idl/names"
import { emitHost } from "../../packages/host/src/codegen/host"
import { findDeviceEmitter } from "../../packages/host/src/codegen/index"

const repo = path.join(__dirname, "..", "..")

test("a set whose types each hold the next one twice, 24 levels down, is answered in well under a second (the recursion check walked every path: 2^24, 5 s; 30 levels held robot gen for minutes); what it says is that it expands too far, not that it recurses", () => {
  const files: SourceFile[] = []
  for (let i = 0; i < 24; i++) files.push({ root: "r", file: `p/msg/M${i}.msg`, text: `M${i + 1} a\nM${i + 1} b\n` })
  files.push({ root: "r", file: "p/msg/M24.msg", text: "int32 leaf\n" })
  const t0 = performance.now()
  const d = diagsOf(files)
  const ms = performance.now() - t0
  assert.deepEqual(d.map((x) => [x.file, x.message.replace(/ fields, .*/, "")]), [["r/p/msg/M12.msg", "p/msg/M12 expands to 12,286"]])
  assert.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`)
})

test("a recursive type behind a wide set is still found, each cycle reported at its field", () => {
  const files: SourceFile[] = []
  for (let i = 0; i < 24; i++) files.push({ root: "r", file: `p/msg/M${i}.msg`, text: `M${i + 1} a\nM${i + 1} b\n` })
  files.push({ root: "r", file: "p/msg/M24.msg", text: "int32 leaf\nM23 back\n" })
  const t0 = performance.now()
  const d = diagsOf(files)
  assert.ok(performance.now() - t0 < 2000)
  const last = d.find((x) => x.file === "r/p/msg/M24.msg")
  assert.deepEqual(last && { line: last.line, col: last.col }, { line: 2, col: 1 })
  assert.match(last!.message, /^recursive type: p\/msg\/M24 -> p\/msg\/M23 -> p\/msg\/M24$/)
  assert.ok(d.some((x) => x.file === "r/p/msg/M23.msg" && /^recursive type: p\/msg\/M23 -> p\/msg\/M24 -> p\/msg\/M23$/.test(x.message)))
})

test("types nested 12,000 deep: a diagnostic naming the bound at the field that passes it, not a stack overflow", () => {
  const files: SourceFile[] = []
  for (let i = 0; i < 12000; i++) files.push({ root: "r", file: `p/msg/M${i}.msg`, text: `# level ${i}\nM${i + 1} next\n` })
  files.push({ root: "r", file: "p/msg/M12000.msg", text: "int32 leaf\n" })
  const t0 = performance.now()
  const d = diagsOf(files)
  assert.ok(performance.now() - t0 < 5000)
  // one diagnostic: the type where the nesting passes the bound (every type above it holds it)
  assert.equal(d.length, 1, JSON.stringify(d.slice(0, 3)))
  assert.equal(d[0]!.file, "r/p/msg/M11900.msg")
  assert.deepEqual([d[0]!.line, d[0]!.col], [2, 1])
  assert.match(d[0]!.message, /^types nested more than 100 levels deep: p\/msg\/M11900 -> p\/msg\/M11901 -> .* -> p\/msg\/M12000 \(101 levels\)$/)
})

test("types nested exactly 100 deep load", () => {
  const files: SourceFile[] = []
  for (let i = 0; i < 99; i++) files.push({ root: "r", file: `p/msg/M${i}.msg`, text: `M${i + 1} next\n` })
  files.push({ root: "r", file: "p/msg/M99.msg", text: "int32 leaf\n" })
  assert.equal(loadSources(files).messages.size, 100)
})

test("float defaults and constants outside their type's range, or that overflow to infinity, are diagnostics (the codec refused the type's own defaults at every call)", () => {
  const d = diagsOf([
    {
      root: "r",
      file: "p/msg/F.msg",
      text: ["float32 a 1e300", "float64 b 1e400", "float32 c -3.5e38", "float32 MAXF=1e39", "float64[2] arr [1.5, -1e999]", "float32 ok 3.4028234e38", "float64 fine -1.7e308"].join("\n") + "\n",
    },
  ])
  assert.deepEqual(
    d.map((x) => [x.line, x.col, x.message]),
    [
      [1, 11, "default 1e300 for 'a' is outside the float32 range (at most 3.4028234663852886e+38 either way)"],
      [2, 11, "default 1e400 for 'b' is not a finite float64 (at most 1.7976931348623157e+308 either way)"],
      [3, 11, "default -3.5e38 for 'c' is outside the float32 range (at most 3.4028234663852886e+38 either way)"],
      [4, 14, "value 1e39 for 'MAXF' is outside the float32 range (at most 3.4028234663852886e+38 either way)"],
      [5, 22, "default -1e999 for 'arr' is not a finite float64 (at most 1.7976931348623157e+308 either way)"],
    ],
  )
})

test("a file that starts with a UTF-8 byte order mark (as Windows editors save it) loads as without one", () => {
  const set = loadSources([
    { root: "r", file: "p/srv/Bom.srv", text: "\uFEFFint32 a\r\nint32 b 3\r\n---\r\nint32 c\r\n" },
    { root: "r", file: "p/msg/Bom.msg", text: "\uFEFF# a comment first\nint32 x\n" },
  ])
  assert.deepEqual(set.services.get("p/srv/Bom")?.request.definition.definitions.map((f) => f.name), ["a", "b"])
  assert.deepEqual(set.messages.get("p/msg/Bom")?.definition.definitions.map((f) => f.name), ["x"])
  const plain = loadSources([{ root: "r", file: "p/srv/Bom.srv", text: "int32 a\nint32 b 3\n---\nint32 c\n" }])
  assert.equal(set.services.get("p/srv/Bom")?.hash, plain.services.get("p/srv/Bom")?.hash)
})

// Type names that are valid ROS names but name what the generated files use themselves: globals of
// the host file (Object.freeze, Uint8Array) and of the device file (Buffer), and the device file's
// imports (MessageCodec, ServiceType, ActionType, Bytes).
const SHADOWING = ["Object", "Uint8Array", "Buffer", "MessageCodec", "ServiceType", "ActionType", "Bytes", "Array"]

test("types named as the globals and imports the generated code uses (Object, Uint8Array, Buffer, MessageCodec...) take their package's prefix, and the host code type-checks", () => {
  const files: SourceFile[] = SHADOWING.map((n) => ({ root: "r", file: `p/msg/${n}.msg`, text: "int32 x\nuint8[] data\n" }))
  files.push({ root: "r", file: "p/msg/User.msg", text: SHADOWING.map((n) => `${n} ${n.toLowerCase()}`).join("\n") + "\nuint8[] raw\n" })
  files.push({ root: "r", file: "p/srv/Get.srv", text: "Object o\n---\nUint8Array u\n" })
  const set = loadSources(files)
  const names = tsNames(set)
  for (const n of SHADOWING) assert.equal(names.get(`p/msg/${n}`), `p_${n}`, n)
  assert.equal(names.get("p/msg/User"), "User")

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "idl-hostile-"))
  try {
    const hostOut = path.join(dir, "host.ts")
    fs.writeFileSync(hostOut, emitHost(set, { outFile: hostOut, sources: files.map((f) => f.file) }))
    const device = findDeviceEmitter()
    assert.ok(typeof device !== "string", String(device))
    const deviceText = device(set, { outFile: path.join(dir, "device.ts"), sources: files.map((f) => f.file) })
    // the device file exports no name it imports or uses as a global
    const exported = [...deviceText.matchAll(/^export (?:const|function|interface|type|class) (\w+)/gm)].map((m) => m[1])
    for (const n of ["Buffer", "MessageCodec", "ServiceType", "ActionType", "Bytes", "Object", "Uint8Array"]) assert.ok(!exported.includes(n), `device file exports ${n}`)
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: path.join(repo, "tsconfig.json"), compilerOptions: { typeRoots: [path.join(repo, "node_modules/@types")] }, files: ["host.ts"] }))
    execFileSync(process.execPath, [path.join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", path.join(dir, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// Types that expand exponentially: a type holding the next one twice, 30 levels down, is 2^30 values
// and (written out field by field, as `robot interface show`, the Foxglove JSON Schemas, the request
// defaults and the dashboard's forms do) 3 * 2^30 - 2 fields; three levels of `B[1000] x` are 10^9
// values. Before the bounds, at 16 levels `interface show` printed 4.4 MB in 0.5 s and at 20 overflowed
// the stack; at 20 a JSON Schema was 253 MB (4.8 s) and a request's defaults (every call that leaves
// a field out) took 0.5 s and 230 MB; at 30 an empty request ran out of a 4 GB heap after 55 s; the
// defaults of three levels of [1000] held 3.8 GB after 30 s.
describe("types that expand to too many fields or values are refused at load (MAX_FIELDS, MAX_VALUES)", () => {
  /** `p/msg/M0` holds M1 twice, ..., M<levels> holds an int32. */
  const doubled = (levels: number): SourceFile[] => {
    const files: SourceFile[] = []
    for (let i = 0; i < levels; i++) files.push({ root: "r", file: `p/msg/M${i}.msg`, text: `M${i + 1} a\nM${i + 1} b\n` })
    files.push({ root: "r", file: `p/msg/M${levels}.msg`, text: "int32 leaf\n" })
    return files
  }

  test("a set whose types each hold the next one twice, 30 levels down: one diagnostic, at the type where the expansion passes MAX_FIELDS, with the chain", () => {
    const t0 = performance.now()
    const d = diagsOf(doubled(30))
    assert.ok(performance.now() - t0 < 1000)
    // M<30-j> expands to 3 * 2^j - 2 fields: j = 12 is the first past 10,000
    assert.deepEqual(d.map((x) => [x.file, x.line, x.col]), [["r/p/msg/M18.msg", 1, 1]], JSON.stringify(d.slice(0, 3)))
    assert.equal(
      d[0]!.message,
      "p/msg/M18 expands to 12,286 fields, more than MAX_FIELDS (10,000): a nested type is written out again at every field that holds it " +
        "(robot interface show, JSON Schemas, request forms), here p/msg/M18 (a, b) -> p/msg/M19 (a, b) -> p/msg/M20 (a, b) -> ... -> p/msg/M29 (a, b) -> p/msg/M30",
    )
    assert.equal(MAX_FIELDS, 10_000)
  })

  test("three levels of fixed arrays B[1000] (10^9 values): refused where the values pass MAX_VALUES, at the field", () => {
    const d = diagsOf([
      { root: "r", file: "p/msg/A.msg", text: "B[1000] x\n" },
      { root: "r", file: "p/msg/B.msg", text: "# level 2\nint32 n\nC[1000] x\n" },
      { root: "r", file: "p/msg/C.msg", text: "D[1000] x\n" },
      { root: "r", file: "p/msg/D.msg", text: "int32 v\n" },
      { root: "r", file: "p/srv/S.srv", text: "A a\n---\n" },
    ])
    assert.deepEqual(d.map((x) => [x.file, x.line, x.col]), [["r/p/msg/B.msg", 3, 1]], JSON.stringify(d))
    assert.equal(
      d[0]!.message,
      "p/msg/B holds 1,000,001 values, more than MAX_VALUES (100,000): a fixed array T[N] holds N times T's values " +
        "(a sequence, T[] or T[<=N], holds only the elements the data brings), here p/msg/B (x[1000]) -> p/msg/C (x[1000]) -> p/msg/D",
    )
    assert.equal(MAX_VALUES, 100_000)
  })

  test("a service half and a primitive array past MAX_VALUES are reported in their file, at the field", () => {
    const d = diagsOf([
      { root: "r", file: "p/msg/C.msg", text: "int32[1000] v\n" },
      { root: "r", file: "p/srv/Big.srv", text: "int32 x\nC[200] many\n---\nbool ok\n" },
      { root: "r", file: "p/msg/Flat.msg", text: "uint8 a\nfloat32[100001] samples\n" },
    ])
    assert.deepEqual(
      d.map((x) => [x.file, x.line, x.col, x.message]),
      [
        ["r/p/msg/Flat.msg", 2, 1, "p/msg/Flat holds 100,002 values, more than MAX_VALUES (100,000): a fixed array T[N] holds N times T's values (a sequence, T[] or T[<=N], holds only the elements the data brings), here p/msg/Flat (samples[100001])"],
        ["r/p/srv/Big.srv", 2, 1, "p/srv/Big_Request holds 200,001 values, more than MAX_VALUES (100,000): a fixed array T[N] holds N times T's values (a sequence, T[] or T[<=N], holds only the elements the data brings), here p/srv/Big_Request (many[200]) -> p/msg/C (v[1000])"],
      ],
    )
  })

  test("realistic types still load (a guard for the bounds, green before them): geometry_msgs/Point[1000], a covariance, sequences of large types, exactly MAX_VALUES values, and the largest doubled set within MAX_FIELDS", () => {
    const set = loadSources([
      { root: "r", file: "geometry_msgs/msg/Point.msg", text: "float64 x\nfloat64 y\nfloat64 z\n" },
      { root: "r", file: "p/msg/Cloud.msg", text: "geometry_msgs/Point[1000] points\nfloat64[36] covariance\nuint8[16] id\n" },
      { root: "r", file: "p/msg/Big.msg", text: "int32[99999] v\nbool last\n" },
      { root: "r", file: "p/msg/Many.msg", text: "Big[] all\nBig[<=1000] some\nCloud[] clouds\n" },
    ])
    assert.equal(set.messages.size, 4)
    // M<30-11> is 6,142 fields: M19 and below load
    assert.equal(loadSources(doubled(11)).messages.size, 12)
  })

  test("what the largest types that load cost each consumer (a guard for the bounds' figures): interface show, a JSON Schema, the defaults and an empty request each well under a second", () => {
    const shapes: [string, SourceFile[]][] = [
      ["doubled 11 levels (6,142 fields)", doubled(11)],
      ["[100][1000] (100,000 values)", [
        { root: "r", file: "p/msg/M0.msg", text: "M1[100] x\n" },
        { root: "r", file: "p/msg/M1.msg", text: "M2[1000] x\n" },
        { root: "r", file: "p/msg/M2.msg", text: "int32 v\n" },
      ]],
    ]
    for (const [what, files] of shapes) {
      const set = loadSources([...files, { root: "r", file: "p/srv/S.srv", text: "M0 req\n---\nM0 res\n" }])
      const defs = definitionsOf("p/msg/M0", set.messages)
      const desc = messageDescriptor<unknown>("p/msg/M0", "", defs)
      const t0 = performance.now()
      assert.ok(formatShow(set, "p/srv/S", "all")!.split("\n").length <= 2 * MAX_FIELDS + 1)
      const t1 = performance.now()
      assert.ok(JSON.stringify(jsonSchema(defs)).length < 5_000_000)
      const t2 = performance.now()
      desc.defaults()
      const t3 = performance.now()
      fromJson(desc, {})
      const t4 = performance.now()
      const ms = [t1 - t0, t2 - t1, t3 - t2, t4 - t3].map((x) => Math.round(x))
      assert.ok(ms.every((x) => x < 1000), `${what}: show, schema, defaults, empty request took ${ms.join(", ")} ms`)
    }
  })

  test("a request whose sequence holds 100,000 empty elements of a 100-field type is refused at its first element, at once (each element was first filled with the type's empty value: 0.9 s and 190 MB, 19 s and 2.3 GB for 1 MiB of them at 400 fields)", () => {
    const set = loadSources([
      { root: "r", file: "p/msg/P.msg", text: "float64 x\nfloat64 y\nfloat64 z\n" },
      { root: "r", file: "p/msg/E.msg", text: Array.from({ length: 25 }, (_, i) => `P p${i}\n`).join("") },
      { root: "r", file: "p/msg/Nothing.msg", text: "" },
      { root: "r", file: "p/msg/Hollow.msg", text: "Nothing a\nNothing b\n" },
      { root: "r", file: "p/msg/R.msg", text: "E[] pts\nHollow[] hollow\nint32 n 7\n" },
    ])
    const desc = messageDescriptor<unknown>("p/msg/R", "", definitionsOf("p/msg/R", set.messages))
    const json = { pts: Array.from({ length: 100_000 }, () => ({})) }
    const t0 = performance.now()
    assert.throws(() => fromJson(desc, json), (e: Error) => e instanceof ValueError && e.message === "pts[0].p0: missing field (p/msg/P): an element of a sequence has no defaults, every field is given")
    assert.ok(performance.now() - t0 < 200, `${Math.round(performance.now() - t0)} ms`)
    assert.throws(() => fromJson(desc, { pts: [{ p0: { x: 1, y: 2 } }] }), /^ValueError: pts\[0\]\.p0\.z: missing field \(float64\): an element/)
    // an element of a type that holds nothing needs nothing; the top level keeps its defaults
    const v = fromJson(desc, { hollow: [{}, { a: {} }] }) as { hollow: unknown[]; n: number; pts: unknown[] }
    assert.deepEqual(v, { pts: [], hollow: [{ a: {}, b: {} }, { a: {}, b: {} }], n: 7 })
    assert.deepEqual(desc.decode(desc.encode(v)), v)
  })

  test("interface show stops after MAX_SHOW_LINES with a note, when nested types' comments and constants repeat past it (--all-comments)", () => {
    // 2^11 occurrences of a type of 2,000 comment lines and 1,000 constants: 6 million lines
    const files = doubled(11)
    files[files.length - 1] = {
      root: "r",
      file: "p/msg/M11.msg",
      text: "# a comment line\n".repeat(2000) + Array.from({ length: 1000 }, (_, i) => `int32 C${i}=${i}\n`).join("") + "int32 leaf\n",
    }
    const set = loadSources(files)
    for (const mode of ["all", "default", "none"] as const) {
      const t0 = performance.now()
      const lines = formatShow(set, "p/msg/M0", mode)!.split("\n")
      assert.ok(performance.now() - t0 < 2000)
      assert.equal(lines.length, MAX_SHOW_LINES + 1, mode)
      assert.match(lines[lines.length - 1]!, /^# \.\.\. stopped after 100,000 lines \(MAX_SHOW_LINES\): /)
    }
    assert.ok(!formatShow(set, "p/msg/M10", "none")!.includes("stopped after"))
  })

  test("interface show reads a nested type's comments once, not at every field that holds it: 2^11 fields under a type of 100,000 comment lines took 46 s", () => {
    const files = doubled(11)
    files[files.length - 1] = { root: "r", file: "p/msg/M11.msg", text: "# a comment line\n".repeat(100_000) + "int32 leaf\n" }
    const set = loadSources(files)
    const t0 = performance.now()
    const text = formatShow(set, "p/msg/M0")!
    assert.ok(performance.now() - t0 < 1000, `${Math.round(performance.now() - t0)} ms`)
    assert.equal(text.split("\n").length, 3 * 2 ** 11 - 2)
  })
})
