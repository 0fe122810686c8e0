// `node --import tsx bench/vmprofile.ts [--seconds S] [--write-delay-us N] [--json]`: where the VM's
// process spends its CPU on one MQTT call against one raw frame echo, and what its answer's socket
// write costs (docs/benchmarks.md, "Where an MQTT call's time goes", stop 33). Not part of
// `npm run bench`: it explains `mqtt_rtt_ratio`, it is not a target. `--write-delay-us N` busy-waits
// N us before each of the program's writes: an echo's answer then comes as late as a call's.
//
// The test firmware runs in the VM with its MQTT link on the embedded broker; one host sends echoes
// back to back for S seconds (default 6), then calls AddTwoInts back to back for S seconds. Meanwhile
// the VM's process profiles itself (bench/vmprofile-hook.cjs, loaded with NODE_OPTIONS=--require,
// started and stopped by a command file and SIGUSR2). Each sample's own function is put in one category: the
// interpreter's bytecode loop, its property reads by name, allocation and collection, calls, the
// rest of the interpreter (all WebAssembly), the socket writes (`writeBuffer`: the system call), other
// JavaScript of the process, idle. The figures are CPU microseconds per round trip; the machine's
// other load shows in them (run it alone).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { startBroker } from "../packages/host/src/mqtt/broker"
import { startRig } from "../packages/host/src/sim/rig"
import { connect } from "../packages/host/src/client/node"
import { mqttTransport, type MqttNode } from "../packages/host/src/client/mqtt"
import { online } from "./mqtt"
import { sleep } from "./measure"

interface CallFrame {
  functionName: string
  url: string
}
interface Profile {
  nodes: { id: number; callFrame: CallFrame }[]
  samples: number[]
  timeDeltas: number[]
}

/** categories, the first that matches a WebAssembly function's name wins */
const WASM: [string, RegExp][] = [
  ["bytecode loop", /^devs_vm_exec_opcodes$/],
  ["property reads by name", /^(lookup|strlen|devs_img_get_utf8|devs_string_get_utf8|devs_object_get_attached|devs_maplike_get_no_bind|devs_is_string|devs_img_stridx_ok|devs_get_static_utf8)$/],
  ["allocation and GC", /^(__memset|__memcpy|memcpy|find_free_block|devs_gc.*|scan_gc_obj|mark_.*|jd_alloc.*|devs_any_try_alloc.*|devs_buffer_try_alloc.*|devs_.*_try_alloc.*)$/],
  ["calls", /^(devs_fiber_call_function|devs_function_bind|devs_vm_pop_arg.*|devs_fiber_.*)$/],
]
const CATEGORIES = [...WASM.map(([n]) => n), "rest of the interpreter", "socket writes", "other JavaScript", "idle"]

function category(cf: CallFrame): string {
  if (cf.url.startsWith("wasm")) {
    for (const [name, re] of WASM) if (re.test(cf.functionName)) return name
    return "rest of the interpreter"
  }
  if (cf.functionName === "writeBuffer" || cf.functionName === "writev") return "socket writes"
  if (cf.functionName === "(idle)") return "idle"
  return "other JavaScript"
}

/** CPU microseconds per category (and per WebAssembly function) in one profile */
function tally(p: Profile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]))
  const cats = new Map<string, number>()
  const fns = new Map<string, number>()
  p.samples.forEach((id, i) => {
    const cf = byId.get(id)
    const us = p.timeDeltas[i] ?? 0
    if (!cf) return
    const c = category(cf)
    cats.set(c, (cats.get(c) ?? 0) + us)
    if (cf.url.startsWith("wasm")) fns.set(cf.functionName, (fns.get(cf.functionName) ?? 0) + us)
  })
  return { cats, fns }
}

async function profiled(dir: string, pid: number, k: number, seconds: number, once: () => Promise<unknown>) {
  writeFileSync(join(dir, "cmd"), `start ${k}`)
  process.kill(pid, "SIGUSR2")
  const started = join(dir, `started-${k}`)
  for (let i = 0; !existsSync(started); i++) {
    if (i > 200) throw new Error("the VM's process did not start its profile")
    await sleep(10)
  }
  let n = 0
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    await once()
    n++
  }
  writeFileSync(join(dir, "cmd"), `stop ${k}`)
  process.kill(pid, "SIGUSR2")
  const file = join(dir, `${k}.cpuprofile`)
  for (let i = 0; !existsSync(file); i++) {
    if (i > 1000) throw new Error("the VM's process wrote no profile")
    await sleep(10)
  }
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile & { error?: string }
  if (p.error) throw new Error(`the VM's profile failed: ${p.error}`)
  const w = JSON.parse(readFileSync(join(dir, `${k}.writes.json`), "utf8")) as { n: number; us: number }
  return { n, writes: w.n / n, usPerWrite: w.n ? w.us / w.n : 0, ...tally(p) }
}

