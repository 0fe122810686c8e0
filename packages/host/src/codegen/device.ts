// Device emitter: InterfaceSet -> src/gen/interfaces.ts, in the DeviceScript language subset.
//
// Per message `Foo`: `interface Foo`, `const Foo_codec: MessageCodec<Foo>` (a field table for
// src/cdr/cdr.ts `rec`: the field names, one kind character per field, and the codecs of nested
// messages and of arrays, fixed byte arrays and wstrings, whose makers the header imports only
// when the file uses them, so that a firmware that does not need them does not carry their code),
// `function Foo_defaults(): Foo`, and one
// `const Foo_<CONST>` per constant. Per service `Bar`: `const Bar: ServiceType<Bar_Request,
// Bar_Response>` (name, hash32, the two codecs), with the halves generated as messages
// (`Bar_Request`, `Bar_Request_codec`, ...).
//
// On demand: the types of actions (the action, its three messages and the derived ones) and of
// the packages ROS 2 actions are made of (action_msgs, unique_identifier_msgs), and of service_msgs
// (the bridge's service introspection: no device uses it), are emitted as functions that build
// their descriptor on first call: `Foo_codec()`, `CancelGoal()`,
// `Fibonacci(): ActionType<...>`. The DeviceScript compiler drops unused top-level functions but
// keeps every top-level `const` (a codec const costs the image 100-600 bytes used or not), so a
// robot that hosts no action carries none of these, and one that hosts an action carries only
// what that action uses. Constants stay `const` (numbers are inlined: they cost nothing).
// The five types derived from each action (`Fibonacci_SendGoal_Request`, ...) get an interface and
// a `_defaults()` maker but no codec: their layout is the same for every action, so
// src/lib/actiontype.ts builds their codecs from the action's own (`Fibonacci().sendGoal.request`),
// once in the image however many actions the robot hosts.
//
// Names: the short ROS name; when two types of the set share it, host/idl/names.ts prefixes the
// package (`std_msgs_Header`), then package and kind; a type named like something the device file
// uses itself (`Buffer`, `Math`, `Bytes`, `MessageCodec`, ...) is also prefixed with its package.
// A generated name that still collides (e.g. a message `Foo_codec` next to `Foo`) is a generation
// error (DeviceGenError) naming both, never a file that does not compile.
//
// Types: bool -> boolean; every integer and float type (byte and char included) -> number;
// string/wstring -> string; uint8[]/byte[] (fixed or not) -> Bytes (decoded as Buffer); other
// arrays -> T[]. int64/uint64 are numbers limited to +-(2^53-1) (docs/int64.md): a constant
// outside that range is not exported (a comment says why), a default outside it makes the
// `_defaults()` maker throw InvalidArgument.
//
// Output is deterministic (types sorted by full name, dependencies first; no timestamps).
import type { MessageDefinitionField } from "@foxglove/message-definition"
import type { InterfaceSet, IdlAction, IdlMessage, IdlService } from "../idl/types"
import { RESERVED_NAMES, tsNames } from "../idl/names"
import { TIME_TYPE, UUID_TYPE } from "../idl/action"
import { fixedSize } from "../runtime/codec"

export interface DeviceEmitOptions {
  /** source files as they should be named in the header (relative paths), in order */
  sources: readonly string[]
  /** where the output goes (default: src/gen/interfaces.ts); only its header depends on it */
  outFile?: string
  /** module the generated code imports the CDR runtime and types from (default {@link DEVICE_LIBRARY}) */
  library?: string
}

/**
 * The library's CDR module, imported by its own path: the `K` const enum is inlined only when
 * imported from the file that declares it (through a re-export every use became a lookup: +420
 * bytes of the robot's codecs).
 */
export const DEVICE_CDR = "src/cdr/cdr"
/** the device library's builder of actions' derived types, as generated code imports it */
export const DEVICE_ACTIONS = "src/lib/actiontype"
/**
 * The device library, imported by package name as a user's project does (`robot init`): the
 * DeviceScript compiler resolves it in node_modules (in this repository, the npm workspace link).
 */
export const DEVICE_LIBRARY = "@robot-services/device"

type Field = MessageDefinitionField

const MAX_SAFE = 2n ** 53n - 1n

/** cdr.ts element kinds (const enum K), by ROS primitive type */
const KIND: Record<string, string> = {
  bool: "Bool",
  byte: "U8",
  char: "U8",
  uint8: "U8",
  int8: "I8",
  uint16: "U16",
  int16: "I16",
  uint32: "U32",
  int32: "I32",
  int64: "I64",
  uint64: "U64",
  float32: "F32",
  float64: "F64",
  string: "Str",
  wstring: "WStr",
}

/** cdr.ts `rec` field kinds by ROS primitive type (byte and char are uint8 on the wire) */
const REC_KIND: Record<string, string> = {
  bool: "b",
  byte: "B",
  char: "B",
  uint8: "B",
  int8: "c",
  uint16: "H",
  int16: "h",
  uint32: "I",
  int32: "i",
  int64: "q",
  uint64: "Q",
  float32: "f",
  float64: "d",
}

