// Values between JSON (rosbridge / HTTP) and the host codecs' values (packages/host/src/runtime/types.ts).
// - int64/uint64 are `bigint` on the host; in JSON they are plain numbers written with every digit
//   (2^63-1 stays 9223372036854775807), and request numbers too large for a double are parsed exactly.
// - uint8[]/byte[] are Uint8Array on the host; in JSON they are base64 strings (as rosbridge sends
//   them); a request may also give them as an array of numbers. In CBOR they are byte strings.
// - Missing request fields take their default value (as rosbridge does); unknown fields are refused.
// - float NaN/Infinity have no JSON spelling: they are written as null.
import type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
import { parse as losslessParse } from "lossless-json"
import { fieldTypeText, isByteArrayField } from "../runtime/codec"
import type { MessageDescriptor } from "../runtime/types"
import { shortTypeName } from "./rosapi"

/** A request value that cannot be turned into its message type. */
export class ValueError extends Error {
  override readonly name = "ValueError"
}

// ---- JSON text

// A run of 16 or more digits is the only way to write an integer beyond 2^53 (9007199254740992 has
// 16 digits); text without one is read by JSON.parse, which is fastest and has no nesting limit.
const LONG_DIGITS = /\d{16,}/

/** lossless-json number parser: integers outside +-(2^53-1) become bigint, everything else a number. */
function parseNumber(text: string): number | bigint {
  const n = Number(text)
  if (Number.isSafeInteger(n) || !/^-?\d+$/.test(text)) return n
  return BigInt(text)
}

/**
 * JSON.parse that keeps integers exact: an integer literal outside +-(2^53-1) becomes a bigint
 * (read by `lossless-json` with a number parser that converts only those). Throws SyntaxError on
 * malformed text, naming what was expected and the position.
 */
export function parseJson(text: string): unknown {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text)
  try {
    return losslessParse(text, null, parseNumber)
  } catch (e) {
    if (e instanceof RangeError) {
      // lossless-json descends recursively; JSON.parse (used above for text without long integers) does not
      throw new SyntaxError(`JSON nested too deeply to read its integers beyond 2^53 exactly (${(e as Error).message})`)
    }
    if (e instanceof SyntaxError) throw e
    throw new SyntaxError((e as Error)?.message ?? String(e))
  }
}

/** JSON.stringify that writes bigints as exact integer literals and non-finite numbers as null. */
export function stringifyJson(value: unknown): string {
  const out: string[] = []
  write(value, out)
  return out.join("")
}

function write(v: unknown, out: string[]): void {
  switch (typeof v) {
    case "bigint":
      out.push(v.toString())
      return
    case "number":
      out.push(Number.isFinite(v) ? String(v) : "null")
      return
    case "string":
      out.push(JSON.stringify(v))
      return
    case "boolean":
      out.push(v ? "true" : "false")
      return
    case "undefined":
    case "function":
    case "symbol":
      out.push("null")
      return
  }
  if (v === null) {
    out.push("null")
    return
  }
  if (v instanceof Uint8Array) {
    out.push('"', Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64"), '"')
    return
  }
  if (Array.isArray(v)) {
    out.push("[")
    v.forEach((x, i) => {
      if (i) out.push(",")
      write(x, out)
    })
    out.push("]")
    return
  }
  out.push("{")
  let first = true
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined) continue
    if (!first) out.push(",")
    first = false
    out.push(JSON.stringify(k), ":")
    write(x, out)
  }
  out.push("}")
}

// ---- message values

type Defs = readonly MessageDefinition[]

function fieldsOf(defs: Defs, name: string): MessageDefinitionField[] {
  const d = defs.find((x) => x.name === name)
  if (!d) throw new ValueError(`no definition for ${name}`)
  return d.definitions.filter((f) => !f.isConstant)
}

const INT_TYPES = new Set(["int8", "uint8", "byte", "char", "int16", "uint16", "int32", "uint32"])

/**
 * How strict a request is read. The defaults are rosbridge's rules (the bridge's front ends); the
 * CLI reads YAML, which keeps integers exact, so it refuses integers given as strings and names
 * types as rosapi does (`example_interfaces/AddTwoInts_Request`).
 */