async function main() {
  const args = process.argv.slice(2)
  const json = args.includes("--json")
  const si = args.indexOf("--seconds")
  const seconds = si >= 0 ? Number(args[si + 1]) : 6
  if (!(seconds > 0)) throw new Error("--seconds: a positive number")
  const di = args.indexOf("--write-delay-us")
  const delayUs = di >= 0 ? Number(args[di + 1]) : 0
  if (!(delayUs >= 0)) throw new Error("--write-delay-us: a number of microseconds")
  const dir = mkdtempSync(join(tmpdir(), "vmprofile-"))
  const broker = await startBroker({ port: 0 })
  const before = process.env.NODE_OPTIONS
  process.env.NODE_OPTIONS = `${before ? before + " " : ""}--require ${join(__dirname, "vmprofile-hook.cjs")}`
  process.env.VMPROF_DIR = dir
  process.env.VMPROF_WRITE_DELAY_US = String(delayUs)
  let rig: Awaited<ReturnType<typeof startRig>> | undefined
  let node: MqttNode | undefined
  try {
    rig = await startRig({ firmware: "test/firmware/services_fw.ts", mqtt: { url: broker.url, name: "bench" } })
    if (before === undefined) delete process.env.NODE_OPTIONS
    else process.env.NODE_OPTIONS = before
    delete process.env.VMPROF_DIR
    delete process.env.VMPROF_WRITE_DELAY_US
    node = (await connect({ transport: mqttTransport({ url: broker.url, robot: "bench" }) })) as MqttNode
    await online(node)
    await node.listServices({ timeoutMs: 30000 })
    const pidFile = join(dir, "pid")
    if (!existsSync(pidFile)) throw new Error("the VM's process did not load bench/vmprofile-hook.cjs")
    const pid = Number(readFileSync(pidFile, "utf8"))
    const add = node.createClient(AddTwoInts, "add_two_ints")
    const probe = new Uint8Array(32)
    const n = node
    for (let i = 0; i < 200; i++) {
      await n.echo(probe)
      await add.call({ a: 1n, b: 2n })
    }
    const t0 = performance.now()
    const echo = await profiled(dir, pid, 0, seconds, () => n.echo(probe))
    let k = 0
    const t1 = performance.now()
    const call = await profiled(dir, pid, 1, seconds, () => add.call({ a: BigInt(k++), b: 1n }))
    const per = (m: Map<string, number>, key: string, count: number) => (m.get(key) ?? 0) / count
    const rows = CATEGORIES.map((c) => ({ category: c, echo_us: per(echo.cats, c, echo.n), call_us: per(call.cats, c, call.n) }))
    const fnNames = new Set([...echo.fns.keys(), ...call.fns.keys()])
    const fns = [...fnNames]
      .map((f) => ({ fn: f, echo_us: per(echo.fns, f, echo.n), call_us: per(call.fns, f, call.n) }))
      .sort((a, b) => b.call_us - b.echo_us - (a.call_us - a.echo_us))
      .slice(0, 15)
    const rtt = { echo_ms: (t1 - t0) / echo.n, call_ms: (performance.now() - t1) / call.n }
    const writes = { echo_per_rtt: echo.writes, call_per_rtt: call.writes, echo_us_per_write: echo.usPerWrite, call_us_per_write: call.usPerWrite }
    if (json) {
      console.log(JSON.stringify({ seconds, write_delay_us: delayUs, echoes: echo.n, calls: call.n, rtt, writes, categories: rows, functions: fns }, null, 1))
      return
    }
    const f = (x: number) => x.toFixed(1).padStart(8)
    console.log(`${echo.n} echoes, ${call.n} calls, ${seconds} s each${delayUs ? `, each write of the program's delayed ${delayUs} us` : ""}`)
    console.log(`round trip (ms, with the profile running): echo ${rtt.echo_ms.toFixed(3)}, call ${rtt.call_ms.toFixed(3)}`)
    console.log(`the program's socket writes per round trip: echo ${echo.writes.toFixed(2)}, call ${call.writes.toFixed(2)}; wall time each (us): echo ${echo.usPerWrite.toFixed(1)}, call ${call.usPerWrite.toFixed(1)}`)
    console.log(`\nVM process CPU per round trip (us):`)
    console.log(`${"".padEnd(26)}${"echo".padStart(8)}${"call".padStart(8)}${"diff".padStart(8)}`)
    for (const r of rows) console.log(`${r.category.padEnd(26)}${f(r.echo_us)}${f(r.call_us)}${f(r.call_us - r.echo_us)}`)
    const sum = (k: "echo_us" | "call_us") => rows.filter((r) => r.category !== "idle").reduce((a, r) => a + r[k], 0)
    console.log(`${"busy, all but idle".padEnd(26)}${f(sum("echo_us"))}${f(sum("call_us"))}${f(sum("call_us") - sum("echo_us"))}`)
    console.log("\nWebAssembly functions adding most to a call (us per round trip):")
    for (const r of fns) console.log(`${r.fn.slice(0, 40).padEnd(42)}${f(r.echo_us)}${f(r.call_us)}${f(r.call_us - r.echo_us)}`)
  } finally {
    await node?.close()
    await rig?.close()
    await broker.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`vmprofile: ${(e as Error).message}`)
    process.exit(1)
  },
)
