// The device library's layering (issue 18, "Make the links peers under the runtime"): the runtime
// (rpc/runtime.ts: the record parser, the links' list, the clock) imports no link; the Jacdac link
// (rpc/server.ts) and the MQTT link (net/mqtt.ts) each import it and neither reaches the other.
// (test/host/layers.test.ts checks both packages for import circles and the repository's folders.)
import { test } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"

const SRC = path.resolve(__dirname, "../../packages/device/src")
const RUNTIME = "rpc/runtime.ts"
const LINKS = ["rpc/server.ts", "net/mqtt.ts"]

/** The device library's files (paths relative to packages/device/src) and their relative imports, resolved. */
function deviceGraph(): Map<string, string[]> {
  const files: string[] = []
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n)
      if (fs.statSync(p).isDirectory()) walk(p)
      else if (n.endsWith(".ts")) files.push(path.relative(SRC, p))
    }
  }
  walk(SRC)
  const g = new Map<string, string[]>()
  for (const f of files) {
    const text = fs.readFileSync(path.join(SRC, f), "utf8")
    const deps = [...text.matchAll(/(?:from\s+|import\s+)["'](\.[^"']*)["']/g)].map((m) => path.join(path.dirname(f), m[1]!) + ".ts")
    g.set(f, deps.filter((d) => files.includes(d)))
  }
  return g
}

/** The files `from` imports, directly or through others. */
function reach(g: Map<string, string[]>, from: string): Set<string> {
  const seen = new Set<string>()
  const todo = [...(g.get(from) ?? [])]
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (seen.has(f)) continue
    seen.add(f)
    todo.push(...(g.get(f) ?? []))
  }
  return seen
}

test("the links are peers under the runtime: each imports it, neither reaches the other, the runtime reaches neither", () => {
  const g = deviceGraph()
  assert.ok(g.has(RUNTIME), `${RUNTIME} exists`)
  const fromRuntime = reach(g, RUNTIME)
  for (const link of LINKS) {
    assert.ok(g.has(link), `${link} exists`)
    assert.ok(g.get(link)!.includes(RUNTIME), `${link} imports ${RUNTIME}`)
    assert.ok(!fromRuntime.has(link), `${RUNTIME} reaches ${link}`)
    for (const other of LINKS) if (other !== link) assert.ok(!reach(g, link).has(other), `${link} reaches ${other}`)
  }
})
