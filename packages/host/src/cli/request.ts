// A `robot service call` request: parsed from YAML or JSON, and checked against its type's typedefs.
import YAML from "yaml"
import { ServiceError } from "../client/errors"
import type { Typedef } from "../calls/rosapi"

/**
 * Checks a request against the type's typedefs before anything is printed or sent: unknown fields,
 * and integers given as quoted strings (`{a: '2'}`: YAML keeps integers exact, so a quoted one is
 * a mistake, not a way to keep digits). Throws invalid_argument naming the field.
 */
export function checkRequest(args: unknown, tds: Typedef[], path = ""): void {
  const root = tds[0]
  if (!root || typeof args !== "object" || args === null || Array.isArray(args)) return
  const defs = new Map(tds.map((t) => [t.type, t]))
  const walk = (v: Record<string, unknown>, td: Typedef, at: string) => {
    for (const k of Object.keys(v)) {
      const i = td.fieldnames.indexOf(k)
      const here = at ? `${at}.${k}` : k
      if (i < 0) {
        throw new ServiceError("invalid_argument", `${here}: ${td.type} has no field '${k}' (fields: ${td.fieldnames.join(", ") || "none"})`)
      }
      const type = td.fieldtypes[i]!
      const arraylen = td.fieldarraylen[i]!
      const x = v[k]
      const nested = defs.get(type)
      const isInt = /^(u?int(8|16|32|64)|byte|char)$/.test(type)
      const one = (e: unknown, p: string) => {
        if (nested && typeof e === "object" && e !== null && !Array.isArray(e)) walk(e as Record<string, unknown>, nested, p)
        else if (isInt && typeof e === "string" && !(type === "uint8" && arraylen !== -1)) {
          throw new ServiceError("invalid_argument", `${p}: expected an integer (${type}), got the string '${e}'; write it without quotes`)
        }
      }
      if (arraylen !== -1 && Array.isArray(x)) x.forEach((e, j) => one(e, `${here}[${j}]`))
      else one(x, here)
    }
  }
  walk(args as Record<string, unknown>, root, path)
}

/** Parses a request given as YAML or JSON (YAML is a superset); integers stay exact. */
export function parseRequest(text: string | undefined): unknown {
  if (text === undefined || text.trim() === "") return {}
  let v: unknown
  try {
    v = YAML.parse(text, { intAsBigInt: true })
  } catch (e) {
    throw new ServiceError("invalid_argument", `the request is not valid YAML/JSON: ${(e as Error).message.split("\n")[0]}`)
  }
  if (v === null || v === undefined) return {}
  if (typeof v !== "object" || Array.isArray(v)) throw new ServiceError("invalid_argument", `the request must be a mapping like "{a: 1, b: 2}", got ${text}`)
  return v
}
