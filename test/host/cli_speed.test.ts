// What one CLI call costs (issue 17: every `robot service call` took 1.1-2.5 s, 8.4 s the first
// time, most of it compiling the TypeScript host code at run time and loading every verb's
// modules). packages/host/bin/robot.js now runs a bundle kept in node_modules/.cache/robot-cli/ and main.ts loads
// only the verb being run. Measured as CPU time (user + system, the process and its children), which
// a busy test machine inflates far less than wall time, against a bare `node -e 0` measured the
// same way in between.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { readFileSync, statSync, utimesSync } from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { ROOT, startFixture } from "./bridge_helpers"

const BUNDLE_MANIFEST = path.join(ROOT, "node_modules/.cache/robot-cli/inputs.json")

/** Runs `cmd` under a shell that reports its children's CPU time (/proc/<sh>/stat cutime + cstime). */
function cpuOf(cmd: string[]): Promise<{ cpuMs: number; wallMs: number; out: string }> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const p = spawn("sh", ["-c", '"$@" > /tmp/robot-cli-speed.$$ 2>&1; s=$?; cat /proc/$$/stat; cat /tmp/robot-cli-speed.$$; rm -f /tmp/robot-cli-speed.$$; exit $s', "sh", ...cmd], { cwd: ROOT })
    let out = ""
    p.stdout.on("data", (d) => (out += d))
    p.on("error", reject)
    p.on("close", (code) => {
      const wallMs = performance.now() - t0
      const nl = out.indexOf("\n")
      // fields after the command name: state is field 3, cutime and cstime are fields 16 and 17
      const f = out.slice(0, nl).replace(/^.*\)\s+/, "").split(" ")
      const ticks = Number(f[13]) + Number(f[14])
      if (code !== 0 || !Number.isFinite(ticks)) return reject(new Error(`${cmd.join(" ")} failed (${code}): ${out}`))
      resolve({ cpuMs: ticks * 10, wallMs, out: out.slice(nl + 1) })
    })
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!

test("robot service call through a bridge: under 300 ms of CPU more than a bare node, warm", { timeout: 180_000 }, async (t) => {
  const fx = await startFixture()
  try {
    const call = (i: number) => [process.execPath, path.join(ROOT, "packages/host/bin/robot.js"), "service", "call", "/add_two_ints", `{a: ${i}, b: 2}`, "--url", fx.bridge.wsUrl]
    const first = await cpuOf(call(0)) // builds the bundle when it is stale (warm-up)
    assert.match(first.out, /sum=2\b/)
    const cli: number[] = []
    const bare: number[] = []
    const wall: number[] = []
    const bareWall: number[] = []
    for (let i = 1; i <= 5; i++) {
      const r = await cpuOf(call(i))
      assert.match(r.out, new RegExp(`sum=${i + 2}\\b`))
      cli.push(r.cpuMs)
      wall.push(r.wallMs)
      const b = await cpuOf([process.execPath, "-e", "0"])
      bare.push(b.cpuMs)
      bareWall.push(b.wallMs)
    }
    t.diagnostic(`CLI call: CPU ${median(cli)} ms, wall ${median(wall).toFixed(0)} ms; bare node: CPU ${median(bare)} ms, wall ${median(bareWall).toFixed(0)} ms (medians of 5)`)
    assert.ok(median(cli) - median(bare) < 300, `a CLI call costs ${median(cli)} ms of CPU, a bare node ${median(bare)} ms`)
  } finally {
    await fx.close()
  }
})

test("the CLI's bundle is rebuilt when a source it was built from changes, and used as is otherwise", { timeout: 180_000 }, async () => {
  const fx = await startFixture()
  const src = path.join(ROOT, "packages/host/src/cli/service.ts")
  const before = statSync(src)
  try {
    const call = [process.execPath, path.join(ROOT, "packages/host/bin/robot.js"), "service", "call", "/add_two_ints", "{a: 1, b: 2}", "--url", fx.bridge.wsUrl]
    assert.match((await cpuOf(call)).out, /sum=3\b/)
    const built = statSync(BUNDLE_MANIFEST).mtimeMs
    assert.ok(Object.keys(JSON.parse(readFileSync(BUNDLE_MANIFEST, "utf8")).inputs).includes(src), "the manifest lists packages/host/src/cli/service.ts")
    assert.match((await cpuOf(call)).out, /sum=3\b/)
    assert.equal(statSync(BUNDLE_MANIFEST).mtimeMs, built, "an unchanged tree is not rebuilt")
    // a source saved again (new modification time): the next call rebuilds
    utimesSync(src, before.atime, new Date(before.mtimeMs + 2000))
    assert.match((await cpuOf(call)).out, /sum=3\b/)
    assert.ok(statSync(BUNDLE_MANIFEST).mtimeMs > built, "the bundle was rebuilt")
  } finally {
    utimesSync(src, before.atime, before.mtime)
    await fx.close()
  }
})
