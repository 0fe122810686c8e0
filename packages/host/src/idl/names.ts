// TypeScript identifiers for generated types, shared by the host and device emitters.
//
// Rule: a type is exported under its short ROS name (`Header`, `AddTwoInts`, `AddTwoInts_Request`).
// When two types in the set share a short name, every one of them is prefixed with its package
// (`std_msgs_Header`); if that still clashes (a .msg and a .srv of the same name in one package),
// with package and kind (`pkg_msg_Foo`, `pkg_srv_Foo`).
import type { InterfaceSet } from "./types"

/** Maps every message and service full name in `set` to its TypeScript identifier. */
export function tsNames(set: InterfaceSet): Map<string, string> {
  const all: { full: string; pkg: string; kind: string; name: string }[] = []
  for (const m of set.messages.values()) all.push({ full: m.fullName, pkg: m.pkg, kind: m.fullName.split("/")[1] ?? "msg", name: m.name })
  for (const s of set.services.values()) all.push({ full: s.fullName, pkg: s.pkg, kind: "srv", name: s.name })
  const levels = [
    (e: (typeof all)[number]) => e.name,
    (e: (typeof all)[number]) => `${e.pkg}_${e.name}`,
    (e: (typeof all)[number]) => `${e.pkg}_${e.kind}_${e.name}`,
  ]
  const out = new Map<string, string>()
  const level = new Map<string, number>(all.map((e) => [e.full, 0]))
  for (let round = 0; round < levels.length; round++) {
    const byName = new Map<string, string[]>()
    for (const e of all) {
      const n = (levels[level.get(e.full) ?? 0] as (x: typeof e) => string)(e)
      out.set(e.full, n)
      byName.set(n, [...(byName.get(n) ?? []), e.full])
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
