// Helpers for comparing our CDR codecs with @foxglove/rosmsg2-serialization (an independent ROS 2
// CDR implementation): test/host/codec.test.ts (messages and services) and
// test/host/idl_action.test.ts (action types) compare against it.
import type { MessageDefinition } from "@foxglove/message-definition"

/** foxglove's writer/reader know neither byte/char (they use uint8) nor wstring. */
export function foxgloveDefs(defs: readonly MessageDefinition[]): MessageDefinition[] {
  return defs.map((d) => ({ ...d, definitions: d.definitions.map((f) => (f.type === "byte" || f.type === "char" ? { ...f, type: "uint8" } : f)) }))
}

/** true when a type nests a wstring (foxglove cannot write those: such types are compared elsewhere) */
export const usesWstring = (defs: readonly MessageDefinition[]): boolean => defs.some((d) => d.definitions.some((f) => f.type === "wstring"))

/** foxglove 3.1.0 sizes strings by their UTF-16 length (docs/interfaces.md): compare on ASCII text. */
export function asciiOnly(v: unknown): unknown {
  if (typeof v === "string") return v.replace(/[^\x20-\x7e]/g, "?")
  if (Array.isArray(v)) return v.map(asciiOnly)
  if (v instanceof Uint8Array) return v
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asciiOnly(x)]))
  return v
}

/**
 * foxglove decodes numeric arrays to typed arrays, char[] (read as uint8) to Uint8Array; ours are
 * plain arrays, uint8[]/byte[] Uint8Array: compared as plain arrays of their values on both sides.
 */
export function plain(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>)
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}
