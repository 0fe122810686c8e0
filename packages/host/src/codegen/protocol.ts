// Generates the record protocol's code and doc tables from protocol/protocol.json, the one table of
// record kinds (with each record's fields), call states, status codes, limits, the protocol version
// and the Jacdac carrier (docs/protocol.md). `robot gen` writes the outputs; `robot gen --check`
// reports them stale. Outputs:
// - packages/device/src/gen/wire.ts (device): const enums only, so the firmware pays nothing for what
//   it does not use: kinds, states, statuses, limits, and each record's body offsets (`RecOff`) and
//   least body lengths (`RecMin`).
// - packages/host/src/gen/wire.ts (host): the same constants as values, one type per record kind, and an
//   encoder and a decoder per kind for both directions (the host client uses the host -> device
//   encoders and the device -> host decoders; the in-memory robot and the tests the other two).
// - the record tables of docs/protocol.md and services/rosservices.md, between `<!-- robot gen: … -->`
//   markers (the prose around them stays hand-written).
// Records were written by hand four times before (issue 16): the layouts now live in the table only.
import * as fs from "node:fs"
import * as path from "node:path"

export type IntType = "u8" | "u16" | "u32"
export type TailType = "utf8" | "bytes" | "u32[]"

/** A fixed field: `at` is its offset in the record body (after the 3-byte record header). */
export interface FieldSpec {
  name: string
  type: IntType
  at: number
  doc?: string
}

/**
 * The variable part after the fixed fields, in order. Every item but the last takes its length from
 * a fixed field (`lengthFrom`); the last runs to the end of the record. `u32[]`: repeated u32, at
 * least `min` of them.
 */
export interface TailSpec {
  name: string
  type: TailType
  lengthFrom?: string
  min?: number
  doc?: string
}

export interface KindSpec {
  value: number
  dir: "host" | "device"
  doc: string
  fields: FieldSpec[]
  tail?: TailSpec[]
}

export interface JacdacSpec {
  /** the Jacdac service spec (markdown) the device's service class is built from */
  spec: string
  class: string
  packets: Record<string, { kind: "command" | "report"; code: string; carries?: "host" | "device"; doc: string }>
}

export interface ProtocolTable {
  version: number
  jacdac: JacdacSpec
  kinds: Record<string, KindSpec>
  states: Record<string, number>
  status: Record<string, number>
  internalStatus: string[]
  limits: Record<string, number>
}

export const PROTOCOL_TABLE = "protocol/protocol.json"
export const DEVICE_WIRE = "packages/device/src/gen/wire.ts"
export const HOST_WIRE = "packages/host/src/gen/wire.ts"
export const PROTOCOL_DOC = "docs/protocol.md"
/** A project's copy of the library's Jacdac spec (protocol.json `jacdac.spec`), kept identical by `robot gen`. */
export const PROJECT_SPEC = "services/rosservices.md"

/** An invalid protocol table, or a doc or spec that disagrees with it. */
export class ProtocolTableError extends Error {
  override readonly name = "ProtocolTableError"
}

const SIZE: Record<IntType, number> = { u8: 1, u16: 2, u32: 4 }
const MAX: Record<IntType, string> = { u8: "0xff", u16: "0xffff", u32: "0xffffffff" }
const GET: Record<IntType, (v: string, at: string) => string> = {
  u8: (_v, at) => `b[${at}]!`,
  u16: (v, at) => `${v}.getUint16(${at}, true)`,
  u32: (v, at) => `${v}.getUint32(${at}, true)`,
}

const pascal = (s: string) => s.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase())
const constName = (s: string) => s.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()
/** `CALLX` -> `Callx`, `NOSESSION` -> `Nosession` */
const kindPascal = (k: string) => k[0]! + k.slice(1).toLowerCase()
const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1)
const hex = (n: number) => "0x" + n.toString(16)
const parseCode = (s: string, what: string): number => {
  if (!/^0x[0-9a-f]+$/i.test(s)) throw new ProtocolTableError(`${PROTOCOL_TABLE}: ${what}: "${s}" is not a hex number like "0x80"`)
  return parseInt(s, 16)
}