export interface JsonRules {
  /** An integer field may be given as a string of digits (rosbridge's int64 rule). Default true. */
  intStrings?: boolean
  /** How a message type is named in errors. Default: its full name. */
  typeName?: (fullName: string) => string
}

/**
 * The rules of a request read from YAML (the CLI's `robot service call` and `robot action
 * send_goal`): YAML keeps integers exact, so an integer given as a string (`{a: '2'}`) is a
 * mistake; types are named as rosapi names them (`example_interfaces/AddTwoInts_Request`).
 */
export const YAML_RULES: JsonRules = { intStrings: false, typeName: shortTypeName }

/**
 * The rules a client names (call_service's `args_rules`, the group call's `?args_rules=`): `yaml`
 * is YAML_RULES; undefined for any other name. Without a name a request is read by rosbridge's.
 */
export function namedRules(name: unknown): JsonRules | undefined {
  return name === "yaml" ? YAML_RULES : undefined
}

/**
 * Turns a JSON request (`args` of call_service, or an HTTP body) into a value the descriptor's
 * codec accepts. Missing fields get their defaults; unknown fields throw ValueError. The codec
 * itself checks ranges and bounds when it encodes.
 */
export function fromJson<T>(desc: Pick<MessageDescriptor<T>, "definitions" | "defaults" | "fullName">, json: unknown, rules: JsonRules = {}): T {
  const defaults = desc.defaults() as unknown
  const root = desc.definitions[0]?.name ?? desc.fullName
  return convertIn({ defs: desc.definitions, intStrings: rules.intStrings ?? true, typeName: rules.typeName ?? ((t) => t), hollow: new Map(), empty: new Map() }, root, json ?? {}, defaults as Record<string, unknown>, "") as T
}

interface Ctx {
  defs: Defs
  intStrings: boolean
  typeName: (fullName: string) => string
  /** holdsNothing's answers, and emptyOf's values, by type */
  hollow: Map<string, boolean>
  empty: Map<string, Record<string, unknown>>
}

/**
 * A JSON object as a value of `typeName`: the fields given, over `dflt`. Without `dflt` (an element
 * of a sequence, and the messages inside one) every field must be given, and one that is missing is
 * refused at once: such an element used to be filled with the type's empty value first, which a
 * 1 MiB request of `{}` elements turned into gigabytes before the codec refused the first.
 */
function convertIn(c: Ctx, typeName: string, json: unknown, dflt: Record<string, unknown> | undefined, path: string): unknown {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ValueError(`${path || c.typeName(typeName)}: expected an object (${c.typeName(typeName)}), got ${show(json)}`)
  }
  const fields = fieldsOf(c.defs, typeName)
  const out: Record<string, unknown> = { ...dflt }
  const known = new Set(fields.map((f) => f.name))
  for (const k of Object.keys(json)) {
    if (!known.has(k)) {
      throw new ValueError(`${join(path, k)}: ${c.typeName(typeName)} has no field '${k}' (fields: ${[...known].join(", ") || "none"})`)
    }
  }
  for (const f of fields) {
    const v = (json as Record<string, unknown>)[f.name]
    if (v === undefined) {
      if (dflt !== undefined) continue
      // a message that holds nothing (std_msgs/Empty, or only such messages) needs nothing given
      if (f.isComplex && !f.isArray && holdsNothing(c, f.type)) out[f.name] = emptyOf(c, f.type)
      else throw new ValueError(`${join(path, f.name)}: missing field (${fieldTypeText(f)}): an element of a sequence has no defaults, every field is given`)
      continue
    }
    out[f.name] = fieldIn(c, f, v, dflt?.[f.name], join(path, f.name))
  }
  return out
}

function fieldIn(c: Ctx, f: MessageDefinitionField, v: unknown, dflt: unknown, path: string): unknown {
  if (f.isArray) {
    if (isByteArrayField(f)) {
      if (typeof v === "string") {
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1) throw new ValueError(`${path}: not a base64 string`)
        return new Uint8Array(Buffer.from(v, "base64"))
      }
      if (v instanceof Uint8Array) return v
      if (Array.isArray(v)) {
        for (const x of v) if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 255) throw new ValueError(`${path}: byte values must be integers 0..255, got ${show(x)}`)
        return Uint8Array.from(v as number[])
      }
      throw new ValueError(`${path}: expected a base64 string or an array of bytes, got ${show(v)}`)
    }
    if (!Array.isArray(v)) throw new ValueError(`${path}: expected an array, got ${show(v)}`)
    return v.map((x, i) => scalarIn(c, f, x, undefined, `${path}[${i}]`))
  }
  return scalarIn(c, f, v, dflt, path)
}

