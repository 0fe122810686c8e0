// `npm run lint:device` (scripts/lint-device.ts) finds a number used as a truth value, and only
// that: run on scripts/lint/fixtures/numbers_as_truth.ts, it names exactly the lines marked
// `finding` there, and exits 1.
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"

const ROOT = join(__dirname, "..", "..")
const FIXTURE = "scripts/lint/fixtures/numbers_as_truth.ts"

test("lint:device names each number used as a truth value in the fixture, and nothing else", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/lint-device.ts", FIXTURE], { cwd: ROOT, encoding: "utf8" })
  assert.equal(r.status, 1, `exit ${r.status}: ${r.stdout}${r.stderr}`)
  const found = [...r.stderr.matchAll(/numbers_as_truth\.ts:(\d+):\d+: a number as a truth value/g)].map((m) => Number(m[1]))
  const marked = readFileSync(join(ROOT, FIXTURE), "utf8")
    .split("\n")
    .flatMap((line, i) => (/\/\/ finding$/.test(line) ? [i + 1] : []))
  assert.ok(marked.length >= 4, "the fixture marks its findings")
  assert.deepEqual(found, marked, r.stderr)
  assert.match(r.stderr, /lint:device: 4 findings in 1 files/)
})