/** A kind's layout, derived from its table entry. */
export interface Layout {
  name: string
  value: number
  dir: "host" | "device"
  doc: string
  fields: FieldSpec[]
  tail: TailSpec[]
  /** bytes of the fixed fields: where the tail starts */
  fixed: number
  /** the least body length (fixed fields and the least tail) */
  min: number
  /** fields that hold the length of a tail item (not in the record type: derived from the item) */
  lengthFields: Set<string>
}

function layoutOf(name: string, k: KindSpec): Layout {
  const where = `${PROTOCOL_TABLE}: kind ${name}`
  if (!/^[A-Z][A-Z0-9]*$/.test(name)) throw new ProtocolTableError(`${where}: kind names are upper case`)
  if (!Number.isInteger(k.value) || k.value < 0 || k.value > 0xff) throw new ProtocolTableError(`${where}: value ${k.value} is not a byte`)
  if (k.dir !== "host" && k.dir !== "device") throw new ProtocolTableError(`${where}: dir must be "host" or "device"`)
  if (typeof k.doc !== "string") throw new ProtocolTableError(`${where}: no doc`)
  if (!Array.isArray(k.fields)) throw new ProtocolTableError(`${where}: no fields list (an empty record has "fields": [])`)
  const names = new Set<string>()
  const named = (n: string, what: string) => {
    if (!/^[a-z][A-Za-z0-9]*$/.test(n)) throw new ProtocolTableError(`${where}: ${what} "${n}": names are lowerCamelCase`)
    if (n === "kind") throw new ProtocolTableError(`${where}: ${what} "kind": the name is taken by the record type`)
    if (names.has(n)) throw new ProtocolTableError(`${where}: two fields named "${n}"`)
    names.add(n)
  }
  let at = 0
  let prev = "the start of the body"
  for (const f of k.fields) {
    named(f.name, "field")
    if (!(f.type in SIZE)) throw new ProtocolTableError(`${where}: field ${f.name}: type "${f.type}" (fixed fields are u8, u16 or u32)`)
    if (f.at !== at) throw new ProtocolTableError(`${where}: field ${f.name}: at ${f.at}, but it follows ${prev} and starts at ${at}`)
    at += SIZE[f.type]
    prev = `${f.name} ${f.type} at ${f.at}`
  }
  const tail = k.tail ?? []
  const lengthFields = new Set<string>()
  let min = at
  tail.forEach((t, i) => {
    named(t.name, "tail item")
    if (!["utf8", "bytes", "u32[]"].includes(t.type)) throw new ProtocolTableError(`${where}: tail item ${t.name}: type "${t.type}" (utf8, bytes or u32[])`)
    const last = i === tail.length - 1
    if (t.lengthFrom !== undefined) {
      const lf = k.fields.find((f) => f.name === t.lengthFrom)
      if (!lf) throw new ProtocolTableError(`${where}: tail item ${t.name}: lengthFrom "${t.lengthFrom}" is not a fixed field`)
      if (lengthFields.has(lf.name)) throw new ProtocolTableError(`${where}: field ${lf.name} holds the length of two tail items`)
      if (t.type === "u32[]") throw new ProtocolTableError(`${where}: tail item ${t.name}: a u32[] runs to the end of the record`)
      lengthFields.add(lf.name)
    } else if (!last) throw new ProtocolTableError(`${where}: tail item ${t.name}: only the last tail item may run to the end; give it a lengthFrom`)
    if (t.min !== undefined && (t.type !== "u32[]" || !Number.isInteger(t.min) || t.min < 0)) throw new ProtocolTableError(`${where}: tail item ${t.name}: min is a count of u32[] elements`)
    if (t.type === "u32[]") min += 4 * (t.min ?? 0)
  })
  return { name, value: k.value, dir: k.dir, doc: k.doc, fields: k.fields, tail, fixed: at, min, lengthFields }
}

