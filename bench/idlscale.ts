// `npm run bench:idl [-- [--json] [--sizes 2500,5000,10000,20000]]` (bench/idlscale.ts): the interface loader
// (loadSources, packages/host/src/idl/load.ts) on generated sets of growing size, one shape at a time,
// then (after the first) the hashes of the set read (each is taken on first read). Per shape and size:
// the median wall time of 3 loads, and the loader's steps (loaderWork), which do not depend on the
// machine. About a minute here (2 cores), most of it reading the hashes of 'hub'.
// Shapes (harness/idlsets.ts, shared with test/host/idl_scale.test.ts): wide (independent types, one package), chains (100 deep), diamonds (packages of 12 types
// each holding the next one twice), packages (a std_msgs/geometry_msgs-like base, each package a chain
// of 8 messages on it, a service and an action), comments (40 comment lines and 10 constants per
// file), hub (a quarter of the set are small types one type holds, the rest hold that type), ring
// (one cycle through the whole set: refused, a diagnostic per type). Not part of `npm run bench`.
// docs/benchmarks.md "Interface loading at scale (stop 34)".
import { IdlError, loaderWork, loadSources, type SourceFile } from "../packages/host/src/idl/load"
import { CYCLIC, SHAPES as ALL } from "../harness/idlsets"

/** the shapes of harness/idlsets.ts, the cyclic ones by their ring alone (refused: a diagnostic per type) */
const SHAPES = { ...ALL, ring: CYCLIC.ring! }

const json = process.argv.includes("--json")
const sizesArg = process.argv.indexOf("--sizes")
const sizes = (sizesArg >= 0 ? (process.argv[sizesArg + 1] ?? "") : "2500,5000,10000,20000").split(",").map(Number)

/** One load of `files`: wall ms and steps; then, when `hashes`, reading every hash, likewise. */
function once(files: SourceFile[], hashes: boolean): { ms: number; steps: number; hashMs: number; hashSteps: number } {
  const s0 = loaderWork.steps
  const t0 = performance.now()
  let set
  try {
    set = loadSources(files)
  } catch (e) {
    if (!(e instanceof IdlError)) throw e
  }
  const t1 = performance.now()
  const s1 = loaderWork.steps
  let sum = 0
  if (set && hashes) for (const t of [...set.messages.values(), ...set.services.values(), ...set.actions.values()]) sum += t.hash32 & 1
  if (sum < 0) throw new Error("unreachable")
  return { ms: t1 - t0, steps: s1 - s0, hashMs: performance.now() - t1, hashSteps: loaderWork.steps - s1 }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const rows: { shape: string; types: number; load_ms: number; load_steps: number; hashes_ms: number; hash_steps: number }[] = []
for (const [shape, make] of Object.entries(SHAPES)) {
  for (const n of sizes) {
    const files = make(n)
    const runs = [once(files, true), once(files, false), once(files, false)]
    const row = {
      shape,
      types: files.length,
      load_ms: Math.round(median(runs.map((r) => r.ms))),
      load_steps: runs[0]!.steps,
      hashes_ms: Math.round(runs[0]!.hashMs),
      hash_steps: runs[0]!.hashSteps,
    }
    rows.push(row)
    if (!json) console.log(`${shape.padEnd(9)} ${String(row.types).padStart(6)} types  load ${String(row.load_ms).padStart(6)} ms ${String(row.load_steps).padStart(9)} steps  every hash ${String(row.hashes_ms).padStart(6)} ms ${String(row.hash_steps).padStart(10)} steps`)
  }
}
if (json) console.log(JSON.stringify(rows, null, 1))
