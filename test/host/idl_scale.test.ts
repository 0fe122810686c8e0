// The interface loader at scale: its work must grow about linearly with the set it is given, whatever
// the shape (wide, deep chains, diamonds, many packages sharing std_msgs/geometry_msgs-like types,
// long comments and constants, a wide type many others hold, cycles). The work is counted in
// steps (loaderWork: lines read, fields resolved, types visited by each pass, steps of the cycle
// search, dependencies walked for a hash), so the test does not depend on how busy the machine is;
// one wall-clock guard with a wide margin checks that the count is the time.
import { describe, test } from "node:test"
import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import { canonicalActionText, canonicalServiceText, canonicalText, hash32, IdlError, loaderWork, loadSources, type SourceFile } from "../../packages/host/src/idl/load"
import { CYCLIC, SHAPES, file } from "../../harness/idlsets"
import { diagsOf } from "../support/idl"
import { tsNames } from "../../packages/host/src/idl/names"

/** The loader's steps for `files` (loaded or refused), with reading every hash of the set when `hashes`. */
function stepsOf(files: SourceFile[], hashes: boolean): number {
  const before = loaderWork.steps
  try {
    const set = loadSources(files)
    if (hashes) for (const t of [...set.messages.values(), ...set.services.values(), ...set.actions.values()]) assert.ok(t.hash32 >= 0)
  } catch (e) {
    if (!(e instanceof IdlError)) throw e
  }
  return loaderWork.steps - before
}

describe("the loader's work grows linearly with the set (doubling the set at most 2.2 times the steps)", () => {
  for (const [name, shape] of Object.entries({ ...SHAPES, ...CYCLIC })) {
    test(name, () => {
      const small = stepsOf(shape(1000), false)
      const large = stepsOf(shape(2000), false)
      assert.ok(small > 0)
      assert.ok(large <= 2.2 * small, `${name}: 1,000 types took ${small} steps, 2,000 took ${large} (${(large / small).toFixed(2)}x)`)
    })
  }
  // a hash covers every type below its type (docs/interfaces.md): reading them all is as long as
  // all the canonical texts, linear while each type has a bounded number below it; not so for 'hub',
  // where doubling the set doubles both the types and what each holds (taken on first read)
  for (const [name, shape] of Object.entries(SHAPES).filter(([n]) => n !== "hub")) {
    test(`${name}, every hash read`, () => {
      const small = stepsOf(shape(1000), true)
      const large = stepsOf(shape(2000), true)
      assert.ok(large <= 2.2 * small, `${name}: 1,000 types took ${small} steps, 2,000 took ${large} (${(large / small).toFixed(2)}x)`)
    })
  }
})

test("every shape loads (or is refused) as before: the sets load, each type of a cycle gets its diagnostic, long cycles are shortened", () => {
  for (const [name, shape] of Object.entries(SHAPES)) assert.ok(loadSources(shape(500)).messages.size >= 500, name)
  const ring = diagsOf(CYCLIC.ring!(1000))
  assert.equal(ring.length, 1000)
  const d7 = ring.find((d) => d.file === "r/p/msg/M7.msg")!
  assert.deepEqual([d7.line, d7.col], [1, 1])
  assert.equal(d7.message, "recursive type: p/msg/M7 -> p/msg/M8 -> p/msg/M9 -> ... -> p/msg/M6 -> p/msg/M7 (a cycle of 1,000 types)")
  const star = diagsOf(CYCLIC.star!(1000))
  assert.equal(star.length, 1000)
  assert.equal(star.find((d) => d.file === "r/p/msg/S5.msg")?.message, "recursive type: p/msg/S5 -> p/msg/Hub -> p/msg/S5")
  assert.deepEqual(star.find((d) => d.file === "r/p/msg/Hub.msg")?.message.match(/^recursive type: p\/msg\/Hub -> p\/msg\/(S\d+) -> p\/msg\/Hub$/)?.length, 2)
  // every cycle shown is a cycle: each type holds the next, none is named twice (small braids are shown whole)
  for (const n of [4, 5, 30]) {
    const d = diagsOf(CYCLIC.braid!(n))
    assert.equal(d.length, n)
    for (const { message } of d) {
      const names = message.replace(/^recursive type: /, "").replace(/ \(a cycle of \d+ types\)$/, "").split(" -> ")
      assert.equal(names[0], names[names.length - 1], message)
      const shown = names.filter((x) => x !== "...")
      assert.equal(new Set(shown).size, shown.length - 1, message)
      assert.equal(names.includes("..."), n === 30, message)
      for (let k = 0; k + 1 < names.length; k++) {
        if (names[k] === "..." || names[k + 1] === "...") continue
        const [i, j] = [names[k]!, names[k + 1]!].map((x) => Number(x.replace("p/msg/M", "")))
        assert.ok((i! + 1) % n === j || (i! + 2) % n === j, message)
      }
    }
  }
})

test("the hashes are those of the canonical texts (docs/interfaces.md), however they are computed", () => {
  const set = loadSources(SHAPES.packages!(300))
  const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")
  for (const m of set.messages.values()) {
    assert.equal(m.hash, sha(canonicalText(m.fullName, set.messages)), m.fullName)
    assert.equal(m.hash32, hash32(m.hash))
  }
  for (const s of set.services.values()) assert.equal(s.hash, sha(canonicalServiceText(s, set.messages)))
  for (const a of set.actions.values()) {
    assert.equal(a.hash, sha(canonicalActionText(a, set.messages)))
    assert.equal(a.sendGoal.hash, sha(canonicalServiceText(a.sendGoal, set.messages)))
    assert.equal(a.getResult.hash32, hash32(sha(canonicalServiceText(a.getResult, set.messages))))
  }
})

test("a set of 20,000 types of every shape loads in under 12 seconds (about 1.2 s here; 23 s before, most of it hashing 7,200 types that each hold one of 2,400)", () => {
  const files = [
    ...SHAPES.packages!(6000),
    ...SHAPES.chains!(2000).map((f) => ({ ...f, file: f.file.replace(/^p\//, "chain/") })),
    ...SHAPES.diamonds!(1200).map((f) => ({ ...f, file: f.file.replace(/^p/, "dia") })),
    ...SHAPES.comments!(1200).map((f) => ({ ...f, file: f.file.replace(/^p\//, "doc/") })),
    ...SHAPES.hub!(9600),
  ]
  const t0 = performance.now()
  const set = loadSources(files)
  const ms = performance.now() - t0
  assert.ok(set.messages.size >= 20_000, `${set.messages.size} types`)
  assert.ok(ms < 12_000, `${Math.round(ms)} ms`)
})

test("20,000 types in as many packages, all of one short name, are given their identifiers in under a second (about 0.1 s here; 2.7 s before: each type copied the list of those sharing its name)", () => {
  const set = loadSources(Array.from({ length: 20_000 }, (_, i) => file(`p${i}/msg/Status.msg`, "int32 code\n")))
  const t0 = performance.now()
  const names = tsNames(set)
  const ms = performance.now() - t0
  assert.equal(names.get("p123/msg/Status"), "p123_Status")
  assert.equal(new Set(names.values()).size, 20_000)
  assert.ok(ms < 1000, `${Math.round(ms)} ms`)
})