/** cdr.ts functions the generated code may call, imported as `__<name>` when used */
type Helper =
  | "writeArrC" | "readArrC" | "writeFixedBytes" | "readFixedBytes" | "ArrayField" | "WstringField"
  | "wAt" | "rAt" | "checkInt" | "writeBool" | "readBool" | "writeU32" | "readU32" | "writeI64" | "readI64"
  | "writeU64" | "readU64" | "writeF32" | "writeString" | "readString" | "writeBytes" | "readBytes" | "writeMsg"
/** records that the file uses a helper and returns its local name */
type Use = (h: Helper) => string

/** identifiers the generated file imports or uses itself (tsNames gives no type one of them) */
const RESERVED = RESERVED_NAMES

const isBytes = (f: Field): boolean => f.isArray === true && !f.isComplex && (f.type === "uint8" || f.type === "byte")
const num = (n: number | undefined): string => (n === undefined ? "-1" : String(n))

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Text safe inside a block comment, on one line. */
function doc(s: string): string {
  return s.replace(/\*\//g, "*\\/").replace(/[\r\n]+/g, " ")
}

/** The type of a field as written in ROS 2 (`string<=5[<=3]`). */
function rosType(f: Field): string {
  let t = f.type
  if (f.upperBound !== undefined) t += `<=${f.upperBound}`
  if (f.isArray) t += f.arrayLength !== undefined ? `[${f.arrayLength}]` : f.arrayUpperBound !== undefined ? `[<=${f.arrayUpperBound}]` : "[]"
  return t
}

/** Thrown for a set the device generator cannot render (a name collision, an unknown type). */
export class DeviceGenError extends Error {
  override readonly name = "DeviceGenError"
}

/**
 * A number as DeviceScript source. The DeviceScript 2.16.4 bytecode verifier rejects a subnormal
 * double literal (and folds constant products into one), so subnormals are computed at run time
 * (the VM then flushes them to 0, see docs/int64.md); the VM has no -0.
 */
export function deviceNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN"
  if (v === Infinity) return "Infinity"
  if (v === -Infinity) return "-Infinity"
  if (v === 0) return "0"
  // v = k * 2^-1074 with |k| < 2^52 (2^1074 itself overflows a double: scale in two steps)
  if (Math.abs(v) < 2.2250738585072014e-308) return `(${v * 2 ** 1000 * 2 ** 74} * Math.pow(2, -1074))`
  return String(v)
}

/** A JS string literal that is plain ASCII (non-ASCII as \u escapes), so the file's bytes do not depend on an editor. */
export function deviceString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
}

/** An int64/uint64 value (number or bigint from the IR) as source, or undefined if the device cannot hold it exactly. */
function int64Source(v: unknown): string | undefined {
  const b = typeof v === "bigint" ? v : typeof v === "number" && Number.isInteger(v) ? BigInt(v) : undefined
  if (b === undefined) return undefined
  if (b > MAX_SAFE || b < -MAX_SAFE) return undefined
  return b.toString()
}

function scalarSource(type: string, v: unknown): string | undefined {
  switch (type) {
    case "bool":
      return v ? "true" : "false"
    case "string":
    case "wstring":
      return deviceString(String(v))
    case "int64":
    case "uint64":
      return int64Source(v)
    default:
      if (typeof v === "bigint") return v.toString()
      if (typeof v !== "number") throw new DeviceGenError(`unexpected value ${String(v)} for ${type}`)
      return deviceNumber(v)
  }
}

function valueText(v: unknown): string {
  return typeof v === "bigint" ? v.toString() : Array.isArray(v) ? `[${v.map(valueText).join(", ")}]` : JSON.stringify(v)
}

/**
 * Packages whose types are generated on demand (see the header): what ROS 2 actions are built from,
 * and service_msgs, which only the bridge uses (service introspection): as a const its codec cost the
 * image 3.8 KB (68384 bytes against 64544, with the array readers it pulled in).
 */
export const ON_DEMAND_PACKAGES: readonly string[] = ["action_msgs", "unique_identifier_msgs", "service_msgs"]

/**
 * Full names of the messages, services and actions of `set` that the device code makes on demand
 * (functions: `Foo_codec()`, `CancelGoal()`, `Fibonacci()`) rather than as consts.
 */
export function onDemand(set: InterfaceSet): Set<string> {
  const out = new Set<string>()
  for (const a of set.actions.values()) {
    out.add(a.fullName)
    for (const m of [a.goal, a.result, a.feedback, a.sendGoal.request, a.sendGoal.response, a.getResult.request, a.getResult.response, a.feedbackMessage]) out.add(m.fullName)
  }
  for (const m of set.messages.values()) if (ON_DEMAND_PACKAGES.includes(m.pkg)) out.add(m.fullName)
  for (const sv of set.services.values()) if (ON_DEMAND_PACKAGES.includes(sv.pkg)) out.add(sv.fullName)
  return out
}