function scalarIn(c: Ctx, f: MessageDefinitionField, v: unknown, dflt: unknown, path: string): unknown {
  if (f.isComplex) return convertIn(c, f.type, v, dflt as Record<string, unknown> | undefined, path)
  if (!c.intStrings && typeof v === "string" && (INT_TYPES.has(f.type) || f.type === "int64" || f.type === "uint64")) {
    throw new ValueError(`${path}: expected an integer (${f.type}), got the string '${v}'; write it without quotes`)
  }
  if (f.type === "int64" || f.type === "uint64") {
    if (typeof v === "bigint") return v
    if (typeof v === "number") {
      if (!Number.isInteger(v)) throw new ValueError(`${path}: expected an integer (${f.type}), got ${v}`)
      if (!Number.isSafeInteger(v)) throw new ValueError(`${path}: ${BigInt(v)} came as a JS number beyond 2^53 and may have lost digits; pass a bigint or a string of digits`)
      return BigInt(v)
    }
    if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v)
    throw new ValueError(`${path}: expected an integer (${f.type}), got ${show(v)}`)
  }
  if (INT_TYPES.has(f.type) || f.type === "float32" || f.type === "float64") {
    if (typeof v === "bigint") {
      if (INT_TYPES.has(f.type) && (v > 2n ** 32n || v < -(2n ** 32n))) throw new ValueError(`${path}: ${v} is out of range for ${f.type}`)
      return Number(v) // the codec checks the exact range
    }
    if (v === null && (f.type === "float32" || f.type === "float64")) return NaN
  }
  return v // the codec checks the type and range with a message naming the field
}

/** True when `typeName` has no field but messages that hold nothing themselves (known once per type and call). */
function holdsNothing(c: Ctx, typeName: string): boolean {
  let known = c.hollow.get(typeName)
  if (known === undefined) {
    known = fieldsOf(c.defs, typeName).every((f) => f.isComplex && !f.isArray && holdsNothing(c, f.type))
    c.hollow.set(typeName, known)
  }
  return known
}

/** The value of a type that holds nothing: made once per call and shared (the codec only reads it). */
function emptyOf(c: Ctx, typeName: string): Record<string, unknown> {
  let v = c.empty.get(typeName)
  if (v === undefined) {
    v = {}
    for (const f of fieldsOf(c.defs, typeName)) v[f.name] = emptyOf(c, f.type)
    c.empty.set(typeName, v)
  }
  return v
}

export type Binary = "base64" | "bytes"

/**
 * Turns a decoded value into what goes into JSON or CBOR: uint8[] fields as base64 strings
 * (`base64`, JSON) or Uint8Array (`bytes`, CBOR); bigints stay bigints (see stringifyJson).
 */
export function toJson(desc: MessageDescriptor<unknown>, value: unknown, binary: Binary = "base64"): unknown {
  const root = desc.definitions[0]?.name ?? desc.fullName
  return convertOut(desc.definitions, root, value, binary)
}

function convertOut(defs: Defs, typeName: string, value: unknown, binary: Binary): unknown {
  const out: Record<string, unknown> = {}
  const v = value as Record<string, unknown>
  for (const f of fieldsOf(defs, typeName)) {
    const x = v[f.name]
    if (f.isArray) {
      if (isByteArrayField(f)) {
        const b = x as Uint8Array
        out[f.name] = binary === "bytes" ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64")
      } else out[f.name] = f.isComplex ? (x as unknown[]).map((e) => convertOut(defs, f.type, e, binary)) : x
    } else out[f.name] = f.isComplex ? convertOut(defs, f.type, x, binary) : x
  }
  return out
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 30 ? v.slice(0, 30) + "…" : v)
  if (typeof v === "bigint") return v.toString()
  if (Array.isArray(v)) return "an array"
  if (v === null) return "null"
  if (typeof v === "object") return "an object"
  return String(v)
}

const join = (path: string, name: string): string => (path === "" ? name : `${path}.${name}`)
