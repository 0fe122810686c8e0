// `npm run test:host`: the host and conformance test files in two lanes that run side by side.
// The simulator lane holds every file that boots the DeviceScript VM (they take turns anyway: a
// rig holds the flock on port 8081), one file at a time; the other lane holds the files that need
// no VM (codecs, CLI, bridge, broker, browser), one file at a time. The lanes' outputs are printed
// whole, each when it ends, so neither interleaves with the other; the exit code is 1 if either
// lane failed. A file is in the simulator lane when its text names the VM's parts (see SIM); one
// put in the other lane by mistake still works (it waits for the lock) but costs time.
// Usage: node --import tsx scripts/test-host.ts [file...]   (default: test/host/*.test.ts test/conformance/*.test.ts)
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const ROOT = join(__dirname, "..")
/**
 * what a file that boots the VM (or builds firmware) imports: the rig, the VM, the simulated robot
 * or fleet, `robot sim`, the test firmware, the device test runner, the conformance suite's devices
 */
const SIM = /sim\/(rig|vm|robot|fleet)"|cli\/sim"|services_fixture"|scripts\/test-device"|\.\/devices"/

function files(): string[] {
  const args = process.argv.slice(2)
  if (args.length) return args
  const out: string[] = []
  for (const dir of ["test/host", "test/conformance"])
    for (const f of readdirSync(join(ROOT, dir)).sort()) if (f.endsWith(".test.ts")) out.push(`${dir}/${f}`)
  return out
}

function lane(name: string, list: string[]): Promise<{ name: string; code: number; out: string; ms: number }> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    if (!list.length) return resolve({ name, code: 0, out: "", ms: 0 })
    const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...list], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    child.once("close", (code, signal) => resolve({ name, code: code ?? (signal ? 1 : 0), out, ms: Date.now() - t0 }))
  })
}

const all = files()
const sim = all.filter((f) => SIM.test(readFileSync(join(ROOT, f), "utf8")))
const rest = all.filter((f) => !sim.includes(f))
console.log(`# test:host: ${sim.length} files in the simulator lane, ${rest.length} in the other, side by side`)
const ends = [sim, rest].map((l, i) =>
  lane(i ? "other" : "simulator", l).then((r) => {
    process.stdout.write(`# ---- ${r.name} lane (${l.length} files) ----\n${r.out}# ---- ${r.name} lane: exit ${r.code} after ${(r.ms / 1000).toFixed(0)} s ----\n`)
    return r
  }),
)
void Promise.all(ends).then((results) => {
  process.exitCode = results.some((r) => r.code !== 0) ? 1 : 0
})
