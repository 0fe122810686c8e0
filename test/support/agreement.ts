// Byte-exact agreement between the host codecs (host/runtime) and the device codecs (packages/device/src/cdr/cdr.ts +
// the generated device code), for every message type of the given interface roots.
//
// What it does:
//   1. loads the roots (default: `services` and `test/fixtures/interfaces`);
//   2. makes test vectors for every message type (service halves included): values at the edges of
//      each type (int64/uint64 at +-(2^53-1), at 2^53+1 and at their extremes, NaN, +-Infinity, -0,
//      subnormals, empty and maximal bounded arrays, non-ASCII strings with emoji), values one past
//      each bound, and truncated inputs;
//   3. encodes each vector on the host (the same descriptors packages/host/src/gen/interfaces.ts is made of);
//   4. writes device code for the set and a DeviceScript test into `tmp/agreement/` (gitignored) that,
//      in the VM, for each vector: encodes the device value and compares the bytes (hex) with the
//      host's, decodes the host's bytes and compares the value field by field (NaN-aware), and for
//      values the device cannot hold (64-bit beyond +-(2^53-1)) or that break a bound, checks the
//      documented InvalidArgument error on encode and on decode.
// The reverse direction (host decodes device bytes): the device asserts its bytes equal `expected`,
// and this script asserts that the host decodes `expected` back to the vector's value, so the host
// decodes exactly what the device wrote.
//
// Two VM limits are part of the expectations, not hidden (docs/int64.md): the device has no -0 and
// flushes float64 subnormals to 0, so for such values `expected` is the host encoding of the value
// with those numbers replaced by 0 (and the host bytes still decode on the device to that value).
//
// Run: `node --import tsx test/support/agreement.ts [--run] [roots...]`; test/host/agreement.test.ts runs it.
import * as fs from "node:fs"
import * as path from "node:path"
import { spawnSync } from "node:child_process"
import type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
import { definitionsOf, findInterfaceFiles, loadSources } from "../../packages/host/src/idl/load"
import type { InterfaceSet } from "../../packages/host/src/idl/types"
import { tsNames } from "../../packages/host/src/idl/names"
import { MessageCodec as HostCodec, isByteArrayField } from "../../packages/host/src/runtime/codec"
import { buildValue, sampleValue, SAMPLE_KINDS } from "../../packages/host/src/runtime/samples"
import { deviceCodecAccess, deviceNumber, deviceString, emitDevice } from "../../packages/host/src/codegen/device"

type Field = MessageDefinitionField
type Value = unknown

const REPO = path.resolve(__dirname, "../..")
export const DEFAULT_ROOTS = ["services", "test/fixtures/interfaces", "test/fixtures/actions"]
export const OUT_DIR = path.join(REPO, "tmp", "agreement")

const MAX_SAFE = 2n ** 53n - 1n
const F32_MAX = 3.4028234663852886e38
const F32_MIN_SUB = 1.401298464324817e-45
const F64_MIN_NORMAL = 2.2250738585072014e-308

/** One check the device runs. */
export interface Vector {
  type: string
  label: string
  kind: "ok" | "not-exact" | "bound" | "truncated"
  /** the value as the host has it (bigint for 64-bit, Uint8Array for bytes) */
  value?: Value
  /** host bytes (hex) the device decodes */
  input: string
  /** ok: the bytes the device must write for `value` (equal to `input` unless -0/subnormals are involved) */
  expected?: string
  /** errors: substrings the InvalidArgument message must contain, on decode and on encode */
  decodeError?: string[]
  encodeError?: string[]
}

const isInt64 = (t: string): boolean => t === "int64" || t === "uint64"
const isStr = (t: string): boolean => t === "string" || t === "wstring"

function fieldsOf(defs: Map<string, Field[]>, type: string): Field[] {
  const f = defs.get(type)
  if (!f) throw new Error(`no definition for ${type}`)
  return f
}