export function loadProtocolTable(base: string): ProtocolTable {
  const file = path.join(base, PROTOCOL_TABLE)
  let t: ProtocolTable
  try {
    t = JSON.parse(fs.readFileSync(file, "utf8")) as ProtocolTable
  } catch (e) {
    throw new ProtocolTableError(`${PROTOCOL_TABLE}: ${(e as Error).message}`)
  }
  const seen = new Map<number, string>()
  for (const [k, v] of Object.entries(t.kinds)) {
    if (seen.has(v.value)) throw new ProtocolTableError(`${PROTOCOL_TABLE}: kinds ${seen.get(v.value)} and ${k} share the value ${v.value}`)
    seen.set(v.value, k)
    if ((v.dir === "host") !== v.value < 0x80) throw new ProtocolTableError(`${PROTOCOL_TABLE}: kind ${k}: host kinds are < 0x80, device kinds >= 0x80`)
    layoutOf(k, v)
  }
  const codes = new Map<number, string>()
  for (const [k, v] of Object.entries(t.status)) {
    if (codes.has(v)) throw new ProtocolTableError(`${PROTOCOL_TABLE}: status ${codes.get(v)} and ${k} share the value ${v}`)
    codes.set(v, k)
  }
  if (!t.jacdac || typeof t.jacdac.spec !== "string") throw new ProtocolTableError(`${PROTOCOL_TABLE}: no "jacdac" section naming the service spec`)
  parseCode(t.jacdac.class, "jacdac.class")
  for (const [n, p] of Object.entries(t.jacdac.packets)) parseCode(p.code, `jacdac.packets.${n}.code`)
  return t
}

export function layouts(t: ProtocolTable): Layout[] {
  return Object.entries(t.kinds).map(([k, v]) => layoutOf(k, v))
}

const header = (lang: string) =>
  `// @generated by \`robot gen\` from ${PROTOCOL_TABLE} (${lang}). Do not edit: change the table and run \`npx robot gen\`.\n`

/** `session u32, seq u32, …, name, data…` */
export function bodyText(l: Layout, offsets = false): string {
  const parts = l.fields.map((f) => `${offsets ? `${f.at}: ` : ""}${f.name} ${f.type}`)
  l.tail.forEach((t, i) => {
    const at = offsets && i === 0 ? `${l.fixed}: ` : ""
    if (t.type === "u32[]") parts.push(`${at}${t.name} u32…${t.min ? ` (at least ${t.min})` : ""}`)
    else if (t.lengthFrom) parts.push(`${at}${t.name}[${t.lengthFrom}]`)
    else parts.push(`${at}${t.name}${t.type === "bytes" ? "…" : ""}`)
  })
  return parts.join(", ")
}

// ---------------------------------------------------------------------------------------- device
/** Device constants: const enums (no runtime cost in DeviceScript). */
export function emitDeviceWire(t: ProtocolTable): string {
  const ls = layouts(t)
  const out: string[] = [header("device")]
  out.push(`/** Version of the record protocol (docs/protocol.md), announced in HELLO and asked for in OPEN. */`)
  out.push(`export const PROTOCOL_VERSION = ${t.version}`, "")
  out.push(`/** Record kinds: host -> device below 0x80, device -> host from 0x80. */`)
  out.push(`export const enum Kind {`)
  for (const l of ls) out.push(`    /** ${bodyText(l) || "(empty)"} */`, `    ${l.name} = ${l.value},`)
  out.push(`}`, "")
  out.push(`/** A call's state as reported in STATUS records. */`)
  out.push(`export const enum CallState {`)
  for (const [k, v] of Object.entries(t.states)) out.push(`    ${pascal(k)} = ${v},`)
  out.push(`}`, "")
  out.push(`/** Status codes on the wire; ${t.internalStatus.join(" and ")} are protocol-internal (the host retries). */`)
  out.push(`export const enum Status {`)
  for (const [k, v] of Object.entries(t.status)) out.push(`    ${pascal(k)} = ${v},`)
  out.push(`}`, "")
  out.push(`/** Limits fixed by the protocol. */`)
  out.push(`export const enum Limit {`)
  for (const [k, v] of Object.entries(t.limits)) out.push(`    ${pascal(k)} = ${v},`)
  out.push(`}`, "")
  out.push(`/**`)
  out.push(` * Where each field starts in its record's body (the body follows the ${t.limits.recordHeader}-byte record header):`)
  out.push(` * \`<Kind><Field>\`. The first variable item of a record (name, data, message, repeated u32) starts`)
  out.push(` * where the fixed fields end; an item after it starts after it (CALL's data at CallName + nameLen).`)
  out.push(` */`)
  out.push(`export const enum RecOff {`)
  for (const l of ls) {
    for (const f of l.fields) out.push(`    ${kindPascal(l.name)}${cap(f.name)} = ${f.at},`)
    if (l.tail.length) out.push(`    ${kindPascal(l.name)}${cap(l.tail[0]!.name)} = ${l.fixed},`)
  }
  out.push(`}`, "")
  out.push(`/**`)
  out.push(` * The least body length of each kind: its fixed fields and the least variable part (a shorter`)
  out.push(` * record is refused). A kind without a variable part is exactly this long (HELLO: ${ls.find((l) => l.name === "HELLO")?.min ?? "-"}).`)
  out.push(` */`)
  out.push(`export const enum RecMin {`)
  for (const l of ls) out.push(`    ${kindPascal(l.name)} = ${l.min},`)
  out.push(`}`, "")
  return out.join("\n")
}