/** Full names of the five messages derived from each action of `set`: no codec of their own on the device. */
function derivedMessages(set: InterfaceSet): Set<string> {
  const out = new Set<string>()
  for (const a of set.actions.values()) for (const m of [a.sendGoal.request, a.sendGoal.response, a.getResult.request, a.getResult.response, a.feedbackMessage]) out.add(m.fullName)
  return out
}

/**
 * How device code reaches the codec of each message of `set`: an expression and the identifiers it
 * needs imported from the generated file (`Header_codec`; `UUID_codec()`; for a type derived from an
 * action, through the action: `Fibonacci().sendGoal.request`). Tests use it to run every codec.
 */
export function deviceCodecAccess(set: InterfaceSet): Map<string, { expr: string; imports: string[] }> {
  const names = tsNames(set)
  const lazy = onDemand(set)
  const out = new Map<string, { expr: string; imports: string[] }>()
  for (const m of set.messages.values()) {
    const n = names.get(m.fullName) as string
    out.set(m.fullName, { expr: lazy.has(m.fullName) ? `${n}_codec()` : `${n}_codec`, imports: [`${n}_codec`] })
  }
  for (const a of set.actions.values()) {
    const n = names.get(a.fullName) as string
    const via = (m: IdlMessage, path: string): void => void out.set(m.fullName, { expr: `${n}().${path}`, imports: [n] })
    via(a.sendGoal.request, "sendGoal.request")
    via(a.sendGoal.response, "sendGoal.response")
    via(a.getResult.request, "getResult.request")
    via(a.getResult.response, "getResult.response")
    via(a.feedbackMessage, "feedbackMessage")
  }
  return out
}

/** How generated code refers to a message's codec: `Foo_codec`, or `Foo_codec()` for a type made on demand. */
type CodecRef = (fullName: string) => string

/** Emits src/gen/interfaces.ts for `set`. Throws DeviceGenError on a name collision. */
export function emitDevice(set: InterfaceSet, opts: DeviceEmitOptions): string {
  const names = tsNames(set)
  const lib = opts.library ?? DEVICE_LIBRARY

  const messages = orderMessages(set)
  const services = [...set.services.values()].sort((a, b) => compare(a.fullName, b.fullName))
  const actions = [...set.actions.values()].sort((a, b) => compare(a.fullName, b.fullName))
  const lazy = onDemand(set)
  const derived = derivedMessages(set)
  const ref: CodecRef = (full) => {
    const n = names.get(full)
    if (!n) throw new DeviceGenError(`unknown type ${full}`)
    return lazy.has(full) ? `${n}_codec()` : `${n}_codec`
  }

  // every exported identifier, to refuse collisions instead of emitting a file that does not compile
  const owner = new Map<string, string>()
  const claim = (id: string, what: string): void => {
    if (RESERVED.has(id) || id.startsWith("__")) throw new DeviceGenError(`generated name '${id}' (${what}) is reserved in the device code`)
    const prev = owner.get(id)
    if (prev !== undefined && prev !== what) throw new DeviceGenError(`generated name '${id}' is used by both ${prev} and ${what}`)
    owner.set(id, what)
  }

  const helpers = new Set<Helper>()
  const use: Use = (h) => {
    helpers.add(h)
    return `__${h}`
  }
  const body: string[] = []
  const shared = new Map<string, string>()
  const kindsUsed = new Set<string>()
  const made = new Map<string, string>()
  // A file without actions makes its codecs with `new __Rec(...)`; one with actions has `__rec`, the
  // function src/lib/actiontype.ts is given for the types derived from actions, and makes them all
  // with it (a firmware without actions carries no such function: 28 bytes)
  const maker = actions.length > 0 ? "__rec" : "new __Rec"
  for (const m of messages) body.push(...emitMessage(m, names, claim, use, ref, derived.has(m.fullName) ? "none" : lazy.has(m.fullName) ? "lazy" : "const", shared, kindsUsed, made, maker))
  // the types derived from actions are field tables too (src/lib/actiontype.ts, given this file's __rec)
  if (actions.length > 0) for (const k of ACTION_KINDS) kindsUsed.add(k)
  const rec = kindsUsed.size ? recInterpreter(kindsUsed, use, actions.length > 0) : []
  const msgOf = (full: string): IdlMessage | undefined => set.messages.get(full)
  let multi = actions.length > 0
  for (const s of services) {
    const one = fitsOneRecord(s, msgOf)
    if (!one) multi = true
    body.push(...emitService(s, names, claim, ref, lazy.has(s.fullName), one))
  }
  for (const a of actions) body.push(...emitAction(a, names, claim, ref, made))

  const extra = [...helpers].sort(compare).map((h) => `, ${h} as __${h}`).join("")
  const L: string[] = []
  L.push(`// @generated by robot gen (host/codegen/device.ts) from ${opts.sources.join(", ")} — do not edit`)
  L.push(`// Regenerate with \`robot gen\`; \`robot gen --check\` fails when this file is out of date.`)
  L.push(`// DeviceScript: int64/uint64 are numbers within +-(2^53-1) (docs/int64.md); uint8[]/byte[] are Bytes.`)
  L.push(`import { CdrReader as __R, CdrWriter as __W, K as __K, arrayOf as __arrayOf, codec as __codec, notExactDefault as __notExact, serviceType as __service${extra} } from ${JSON.stringify(`${lib}/${DEVICE_CDR}`)}`)
  L.push(`import { ${actions.length > 0 ? "ActionType, " : ""}Bytes, MessageCodec, ServiceType${multi ? ", multiFrame as __multiFrame" : ""} } from ${JSON.stringify(lib)}`)
  if (actions.length > 0) L.push(`import { actionType as __action } from ${JSON.stringify(`${lib}/${DEVICE_ACTIONS}`)}`)
  L.push("")
  if (rec.length) L.push(...rec, "")
  L.push(...body)
  return L.join("\n")
}