/** UTF-8 string of exactly `n` bytes, non-ASCII where possible, with an emoji when n >= 4. */
function utf8Of(n: number): string {
  if (n >= 4) return "😀" + "é".repeat(Math.floor((n - 4) / 2)) + "a".repeat((n - 4) % 2)
  return "é".repeat(Math.floor(n / 2)) + "a".repeat(n % 2)
}
/** wstring of exactly `n` UTF-16 code units, with an emoji (a surrogate pair) when n >= 2 */
function utf16Of(n: number): string {
  if (n >= 2) return "😀" + "ü".repeat(n - 2)
  return "ü".repeat(n)
}

type Kind = "safe_max" | "safe_min" | "edges"

function scalar(f: Field, kind: Kind, i: number): Value {
  const t = f.type
  const ranges: Record<string, [number, number]> = {
    int8: [-128, 127], uint8: [0, 255], byte: [0, 255], char: [0, 255], int16: [-32768, 32767],
    uint16: [0, 65535], int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
  }
  const r = ranges[t]
  if (r) return kind === "safe_max" ? r[1] : kind === "safe_min" ? r[0] : [1, r[1] - 1, r[0] + 1][i % 3]
  switch (t) {
    case "bool":
      return kind === "safe_max" ? true : kind === "safe_min" ? false : i % 2 === 0
    case "int64":
      return kind === "safe_max" ? MAX_SAFE : kind === "safe_min" ? -MAX_SAFE : [-(2n ** 53n) + 1n, 2n ** 32n, -1n][i % 3]
    case "uint64":
      return kind === "safe_max" ? MAX_SAFE : kind === "safe_min" ? 0n : [2n ** 32n, 1n, MAX_SAFE - 1n][i % 3]
    case "float32":
      return kind === "safe_max" ? [F32_MAX, Infinity, NaN][i % 3] : kind === "safe_min" ? [-F32_MAX, -Infinity, NaN][i % 3] : [-0, F32_MIN_SUB, -1.5][i % 3]
    case "float64":
      return kind === "safe_max" ? [Number.MAX_VALUE, Infinity, NaN][i % 3] : kind === "safe_min" ? [-Number.MAX_VALUE, -Infinity, 0.1][i % 3] : [-0, 5e-324, F64_MIN_NORMAL][i % 3]
    case "string":
      if (kind === "safe_min") return ""
      if (f.upperBound !== undefined) return kind === "safe_max" ? utf8Of(f.upperBound) : utf8Of(Math.min(1, f.upperBound))
      return kind === "safe_max" ? "héllo wörld ✓ 😀 日本" : "\t\"quoted\" \\ ñ"
    case "wstring":
      if (kind === "safe_min") return ""
      if (f.upperBound !== undefined) return kind === "safe_max" ? utf16Of(f.upperBound) : utf16Of(Math.min(1, f.upperBound))
      return kind === "safe_max" ? "wé😀✓ 日本" : "ö"
  }
  throw new Error(`no value for ${t}`)
}

/** A value of `type` for one of the device-safe kinds (every 64-bit integer within +-(2^53-1)). */
function makeValue(defList: readonly MessageDefinition[], type: string, kind: Kind): Record<string, Value> {
  return buildValue(
    type,
    defList,
    (f, i) => scalar(f, kind, i),
    (f, depth) => {
      if (kind === "safe_min") return 0
      if (f.arrayUpperBound !== undefined) return kind === "safe_max" ? f.arrayUpperBound : Math.min(1, f.arrayUpperBound)
      return kind === "safe_max" ? (depth > 1 ? 1 : 3) : 2
    },
  )
}

/**
 * How the device names a 64-bit integer it cannot hold (docs/int64.md): its two 32-bit halves,
 * `hi * 2^32 + lo` with hi = floor(v / 2^32) (signed for int64) and lo in 0 .. 2^32-1, exact.
 */
export function halvesText(v: bigint): string {
  return `${v >> 32n} * 2^32 + ${v & 0xffffffffn}`
}

