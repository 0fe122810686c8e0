// TypeScript identifiers for generated types, shared by the host and device emitters.
//
// Rule: a type is exported under its short ROS name (`Header`, `AddTwoInts`, `AddTwoInts_Request`,
// `Fibonacci`, `Fibonacci_SendGoal`, `Fibonacci_Goal`).
// When two types in the set share a short name, every one of them is prefixed with its package
// (`std_msgs_Header`); if that still clashes (a .msg and a .srv of the same name in one package),
// with package and kind (`pkg_msg_Foo`, `pkg_srv_Foo`, `pkg_action_Foo`). A type whose short name is
// one the generated files use themselves (RESERVED_NAMES) takes its package's prefix too.
import type { InterfaceSet } from "./types"

/**
 * Identifiers the generated files import or use as globals: the device file's imports (`Bytes`,
 * `MessageCodec`, `ServiceType`, `ActionType`) and globals (`Buffer`, ...), the host file's globals
 * (`Object.freeze`, `Uint8Array` for byte arrays). A type exported under one of them shadowed it:
 * a message `Object` or `Uint8Array` made the host file fail to compile.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "Bytes", "MessageCodec", "ServiceType", "ActionType", "Buffer", "Math", "Array", "Object", "String", "Error",
  "Uint8Array", "console", "undefined", "NaN", "Infinity",
])

/** Maps every message, service and action full name in `set` (derived action services included) to its TypeScript identifier. */
export function tsNames(set: InterfaceSet): Map<string, string> {
  const all: { full: string; pkg: string; kind: string; name: string }[] = []
  for (const m of set.messages.values()) all.push({ full: m.fullName, pkg: m.pkg, kind: m.fullName.split("/")[1] ?? "msg", name: m.name })
  for (const s of set.services.values()) all.push({ full: s.fullName, pkg: s.pkg, kind: "srv", name: s.name })
  for (const a of set.actions.values()) {
    for (const x of [a, a.sendGoal, a.getResult]) all.push({ full: x.fullName, pkg: x.pkg, kind: "action", name: x.name })
  }
  const levels = [
    (e: (typeof all)[number]) => e.name,
    (e: (typeof all)[number]) => `${e.pkg}_${e.name}`,
    (e: (typeof all)[number]) => `${e.pkg}_${e.kind}_${e.name}`,
  ]
  const out = new Map<string, string>()
  const level = new Map<string, number>(all.map((e) => [e.full, RESERVED_NAMES.has(e.name) ? 1 : 0]))
  for (let round = 0; round < levels.length; round++) {
    const byName = new Map<string, string[]>()
    for (const e of all) {
      const n = (levels[level.get(e.full) ?? 0] as (x: typeof e) => string)(e)
      out.set(e.full, n)
      // appended in place: a copy per type was quadratic in the types that share a name (2.7 s for 20,000)
      const same = byName.get(n)
      if (same) same.push(e.full)
      else byName.set(n, [e.full])
    }
    let changed = false
    for (const fulls of byName.values()) {
      if (fulls.length < 2) continue
      for (const f of fulls) {
        const l = level.get(f) ?? 0
        if (l < levels.length - 1) {
          level.set(f, l + 1)
          changed = true
        }
      }
    }
    if (!changed) break
  }
  return out
}
