// The packages' layering (issue 18): no import circles in either package (type-only imports
// count: a circle of types is still two files that cannot be understood apart), the repository's
// folders import only from the layers below them, the device runtime's Jacdac file imports no other
// link, and a firmware that does not start the MQTT link, read a setting or name a concurrency policy
// carries none of their code (the DeviceScript compiler drops what nothing reaches).
import { test } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { buildFirmware } from "../../packages/host/src/sim/vm"
import { findInterfaceFiles, loadSources } from "../../packages/host/src/idl/load"
import { emitDevice } from "../../packages/host/src/codegen/device"
import { importGraph, relativeImports, sources } from "../support/imports"

const REPO = path.resolve(__dirname, "../..")

/** The strongly connected components of more than one file (Tarjan). */
function circles(g: Map<string, string[]>): string[][] {
  let n = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const out: string[][] = []
  const visit = (v: string) => {
    index.set(v, n)
    low.set(v, n++)
    stack.push(v)
    on.add(v)
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = []
      for (;;) {
        const w = stack.pop()!
        on.delete(w)
        comp.push(path.relative(REPO, w))
        if (w === v) break
      }
      if (comp.length > 1) out.push(comp.sort())
    }
  }
  for (const v of g.keys()) if (!index.has(v)) visit(v)
  return out
}

/**
 * The repository's folders of code and what each may import besides itself, lowest layer first:
 * the harness (what tests and benchmarks share) stands on the packages alone, and a benchmark
 * never imports a test, so a test can change without moving a figure.
 */
const FOLDERS: [string, string[]][] = [
  ["packages/device/src", []],
  ["packages/host/src", []],
  ["harness", ["packages/host/src"]],
  ["bench", ["packages/host/src", "harness"]],
  ["test", ["packages/host/src", "harness", "src", "scripts"]],
]

/** Relative imports of `file` (a path in the repository) that leave `folder` for one not in `allowed`. */
function strayImports(file: string, text: string, folder: string, allowed: string[]): string[] {
  const out: string[] = []
  for (const spec of relativeImports(text)) {
    const to = path.relative(REPO, path.resolve(REPO, path.dirname(file), spec))
    const inside = (dir: string) => to === dir || to.startsWith(`${dir}${path.sep}`)
    // (installed packages are below every layer: a type import may name one by its path)
    if (!inside(folder) && !inside("node_modules") && !allowed.some(inside)) out.push(to)
  }
  return out
}

/**
 * The folders of @robot-services/host (packages/host/src), lowest layer first: a file imports only
 * from its own folder and the folders before it (static, type-only and dynamic imports, `require`
 * and `typeof import()` alike). config (the top-level file config.ts: devs.json), idl (the interface
 * parser), net (client addresses, work in turns), runtime (codecs, descriptors), transport (Jacdac
 * transports, the frame hub and its port), gen (generated interfaces and wire codecs), codegen (the
 * generator), client (the Node client), calls (the call pipeline every front end shares, the
 * project's types), demo (the in-memory demo robots), mqtt (the broker, MQTT robot models and
 * fleets), sim (the simulator), bridge, cli (the `robot` verbs, on top).
 */
const HOST_LAYERS = ["config", "idl", "net", "runtime", "transport", "gen", "codegen", "client", "calls", "demo", "mqtt", "sim", "bridge", "cli"]

/** The layer of a file of packages/host/src: its top folder, or a top-level file's name. */
function hostLayer(root: string, file: string): string {
  const top = path.relative(root, file).split(path.sep)[0]!
  return top.replace(/\.ts$/, "")
}

/** Each import of `graph` from a file to one in a layer above its own, as "from (layer) -> to (layer)". */
function upwardImports(root: string, graph: Map<string, string[]>, layers: string[]): string[] {
  const out: string[] = []
  for (const [from, deps] of graph) {
    const a = hostLayer(root, from)
    for (const to of deps) {
      const b = hostLayer(root, to)
      if (layers.indexOf(b) > layers.indexOf(a)) out.push(`${path.relative(REPO, from)} (layer ${a}) imports ${path.relative(REPO, to)} (layer ${b}, above it)`)
    }
  }
  return out
}

test("the import scanner reads every form of relative import (its own check)", () => {
  const text = [
    `import { a } from "./a"`,
    `import type { B } from "../b"`,
    `export { c } from "./c"`,
    `export * from './d'`,
    `import "./e"`,
    `const f = require("./f")`,
    `const g = await import("../g")`,
    `let h: typeof import("./h")`,
    `import { i } from "node:fs"`,
    `const j = require("mqtt")`,
  ].join("\n")
  assert.deepEqual(relativeImports(text), ["./a", "../b", "./c", "./d", "./e", "./f", "../g", "./h"])
})

