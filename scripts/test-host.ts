// `npm run test:host`: the host and conformance test files in lanes that run side by side.
// The simulator files (those that boot the DeviceScript VM) run in two lanes, one file at a time in
// each: a rig holds the flock of its hub port, so files on one port take turns anyway, and the two
// lanes use two ports, 8081 and 8091 (ROBOT_SIM_PORT, packages/host/src/transport/hubport.ts, moves the
// rig's hub, the VM's connection and the lock). The files that must have 8081 (see PIN) run in the
// 8081 lane, and so do the few that must have the machine to themselves (see SOLO): last, once the
// other lanes have ended. The other files go to whichever simulator lane is free, longest first
// (SECONDS). The other lane holds the files that need no VM (codecs, CLI, bridge, broker, browser),
// one file at a time. All three start at once. Each lane's output is printed whole when it ends, so none interleaves with another;
// the exit code is 1 if any lane failed. A file is a simulator file when its text names the VM's
// parts (see SIM); one put in the other lane by mistake still works (it waits for the lock) but
// costs time.
// Usage: node --import tsx scripts/test-host.ts [file...]   (default: test/host/*.test.ts test/conformance/*.test.ts)
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { basename, join } from "node:path"

const ROOT = join(__dirname, "..")
/**
 * what a file that boots the VM (or builds firmware) imports: the rig, the VM, the simulated robot
 * or fleet, `robot sim`, the test firmware, the device test runner, the conformance suite's devices
 */
const SIM = /sim\/(rig|vm|robot|fleet)"|cli\/sim"|services_fixture"|scripts\/test-device"|\.\/devices"/
/**
 * what a simulator file that must run on 8081 names: the real `devs devtools` (its ports are fixed:
 * `devtools: true`, or `devs devtools` spawned), a CLI told `--devtools ws://127.0.0.1:8081`, 8081's
 * lock in a message it checks, or `robot sim` started as a user starts it (harness/simstart.ts:
 * 8081's lock, the bridge on 9090)
 */
const PIN = /8081|devtools: true|harness\/simstart"/
/**
 * Simulator files that run alone, last, once the other two lanes have ended, and why: their checks
 * hold only while their VM gets the CPU when the wall clock says, and a second VM or the other lane
 * on the 2 cores took it. In the one simulator lane there was before, its alphabetical order ran
 * them after the other lane had ended: alone, as here.
 */
const SOLO: Record<string, string> = {
  "robot_sim.test.ts":
    "the simulated wheels turn in wall-clock time and `rotate 90` must report under 110 degrees (2 encoder clicks of 9 degrees over); " +
    "at the default speed (about 216 degrees/s), beside the other lane, or the other lane and a second VM, it reported 112.5 in 3 runs of 6, alone 99-103.5 in 5 of 5 " +
    "(the test now turns at half that speed)",
  "soak.test.ts": "1,000 hostile frames/s in wall-clock time: beside a second VM and the other lane, the slowed VM fell behind them and ran its heap out (PANIC 60004)",
}
/** The second simulator lane's hub port (not 8082/8083: `devs devtools` has those). */
const SECOND_PORT = 8091
/**
 * Seconds each simulator file took in its lane (in the runs that brought the two lanes in, on the
 * shared 2-core machine, rounded): the lanes take the longest first, so that the last files are
 * short and the lanes end together. A file not listed counts as DEFAULT_SECONDS.
 */
const SECONDS: Record<string, number> = {
  "mqtt_device.test.ts": 140,
  "soak.test.ts": 90,
  "services_v2.test.ts": 60,
  "agreement.test.ts": 50,
  "conformance.test.ts": 50,
  "packages.test.ts": 40,
  "cli_action.test.ts": 35,
  "bridge_sim.test.ts": 35,
  "robot_sim.test.ts": 35,
  "services_attack.test.ts": 30,
  "services.test.ts": 20,
  "cli_sim_start.test.ts": 20,
  "robot_doctor.test.ts": 22,
  "settled_ranges.test.ts": 17,
  "actions.test.ts": 17,
  "mqtt_fleet_vm.test.ts": 17,
  "services_faults.test.ts": 14,
  "cli_sim_fleet.test.ts": 14,
  "bridge_actions.test.ts": 10,
  "rosbridge_actions.test.ts": 8,
  "records_device.test.ts": 8,
  "link_loss.test.ts": 30,
  "services_hostloss.test.ts": 7,
  "transport_devtools.test.ts": 6,
  "cli_sim.test.ts": 3,
  "layers.test.ts": 2,
  "portlock.test.ts": 1,
}
const DEFAULT_SECONDS = 30

