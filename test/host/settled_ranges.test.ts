// A session's settled seqs on the device (packages/device/src/rpc/core.ts settle, ackTo, isGone and the
// private compact; docs/protocol.md "Sessions and exactly-once") against a plain model, in the
// DeviceScript VM: that code reads past its range list's end and uses Array.insert, which only the VM
// runs as the device does. This file writes a DeviceScript test into tmp/settled_ranges/ (gitignored)
// that runs test/firmware/settled_check.ts on seeds chosen here, runs it under the devs lock
// (scripts/test-device.ts), and reads the lines it prints. Each seed is one session's life: up to
// STEPS settle/ackTo calls in one of six shapes (dense, wide, comb, high, sparse, mid: see
// settled_check.ts), checked against the model after every call.
//
// The same run checks changed copies of core.ts's functions (MUTANTS, written from core.ts's text
// with one change each: a join left out, an ack that forgets ack + 1, no compaction, overflow at 24):
// each must fail the check, or the check has lost its teeth. A rewrite of core.ts that removes a
// mutant's text fails this file naming that mutant: give it the new code's equivalent.
//
// Replay a failing seed with its every call printed:
//   SETTLED_SEED=<seed> node --import tsx --test test/host/settled_ranges.test.ts
// More or longer sessions: SETTLED_SEEDS=<count> SETTLED_STEPS=<calls per session>.
import assert from "node:assert/strict"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { before, describe, test } from "node:test"
import { runDeviceTestFile, type FileResult } from "../../scripts/test-device"

const ROOT = resolve(__dirname, "../..")
const OUT = join(ROOT, "tmp", "settled_ranges")
const CORE = join(ROOT, "packages/device/src/rpc/core.ts")

function envCount(name: string, dflt: number): number {
  const v = process.env[name]
  if (v === undefined || v === "") return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`${name}=${JSON.stringify(v)}: expected a whole number from 1 to 1000000`)
  return n
}

const REPLAY = process.env.SETTLED_SEED ? envCount("SETTLED_SEED", 1) : undefined
const FIRST = REPLAY ?? 1
const COUNT = REPLAY !== undefined ? 1 : envCount("SETTLED_SEEDS", 72)
const STEPS = envCount("SETTLED_STEPS", 80)

/** changed copies of core.ts's functions: `find` (once in function `fn`) becomes `replace` */
const MUTANTS = [
  { name: "no-join-before", what: "settle never joins the new seq to the range before it", fn: "settle", find: "g[i - 1] === seq - 1", replace: "g[i - 1] === seq - 1 && false" },
  { name: "no-join-after", what: "settle never takes in the range after the new seq", fn: "settle", find: "g[i + 2] === seq + 1", replace: "g[i + 2] === seq + 1 && false" },
  { name: "ack-drops-next", what: "ackTo drops a range that ends at ack + 1 instead of keeping ack + 1", fn: "ackTo", find: "g[1] > ack", replace: "g[1] > ack + 1" },
  { name: "no-compact", what: "the floor never takes in a range that starts at floor + 1", fn: "compact", find: "g[0] === s.floor + 1", replace: "g[0] === s.floor + 1 && false" },
  { name: "overflow-at-24", what: "settle answers overflow at 24 ranges", fn: "settle", find: "g.length <= 2 * MAX_RANGES", replace: "g.length < 2 * MAX_RANGES" },
] as const

/** the text of top-level function `name` in core.ts (from its line to the `}` that ends it at column 0) */
function functionText(core: string, name: string): string {
  const m = new RegExp(`^(export )?function ${name}\\(`, "m").exec(core)
  assert.ok(m, `core.ts has no top-level function ${name}: update MUTANTS in test/host/settled_ranges.test.ts`)
  const end = core.indexOf("\n}\n", m.index)
  assert.ok(end > 0, `the end of function ${name} in core.ts`)
  return core.slice(m.index, end + 3)
}

/** writes tmp/settled_ranges/: one mutant module each, and run.test.ts; returns run.test.ts's path */
function writeFiles(): string {
  mkdirSync(OUT, { recursive: true })
  const core = readFileSync(CORE, "utf8")
  const imports = [
    `import { ackTo, isGone, settle, type Session } from "@robot-services/device/src/rpc/core"`,
    `import { checkSeeds, type Bookkeeping } from "../../test/firmware/settled_check"`,
  ]
  // (the compiler takes an imported function as a value only when it is called: hence the arrows)
  const impl = (k: string) =>
    `{ settle: (s: Session, q: number) => settle${k}(s, q), ackTo: (s: Session, q: number) => ackTo${k}(s, q), isGone: (s: Session, q: number) => isGone${k}(s, q) } as Bookkeeping`
  const tests = [`    test("core.ts", async () => {`, `        if (await checkSeeds("core.ts", ${impl("")}, ${FIRST}, ${COUNT}, ${STEPS}, ${REPLAY !== undefined})) throw new Error("core.ts disagrees with the model")`, `    })`]
  if (REPLAY === undefined)
    MUTANTS.forEach((mu, k) => {
      const fns = ["isGone", "settle", "ackTo", "compact"].map((f) => {
        const text = functionText(core, f)
        if (f !== mu.fn) return text
        const at = text.indexOf(mu.find)
        assert.ok(at >= 0 && text.indexOf(mu.find, at + 1) < 0, `mutant ${mu.name}: '${mu.find}' is not in function ${f} of core.ts exactly once: update MUTANTS in test/host/settled_ranges.test.ts`)
        return text.replace(mu.find, mu.replace)
      })
      writeFileSync(
        join(OUT, `mutant${k}.ts`),
        [
          `// Generated by test/host/settled_ranges.test.ts: core.ts's settled-seq functions, changed so that ${mu.what}.`,
          `import type { Session } from "@robot-services/device/src/rpc/core"`,
          `import { MAX_RANGES } from "@robot-services/device/src/rpc/core"`,
          ...fns,
        ].join("\n"),
      )
      imports.push(`import { ackTo as ackTo${k}, isGone as isGone${k}, settle as settle${k} } from "./mutant${k}"`)
      tests.push(
        `    test("mutant:${mu.name}", async () => {`,
        `        if (!(await checkSeeds("mutant:${mu.name}", ${impl(String(k))}, ${FIRST}, ${COUNT}, ${STEPS}, false))) throw new Error("mutant ${mu.name} passed the check")`,
        `    })`,
      )
    })
  const file = join(OUT, "run.test.ts")
  writeFileSync(
    file,
    [`// Generated by test/host/settled_ranges.test.ts (rewritten on every run).`, `import { describe, test } from "@devicescript/test"`, ...imports, `describe("settled ranges", () => {`, ...tests, `})`, ``].join("\n"),
  )
  return file
}

