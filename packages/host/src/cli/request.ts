// A `robot service call` request, parsed from YAML or JSON. It is checked once, by the call
// pipeline's check at the far end (packages/host/src/calls/knowntypes.ts `requestFromJson`, by the
// YAML rules, calls/json.ts YAML_RULES: the bridge's, or this process's in direct mode).
import YAML from "yaml"
import { ServiceError } from "../client/errors"

/** Parses a request (or an action's goal: `what`) given as YAML or JSON (YAML is a superset); integers stay exact. */
export function parseRequest(text: string | undefined, what = "request"): unknown {
  if (text === undefined || text.trim() === "") return {}
  let v: unknown
  try {
    v = YAML.parse(text, { intAsBigInt: true })
  } catch (e) {
    throw new ServiceError("invalid_argument", `the ${what} is not valid YAML/JSON: ${(e as Error).message.split("\n")[0]}`)
  }
  if (v === null || v === undefined) return {}
  if (typeof v !== "object" || Array.isArray(v)) throw new ServiceError("invalid_argument", `the ${what} must be a mapping like "{a: 1, b: 2}", got ${text}`)
  return v
}
