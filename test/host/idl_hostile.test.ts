// Hostile and pathological interface files: sets built to make the loader, `robot gen` and the
// generated code fail in ways other than a diagnostic (exponential work, stack overflows, values the
// type's own codec refuses, identifiers that break the generated TypeScript). Each test was written
// against the defect it names and failed before its fix.
import { test } from "node:test"
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { loadSources, type SourceFile } from "../../packages/host/src/idl/load"
import { diagsOf } from "../support/idl"
import { tsNames } from "../../packages/host/src/idl/names"
import { emitHost } from "../../packages/host/src/codegen/host"
import { findDeviceEmitter } from "../../packages/host/src/codegen/index"

const repo = path.join(__dirname, "..", "..")

test("a set whose types each hold the next one twice, 24 levels down, loads in well under a second (the recursion check walked every path: 2^24, 5 s; 30 levels held robot gen for minutes)", () => {
  const files: SourceFile[] = []
  for (let i = 0; i < 24; i++) files.push({ root: "r", file: `p/msg/M${i}.msg`, text: `M${i + 1} a\nM${i + 1} b\n` })
  files.push({ root: "r", file: "p/msg/M24.msg", text: "int32 leaf\n" })
  const t0 = performance.now()
  const set = loadSources(files)
  const ms = performance.now() - t0
  assert.equal(set.messages.size, 25)
  assert.ok(ms < 1000, `loaded in ${ms.toFixed(0)} ms`)
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