interface Outcome {
  ok: boolean
  text: string
  coverage: Record<string, number>
}

/** the "SETTLED result" and "SETTLED coverage" lines of each checked set of functions */
function outcomes(output: string): Map<string, Outcome> {
  const out = new Map<string, Outcome>()
  for (const m of output.matchAll(/SETTLED result (\S+) (ok|mismatch) (.*)$/gm)) out.set(m[1]!, { ok: m[2] === "ok", text: m[3]!, coverage: {} })
  for (const m of output.matchAll(/SETTLED coverage (\S+) (.*)$/gm)) {
    const o = out.get(m[1]!)
    if (o) for (const kv of m[2]!.trim().split(/\s+/)) o.coverage[kv.split("=")[0]!] = Number(kv.split("=")[1])
  }
  return out
}

describe("a session's settled seqs on the device (core.ts settle, ackTo, isGone) against a model, in the DeviceScript VM", () => {
  let run: FileResult
  let got: Map<string, Outcome>
  before(() => {
    const file = writeFiles()
    run = runDeviceTestFile(file, { timeoutMs: 240_000, testTimeoutMs: 120_000 })
    got = outcomes(run.output)
    if (REPLAY !== undefined) console.log(run.output.split("\n").filter((l) => /SETTLED|Exception|error/i.test(l)).join("\n"))
  })

  test(`${COUNT} seeded session${COUNT === 1 ? "" : "s"} of up to ${STEPS} calls each: after every call the floor, the ranges, settle's overflow answer and isGone are the model's`, () => {
    const core = got.get("core.ts")
    assert.ok(core, `no result line from the VM (${run.detail}):\n${run.output.split("\n").slice(-30).join("\n")}`)
    assert.ok(core.ok, `core.ts disagrees with the model: ${core.text}\nreplay: SETTLED_SEED=${/seed (\d+)/.exec(core.text)?.[1]} node --import tsx --test test/host/settled_ranges.test.ts`)
    assert.ok(core.coverage.steps! >= COUNT, `${core.coverage.steps} calls checked over ${COUNT} sessions`)
    if (REPLAY === undefined) assert.ok(run.ok, `the VM run: ${run.detail}`)
  })

  test("the sessions reach every case: duplicates, seq 0 and 1, seqs past 2^31, joins before, after and on both sides, joins to the first and the last range, new first and last ranges, the floor taking a range in, exactly 24 ranges and a 25th, acks below the floor, inside, at the end of, between and beyond ranges", { skip: REPLAY !== undefined && "replaying one seed" }, () => {
    const core = got.get("core.ts")
    assert.ok(core?.ok, "the check stopped at a mismatch (the test above names it): its sessions were cut short")
    const c = core.coverage
    for (const k of ["dups", "seqZeroOne", "high", "joinPrev", "joinNext", "joinBoth", "toFloor", "at24", "overflow", "ackBelow", "ackInside", "ackRangeEnd", "ackBetween", "ackBeyond", "joinFirst", "joinLast", "newFirst", "newLast"]) assert.ok((c[k] ?? 0) > 0, `no session reached ${k}: ${JSON.stringify(c)}`)
    // (the comb, high and sparse shapes, half the sessions, are made to get there: 12 of 72 sessions
    // reached a 25th range and 32 settles left exactly 24 when this was written)
    assert.ok(c.overflow! >= COUNT / 12, `${c.overflow} of ${COUNT} sessions reached a 25th range`)
    assert.ok(c.at24! >= COUNT / 6, `${c.at24} settles left exactly 24 ranges`)
  })

  test(`each of ${MUTANTS.length} changed copies of the functions fails the check (${MUTANTS.map((m) => m.name).join(", ")})`, { skip: REPLAY !== undefined && "replaying one seed" }, () => {
    for (const mu of MUTANTS) {
      const o = got.get(`mutant:${mu.name}`)
      assert.ok(o, `no result line for mutant ${mu.name} (${run.detail})`)
      assert.equal(o.ok, false, `mutant ${mu.name} (${mu.what}) passed ${o.text}`)
    }
  })
})