test("the circle finder finds a circle (its own check)", () => {
  const a = path.join(REPO, "a.ts")
  const b = path.join(REPO, "b.ts")
  assert.deepEqual(circles(new Map([[a, [b]], [b, [a]]])), [["a.ts", "b.ts"]])
  assert.deepEqual(circles(new Map([[a, [b]], [b, []]])), [])
})

test("no import circles in @robot-services/device or @robot-services/host", () => {
  for (const pkg of ["packages/device", "packages/host/src"]) {
    const files = sources(path.join(REPO, pkg))
    assert.ok(files.length > 5, pkg)
    assert.deepEqual(circles(importGraph(files)), [], `${pkg} has import circles`)
  }
})

test("the layer finder finds an import from a layer above (its own check)", () => {
  const text = `import { rng } from "../test/support/link"\nimport { pct } from "./measure"\nimport { AddTwoInts } from "../packages/host/src/gen/interfaces"`
  assert.deepEqual(strayImports("bench/run.ts", text, "bench", ["packages/host/src", "harness"]), [path.join("test", "support", "link")])
})

test("each folder imports only from itself and the layers below it: packages < harness < bench, test", () => {
  for (const [folder, allowed] of FOLDERS) {
    const files = sources(path.join(REPO, folder))
    assert.ok(files.length > 5, folder)
    const stray = files.flatMap((f) => strayImports(path.relative(REPO, f), fs.readFileSync(f, "utf8"), folder, allowed).map((to) => `${path.relative(REPO, f)} -> ${to}`))
    assert.deepEqual(stray, [], `${folder} imports from outside ${[folder, ...allowed].join(", ")}`)
  }
})

test("the host layer finder finds an import from a layer above (its own check)", () => {
  const root = path.join(REPO, "packages/host/src")
  const f = (p: string) => path.join(root, p)
  const g = new Map([
    [f("bridge/server.ts"), [f("cli/types.ts"), f("calls/pipeline.ts"), f("bridge/guard.ts")]],
    [f("config.ts"), [f("idl/load.ts")]],
    [f("cli/main.ts"), [f("config.ts")]],
  ])
  assert.deepEqual(upwardImports(root, g, HOST_LAYERS), [
    `${path.join("packages/host/src/bridge/server.ts")} (layer bridge) imports ${path.join("packages/host/src/cli/types.ts")} (layer cli, above it)`,
    `${path.join("packages/host/src/config.ts")} (layer config) imports ${path.join("packages/host/src/idl/load.ts")} (layer idl, above it)`,
  ])
})

test(`the folders of packages/host/src are layers, each importing only from those below it: ${HOST_LAYERS.join(" < ")}`, () => {
  const root = path.join(REPO, "packages/host/src")
  // every folder (and top-level file) has its place in the list, and every place is there
  const tops = fs.readdirSync(root).filter((n) => n.endsWith(".ts") || fs.statSync(path.join(root, n)).isDirectory()).map((n) => n.replace(/\.ts$/, ""))
  assert.deepEqual(tops.filter((t) => !HOST_LAYERS.includes(t)), [], "folders of packages/host/src missing from HOST_LAYERS")
  assert.deepEqual(upwardImports(root, importGraph(sources(root)), HOST_LAYERS), [], "imports from a layer above the importing file's")
  assert.deepEqual(HOST_LAYERS.filter((l) => !tops.includes(l)), [], "layers in HOST_LAYERS that packages/host/src does not have")
})

/**
 * The `robot` verbs: the files cli/main.ts registers a command from (its table of lazy loaders).
 * What two verbs share is a helper of the cli folder (serve.ts, link.ts, backends.ts ...).
 */