/** The first 64-bit integer (in wire order) the device cannot hold: its field name and exact value. */
function firstNotExact(defs: Map<string, Field[]>, type: string, v: Value): { field: string; value: bigint } | undefined {
  const obj = v as Record<string, Value>
  for (const f of fieldsOf(defs, type)) {
    const items = f.isArray ? (Array.from(obj[f.name] as ArrayLike<Value>) as Value[]) : [obj[f.name]]
    for (const x of items) {
      if (f.isComplex) {
        const r = firstNotExact(defs, f.type, x)
        if (r) return r
      } else if (isInt64(f.type)) {
        const b = x as bigint
        if (b > MAX_SAFE || b < -MAX_SAFE) return { field: f.name, value: b }
      }
    }
  }
  return undefined
}

/** The value as the device holds it: -0 is +0, float64 subnormals are 0 (VM limits, docs/int64.md). */
function deviceView(defs: Map<string, Field[]>, type: string, v: Value): Value {
  const obj = v as Record<string, Value>
  const out: Record<string, Value> = {}
  for (const f of fieldsOf(defs, type)) {
    const conv = (x: Value): Value => {
      if (f.isComplex) return deviceView(defs, f.type, x)
      if (typeof x === "number") {
        if (x === 0) return 0
        if (f.type === "float64" && Math.abs(x) < F64_MIN_NORMAL) return 0
      }
      return x
    }
    const x = obj[f.name]
    out[f.name] = f.isArray && !(x instanceof Uint8Array) ? (x as Value[]).map(conv) : f.isArray ? x : conv(x)
  }
  return out
}

/** A device source literal of a value (bigints as the nearest number: the device's only option). */
function literal(defs: Map<string, Field[]>, type: string, v: Value, indent = ""): string {
  const obj = v as Record<string, Value>
  const fields = fieldsOf(defs, type)
  if (fields.length === 0) return "{}"
  const parts = fields.map((f) => {
    const x = obj[f.name]
    const one = (y: Value): string => {
      if (f.isComplex) return literal(defs, f.type, y, indent + "    ")
      if (typeof y === "bigint") return deviceNumber(Number(y))
      if (typeof y === "number") return deviceNumber(y)
      if (typeof y === "string") return deviceString(y)
      if (typeof y === "boolean") return String(y)
      throw new Error(`cannot render ${String(y)}`)
    }
    let s: string
    if (x instanceof Uint8Array) s = `hx(${JSON.stringify(Buffer.from(x).toString("hex"))})`
    else if (f.isArray) s = `[${(x as Value[]).map(one).join(", ")}]`
    else s = one(x)
    return `${indent}    ${f.name}: ${s},`
  })
  return `{\n${parts.join("\n")}\n${indent}}`
}

/** Definitions with the bounds of `field` (of the root type) removed: writes values one past the bound. */
function unbounded(defs: readonly MessageDefinition[], root: string, field: string): MessageDefinition[] {
  return defs.map((d) =>
    d.name !== root
      ? d
      : { ...d, definitions: d.definitions.map((f) => (f.name === field && !f.isConstant ? { ...f, arrayUpperBound: undefined, upperBound: undefined } : f)) },
  )
}

/** every bigint replaced by the bigint of its nearest double (what a device literal holds) */
function nearestDoubles(v: Value): Value {
  if (typeof v === "bigint") return BigInt(Number(v))
  if (Array.isArray(v)) return v.map(nearestDoubles)
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v as Record<string, Value>).map(([k, x]) => [k, nearestDoubles(x)]))
  }
  return v
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")

function same(a: Value, b: Value): boolean {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b) || (a === 0 && b === 0)
  if (a instanceof Uint8Array && b instanceof Uint8Array) return hex(a) === hex(b)
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => same((a as Record<string, Value>)[k], (b as Record<string, Value>)[k]))
  }
  return a === b
}