// ---------------------------------------------------------------------------------------- host
const tsType = (t: TailType) => (t === "utf8" ? "string" : t === "bytes" ? "Uint8Array" : "number[]")
const recType = (l: Layout) => `${kindPascal(l.name)}Record`

function emitHostRecord(l: Layout, out: string[], RH: number) {
  const T = recType(l)
  const P = kindPascal(l.name)
  const shown = l.fields.filter((f) => !l.lengthFields.has(f.name))
  out.push(`/** ${l.name} (${hex(l.value)}, ${l.dir === "host" ? "host -> device" : "device -> host"}): ${l.doc}. Body: \`${bodyText(l) || "(empty)"}\`. */`)
  out.push(`export interface ${T} {`)
  out.push(`  kind: "${l.name.toLowerCase()}"`)
  for (const f of shown) {
    if (f.doc) out.push(`  /** ${f.doc} (${f.type}) */`)
    out.push(`  ${f.name}: number`)
  }
  for (const t of l.tail) {
    if (t.doc) out.push(`  /** ${t.doc}${t.type === "bytes" ? " (a view of the decoded frame, not a copy)" : ""} */`)
    out.push(`  ${t.name}: ${tsType(t.type)}`)
  }
  out.push(`}`, "")

  // encoder
  out.push(`/** Encodes a record of kind ${l.name} (header and body). Throws FrameError naming the field that does not fit. */`)
  out.push(`export function encode${P}(${l.fields.length || l.tail.length ? "r" : "_r"}: RecordFields<${T}>${l.fields.length || l.tail.length ? "" : " = {}"}): Uint8Array {`)
  const sizes: string[] = [String(l.fixed)]
  for (const t of l.tail) {
    if (t.type === "utf8") out.push(`  const ${t.name} = utf8Bytes(r.${t.name})`)
    else if (t.type === "bytes") out.push(`  const ${t.name} = r.${t.name}`)
    else {
      out.push(`  const ${t.name} = r.${t.name}`)
      if (t.min) out.push(`  if (${t.name}.length < ${t.min}) throw new FrameError(\`${l.name} ${t.name}: \${${t.name}.length} values (at least ${t.min})\`)`)
    }
    if (t.lengthFrom) {
      const lf = l.fields.find((f) => f.name === t.lengthFrom)!
      out.push(`  if (${t.name}.length > ${MAX[lf.type]}) throw new FrameError(\`${l.name} ${t.name}: \${${t.name}.length} bytes (at most ${parseInt(MAX[lf.type], 16)}: its length is a ${lf.type})\`)`)
    }
    sizes.push(t.type === "u32[]" ? `4 * ${t.name}.length` : `${t.name}.length`)
  }
  out.push(`  const b = start(Kind.${l.name}, "${l.name}", ${sizes.join(" + ")})`)
  if (l.fields.some((f) => f.type !== "u8")) out.push(`  const v = view(b)`)
  for (const f of l.fields) {
    const tailItem = l.tail.find((t) => t.lengthFrom === f.name)
    const val = tailItem ? `${tailItem.name}.length` : `int(r.${f.name}, ${MAX[f.type]}, "${l.name} ${f.name}")`
    const at = RH + f.at
    if (f.type === "u8") out.push(`  b[${at}] = ${val}`)
    else out.push(`  v.setUint${SIZE[f.type] * 8}(${at}, ${val}, true)`)
  }
  let pos = String(RH + l.fixed)
  for (const t of l.tail) {
    if (t.type === "u32[]") out.push(`  for (let i = 0; i < ${t.name}.length; i++) v.setUint32(${pos} + 4 * i, int(${t.name}[i]!, 0xffffffff, "${l.name} ${t.name}"), true)`)
    else out.push(`  b.set(${t.name}, ${pos})`)
    pos = `${pos} + ${t.type === "u32[]" ? "4 * " : ""}${t.name}.length`
  }
  out.push(`  return b`, `}`, "")

  // decoder
  out.push(`/** Decodes the body of a ${l.name} record (the bytes after the record header). Throws FrameError when it is too short or a length overruns it. */`)
  out.push(`export function decode${P}(b: Uint8Array): ${T} {`)
  if (l.min > 0) out.push(`  if (b.length < ${l.min}) throw tooShort("${l.name}", b.length, ${l.min})`)
  if (l.fields.some((f) => f.type !== "u8") || l.tail.some((t) => t.type === "u32[]")) out.push(`  const v = view(b)`)
  let dpos = String(l.fixed)
  const tailExpr: string[] = []
  l.tail.forEach((t, i) => {
    const last = i === l.tail.length - 1
    if (t.lengthFrom) {
      const lf = l.fields.find((f) => f.name === t.lengthFrom)!
      out.push(`  const ${t.lengthFrom} = ${GET[lf.type]("v", String(lf.at))}`)
      const end = last ? `${dpos} + ${t.lengthFrom}` : `${t.name}End`
      if (!last) out.push(`  const ${t.name}End = ${dpos} + ${t.lengthFrom}`)
      out.push(`  if (${end} > b.length) throw new FrameError("${l.name} ${t.name} overruns the record")`)
      tailExpr.push(`    ${t.name}: ${t.type === "utf8" ? `utf8Text(b.subarray(${dpos}, ${end}))` : `b.subarray(${dpos}, ${end})`},`)
      dpos = end
    } else if (t.type === "u32[]") {
      out.push(`  if ((b.length - ${dpos}) % 4) throw new FrameError("${l.name} ${t.name}: a partial u32 at the end")`)
      out.push(`  const ${t.name}: number[] = []`)
      out.push(`  for (let o = ${dpos}; o < b.length; o += 4) ${t.name}.push(v.getUint32(o, true))`)
      tailExpr.push(`    ${t.name},`)
    } else tailExpr.push(`    ${t.name}: ${t.type === "utf8" ? `utf8Text(b.subarray(${dpos}))` : `b.subarray(${dpos})`},`)
  })
  out.push(`  return {`, `    kind: "${l.name.toLowerCase()}",`)
  for (const f of shown) out.push(`    ${f.name}: ${GET[f.type]("v", String(f.at))},`)
  out.push(...tailExpr)
  out.push(`  }`, `}`, "")
}

