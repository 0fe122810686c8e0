// JSON Schemas of what the Foxglove front end sends and takes in `json`: generated for ROS types, and
// foxglove.CompressedImage's.
import type { MessageDefinition } from "@foxglove/message-definition"
import { INT_RANGES } from "../../runtime/codec"

/** foxglove.CompressedImage as JSON Schema (the fields of Foxglove's schema of that name). */
export const COMPRESSED_IMAGE_SCHEMA = {
  title: "foxglove.CompressedImage",
  type: "object",
  properties: {
    timestamp: { type: "object", properties: { sec: { type: "integer", minimum: 0 }, nsec: { type: "integer", minimum: 0, maximum: 999999999 } } },
    frame_id: { type: "string" },
    data: { type: "string", contentEncoding: "base64" },
    format: { type: "string" },
  },
}

/**
 * A JSON Schema for the first definition in `defs` (nested types inlined), matching what the
 * bridge's JSON rules accept: uint8[] as base64, int64 as an integer or a string of digits.
 */
export function jsonSchema(defs: readonly MessageDefinition[], name = defs[0]?.name ?? ""): Record<string, unknown> {
  const def = defs.find((d) => d.name === name)
  if (!def) throw new Error(`no definition of ${name}`)
  const properties: Record<string, unknown> = {}
  for (const f of def.definitions) {
    if (f.isConstant) continue
    const scalar = (): Record<string, unknown> => {
      if (f.isComplex) return jsonSchema(defs, f.type)
      const r = INT_RANGES[f.type]
      if (r) return { type: "integer", minimum: r[0], maximum: r[1] }
      switch (f.type) {
        case "bool":
          return { type: "boolean" }
        case "int64":
        case "uint64":
          return { anyOf: [{ type: "integer" }, { type: "string", pattern: f.type === "int64" ? "^-?[0-9]+$" : "^[0-9]+$" }], description: f.type }
        case "float32":
        case "float64":
          return { type: ["number", "null"] }
        default:
          return f.upperBound !== undefined ? { type: "string", maxLength: f.upperBound } : { type: "string" }
      }
    }
    if (f.isArray && !f.isComplex && (f.type === "uint8" || f.type === "byte")) {
      properties[f.name] = { type: "string", contentEncoding: "base64" }
    } else if (f.isArray) {
      const a: Record<string, unknown> = { type: "array", items: scalar() }
      if (f.arrayLength !== undefined) Object.assign(a, { minItems: f.arrayLength, maxItems: f.arrayLength })
      if (f.arrayUpperBound !== undefined) a.maxItems = f.arrayUpperBound
      properties[f.name] = a
    } else properties[f.name] = scalar()
  }
  return { title: def.name, type: "object", properties, additionalProperties: false }
}