function cliVerbs(cli: string): string[] {
  const main = fs.readFileSync(path.join(cli, "main.ts"), "utf8")
  const verbs = [...main.matchAll(/^\s+[\w]+: \(\) => \(require\("\.\/(\w+)"\)/gm)].map((m) => path.join(cli, `${m[1]}.ts`))
  assert.ok(verbs.length >= 8, `cli/main.ts's verbs not found: ${verbs.join(", ")}`)
  return verbs
}

/** Imports of one verb by another, as "<verb> imports <verb>". */
function verbImports(cli: string, g: Map<string, string[]>): string[] {
  const verbs = cliVerbs(cli)
  return verbs.flatMap((v) => (g.get(v) ?? []).filter((d) => d !== v && verbs.includes(d)).map((d) => `${path.basename(v)} imports ${path.basename(d)}`))
}

test("the verb finder finds a verb importing another (its own check)", () => {
  const cli = path.join(REPO, "packages/host/src/cli")
  const g = new Map([[path.join(cli, "sim.ts"), [path.join(cli, "bridge.ts"), path.join(cli, "serve.ts")]]])
  assert.deepEqual(verbImports(cli, g), ["sim.ts imports bridge.ts"])
})

test("the CLI's verbs import no other verb: what two verbs share is a helper (cli/serve.ts for bridge and sim)", () => {
  const cli = path.join(REPO, "packages/host/src/cli")
  assert.deepEqual(verbImports(cli, importGraph(sources(path.join(REPO, "packages/host/src")))), [])
})

test("the device runtime's Jacdac file imports no other link: links are peers started by the program", () => {
  const src = path.join(REPO, "packages/device/src")
  const g = importGraph(sources(src))
  const net = path.join(src, "net")
  const inNet = (f: string) => f.startsWith(`${net}${path.sep}`)
  assert.deepEqual(g.get(path.join(src, "rpc/server.ts"))!.filter(inNet), [])
  for (const [f, deps] of g) if (!inNet(f)) assert.ok(!deps.includes(path.join(net, "mqtt.ts")), `${path.relative(REPO, f)} imports the MQTT link`)
})

/** bench/firmware/gen/interfaces.ts, the generated module of bench/firmware/min_*.ts (one AddTwoInts service), written as bench/size.ts does */
function writeMinimalInterfaces(): void {
  const file = "example_interfaces/srv/AddTwoInts.srv"
  const src = findInterfaceFiles([path.join(REPO, "services")]).filter((f) => f.file === file)
  const out = path.join(REPO, "bench/firmware/gen/interfaces.ts")
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, emitDevice(loadSources(src), { sources: [`services/${file}`], outFile: out }))
}

/** The source files compiled into the firmware built from `entry` (paths as the build's debug file gives them). */
function compiledSources(entry: string): string[] {
  const dbg = JSON.parse(fs.readFileSync(path.join(buildFirmware(entry).dir, "bytecode-dbg.json"), "utf8")) as { sources: { path: string }[] }
  return dbg.sources.map((s) => s.path)
}

test("a firmware that reads no setting carries no settings client (its role is made at import); one that does carries it", () => {
  writeMinimalInterfaces()
  const settings = (entry: string) => compiledSources(entry).filter((p) => /@devicescript\/settings\/|device\/(src\/lib\/)?settings\.ts$/.test(p))
  assert.deepEqual(settings("bench/firmware/min_jacdac.ts"), [])
  assert.ok(settings("src/main.ts").some((p) => p.includes("@devicescript/settings/")), "the robot's firmware reads its calibration")
})

/** The functions of the firmware built from `entry` whose code comes from a source file matching `file`. */
function functionsFrom(entry: string, file: RegExp): string[] {
  const dbg = JSON.parse(fs.readFileSync(path.join(buildFirmware(entry).dir, "bytecode-dbg.json"), "utf8")) as {
    sources: { path: string; length: number }[]
    functions: { name: string; location: [number, number] }[]
  }
  let off = 0
  const ranges: [number, number][] = []
  for (const s of dbg.sources) {
    if (file.test(s.path)) ranges.push([off, off + s.length])
    off += s.length
  }
  return dbg.functions.filter((f) => ranges.some(([a, b]) => f.location[0] >= a && f.location[0] < b)).map((f) => f.name)
}

test("a firmware that does not call startMqttLink carries none of the MQTT link's code; one that does carries it", () => {
  writeMinimalInterfaces()
  const mqtt = /device\/src\/net\/mqtt\.ts$/
  assert.deepEqual(functionsFrom("bench/firmware/min_jacdac.ts", mqtt), [])
  const withLink = functionsFrom("bench/firmware/min_mqtt.ts", mqtt)
  assert.ok(withLink.includes("startMqttLink") && withLink.includes("mqttMain"), withLink.join(", "))
})

test("a firmware whose services all run in parallel carries no concurrency policy; one that names serial and latest carries both", () => {
  writeMinimalInterfaces()
  const policies = /device\/src\/rpc\/policies\.ts$/
  assert.deepEqual(functionsFrom("bench/firmware/min_jacdac.ts", policies), [])
  assert.deepEqual(functionsFrom("src/main.ts", policies).sort(), ["latest", "serial"])
})