/** Host constants (plain objects, usable as values and types), record types and codecs. */
export function emitHostWire(t: ProtocolTable): string {
  const ls = layouts(t)
  const RH = t.limits.recordHeader!
  const out: string[] = [header("host")]
  out.push(`/** Version of the record protocol (docs/protocol.md). */`)
  out.push(`export const PROTOCOL_VERSION = ${t.version}`, "")
  out.push(`/** The Jacdac service class that carries the records (${t.jacdac.spec}). */`)
  out.push(`export const ROS_SERVICES_CLASS = ${t.jacdac.class}`)
  for (const [n, p] of Object.entries(t.jacdac.packets)) {
    const what = p.carries ? `${p.carries} -> ${p.carries === "host" ? "device" : "host"} records` : "returned unchanged"
    out.push(`/** ${p.kind} \`${n}\`: ${what} */`)
    out.push(`export const ${p.kind === "command" ? "CMD" : "REPORT"}_${constName(n)} = ${p.code}`)
  }
  out.push("")
  out.push(`/** Record kinds: host -> device below 0x80, device -> host from 0x80. */`)
  out.push(`export const Kind = {`)
  for (const l of ls) out.push(`  /** ${bodyText(l) || "(empty)"} */`, `  ${l.name}: ${l.value},`)
  out.push(`} as const`, "")
  out.push(`/** A call's state as reported in STATUS records. */`)
  out.push(`export const CallState = {`)
  for (const [k, v] of Object.entries(t.states)) out.push(`  ${k}: ${v},`)
  out.push(`} as const`, "")
  out.push(`/** Status codes on the wire, by name. */`)
  out.push(`export const WireStatus = {`)
  for (const [k, v] of Object.entries(t.status)) out.push(`  ${k}: ${v},`)
  out.push(`} as const`, "")
  out.push(`/** Protocol-internal statuses: the host retries instead of failing the call. */`)
  out.push(`export const INTERNAL_STATUS: readonly number[] = [${t.internalStatus.map((s) => t.status[s]).join(", ")}]`, "")
  out.push(`/** Limits fixed by the protocol. */`)
  for (const [k, v] of Object.entries(t.limits)) out.push(`export const ${constName(k)} = ${v}`)
  out.push("")
  out.push(`/** The least body length of each kind (fixed fields and the least variable part). */`)
  out.push(`export const RECORD_MIN = {`)
  for (const l of ls) out.push(`  ${l.name}: ${l.min},`)
  out.push(`} as const`, "")
  out.push(`/** Where each kind's variable part (name, data, message, repeated u32) starts in its body; absent: none. */`)
  out.push(`export const RECORD_TAIL = {`)
  for (const l of ls) if (l.tail.length) out.push(`  ${l.name}: ${l.fixed},`)
  out.push(`} as const`, "")
  out.push(`// ------------------------------------------------------------------ record codecs`)
  out.push(`/** A record that cannot be encoded or decoded: too short, a field out of range, a length that overruns. */`)
  out.push(`export class FrameError extends Error {`, `  override readonly name: string = "FrameError"`, `}`, "")
  out.push(`/** What an encoder takes: the record without its kind; text as a string or its UTF-8 bytes. */`)
  out.push(`export type RecordFields<R> = {`)
  out.push(`  readonly [K in Exclude<keyof R, "kind">]: R[K] extends string ? string | Uint8Array : R[K] extends readonly (infer E)[] ? readonly E[] : R[K]`)
  out.push(`}`, "")
  out.push(`const utf8Decoder = new TextDecoder("utf-8", { fatal: false })`)
  out.push(`const utf8Encoder = new TextEncoder()`)
  out.push(`const utf8Text = (b: Uint8Array) => utf8Decoder.decode(b)`)
  out.push(`const utf8Bytes = (s: string | Uint8Array) => (typeof s === "string" ? utf8Encoder.encode(s) : s)`)
  out.push(`const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength)`)
  out.push(`const tooShort = (kind: string, len: number, min: number) => new FrameError(\`record \${kind} too short (\${len} < \${min} bytes)\`)`, "")
  out.push(`function int(v: number, max: number, what: string): number {`)
  out.push(`  if (Number.isInteger(v) && v >= 0 && v <= max) return v`)
  out.push(`  throw new FrameError(\`\${what}: \${v} is not a \${max === 0xff ? "u8" : max === 0xffff ? "u16" : "u32"}\`)`)
  out.push(`}`, "")
  out.push(`/** A record of \`len\` body bytes with its header written. */`)
  out.push(`function start(kind: number, name: string, len: number): Uint8Array {`)
  out.push(`  if (len > 0xffff) throw new FrameError(\`\${name} record body of \${len} bytes (at most 65535)\`)`)
  out.push(`  const b = new Uint8Array(${RH} + len)`)
  out.push(`  b[0] = kind`)
  out.push(`  b[1] = len & 0xff`)
  out.push(`  b[2] = len >> 8`)
  out.push(`  return b`)
  out.push(`}`, "")
  for (const l of ls) emitHostRecord(l, out, RH)
  for (const dir of ["host", "device"] as const) {
    const mine = ls.filter((l) => l.dir === dir)
    const Dir = cap(dir)
    out.push(`/** A record from the ${dir} (${dir === "host" ? "host -> device" : "device -> host"}). */`)
    out.push(`export type ${Dir}Record = ${mine.map(recType).join(" | ")}`, "")
    out.push(`/** Decodes the body of a ${dir} record of \`kind\`. Throws FrameError (an unknown kind, a bad body). */`)
    out.push(`export function decode${Dir}Record(kind: number, body: Uint8Array): ${Dir}Record {`)
    out.push(`  switch (kind) {`)
    for (const l of mine) out.push(`    case Kind.${l.name}:`, `      return decode${kindPascal(l.name)}(body)`)
    out.push(`    default:`, `      throw new FrameError(\`unknown record kind 0x\${kind.toString(16)}\`)`, `  }`, `}`, "")
  }
  out.push(`/** Encodes a record of either direction (header and body). */`)
  out.push(`export function encodeRecord(r: HostRecord | DeviceRecord): Uint8Array {`)
  out.push(`  switch (r.kind) {`)
  for (const l of ls) out.push(`    case "${l.name.toLowerCase()}":`, `      return encode${kindPascal(l.name)}(r)`)
  out.push(`  }`, `}`, "")
  return out.join("\n")
}