function files(): string[] {
  const args = process.argv.slice(2)
  if (args.length) return args
  const out: string[] = []
  for (const dir of ["test/host", "test/conformance"])
    for (const f of readdirSync(join(ROOT, dir)).sort()) if (f.endsWith(".test.ts")) out.push(`${dir}/${f}`)
  return out
}

interface Run {
  code: number
  out: string
  ms: number
}

/** `node --test` on `list`, one file at a time; `env` replaces the environment when given. */
function nodeTest(list: string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    if (!list.length) return resolve({ code: 0, out: "", ms: 0 })
    const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...list], { cwd: ROOT, env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (out += d))
    child.once("close", (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), out, ms: Date.now() - t0 }))
  })
}

function report(name: string, count: number, r: Run, extra = "") {
  process.stdout.write(`# ---- ${name} lane (${count} files) ----\n${r.out}${extra}# ---- ${name} lane: exit ${r.code} after ${(r.ms / 1000).toFixed(0)} s ----\n`)
}

/**
 * A simulator lane on hub port `port`: takes the first file of `queue` it may run (the 8091 lane:
 * none of `only8081`) until none is left, each in its own `node --test` (a file goes to whichever
 * lane is free, so a lane's files are known only as it goes), after what `wait(f)` returns has
 * settled; prints its output and each file's time when it ends.
 */
async function simLane(port: number, queue: string[], only8081: Set<string>, wait: (f: string) => Promise<void> | undefined = () => undefined): Promise<Run> {
  const name = `simulator ${port}`
  const t0 = Date.now()
  // the 8081 lane runs with no ROBOT_SIM_PORT (8081 is the default everywhere); the other names its port
  const env: NodeJS.ProcessEnv = { ...process.env }
  if (port === 8081) delete env.ROBOT_SIM_PORT
  else env.ROBOT_SIM_PORT = String(port)
  let out = ""
  let code = 0
  const times: string[] = []
  for (;;) {
    const i = queue.findIndex((f) => port === 8081 || !only8081.has(f))
    if (i < 0) break
    const f = queue.splice(i, 1)[0]!
    const w0 = Date.now()
    await wait(f)
    const waited = Date.now() - w0 >= 1000 ? `, after waiting ${((Date.now() - w0) / 1000).toFixed(0)} s for the other lanes to end` : ""
    const r = await nodeTest([f], env)
    out += r.out
    if (r.code !== 0) code = 1
    times.push(`# ${name}: ${f} ${(r.ms / 1000).toFixed(0)} s${waited}${r.code !== 0 ? ` (exit ${r.code})` : ""}\n`)
  }
  const r = { code, out, ms: Date.now() - t0 }
  report(name, times.length, r, times.join(""))
  return r
}

const all = files()
const sim = all.filter((f) => SIM.test(readFileSync(join(ROOT, f), "utf8")))
const rest = all.filter((f) => !sim.includes(f))
const pinned = new Set(sim.filter((f) => PIN.test(readFileSync(join(ROOT, f), "utf8"))))
const solo = new Set(sim.filter((f) => SOLO[basename(f)] !== undefined))
const secs = (f: string) => SECONDS[basename(f)] ?? DEFAULT_SECONDS
// the 8081-only files first (only the 8081 lane may take them), so that the longest files of the
// rest are left for both lanes; the files that run alone last
const rank = (f: string) => (pinned.has(f) && !solo.has(f) ? 0 : solo.has(f) ? 2 : 1)
const queue = [...sim].sort((a, b) => rank(a) - rank(b) || secs(b) - secs(a))
console.log(
  `# test:host: ${sim.length} files in the simulator lanes (8081, ${SECOND_PORT}; ${new Set([...pinned, ...solo]).size} of them on 8081 only, ${solo.size} of those alone at the end), ${rest.length} in the other, side by side`,
)
const other = nodeTest(rest).then((r) => {
  report("other", rest.length, r)
  return r
})
let othersEnded!: () => void
const alone = new Promise<void>((r) => (othersEnded = r))
const only8081 = new Set([...pinned, ...solo])
const first = simLane(8081, queue, only8081, (f) => (solo.has(f) ? alone : undefined))
const second = simLane(SECOND_PORT, queue, only8081)
void Promise.all([other, second]).then(() => othersEnded())
void Promise.all([other, first, second]).then((results) => {
  process.exitCode = results.some((r) => r.code !== 0) ? 1 : 0
})