/** Every vector for every message type of `set`. Throws if the host itself disagrees with itself. */
export function makeVectors(set: InterfaceSet): Vector[] {
  const out: Vector[] = []
  const only = process.env.AGREE_ONLY ? new RegExp(process.env.AGREE_ONLY) : undefined
  const types = [...set.messages.keys()].sort().filter((t) => !only || only.test(t))
  for (const type of types) {
    const defList = definitionsOf(type, set.messages)
    const defs = new Map(defList.map((d) => [d.name ?? "", d.definitions.filter((f) => !f.isConstant)]))
    const host = new HostCodec<Value>(type, defList)
    const values: { label: string; value: Value }[] = []
    for (const k of ["safe_max", "safe_min", "edges"] as Kind[]) values.push({ label: k, value: makeValue(defList, type, k) })
    for (const k of SAMPLE_KINDS) values.push({ label: `host_${k}`, value: sampleValue(type, defList, k) })
    // one vector per top-level 64-bit field at 2^53+1 (or -(2^53+1)), the rest device-safe
    for (const f of fieldsOf(defs, type)) {
      if (!isInt64(f.type) || f.isComplex) continue
      for (const bad of f.type === "int64" ? [2n ** 53n + 1n, -(2n ** 53n) - 1n] : [2n ** 53n + 1n]) {
        const v = makeValue(defList, type, "edges")
        if (!f.isArray) v[f.name] = bad
        else if (f.arrayLength !== undefined || (v[f.name] as Value[]).length > 0) (v[f.name] as Value[])[0] = bad
        else v[f.name] = [bad]
        values.push({ label: `${f.name}=${bad}`, value: v })
      }
    }
    for (const { label, value } of values) {
      const input = hex(host.encode(value))
      const bad = firstNotExact(defs, type, value)
      if (bad) {
        // the device value of an int64 it cannot hold is the nearest double (2^53+1 -> 2^53): still refused
        const encBad = firstNotExact(defs, type, nearestDoubles(value))
        out.push({
          type, label, kind: "not-exact", value, input,
          decodeError: [`${bad.field}: ${halvesText(bad.value)} is not exactly representable on the device (|v| <= 2^53-1)`],
          encodeError: encBad ? [`${encBad.field}: ${halvesText(encBad.value)} is not exactly representable on the device (|v| <= 2^53-1)`] : [`is not exactly representable on the device`],
        })
        continue
      }
      const dv = deviceView(defs, type, value)
      const expected = hex(host.encode(dv))
      // reverse direction: the host decodes the bytes the device must write back to the device's value
      const back = host.decode(Buffer.from(expected, "hex"))
      if (!same(back, dv)) throw new Error(`${type} ${label}: the host does not decode its own bytes back to the value`)
      out.push({ type, label, kind: "ok", value: dv, input, expected })
      // truncated host bytes: decoding must fail naming the byte (skip the 4-byte header-only cut of an empty message)
      if (label === "safe_max") {
        const len = input.length / 2
        for (const cut of [...new Set([len - 1, Math.floor((len + 4) / 2), 4])].filter((c) => c >= 4 && c < len)) {
          out.push({ type, label: `truncated@${cut}`, kind: "truncated", input: input.slice(0, cut * 2), decodeError: [`truncated at byte ${cut}`] })
        }
      }
    }
    // one past each bound of the type's own fields: refused on encode and on decode
    for (const f of fieldsOf(defs, type)) {
      const base = makeValue(defList, type, "safe_max")
      const cases: { label: string; value: Value; msg: string[]; decode: boolean }[] = []
      if (f.isArray && f.arrayUpperBound !== undefined) {
        const items = Array.from(base[f.name] as ArrayLike<Value>)
        items.push(items[0] ?? (f.isComplex ? makeValue(defList, f.type, "safe_max") : scalar(f, "safe_max", 0)))
        const v = { ...base, [f.name]: isByteArrayField(f) ? Uint8Array.from(items as number[]) : items }
        cases.push({ label: `${f.name}[>${f.arrayUpperBound}]`, value: v, msg: [`${f.name}: ${f.arrayUpperBound + 1} elements exceed the bound <=${f.arrayUpperBound}`], decode: true })
      }
      if (f.isArray && f.arrayLength !== undefined) {
        const items = Array.from(base[f.name] as ArrayLike<Value>)
        items.pop()
        const v = { ...base, [f.name]: isByteArrayField(f) ? Uint8Array.from(items as number[]) : items }
        cases.push({ label: `${f.name}[${f.arrayLength - 1}]`, value: v, msg: [`${f.name}: needs exactly ${f.arrayLength} elements, got ${f.arrayLength - 1}`], decode: false })
      }
      if (isStr(f.type) && f.upperBound !== undefined) {
        const ub = f.upperBound
        const long = f.type === "string" ? utf8Of(ub + 1) : utf16Of(ub + 1)
        const unit = f.type === "string" ? `string of ${ub + 1} UTF-8 bytes exceeds the bound string<=${ub}` : `wstring of ${ub + 1} UTF-16 code units exceeds the bound wstring<=${ub}`
        let v: Record<string, Value>
        if (!f.isArray) v = { ...base, [f.name]: long }
        else {
          const items = Array.from(base[f.name] as ArrayLike<Value>)
          if (items.length === 0) items.push(long)
          else items[0] = long
          v = { ...base, [f.name]: items }
        }
        cases.push({ label: `${f.name}<=${ub}+1`, value: v, msg: [`${f.name}: ${unit}`], decode: true })
      }
      for (const c of cases) {
        const loose = new HostCodec<Value>(type, unbounded(defList, type, f.name))
        const input = c.decode ? hex(loose.encode(c.value)) : ""
        out.push({ type, label: `bound ${c.label}`, kind: "bound", value: c.value, input, encodeError: c.msg, decodeError: c.decode ? c.msg : undefined })
      }
    }
  }
  return out
}