// ---------------------------------------------------------------------------------------- docs
/** Marker pairs in a doc: `<!-- robot gen: NAME -->` … `<!-- robot gen: end -->`. */
const BEGIN = (name: string) => `<!-- robot gen: ${name} (from ${PROTOCOL_TABLE}; edit the table, not this) -->`
const END = `<!-- robot gen: end -->`

/** `text` with the content between NAME's markers replaced; throws when the markers are missing. */
export function replaceRegion(text: string, file: string, name: string, content: string, inline = false): string {
  const begin = BEGIN(name)
  const i = text.indexOf(begin)
  const j = i < 0 ? -1 : text.indexOf(END, i + begin.length)
  if (i < 0 || j < 0) throw new ProtocolTableError(`${file}: no generated region "${name}": put the lines\n${begin}\n${END}\nwhere the generated text goes`)
  const body = inline ? content : `\n${content}\n`
  return text.slice(0, i + begin.length) + body + text.slice(j)
}

function recordTable(ls: Layout[]): string {
  const rows = ["| kind | name | body (byte offsets) | least length | meaning |", "|---|---|---|---|---|"]
  for (const l of ls) rows.push(`| \`${hex(l.value)}\` | ${l.name} | ${l.fields.length || l.tail.length ? `\`${bodyText(l, true)}\`` : "(empty)"} | ${l.min} | ${l.doc} |`)
  return rows.join("\n")
}

function docOutputs(base: string, t: ProtocolTable): { file: string; content: string }[] {
  const ls = layouts(t)
  const read = (f: string) => {
    const p = path.join(base, f)
    if (!fs.existsSync(p)) throw new ProtocolTableError(`${f}: missing (robot gen writes the record tables into it)`)
    return fs.readFileSync(p, "utf8")
  }
  const hostKinds = ls.filter((l) => l.dir === "host")
  const devKinds = ls.filter((l) => l.dir === "device")
  let doc = read(PROTOCOL_DOC)
  const packets = ["| packet | code | direction | payload |", "|---|---|---|---|"]
  for (const [n, p] of Object.entries(t.jacdac.packets)) {
    const dir = p.carries === "host" ? "host → device" : p.carries === "device" ? "device → host" : "both"
    packets.push(`| ${p.carries ? p.kind : "command/report"} \`${n}\` | \`${p.code}\` | ${dir} | ${p.doc} |`)
  }
  doc = replaceRegion(doc, PROTOCOL_DOC, "jacdac packets", `Service class \`${t.jacdac.class}\`.\n\n${packets.join("\n")}`)
  doc = replaceRegion(doc, PROTOCOL_DOC, "host records", recordTable(hostKinds))
  doc = replaceRegion(doc, PROTOCOL_DOC, "device records", recordTable(devKinds))
  const specFile = t.jacdac.spec
  let spec = read(specFile)
  checkJacdacSpec(spec, t)
  const framing = `Every \`frame\`/\`frame_out\` payload is a sequence of records \`kind u8, len u16, body[len]\` (integers little-endian; a ${t.limits.recordHeader}-byte header), record protocol version ${t.version}, defined in \`docs/protocol.md\`:`
  spec = replaceRegion(spec, specFile, "records", `${framing}\n\n${recordTable(ls)}`)
  const list = (k: Layout[]) => k.map((l) => l.name).join(", ")
  spec = replaceRegion(spec, specFile, "host kinds", list(hostKinds), true)
  spec = replaceRegion(spec, specFile, "device kinds", list(devKinds), true)
  const out = [
    { file: PROTOCOL_DOC, content: doc },
    { file: specFile, content: spec },
  ]
  // this robot's own copy (DeviceScript compiles only the project's services/*.md; `robot init` copies it)
  if (specFile !== PROJECT_SPEC && fs.existsSync(path.join(base, PROJECT_SPEC))) out.push({ file: PROJECT_SPEC, content: spec })
  return out
}

