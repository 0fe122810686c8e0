// The import graph of a folder of TypeScript, for the layering checks of both packages
// (test/host/layers.test.ts: circles and folders; test/host/device_layers.test.ts: the device
// library's layers and links). The one place that reads a source text's imports.
import * as fs from "node:fs"
import * as path from "node:path"

/** Every .ts file under `dir`, as absolute paths (declarations, node_modules and dist aside). */
export function sources(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n)
      if (fs.statSync(p).isDirectory()) {
        if (n !== "node_modules" && n !== "dist") walk(p)
      } else if (n.endsWith(".ts") && !n.endsWith(".d.ts")) out.push(p)
    }
  }
  walk(path.resolve(dir))
  return out
}

/**
 * The relative module specifiers of a source text: `import … from`, `import type … from`,
 * `export … from`, a side-effect `import "./x"`, `require("./x")` and `import("./x")` (so
 * `typeof import("./x")` too). Specifiers that do not start with `.` (installed packages) are left out.
 */
export function relativeImports(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*|\bimport\s+)["'](\.[^"']*)["']/g)].map((m) => m[1]!)
}

/** The relative imports of each of `files` (absolute paths) resolved to one of them (`x.ts`, `x/index.ts` or `x`). */
export function importGraph(files: string[]): Map<string, string[]> {
  const set = new Set(files)
  const g = new Map<string, string[]>()
  for (const f of files) {
    const deps: string[] = []
    for (const spec of relativeImports(fs.readFileSync(f, "utf8"))) {
      const p = path.resolve(path.dirname(f), spec)
      const hit = [`${p}.ts`, path.join(p, "index.ts"), p].find((c) => set.has(c))
      if (hit) deps.push(hit)
    }
    g.set(f, deps)
  }
  return g
}

/** `g` with every path made relative to `root`. */
export function relativeGraph(root: string, g: Map<string, string[]>): Map<string, string[]> {
  const rel = (f: string) => path.relative(root, f)
  return new Map([...g].map(([f, deps]) => [rel(f), deps.map(rel)]))
}
