// Sample values for any message type, for round-trip and cross-implementation (host <-> device)
// tests: the edges a codec gets wrong. Every value is valid for its type (bounds respected) and
// survives a round trip exactly (float32 values are exactly representable).
import type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
import { isByteArrayField } from "./codec"

export type SampleKind = "min" | "max" | "mixed"
/** Every kind of sample, in a fixed order. */
export const SAMPLE_KINDS: readonly SampleKind[] = ["min", "max", "mixed"]

const INT: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], byte: [0, 255], char: [0, 255],
  int16: [-32768, 32767], uint16: [0, 65535], int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
}
const FLOAT32_MAX = 3.4028234663852886e38
const FLOAT32_MIN_SUBNORMAL = 1.401298464324817e-45

/** A string of exactly `bytes` UTF-8 bytes, as non-ASCII as that allows ("é" is 2 bytes). */
function utf8OfLength(bytes: number): string {
  return "é".repeat(Math.floor(bytes / 2)) + "a".repeat(bytes % 2)
}

function scalar(f: MessageDefinitionField, kind: SampleKind, i: number): unknown {
  const t = f.type
  const r = INT[t]
  if (r) {
    if (kind === "min") return r[0]
    if (kind === "max") return r[1]
    return Math.trunc((r[0] + r[1]) / 2) + (i % 3) - 1
  }
  switch (t) {
    case "bool":
      return kind === "max" || (kind === "mixed" && i % 2 === 0)
    case "int64":
      return kind === "min" ? -(2n ** 63n) : kind === "max" ? 2n ** 63n - 1n : 2n ** 53n + 1n + BigInt(i)
    case "uint64":
      return kind === "min" ? 0n : kind === "max" ? 2n ** 64n - 1n : 2n ** 53n + 1n + BigInt(i)
    case "float32":
      return kind === "min" ? [-FLOAT32_MAX, -Infinity, NaN][i % 3] : kind === "max" ? [FLOAT32_MAX, Infinity, FLOAT32_MIN_SUBNORMAL][i % 3] : [-0, 1.5, -2.25][i % 3]
    case "float64":
      return kind === "min" ? [-Number.MAX_VALUE, -Infinity, NaN][i % 3] : kind === "max" ? [Number.MAX_VALUE, Infinity, Number.MIN_VALUE][i % 3] : [-0, 0.1, 2 ** 53 + 2][i % 3]
    case "string": {
      if (kind === "min") return ""
      if (f.upperBound !== undefined) return kind === "max" ? utf8OfLength(f.upperBound) : utf8OfLength(Math.min(f.upperBound, 3))
      return kind === "max" ? "héllo wörld ✓ 😀 " + "x".repeat(40) : `s${i} ü`
    }
    case "wstring": {
      if (kind === "min") return ""
      const full = "wé😀✓" // 5 UTF-16 code units, one surrogate pair
      if (f.upperBound !== undefined) {
        const s = kind === "max" ? "ü".repeat(f.upperBound) : full.slice(0, Math.min(f.upperBound, 5))
        // never cut a surrogate pair in half
        return /[\uD800-\uDBFF]$/.test(s) ? s.slice(0, -1) : s
      }
      return kind === "max" ? full.repeat(3) : full
    }
  }
  throw new Error(`no sample for type ${t}`)
}

/**
 * Builds a value of `fullName` (definitions: the type first, then its nested types) by walking its
 * fields: `scalar(field, i)` gives the i-th primitive of a field, `count(field, depth)` the length
 * of a sequence that is not fixed-size (depth 0 is the top message). Fixed arrays get their length;
 * `uint8[]`/`byte[]` become Uint8Array.
 */
export function buildValue(
  fullName: string,
  definitions: readonly MessageDefinition[],
  scalar: (f: MessageDefinitionField, i: number) => unknown,
  count: (f: MessageDefinitionField, depth: number) => number,
): Record<string, unknown> {
  const types = new Map(definitions.map((d) => [d.name ?? "", d.definitions.filter((f) => !f.isConstant)]))
  const build = (name: string, depth: number): Record<string, unknown> => {
    const fields = types.get(name)
    if (!fields) throw new Error(`no definition for ${name}`)
    const out: Record<string, unknown> = {}
    fields.forEach((f, fi) => {
      const one = (i: number): unknown => (f.isComplex ? build(f.type, depth + 1) : scalar(f, fi + i))
      if (!f.isArray) {
        out[f.name] = one(0)
        return
      }
      const n = f.arrayLength !== undefined ? f.arrayLength : count(f, depth)
      const items = Array.from({ length: n }, (_, i) => one(i))
      out[f.name] = isByteArrayField(f) ? Uint8Array.from(items as number[]) : items
    })
    return out
  }
  return build(fullName, 0)
}

/**
 * A sample value of `fullName` (definitions: the type first, then its nested types).
 * min: smallest numbers, empty strings and sequences; max: largest numbers, strings and bounded
 * sequences at their bound (unbounded: 3 elements), non-ASCII text; mixed: 2^53+1 in 64-bit
 * fields, -0, non-ASCII text, short sequences.
 */
export function sampleValue(fullName: string, definitions: readonly MessageDefinition[], kind: SampleKind): unknown {
  return buildValue(
    fullName,
    definitions,
    (f, i) => scalar(f, kind, i),
    (f, depth) => {
      if (kind === "min") return 0
      if (f.arrayUpperBound !== undefined) return kind === "max" ? f.arrayUpperBound : Math.min(1, f.arrayUpperBound)
      return kind === "max" ? (depth > 2 ? 1 : 3) : 2
    },
  )
}