interface ParsedSpec {
  classIdentifier: number
  packets: { kind: string; name: string; identifier: number; derived?: string }[]
  errors?: { message: string; line: number }[]
}

/** Parses a Jacdac service spec with jacdac-ts's own parser (the one DeviceScript's build uses). */
export function parseJacdacSpec(markdown: string, file: string): ParsedSpec {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const jd = require("jacdac-ts") as { parseServiceSpecificationMarkdownToJSON(md: string, inc: object, file: string): ParsedSpec }
  return jd.parseServiceSpecificationMarkdownToJSON(markdown, {}, file)
}

/**
 * Checks that the Jacdac spec (the device's service class is built from it by `devicescript build`)
 * has the class and packet codes of protocol.json (the host's constants are generated from those).
 * Throws ProtocolTableError naming every difference.
 */
export function checkJacdacSpec(markdown: string, t: ProtocolTable): void {
  const file = t.jacdac.spec
  const s = parseJacdacSpec(markdown, file)
  const bad: string[] = []
  for (const e of s.errors ?? []) bad.push(`line ${e.line}: ${e.message}`)
  const cls = parseCode(t.jacdac.class, "jacdac.class")
  if (s.classIdentifier !== cls) bad.push(`identifier ${hex(s.classIdentifier)}, ${PROTOCOL_TABLE} says ${hex(cls)}`)
  const own = s.packets.filter((p) => !p.derived)
  for (const [n, p] of Object.entries(t.jacdac.packets)) {
    const code = parseCode(p.code, `jacdac.packets.${n}.code`)
    const got = own.find((x) => x.name === n && x.kind === p.kind)
    if (!got) bad.push(`no ${p.kind} ${n} (${PROTOCOL_TABLE} has ${p.kind} ${n} @ ${hex(code)})`)
    else if (got.identifier !== code) bad.push(`${p.kind} ${n} @ ${hex(got.identifier)}, ${PROTOCOL_TABLE} says @ ${hex(code)}`)
  }
  for (const p of own) if (!t.jacdac.packets[p.name] && p.kind !== "report") bad.push(`${p.kind} ${p.name} @ ${hex(p.identifier)} is not in ${PROTOCOL_TABLE}`)
  if (bad.length) throw new ProtocolTableError(`${file} disagrees with ${PROTOCOL_TABLE}:\n${bad.map((b) => `  ${b}`).join("\n")}`)
}

/** The generated files, by path relative to `base`: both wire.ts and the docs with their tables. */
export function protocolOutputs(base: string): { file: string; content: string }[] {
  const t = loadProtocolTable(base)
  return [{ file: DEVICE_WIRE, content: emitDeviceWire(t) }, { file: HOST_WIRE, content: emitHostWire(t) }, ...docOutputs(base, t)]
}