/** Messages sorted by full name, each after the types it nests (codecs refer to each other's consts). */
function orderMessages(set: InterfaceSet): IdlMessage[] {
  const sorted = [...set.messages.values()].sort((a, b) => compare(a.fullName, b.fullName))
  const out: IdlMessage[] = []
  const state = new Map<string, number>() // 1 visiting, 2 done
  const visit = (m: IdlMessage): void => {
    const s = state.get(m.fullName)
    if (s === 2) return
    if (s === 1) throw new DeviceGenError(`${m.fullName} contains itself`)
    state.set(m.fullName, 1)
    const deps = m.definition.definitions.filter((f) => f.isComplex && !f.isConstant).map((f) => f.type)
    for (const d of [...new Set(deps)].sort()) {
      const dm = set.messages.get(d)
      if (!dm) throw new DeviceGenError(`${m.fullName} uses ${d}, which is not in the set`)
      visit(dm)
    }
    state.set(m.fullName, 2)
    out.push(m)
  }
  for (const m of sorted) visit(m)
  return out
}

function tsType(f: Field, names: Map<string, string>): string {
  if (isBytes(f)) return "Bytes"
  let base: string
  if (f.isComplex) {
    const n = names.get(f.type)
    if (!n) throw new DeviceGenError(`unknown type ${f.type}`)
    base = n
  } else if (f.type === "bool") base = "boolean"
  else if (f.type === "string" || f.type === "wstring") base = "string"
  else if (KIND[f.type]) base = "number"
  else throw new DeviceGenError(`unknown primitive type ${f.type} (field ${f.name})`)
  return f.isArray ? `${base}[]` : base
}

/** The default value of one field, as source. */
function defaultExpr(m: IdlMessage, f: Field, names: Map<string, string>): string {
  const notExact = (text: string): string => `__notExact(${JSON.stringify(`${m.fullName}.${f.name}`)}, ${JSON.stringify(text)})`
  const one = (v: unknown): string => {
    const s = scalarSource(f.type, v)
    return s === undefined ? notExact(valueText(v)) : s
  }
  const zero = (): string => {
    if (f.isComplex) return `${names.get(f.type)}_defaults()`
    if (f.type === "bool") return "false"
    if (f.type === "string" || f.type === "wstring") return `""`
    return "0"
  }
  if (!f.isArray) return f.defaultValue !== undefined ? one(f.defaultValue) : zero()
  const dv = Array.isArray(f.defaultValue) ? (f.defaultValue as unknown[]) : undefined
  if (isBytes(f)) {
    if (dv) return `Buffer.from([${dv.map((x) => String(x)).join(", ")}])`
    return `Buffer.alloc(${f.arrayLength ?? 0})`
  }
  if (dv) return `[${dv.map(one).join(", ")}]`
  const n = f.arrayLength ?? 0
  if (n === 0) return "[]"
  if (n <= 4) return `[${Array.from({ length: n }, zero).join(", ")}]`
  return `__arrayOf(${n}, () => ${zero()})`
}

