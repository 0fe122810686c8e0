// Host CDR codec: encode/decode/defaults for any message given its MessageDefinitions
// (host/idl IR shape: byte/char kept, nested types by full name).
//
// Wire format: ROS 2 CDR (XCDR1, little-endian) with the 4-byte header 00 01 00 00; alignment is
// counted from the byte after the header. Primitives are written and read with @foxglove/cdr's
// CdrWriter/CdrReader. @foxglove/rosmsg2-serialization's MessageWriter/MessageReader are not used
// for the walk over the fields, because (3.1.0): wstring throws; strings are sized by UTF-16 length,
// so non-ASCII text is written wrongly; a missing or mistyped value is silently replaced by a
// default; a number for an int64 is converted without a range check; nothing checks bounds; decoded
// arrays may alias the input buffer; `byte`/`char` and `builtin_interfaces/Time` must be
// pre-normalised. Tests compare our bytes with MessageWriter's for the types it does handle.
import { CdrReader, CdrWriter } from "@foxglove/cdr"
import type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
import type { MessageDescriptor, ServiceDescriptor } from "./types"

/** A value that does not fit its type, or bytes that do not decode. `path` names the field. */
export class CodecError extends Error {
  override readonly name = "CodecError"
  constructor(
    /** full name of the message being encoded/decoded */
    readonly typeName: string,
    /** field path, e.g. `header.stamp.sec` or `points[2].x`; "" for the message itself */
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${typeName}${path === "" ? "" : `.${path}`}: ${detail}`)
  }
}

type Field = MessageDefinitionField

/** Range of each integer type up to 32 bits (also the JSON Schemas the Foxglove front end advertises). */
export const INT_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  byte: [0, 255],
  char: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
}
const BIG_RANGES: Record<string, [bigint, bigint]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
}
const SIZES: Record<string, number> = {
  bool: 1, byte: 1, char: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4,
  int64: 8, uint64: 8, float32: 4, float64: 8, string: 4, wstring: 4,
}
const FLOAT32_MAX = 3.4028234663852886e38

/** Bytes of a fixed-size ROS primitive on the wire (CDR aligns it to that size); undefined for strings. */
export function fixedSize(type: string): number | undefined {
  return type === "string" || type === "wstring" ? undefined : SIZES[type]
}

/** `uint8[]`/`byte[]` fields are Uint8Array on the host; every other array is a plain array. */
export function isByteArrayField(f: Field): boolean {
  return f.isArray === true && !f.isComplex && (f.type === "uint8" || f.type === "byte")
}

/** The type of a field as written in ROS 2 (`string<=5[<=3]`), for messages. */
export function fieldTypeText(f: Field): string {
  let t = f.type
  if (f.upperBound !== undefined) t += `<=${f.upperBound}`
  if (f.isArray) t += f.arrayLength !== undefined ? `[${f.arrayLength}]` : f.arrayUpperBound !== undefined ? `[<=${f.arrayUpperBound}]` : "[]"
  return t
}

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder("utf-8", { fatal: true })
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function describe(v: unknown): string {
  if (typeof v === "bigint") return `the integer ${v}`
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)
  if (v === null) return "null"
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (v instanceof Uint8Array) return `a Uint8Array of ${v.length}`
  if (typeof v === "object") return "an object"
  return String(v)
}

const join = (path: string, name: string): string => (path === "" ? name : `${path}.${name}`)

/** Encoder/decoder for one root type and the nested types it uses. */
export class MessageCodec<T> {
  private readonly types = new Map<string, Field[]>()
  private readonly root: Field[]

  constructor(readonly fullName: string, definitions: readonly MessageDefinition[]) {
    for (const d of definitions) this.types.set(d.name ?? "", d.definitions.filter((f) => !f.isConstant))
    const root = this.types.get(fullName) ?? (definitions[0] ? definitions[0].definitions.filter((f) => !f.isConstant) : undefined)
    if (!root) throw new Error(`no definition for ${fullName}`)
    this.root = root
    // fail early on a reference that cannot be resolved
    for (const [name, fields] of this.types) {
      for (const f of fields) {
        if (f.isComplex) {
          if (!this.types.has(f.type)) throw new Error(`${name}: field '${f.name}' uses ${f.type}, which is not among the definitions`)
        } else if (SIZES[f.type] === undefined) {
          throw new Error(`${name}: field '${f.name}' has unknown primitive type '${f.type}'`)
        }
      }
    }
  }

  private err(path: string, detail: string): CodecError {
    return new CodecError(this.fullName, path, detail)
  }

  private fieldsOf(type: string): Field[] {
    const f = this.types.get(type)
    if (!f) throw this.err("", `no definition for nested type ${type}`)
    return f
  }

  // ---------------------------------------------------------------- encode

  encode(value: T): Uint8Array {
    // (the writer starts at the size of the largest message this codec wrote, up to 4 KiB, so a
    // small message is written without the writer growing its buffer on the way)
    const w = new CdrWriter({ size: this.sizeHint })
    this.writeStruct(w, this.root, value, "")
    if (w.size > this.sizeHint) this.sizeHint = Math.min(w.size, 4096)
    return w.data.slice()
  }

  private sizeHint = 16

  private writeStruct(w: CdrWriter, fields: Field[], v: unknown, path: string): void {
    if (typeof v !== "object" || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
      throw this.err(path, `expected an object, got ${describe(v)}`)
    }
    const obj = v as Record<string, unknown>
    const known = new Set(fields.map((f) => f.name))
    for (const k of Object.keys(obj)) {
      if (!known.has(k) && obj[k] !== undefined) throw this.err(join(path, k), `unknown field (the type has ${fields.length === 0 ? "no fields" : fields.map((f) => f.name).join(", ")})`)
    }
    if (fields.length === 0) {
      w.uint8(0) // ROS 2 gives an empty structure one placeholder byte
      return
    }
    for (const f of fields) {
      const p = join(path, f.name)
      const fv = obj[f.name]
      if (fv === undefined) throw this.err(p, `missing field (${fieldTypeText(f)})`)
      if (f.isArray) this.writeArray(w, f, fv, p)
      else if (f.isComplex) this.writeStruct(w, this.fieldsOf(f.type), fv, p)
      else this.writePrimitive(w, f, fv, p)
    }
  }

  private writeArray(w: CdrWriter, f: Field, v: unknown, path: string): void {
    let items: ArrayLike<unknown>
    if (Array.isArray(v)) items = v
    else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) items = v as unknown as ArrayLike<unknown>
    else throw this.err(path, `expected an array (${fieldTypeText(f)}), got ${describe(v)}`)
    const n = items.length
    if (f.arrayLength !== undefined) {
      if (n !== f.arrayLength) throw this.err(path, `${fieldTypeText(f)} needs exactly ${f.arrayLength} elements, got ${n}`)
    } else {
      if (f.arrayUpperBound !== undefined && n > f.arrayUpperBound) {
        throw this.err(path, `${n} elements exceed the bound of ${fieldTypeText(f)} (at most ${f.arrayUpperBound})`)
      }
      w.sequenceLength(n)
    }
    if (isByteArrayField(f) && v instanceof Uint8Array) {
      w.uint8Array(v, false)
      return
    }
    for (let i = 0; i < n; i++) {
      const p = `${path}[${i}]`
      if (f.isComplex) this.writeStruct(w, this.fieldsOf(f.type), items[i], p)
      else this.writePrimitive(w, f, items[i], p)
    }
  }

  private writePrimitive(w: CdrWriter, f: Field, v: unknown, path: string): void {
    const t = f.type
    switch (t) {
      case "bool":
        if (typeof v !== "boolean") throw this.err(path, `expected a boolean, got ${describe(v)}`)
        w.uint8(v ? 1 : 0)
        return
      case "float32":
      case "float64":
        if (typeof v !== "number") throw this.err(path, `expected a number (${t}), got ${describe(v)}`)
        if (t === "float32") {
          if (Number.isFinite(v) && Math.abs(v) > FLOAT32_MAX) throw this.err(path, `${v} is outside the float32 range`)
          w.float32(v)
        } else w.float64(v)
        return
      case "int64":
      case "uint64": {
        const [lo, hi] = BIG_RANGES[t] as [bigint, bigint]
        let b: bigint
        if (typeof v === "bigint") b = v
        else if (typeof v === "number") {
          if (!Number.isSafeInteger(v)) {
            throw this.err(path, `${t} given the number ${v}, which is not a safe integer; pass a bigint (numbers are only accepted up to ±(2^53-1) so that nothing is rounded)`)
          }
          b = BigInt(v)
        } else throw this.err(path, `expected a bigint (${t}), got ${describe(v)}`)
        if (b < lo || b > hi) throw this.err(path, `${b} is outside the ${t} range [${lo}, ${hi}]`)
        if (t === "int64") w.int64(b)
        else w.uint64(b)
        return
      }
      case "string":
      case "wstring": {
        if (typeof v !== "string") throw this.err(path, `expected a string, got ${describe(v)}`)
        if (LONE_SURROGATE.test(v)) throw this.err(path, `string contains a lone UTF-16 surrogate, which cannot be encoded`)
        if (t === "string") {
          const bytes = utf8.encode(v)
          if (f.upperBound !== undefined && bytes.length > f.upperBound) {
            throw this.err(path, `string of ${bytes.length} UTF-8 bytes exceeds the bound string<=${f.upperBound}`)
          }
          w.uint32(bytes.length + 1)
          w.uint8Array(bytes, false)
          w.uint8(0)
        } else {
          if (f.upperBound !== undefined && v.length > f.upperBound) {
            throw this.err(path, `wstring of ${v.length} UTF-16 code units exceeds the bound wstring<=${f.upperBound}`)
          }
          w.uint32(v.length)
          for (let i = 0; i < v.length; i++) w.uint32(v.charCodeAt(i))
        }
        return
      }
      default: {
        const range = INT_RANGES[t]
        if (!range) throw this.err(path, `unknown primitive type ${t}`)
        if (typeof v !== "number") throw this.err(path, `expected a number (${t}), got ${describe(v)}`)
        if (!Number.isInteger(v)) throw this.err(path, `${t} value ${v} is not an integer`)
        if (v < range[0] || v > range[1]) throw this.err(path, `${v} is outside the ${t} range [${range[0]}, ${range[1]}]`)
        switch (t) {
          case "int8": w.int8(v); break
          case "int16": w.int16(v); break
          case "uint16": w.uint16(v); break
          case "int32": w.int32(v); break
          case "uint32": w.uint32(v); break
          default: w.uint8(v)
        }
      }
    }
  }

  // ---------------------------------------------------------------- decode

  decode(bytes: Uint8Array): T {
    if (!(bytes instanceof Uint8Array)) throw this.err("", `expected a Uint8Array to decode`)
    if (bytes.length < 4) throw this.err("", `truncated: ${bytes.length} bytes, less than the 4-byte CDR header`)
    if (bytes[0] !== 0 || bytes[1] !== 1) {
      throw this.err("", `unsupported encapsulation ${hex(bytes[0])} ${hex(bytes[1])}: only CDR little-endian (00 01) is supported`)
    }
    const r = new CdrReader(bytes)
    const value = this.readStruct(r, this.root, "")
    const extra = bytes.length - r.offset
    // RTPS may pad a payload to a multiple of 4; anything longer is not this type.
    if (extra > 3) throw this.err("", `${extra} bytes left over after the message: the data is not a ${this.fullName}`)
    return value as T
  }

  private need(r: CdrReader, align: number, n: number, path: string): void {
    const mis = (r.offset - 4) % align
    const at = r.offset + (mis > 0 ? align - mis : 0)
    if (at + n > r.byteLength) throw this.err(path, `truncated: needs ${n} byte${n === 1 ? "" : "s"} at offset ${at}, the data has ${r.byteLength}`)
  }

  private readStruct(r: CdrReader, fields: Field[], path: string): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    if (fields.length === 0) {
      this.need(r, 1, 1, path)
      r.uint8()
      return out
    }
    for (const f of fields) {
      const p = join(path, f.name)
      if (f.isArray) out[f.name] = this.readArray(r, f, p)
      else if (f.isComplex) out[f.name] = this.readStruct(r, this.fieldsOf(f.type), p)
      else out[f.name] = this.readPrimitive(r, f, p)
    }
    return out
  }

  private readArray(r: CdrReader, f: Field, path: string): unknown {
    let n: number
    if (f.arrayLength !== undefined) n = f.arrayLength
    else {
      this.need(r, 4, 4, path)
      n = r.sequenceLength()
      if (f.arrayUpperBound !== undefined && n > f.arrayUpperBound) {
        throw this.err(path, `sequence of ${n} elements exceeds the bound of ${fieldTypeText(f)} (at most ${f.arrayUpperBound})`)
      }
      // every element takes at least one byte: a count larger than what is left is corrupt
      if (n > r.byteLength - r.offset) throw this.err(path, `truncated: sequence claims ${n} elements, only ${r.byteLength - r.offset} bytes left`)
    }
    if (isByteArrayField(f)) {
      this.need(r, 1, n, path)
      return r.uint8Array(n).slice()
    }
    const arr: unknown[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const p = `${path}[${i}]`
      arr[i] = f.isComplex ? this.readStruct(r, this.fieldsOf(f.type), p) : this.readPrimitive(r, f, p)
    }
    return arr
  }

  private readPrimitive(r: CdrReader, f: Field, path: string): unknown {
    const t = f.type
    const size = SIZES[t] ?? 1
    this.need(r, size, size, path)
    switch (t) {
      case "bool": {
        const b = r.uint8()
        if (b > 1) throw this.err(path, `bool byte is ${b}, expected 0 or 1`)
        return b === 1
      }
      case "byte":
      case "char":
      case "uint8": return r.uint8()
      case "int8": return r.int8()
      case "int16": return r.int16()
      case "uint16": return r.uint16()
      case "int32": return r.int32()
      case "uint32": return r.uint32()
      case "int64": return r.int64()
      case "uint64": return r.uint64()
      case "float32": return r.float32()
      case "float64": return r.float64()
      case "string": {
        const len = r.uint32()
        if (len === 0) return "" // some writers send an empty string without its NUL
        if (f.upperBound !== undefined && len - 1 > f.upperBound) {
          throw this.err(path, `string of ${len - 1} bytes exceeds the bound string<=${f.upperBound}`)
        }
        this.need(r, 1, len, path)
        const raw = r.uint8Array(len)
        if (raw[len - 1] !== 0) throw this.err(path, `string is not NUL-terminated`)
        try {
          return utf8Strict.decode(raw.subarray(0, len - 1))
        } catch {
          throw this.err(path, `string is not valid UTF-8`)
        }
      }
      case "wstring": {
        const len = r.uint32()
        if (f.upperBound !== undefined && len > f.upperBound) {
          throw this.err(path, `wstring of ${len} code units exceeds the bound wstring<=${f.upperBound}`)
        }
        this.need(r, 4, len * 4, path)
        let s = ""
        for (let i = 0; i < len; i++) {
          const u = r.uint32()
          if (u > 0xffff) throw this.err(path, `wstring code unit ${u} does not fit in UTF-16`)
          s += String.fromCharCode(u)
        }
        return s
      }
      default:
        throw this.err(path, `unknown primitive type ${t}`)
    }
  }

  // ---------------------------------------------------------------- defaults

  defaults(): T {
    return this.defaultStruct(this.root) as T
  }

  private defaultStruct(fields: Field[]): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const f of fields) out[f.name] = this.defaultField(f)
    return out
  }

  private defaultField(f: Field): unknown {
    if (f.isArray) {
      if (f.defaultValue !== undefined && Array.isArray(f.defaultValue)) {
        const vals = [...(f.defaultValue as unknown[])].map((x) => (typeof x === "number" && BIG_RANGES[f.type] ? BigInt(x) : x))
        return isByteArrayField(f) ? Uint8Array.from(vals as number[]) : vals
      }
      const n = f.arrayLength ?? 0
      if (isByteArrayField(f)) return new Uint8Array(n)
      return Array.from({ length: n }, () => this.defaultScalar(f))
    }
    return this.defaultScalar(f)
  }

  private defaultScalar(f: Field): unknown {
    if (f.isComplex) return this.defaultStruct(this.fieldsOf(f.type))
    if (!f.isArray && f.defaultValue !== undefined) {
      const d = f.defaultValue
      return typeof d === "number" && BIG_RANGES[f.type] ? BigInt(d) : d
    }
    switch (f.type) {
      case "bool": return false
      case "int64":
      case "uint64": return 0n
      case "string":
      case "wstring": return ""
      default: return 0
    }
  }
}

function hex(b: number | undefined): string {
  return (b ?? 0).toString(16).padStart(2, "0")
}

/** Makes the MessageDescriptor of `fullName`; `definitions` holds it first, then its nested types. */
export function messageDescriptor<T>(fullName: string, hash: string, definitions: readonly MessageDefinition[]): MessageDescriptor<T> {
  let codec: MessageCodec<T> | undefined
  const get = (): MessageCodec<T> => (codec ??= new MessageCodec<T>(fullName, definitions))
  return {
    fullName,
    hash,
    definitions,
    encode: (v: T) => get().encode(v),
    decode: (b: Uint8Array) => get().decode(b),
    defaults: () => get().defaults(),
  }
}

type MessageOf<D> = D extends MessageDescriptor<infer T> ? T : never

/**
 * Makes a ServiceDescriptor from its two halves. The halves keep their own types (generated
 * descriptors carry the message's constants), so `AddTwoInts.request` is `AddTwoInts_Request`.
 */
export function serviceDescriptor<Q extends MessageDescriptor<any>, S extends MessageDescriptor<any>>(
  fullName: string,
  hash: string,
  hash32: number,
  text: string,
  request: Q,
  response: S,
): ServiceDescriptor<MessageOf<Q>, MessageOf<S>> & { readonly request: Q; readonly response: S } {
  return Object.freeze({ fullName, hash, hash32, text, request, response })
}