/**
 * Bytecode and heap limits: one DeviceScript image with all vectors fails the 2.16.4 verifier (error
 * 1051), and a 114 KB image aborted the simulator; and the test runner keeps about 1.5 KB of heap
 * per describe block until the file ends (measured by allocating until OutOfMemory after the first
 * N blocks), so a file of 90,000 characters of tests ended with 3 KB to spare, too close to the
 * device's limit for codecs that keep a little more (the field tables' arrays' codecs). The
 * vectors are split into files of at most about this much source.
 */
const FILE_BUDGET = 60_000

/** Writes tmp/agreement/{interfaces.ts, agreement_N.test.ts}; returns the test files and the vectors. */
export function writeDeviceTests(roots: readonly string[] = DEFAULT_ROOTS, outDir = OUT_DIR): { testFiles: string[]; vectors: Vector[] } {
  const files = findInterfaceFiles(roots.map((r) => path.resolve(REPO, r)))
  const set = loadSources(files)
  const names = tsNames(set)
  const access = deviceCodecAccess(set)
  const vectors = makeVectors(set)
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  const sources = files.map((f) => path.relative(REPO, path.join(f.root, f.file)).split(path.sep).join("/"))
  fs.writeFileSync(path.join(outDir, "interfaces.ts"), emitDevice(set, { sources, outFile: path.join(outDir, "interfaces.ts") }))
  const util = path.relative(outDir, path.join(REPO, "test/device/cdr_util")).split(path.sep).join("/")

  // one test() per vector, grouped by type into describe() blocks, split into files by size
  const tests: { type: string; tn: string; imports: string[]; text: string }[] = []
  for (const v of vectors) {
    const defList = definitionsOf(v.type, set.messages)
    const defs = new Map(defList.map((d) => [d.name ?? "", d.definitions.filter((f) => !f.isConstant)]))
    const tn = names.get(v.type) as string
    // a const, a function for a type made on demand (`UUID_codec()`), or through an action (`Fibonacci().sendGoal.request`)
    const acc = access.get(v.type)
    if (!acc) throw new Error(`no device codec for ${v.type}`)
    const codec = acc.expr
    const name = JSON.stringify(v.label)
    const L: string[] = []
    if (v.kind === "ok") {
      L.push(`    test(${name}, async () => {`)
      L.push(`        const v: ${tn} = ${literal(defs, v.type, v.value, "        ")}`)
      L.push(`        await agreeOk(${codec}, v, ${JSON.stringify(v.input)}, ${JSON.stringify(v.expected)})`)
      L.push(`    })`)
    } else if (v.kind === "truncated") {
      L.push(`    test(${name}, async () => await agreeTruncated(${codec}, ${JSON.stringify(v.input)}, ${JSON.stringify(v.decodeError?.[0])}))`)
    } else {
      L.push(`    test(${name}, async () => {`)
      L.push(`        const v: ${tn} = ${literal(defs, v.type, v.value, "        ")}`)
      L.push(`        await agreeError(${codec}, v, ${JSON.stringify(v.input)}, ${JSON.stringify(v.decodeError ?? [])}, ${JSON.stringify(v.encodeError ?? [])})`)
      L.push(`    })`)
    }
    tests.push({ type: v.type, tn, imports: acc.imports, text: L.join("\n") })
  }
  const groups: (typeof tests)[] = []
  let size = Infinity
  for (const t of tests) {
    if (size + t.text.length > FILE_BUDGET) {
      groups.push([])
      size = 0
    }
    ;(groups[groups.length - 1] as typeof tests).push(t)
    size += t.text.length
  }
  const testFiles: string[] = []
  groups.forEach((g, i) => {
    const imports = [...new Set(g.flatMap((b) => [b.tn, ...b.imports]))].sort()
    const body: string[] = []
    g.forEach((t, j) => {
      if (j === 0 || (g[j - 1] as (typeof g)[number]).type !== t.type) body.push(`describe(${JSON.stringify(t.type)}, () => {`)
      body.push(t.text)
      if (j === g.length - 1 || (g[j + 1] as (typeof g)[number]).type !== t.type) body.push(`})`, ``)
    })
    const head = [
      `// Generated by test/support/agreement.ts (part ${i + 1} of ${groups.length}) — do not edit; test/host/agreement.test.ts regenerates and runs it.`,
      `// Device vs host: device bytes equal the host's, host bytes decode on the device, documented errors.`,
      `import { describe, test } from "@devicescript/test"`,
      `import { agreeOk, agreeError, agreeTruncated } from ${JSON.stringify(util)}`,
      `import { ${imports.join(", ")} } from "./interfaces"`,
      ``,
      `function hx(h: string): Buffer {`,
      `    return Buffer.from(h, "hex")`,
      `}`,
      ``,
    ]
    const f = path.join(outDir, `agreement_${i + 1}.test.ts`)
    fs.writeFileSync(f, [...head, ...body].join("\n"))
    testFiles.push(f)
  })
  return { testFiles, vectors }
}

