// What each implementation of the device side does NOT model: the one list the conformance suite
// skips by (a case names the features it needs; an implementation listed here for one of them
// skips it, saying why) and the source of the table in test/conformance/README.md (between its
// markers; conformance.test.ts checks the two agree, `node --import tsx test/conformance/gaps.ts
// --write` rewrites the table). Every feature here is needed by at least one case (checked too).

/** The implementations of the device side (test/conformance/devices.ts). */
export type Impl = "jacdac" | "mqtt" | "memrobot"
export const IMPLS: Impl[] = ["jacdac", "mqtt", "memrobot"]

/** Device behaviours some implementation leaves out. */
export type Feature = "budget" | "refusal-ring" | "policies"

/** What the feature is (a table row's first cell). */
export const FEATURES: Record<Feature, string> = {
  budget: "heap budget: requests admitted by bytes, a request over the budget refused `resource_exhausted`",
  "refusal-ring": "refused calls remembered in a bounded ring (8, shared by all hosts): a host's oldest refusal is forgotten (`gone`)",
  policies: 'per-service concurrency policies ("latest", "serial")',
}

/** Implementation -> feature -> why it is left out. */
export const NOT_MODELLED: Record<Impl, Partial<Record<Feature, string>>> = {
  jacdac: {},
  mqtt: {},
  memrobot: {
    budget: "announces budget 0xffffffff; a load model, its heap is the host's",
    "refusal-ring": "a refused call is an ordinary answered call, kept until DONE, ack or retention",
    policies: "every service runs its calls concurrently",
  },
}

/**
 * Defects the suite found that are not fixed yet (not modelling gaps: the implementation means to do
 * it and fails). The case still runs for that implementation, as `todo`: its failure is reported
 * without failing `npm test`. Remove the entry with the fix.
 */
export const KNOWN_DEFECTS: { impl: Impl; title: RegExp; defect: string }[] = [
]

/** The defect `impl` is known to fail `title` with, if any. */
export function knownDefect(impl: Impl, title: string): string | undefined {
  return KNOWN_DEFECTS.find((d) => d.impl === impl && d.title.test(title))?.defect
}

/** Why `impl` skips a case needing `needs`, or undefined when it runs it. */
export function skipReason(impl: Impl, needs: readonly Feature[] = []): string | undefined {
  const why = needs.map((f) => (NOT_MODELLED[impl][f] ? `${impl} does not model ${f}: ${NOT_MODELLED[impl][f]}` : "")).filter(Boolean)
  return why.length ? why.join("; ") : undefined
}

export const TABLE_BEGIN = "<!-- not-modelled:begin (generated from test/conformance/gaps.ts) -->"
export const TABLE_END = "<!-- not-modelled:end -->"

/** The README's table: one row per feature, one column per implementation ("yes", or "no: why"). */
export function renderTable(): string {
  const rows = [`| feature | ${IMPLS.join(" | ")} |`, `| --- | ${IMPLS.map(() => "---").join(" | ")} |`]
  for (const f of Object.keys(FEATURES) as Feature[]) {
    rows.push(`| \`${f}\`: ${FEATURES[f]} | ${IMPLS.map((i) => (NOT_MODELLED[i][f] ? `no: ${NOT_MODELLED[i][f]}` : "yes")).join(" | ")} |`)
  }
  const defects = ["", "Known defects (the case runs as `todo` for that implementation until fixed):", ""]
  for (const d of KNOWN_DEFECTS) defects.push(`* \`${d.impl}\`, case ${d.title}: ${d.defect}`)
  return [TABLE_BEGIN, ...rows, ...(KNOWN_DEFECTS.length ? defects : []), TABLE_END].join("\n")
}

/** The table block as it stands in `readme` (markers included), or undefined. */
export function tableIn(readme: string): string | undefined {
  const a = readme.indexOf(TABLE_BEGIN)
  const b = readme.indexOf(TABLE_END)
  return a >= 0 && b > a ? readme.slice(a, b + TABLE_END.length) : undefined
}

if (require.main === module && process.argv.includes("--write")) {
  const fs = require("node:fs") as typeof import("node:fs")
  const file = require("node:path").join(__dirname, "README.md") as string
  const text = fs.readFileSync(file, "utf8")
  const old = tableIn(text)
  if (!old) throw new Error(`${file} has no ${TABLE_BEGIN} … ${TABLE_END} block`)
  fs.writeFileSync(file, text.replace(old, renderTable()))
  console.log(`wrote the table of ${file}`)
}