function emitMessage(
  m: IdlMessage,
  names: Map<string, string>,
  claim: (id: string, what: string) => void,
  use: Use,
  ref: CodecRef,
  form: "const" | "lazy" | "none",
  shared: Map<string, string>,
  kindsUsed: Set<string>,
  made: Map<string, string>,
  maker: string,
): string[] {
  const n = names.get(m.fullName)
  if (!n) throw new DeviceGenError(`no name for ${m.fullName}`)
  claim(n, m.fullName)
  if (form !== "none") claim(`${n}_codec`, `${m.fullName} (codec)`)
  claim(`${n}_defaults`, `${m.fullName} (defaults)`)
  const fields = m.definition.definitions.filter((f) => !f.isConstant)
  const consts = m.definition.definitions.filter((f) => f.isConstant)
  const L: string[] = [`/** ${m.fullName} */`]
  if (fields.length === 0) L.push(`export interface ${n} {}`)
  else {
    L.push(`export interface ${n} {`)
    for (const f of fields) {
      const dflt = f.defaultValue !== undefined ? ` (default ${valueText(f.defaultValue)})` : ""
      L.push(`    /** ${doc(rosType(f) + dflt)} */`)
      L.push(`    ${f.name}: ${tsType(f, names)}`)
    }
    L.push(`}`)
  }
  for (const c of consts) {
    const id = `${n}_${c.name}`
    claim(id, `${m.fullName}.${c.name} (constant)`)
    const src = scalarSource(c.type, c.value)
    const comment = `${c.type} ${c.name}=${c.valueText ?? valueText(c.value)}`
    if (src === undefined) L.push(`// ${doc(comment)}: not exported, ${valueText(c.value)} is not exactly representable on the device (|v| <= 2^53-1)`)
    else L.push(`/** ${doc(comment)} */`, `export const ${id} = ${src}`)
  }
  // A message laid out like an earlier const codec's (the same fields, names and types: the empty
  // ones, std_srvs' SetBool and Trigger responses) takes that codec's encoder and decoder rather
  // than a field table of its own.
  const key = recCall(fields, "", () => "", ref)
  const same = form === "none" ? undefined : shared.get(key)
  const C: string[] = []
  if (same) C.push(`__codec(${JSON.stringify(m.fullName)}, ${same}.encode, ${same}.decode)`)
  else {
    const call = recCall(fields, n, use, ref, kindsUsed, maker)
    C.push(call.replace("(", `(${JSON.stringify(m.fullName)}, `))
    if (form === "const") shared.set(key, `${n}_codec`)
  }
  if (form === "const") {
    C[0] = `export const ${n}_codec: MessageCodec<${n}> = ${C[0]}`
    L.push(...C)
  } else if (form === "none") {
    L.push(`// (its codec is built by src/lib/actiontype.ts, reached through its action)`)
  } else {
    L.push(`let __c_${n}: MessageCodec<${n}>`)
    L.push(`/** The codec of ${n}, made on the first call (an image that never calls it does not carry it). */`)
    L.push(`export function ${n}_codec(): MessageCodec<${n}> {`)
    made.set(m.fullName, `__c_${n} || (__c_${n} = ${C[0]})`)
    C[0] = `if (!__c_${n}) __c_${n} = ${C[0]}`
    L.push(...C.map((l) => `    ${l}`))
    L.push(`    return __c_${n}`, `}`)
  }
  L.push(`/** A ${n} with every field at its declared default, or zero/empty. */`)
  if (fields.length === 0) L.push(`export function ${n}_defaults(): ${n} {`, `    return {}`, `}`)
  else {
    L.push(`export function ${n}_defaults(): ${n} {`, `    return {`)
    for (const f of fields) L.push(`        ${f.name}: ${defaultExpr(m, f, names)},`)
    L.push(`    }`, `}`)
  }
  L.push("")
  return L
}

/** Kinds of the fields of the types src/lib/actiontype.ts derives from every action (bool, int8, uint32, a message, a sequence of messages). */
const ACTION_KINDS = ["b", "c", "I", "m", "M"]

/**
 * Each `rec` kind's writer call and reader expression (`x` the value, `n` the field's name,
 * `args[a++]` the field's next argument), and the cdr.ts function it needs; the order is the order
 * of the interpreter's tests.
 */
const REC_CODE: [kind: string, write: string, read: string][] = [
  ["b", "__writeBool(w, x, n)", "__readBool(r, n)"],
  // (the small integers and the fixed-size reads in place, as the CdrWriter/CdrReader methods do
  // them, the same checks and messages: each of those functions cost the image about 45 bytes to
  // read and 65 to write, where the code here costs about 8 and 25 more. `__wAt` may start a new
  // chunk: `w.buf` is read after it. The cdr.ts functions, not the CdrWriter/CdrReader methods
  // that call them: a method costs a prototype entry as well)
  ["B", `{ __checkInt(x, 0, 255, "uint8", n); const o = __wAt(w, 1, 1); w.buf[o] = x }`, "r.buf[__rAt(r, 1, 1)]"],
  ["c", `{ __checkInt(x, -128, 127, "int8", n); const o = __wAt(w, 1, 1); w.buf.setAt(o, "i8", x) }`, `r.buf.getAt(__rAt(r, 1, 1), "i8")`],
  ["H", `{ __checkInt(x, 0, 65535, "uint16", n); const o = __wAt(w, 2, 2); w.buf.setAt(o, "u16", x) }`, `r.buf.getAt(__rAt(r, 2, 2), "u16")`],
  ["h", `{ __checkInt(x, -32768, 32767, "int16", n); const o = __wAt(w, 2, 2); w.buf.setAt(o, "i16", x) }`, `r.buf.getAt(__rAt(r, 2, 2), "i16")`],
  ["I", "__writeU32(w, x, n)", "__readU32(r)"],
  ["i", `{ __checkInt(x, -2147483648, 2147483647, "int32", n); const o = __wAt(w, 4, 4); w.buf.setAt(o, "i32", x) }`, `r.buf.getAt(__rAt(r, 4, 4), "i32")`],
  ["q", "__writeI64(w, x, n)", "__readI64(r, n)"],
  ["Q", "__writeU64(w, x, n)", "__readU64(r, n)"],
  ["f", "__writeF32(w, x, n)", `r.buf.getAt(__rAt(r, 4, 4), "f32")`],
  ["d", "w.f64(x, n)", `r.buf.getAt(__rAt(r, 8, 8), "f64")`],
  ["s", "__writeString(w, x, -1, n)", "__readString(r, -1, n)"],
  ["S", "__writeString(w, x, args[a++], n)", "__readString(r, args[a++], n)"],
  ["y", "__writeBytes(w, x, -1, n)", "__readBytes(r, -1, n)"],
  ["Y", "__writeBytes(w, x, args[a++], n)", "__readBytes(r, args[a++], n)"],
  ["m", "__writeMsg(w, args[a++], x, n)", "args[a++].decode(r)"],
  // arguments: the elements' codec, length (-1: a sequence), bound (-1: none)
  ["M", "__writeArrC(w, args[a++], x, args[a++], args[a++], n)", "__readArrC(r, args[a++], args[a++], args[a++], n)"],
  // argument: the length
  ["X", "__writeFixedBytes(w, x, args[a++], n)", "__readFixedBytes(r, args[a++])"],
  // argument: a field codec of cdr.ts (ArrayField, WstringField), made with the codec that has the field
  ["F", "args[a++].encode(w, x, n)", "args[a++].decode(r, n)"],
]