/** Runs the generated test in the VM (under the devs lock); returns exit status and output. */
export function runDeviceTest(testFile: string, timeoutMs = 600_000): { status: number | null; output: string } {
  const rel = path.relative(REPO, testFile)
  const r = spawnSync("flock", ["/tmp/devs.lock", "npx", "devs", "run", rel, "--test", "--test-self-exit", "-T", "30000"], {
    cwd: REPO,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  })
  return { status: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}` }
}

/** "tests: N, pass: P, error: E" from the VM output, or undefined */
export function vmCounts(output: string): { tests: number; pass: number; error: number } | undefined {
  const m = /tests: (\d+), pass: (\d+), error: (\d+)/.exec(output)
  return m ? { tests: Number(m[1]), pass: Number(m[2]), error: Number(m[3]) } : undefined
}

if (require.main === module) {
  const args = process.argv.slice(2)
  const run = args.includes("--run")
  const roots = args.filter((a) => a !== "--run")
  const { testFiles, vectors } = writeDeviceTests(roots.length > 0 ? roots : DEFAULT_ROOTS)
  const count = (k: Vector["kind"]): number => vectors.filter((v) => v.kind === k).length
  console.log(`${vectors.length} vectors (${count("ok")} agree, ${count("not-exact")} not exact, ${count("bound")} bounds, ${count("truncated")} truncated) in ${testFiles.map((f) => path.relative(process.cwd(), f)).join(", ")}`)
  if (run) {
    let failed = 0
    for (const f of testFiles) {
      const r = runDeviceTest(f)
      const c = vmCounts(r.output)
      const ok = r.status === 0 && c !== undefined && c.error === 0 && c.tests > 0
      if (!ok) {
        failed++
        process.stdout.write(r.output.split("\n").filter((l) => !l.startsWith("npm warn")).join("\n"))
      }
      console.log(`${ok ? "PASS" : "FAIL"} ${path.relative(process.cwd(), f)}: ${c ? `${c.pass}/${c.tests} passed` : `exit ${r.status}, no test summary`}`)
    }
    process.exit(failed > 0 ? 1 : 0)
  }
}
