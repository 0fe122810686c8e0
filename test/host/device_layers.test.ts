// The device library's layering (issue 18): its folders are layers, each importing only from those
// below it (DEVICE_LAYERS); the runtime (rpc/runtime.ts: the record parser, the links' list, the
// clock) imports no link; the Jacdac link (rpc/server.ts) and the MQTT link (net/mqtt.ts) each import
// it and neither reaches the other. (test/host/layers.test.ts checks both packages for import
// circles and the repository's folders; both read imports with test/support/imports.ts.)
import { test } from "node:test"
import assert from "node:assert/strict"
import * as path from "node:path"
import { importGraph, relativeGraph, sources } from "../support/imports"

const SRC = path.resolve(__dirname, "../../packages/device/src")
const RUNTIME = "rpc/runtime.ts"
const LINKS = ["rpc/server.ts", "net/mqtt.ts"]
/**
 * The folders of packages/device/src, lowest first: the generated record constants; the CDR runtime
 * and the contracts it shares with handlers (types.ts, strings.ts); the call runtime and the Jacdac
 * link; the API (createService, actions, settings); the MQTT link, a separate entry. The entry
 * files (src/index.ts, and mqtt.ts beside src/) are above them all.
 */
const DEVICE_LAYERS = ["gen", "cdr", "rpc", "lib", "net"]

/** The device library's files (paths relative to packages/device/src) and their relative imports, resolved. */
function deviceGraph(): Map<string, string[]> {
  return relativeGraph(SRC, importGraph(sources(SRC)))
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

/** Each import from a folder of DEVICE_LAYERS to one above it (a file at the top of src/ is above all). */
function upward(g: Map<string, string[]>): string[] {
  const layer = (f: string) => (f.includes(path.sep) ? DEVICE_LAYERS.indexOf(f.split(path.sep)[0]!) : DEVICE_LAYERS.length)
  const out: string[] = []
  for (const [from, deps] of g) for (const to of deps) if (layer(to) > layer(from)) out.push(`${from} -> ${to}`)
  return out
}

test("the layer check finds an import from a folder above (its own check)", () => {
  const g = new Map([
    [path.join("cdr", "types.ts"), [path.join("rpc", "core.ts"), path.join("gen", "wire.ts")]],
    [path.join("lib", "services.ts"), [path.join("rpc", "server.ts")]],
    ["index.ts", [path.join("lib", "services.ts")]],
  ])
  assert.deepEqual(upward(g), [`${path.join("cdr", "types.ts")} -> ${path.join("rpc", "core.ts")}`])
})

test(`the device library's folders are layers: ${DEVICE_LAYERS.join(" < ")} < the entries`, () => {
  const g = deviceGraph()
  const folders = new Set([...g.keys()].filter((f) => f.includes(path.sep)).map((f) => f.split(path.sep)[0]!))
  assert.deepEqual([...folders].filter((f) => !DEVICE_LAYERS.includes(f)), [], "folders missing from DEVICE_LAYERS")
  assert.deepEqual(DEVICE_LAYERS.filter((f) => !folders.has(f)), [], "layers packages/device/src does not have")
  assert.deepEqual(upward(g), [], "imports from a folder above the importing file's")
})