/** the cdr.ts functions a piece of generated code calls (`__name`) */
const helpersOf = (code: string): Helper[] => [...code.matchAll(/__(\w+)\(/g)].map((m) => m[1] as Helper)

/**
 * `__rec`, the codec of a message from its field table, for the kinds `used` (`""`: an empty
 * message, one placeholder byte in ROS 2). Generated into each file, not in the library: a test
 * per kind costs the image about 30 bytes, and a firmware with one AddTwoInts service needs one.
 * Why tables: a message's own two closures cost the image about 25 bytes of code per field, a
 * table entry about 5 (its name in the array; the kinds are a string, data). The bytes and error
 * messages are those of the CdrWriter/CdrReader methods the tests call, with the field's name.
 */
function recInterpreter(used: Set<string>, use: Use, withRec: boolean): string[] {
  const code = REC_CODE.filter(([k]) => used.has(k))
  for (const [, wr, rd] of code) [...helpersOf(wr), ...helpersOf(rd)].forEach(use)
  const reads = code
  const chain = (rows: [string, string][], ind: string): string[] =>
    rows.map(([k, stmt], i) => (i === rows.length - 1 ? `${ind}${i ? "else " : ""}${stmt}` : `${ind}${i ? "else " : ""}if (k === ${k.charCodeAt(0)}) ${stmt}`))
  const empty = used.has("")
  // (the arguments and the kind are read only where a used kind takes an argument and where there
  // are kinds to tell apart: an unused local still costs its load and store, about 20 bytes in each
  // method of a firmware whose fields are all int64, docs/benchmarks.md "Firmware code size")
  const hasArgs = code.some(([, wr, rd]) => wr.includes("args[") || rd.includes("args["))
  const args = hasArgs ? [`        const args = this.args`] : []
  // (the field's name is cut from the table at each use: a string on the heap for the moment it is
  // used, where an array of the names would be held for good, about 2 KB for this robot's codecs)
  const loop = [
    `        for (let p = 0${hasArgs ? ", a = 0" : ""}; p < m; ) {`,
    `            let e = t.indexOf(" ", p)`,
    `            if (e < 0) e = m`,
    ...(code.length > 1 ? [`            const k = t.charCodeAt(p)`] : []),
    `            const n = t.slice(p + 1, e)`,
    `            p = e + 1`,
  ]
  const L = [
    `/**`,
    ` * The codec of a message from its field table (host/codegen/device.ts, recInterpreter): \`t\` is`,
    ` * each field's kind character and name, separated by spaces; \`args\` the arguments of the kinds`,
    ` * that take one, in field order. An object of a class, not two closures: the heap holds no`,
    ` * closure environment; the table is a string of the image, not on the heap.`,
    ` */`,
    `class __Rec<T> implements MessageCodec<T> {`,
    // (no `args` field where no kind takes one and no `__rec` passes them: a store less)
    hasArgs || withRec ? `    constructor(public name: string, private t: string, private args?: any[]) {}` : `    constructor(public name: string, private t: string) {}`,
    `    encode(w: __W, v: any) {`,
    `        const t = this.t`,
    ...args,
    `        const m = t.length`,
  ]
  if (empty) {
    use("wAt")
    use("rAt")
    L.push(`        if (m === 0) {`, `            const o = __wAt(w, 1, 1)`, `            w.buf[o] = 0`, `        }`)
  }
  if (code.length) {
    L.push(...loop, `            const x = v[n]`)
    L.push(...chain(code.map(([k, wr]) => [k, wr]), "            "))
    L.push(`        }`)
  }
  L.push(`    }`, `    decode(r: __R): T {`, `        const t = this.t`, ...args, `        const o: any = {}`, `        const m = t.length`)
  if (empty) L.push(`        if (m === 0) __rAt(r, 1, 1)`)
  if (code.length) {
    L.push(...loop, `            let x: any`)
    L.push(...chain(reads.map(([k, , rd]) => [k, `x = ${rd}`]), "            "))
    L.push(`            o[n] = x`, `        }`)
  }
  L.push(`        return o`, `    }`, `}`)
  if (withRec) L.push(`function __rec<T>(name: string, t: string, args?: any[]): MessageCodec<T> {`, `    return new __Rec<T>(name, t, args)`, `}`)
  return L
}

/**
 * The `__rec(...)` call of a message: its field names, one kind character per field and the
 * arguments of the fields whose kind takes one (cdr.ts `rec` lists the kinds).
 */
function recCall(fields: MessageDefinitionField[], n: string, use: Use, ref: CodecRef, kindsUsed?: Set<string>, maker = "__rec"): string {
  const kinds: string[] = []
  const args: string[] = []
  const bound = (b: number | undefined, open: string, closed: string): void => {
    if (b === undefined) kinds.push(open)
    else {
      kinds.push(closed)
      args.push(String(b))
    }
  }
  const field = (kind: string, ...a: (string | number | undefined)[]): void => {
    kinds.push(kind)
    for (const x of a) args.push(x === undefined ? "-1" : String(x))
  }
  for (const f of fields) {
    if (f.isComplex) {
      if (f.isArray) field("M", ref(f.type), f.arrayLength, f.arrayUpperBound)
      else field("m", ref(f.type))
    } else if (isBytes(f)) {
      if (f.arrayLength !== undefined) field("X", f.arrayLength)
      else bound(f.arrayUpperBound, "y", "Y")
    } else if (f.isArray) {
      const isStr = f.type === "string" || f.type === "wstring"
      const elemMax = isStr && f.upperBound !== undefined ? `, ${f.upperBound}` : ""
      field("F", `new __ArrayField(__K.${KIND[f.type]}, ${num(f.arrayLength)}, ${num(f.arrayUpperBound)}${elemMax})`)
      use("ArrayField")
    } else if (f.type === "wstring") {
      field("F", `new __WstringField(${num(f.upperBound)})`)
      use("WstringField")
    }
    else if (f.type === "string") bound(f.upperBound, "s", "S")
    else if (REC_KIND[f.type]) kinds.push(REC_KIND[f.type] as string)
    else throw new DeviceGenError(`unknown primitive type ${f.type} (field ${n}.${f.name})`)
  }
  for (const k of kinds.length ? kinds : [""]) kindsUsed?.add(k)
  const table = fields.map((f, i) => `${kinds[i]}${f.name}`).join(" ")
  return `${maker}<${n}>(${JSON.stringify(table)}${args.length ? `, [${args.join(", ")}]` : ""})`
}

/**
 * Where a request's trailing byte array starts in its CDR (after the 4-byte header and the array's
 * count), when the request is fixed-size scalars followed by one `uint8[]`/`byte[]` sequence;
 * undefined otherwise. The device receives such a request in two buffers and hands the second to
 * the handler as the array, so an upload is never copied (src/rpc/calls.ts).
 */
export function requestTail(m: IdlMessage): number | undefined {
  const fields = m.definition.definitions.filter((f) => !f.isConstant)
  const last = fields[fields.length - 1]
  if (!last || !isBytes(last) || last.arrayLength !== undefined) return undefined
  let pos = 0
  for (const f of fields.slice(0, -1)) {
    const k = !f.isArray && !f.isComplex ? fixedSize(f.type) : undefined
    if (!k) return undefined
    pos = Math.ceil(pos / k) * k + k
  }
  return 4 + Math.ceil(pos / 4) * 4 + 4
}

function emitService(s: IdlService, names: Map<string, string>, claim: (id: string, what: string) => void, ref: CodecRef, lazy: boolean, one: boolean): string[] {
  const n = names.get(s.fullName)
  const req = names.get(s.request.fullName)
  const res = names.get(s.response.fullName)
  if (!n || !req || !res) throw new DeviceGenError(`no name for ${s.fullName}`)
  claim(n, s.fullName)
  const make = one ? serviceExpr(s, ref) : `__multiFrame(${serviceExpr(s, ref)})`
  if (lazy) {
    return [
      `let __s_${n}: ServiceType<${req}, ${res}>`,
      `/** ${s.fullName} (hash ${s.hash.slice(0, 8)}), made on the first call */`,
      `export function ${n}(): ServiceType<${req}, ${res}> {`,
      `    if (!__s_${n}) __s_${n} = ${make}`,
      `    return __s_${n}`,
      `}`,
      "",
    ]
  }
  return [
    `/** ${s.fullName} (hash ${s.hash.slice(0, 8)}) */`,
    `export const ${n}: ServiceType<${req}, ${res}> = ${make}`,
    "",
  ]
}

/**
 * Request and response bounds of a service that a firmware serves without the multi-frame paths
 * (packages/device/src/rpc/multiframe.ts): the request comes whole in its CALL record, by name on a
 * Jacdac packet for any service name up to 236 - 28 - 64 = 144 bytes, and the response goes in one
 * RESULT record (236 - 3 - 13 bytes). Bytes of CDR, the 4-byte header included.
 */
export const ONE_RECORD_REQUEST = 64
export const ONE_RECORD_RESPONSE = 220

/**
 * True when every request and response of `s` fits one record (ONE_RECORD_REQUEST/RESPONSE) and
 * has no byte array (a handler may answer one with a ByteSource, and an upload is received in
 * pieces): its descriptor then does not bring in the multi-frame paths.
 */
export function fitsOneRecord(s: IdlService, msgOf: (fullName: string) => IdlMessage | undefined): boolean {
  return maxCdrBytes(s.request, msgOf) <= ONE_RECORD_REQUEST && maxCdrBytes(s.response, msgOf) <= ONE_RECORD_RESPONSE
}

/**
 * The most bytes `m` takes in CDR (the 4-byte header included), or Infinity when unbounded, too
 * large to matter (over 64 KiB) or holding a byte array or a wstring. Alignment is counted from
 * the end of the header, as CDR does.
 */
export function maxCdrBytes(m: IdlMessage, msgOf: (fullName: string) => IdlMessage | undefined): number {
  const CAP = 65536
  let pos = 0
  const align = (k: number): void => {
    pos = Math.ceil(pos / k) * k
  }
  const walk = (msg: IdlMessage): boolean => {
    const fields = msg.definition.definitions.filter((f) => !f.isConstant)
    // an empty message is one placeholder byte
    if (fields.length === 0) pos += 1
    for (const f of fields) {
      if (isBytes(f) || f.type === "wstring") return false
      const n = f.isArray ? f.arrayLength ?? f.arrayUpperBound : 1
      if (n === undefined) return false
      if (f.isArray && f.arrayLength === undefined) {
        align(4)
        pos += 4
      }
      for (let i = 0; i < n; i++) {
        if (f.isComplex) {
          const inner = msgOf(f.type)
          if (!inner || !walk(inner)) return false
        } else if (f.type === "string") {
          if (f.upperBound === undefined) return false
          align(4)
          pos += 4 + f.upperBound + 1
        } else {
          const k = fixedSize(f.type)
          if (!k) return false
          align(k)
          pos += k
        }
        if (pos > CAP) return false
      }
    }
    return true
  }
  return walk(m) ? 4 + pos : Infinity
}

/** `__service(name, hash32, request codec, response codec[, tail])` for one service. */
function serviceExpr(s: IdlService, ref: CodecRef): string {
  const tail = requestTail(s.request)
  return `__service(${JSON.stringify(s.fullName)}, ${s.hash32 >>> 0}, ${ref(s.request.fullName)}, ${ref(s.response.fullName)}${tail !== undefined ? `, ${tail}` : ""})`
}

/**
 * One action: `function Fibonacci(): ActionType<Fibonacci_Goal, Fibonacci_Result, Fibonacci_Feedback>`,
 * made on the first call by src/lib/actiontype.ts from the three messages' codecs, the UUID and Time
 * codecs and the derived services' hashes. The goal, result and feedback codecs are made here, in
 * the variables their `_codec()` functions fill (`made`): the same objects, without three functions
 * in an image that calls only the action (16 bytes of header each, and the call).
 */
function emitAction(a: IdlAction, names: Map<string, string>, claim: (id: string, what: string) => void, ref: CodecRef, made: Map<string, string>): string[] {
  const n = names.get(a.fullName)
  const [g, r, f] = [a.goal, a.result, a.feedback].map((m) => names.get(m.fullName))
  if (!n || !g || !r || !f) throw new DeviceGenError(`no name for ${a.fullName}`)
  claim(n, a.fullName)
  const t = `ActionType<${g}, ${r}, ${f}>`
  const codec = (m: IdlMessage): string => made.get(m.fullName) ?? ref(m.fullName)
  return [
    `let __a_${n}: ${t}`,
    `/** ${a.fullName} (hash ${a.hash.slice(0, 8)}), made on the first call */`,
    `export function ${n}(): ${t} {`,
    `    if (!__a_${n})`,
    `        __a_${n} = __multiFrame(__action(`,
    `            ${JSON.stringify(a.fullName)},`,
    `            [${a.hash32 >>> 0}, ${a.sendGoal.hash32 >>> 0}, ${a.getResult.hash32 >>> 0}],`,
    `            ${codec(a.goal)},`,
    `            ${codec(a.result)},`,
    `            ${codec(a.feedback)},`,
    `            ${ref(UUID_TYPE)},`,
    `            ${ref(TIME_TYPE)},`,
    `            __rec`,
    `        ))`,
    `    return __a_${n}`,
    `}`,
    "",
  ]
}
