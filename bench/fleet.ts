// `node --import tsx bench/fleet.ts [--json]`: a fleet of in-memory MQTT robots (packages/host/src/mqtt/memrobot.ts)
// on the embedded broker (packages/host/src/mqtt/broker.ts), called through one host directory
// (packages/host/src/client/mqttdir.ts), the calls spread over every robot.
//   fleet_robots             robots connected, online and answering (each its own MQTT connection)
//   fleet_calls_per_s        AddTwoInts calls/s, `--inflight` callers in a closed loop, round-robin
//                            over all robots (each call a CALLX frame in, a RESULT frame out, DONE)
//   fleet_call_p50/p99_ms    latency of those calls
//   mqtt_echo_rtt_p50_ms, mqtt_call_rtt_p50_ms, mqtt_rtt_ratio  one robot, idle, one at a time: a raw
//                            echo/pong against an AddTwoInts call (the protocol's cost over the floor)
//   fleet_connect_s          time for all robots to connect and announce `online`
//   fleet_first_calls_s      time for the first call to every robot (list + session + call each)
//   fleet_cpu_*              CPU seconds per second of run, per process part (where the time goes)
// Layout (`--layout`): `split` (default): the robots run in one child process, the broker and the
// host directory in this one (robots are other machines in real life; both cores are used);
// `one`: everything in this process. Options: --robots N (1000), --seconds S (5) counted after --warmup W (2),
// --inflight K (256), --done-delay MS (the nodes' DONE delay, default MQTT_DONE_DELAY_MS).
// The robots are a load-test model, not the firmware: this measures the broker and the host side.
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { DEFAULT_TIMEOUT_MS } from "../packages/host/src/client/calls"
import { MqttDirectory } from "../packages/host/src/client/mqttdir"
import { startBroker } from "../packages/host/src/mqtt/broker"
import { MemoryRobot } from "../packages/host/src/mqtt/memrobot"

const argv = process.argv.slice(2)
const opt = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def
}
const json = argv.includes("--json")
const log = (m: string) => {
  if (!json) console.error(m)
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

/** Starts `count` robots named `<prefix><i>` on `url`, 50 connecting at a time. */
async function startRobots(url: string, count: number, prefix: string): Promise<MemoryRobot[]> {
  const robots: MemoryRobot[] = []
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) =>
      MemoryRobot.start({ url, name: `${prefix}${i + j}` }, (r) => r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: BigInt.asIntN(64, q.a + q.b) }))),
    )
    robots.push(...(await Promise.all(batch)))
  }
  return robots
}

/** The child of the split layout: robots until stdin closes; reports its CPU use on request. */
async function robotProcess(url: string, count: number) {
  const robots = await startRobots(url, count, "rover")
  process.stdout.write("ready\n")
  let cpu = process.cpuUsage()
  const rl = createInterface({ input: process.stdin })
  rl.on("line", (l) => {
    if (l === "mark") cpu = process.cpuUsage()
    else if (l === "cpu") {
      const d = process.cpuUsage(cpu)
      process.stdout.write(`cpu ${(d.user + d.system) / 1e6} ${process.memoryUsage().rss}\n`)
    }
  })
  rl.on("close", async () => {
    await Promise.all(robots.map((r) => r.close()))
    process.exit(0)
  })
}

async function main() {
  if (argv.includes("--robot-process")) return robotProcess(opt("url", ""), Number(opt("robots", "1000")))
  const n = Number(opt("robots", "1000"))
  const seconds = Number(opt("seconds", "5"))
  const inflight = Number(opt("inflight", "256"))
  const warmup = Number(opt("warmup", "2"))
  const doneDelay = argv.includes("--done-delay") ? Number(opt("done-delay", "1000")) : undefined
  const layout = opt("layout", "split")
  const broker = await startBroker({ port: 0 })
  let robots: MemoryRobot[] = []
  let child: ReturnType<typeof spawn> | undefined
  let childLines: AsyncIterator<string> | undefined
  const t0 = performance.now()
  const dir = await MqttDirectory.connect({ url: broker.url, doneDelayMs: doneDelay })
  if (layout === "one") robots = await startRobots(broker.url, n, "rover")
  else {
    child = spawn(process.execPath, ["--import", "tsx", __filename, "--robot-process", "--url", broker.url, "--robots", String(n)], { stdio: ["pipe", "pipe", "inherit"] })
    childLines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
    const first = await childLines.next()
    if (first.value !== "ready") throw new Error(`robot process: ${String(first.value)}`)
  }
  await dir.waitFor({ count: n, timeoutMs: 120000 })
  const connectS = (performance.now() - t0) / 1000
  log(`${n} robots online in ${connectS.toFixed(1)} s (${layout})`)

  const names = dir.robots().map((r) => r.name)
  const clients = names.map((name) => dir.nodeFor(name).createClient(AddTwoInts, "/add_two_ints"))
  const t1 = performance.now()
  // the first call to each robot lists its services and opens a session; 200 at a time
  for (let i = 0; i < clients.length; i += 200) await Promise.all(clients.slice(i, i + 200).map((c) => c.call({ a: 1n, b: 2n }, { timeoutMs: 30000 })))
  const firstS = (performance.now() - t1) / 1000
  log(`first call to each robot: ${firstS.toFixed(1)} s`)

  const childCpu = async (): Promise<{ cpu: number; rss: number }> => {
    if (!child) return { cpu: 0, rss: 0 }
    child.stdin!.write("cpu\n")
    const l = await childLines!.next()
    const [, cpu, rss] = String(l.value).split(" ")
    return { cpu: Number(cpu), rss: Number(rss) }
  }
  // a closed loop of `inflight` callers; the first `warmup` seconds are not counted (JIT, buffers)
  const lat: number[] = []
  let calls = 0
  let errors = 0
  let counting = false
  let start = performance.now()
  let cpu0 = process.cpuUsage()
  const warmupEnd = start + warmup * 1000
  const end = warmupEnd + seconds * 1000
  const startCounting = setTimeout(() => {
    counting = true
    start = performance.now()
    cpu0 = process.cpuUsage()
    child?.stdin!.write("mark\n")
  }, warmup * 1000)
  await Promise.all(
    Array.from({ length: inflight }, async (_, k) => {
      let i = k
      while (performance.now() < end) {
        const t = performance.now()
        try {
          await clients[i % clients.length]!.call({ a: BigInt(i), b: 1n }, { timeoutMs: DEFAULT_TIMEOUT_MS })
          if (counting) {
            lat.push(performance.now() - t)
            calls++
          }
        } catch {
          if (counting) errors++
        }
        i += inflight
      }
    }),
  )
  clearTimeout(startCounting)
  const elapsed = (performance.now() - start) / 1000
  const mine = process.cpuUsage(cpu0)
  const theirs = await childCpu()

  // the link's floor on an idle fleet: one robot, one at a time, echo (a raw message and its pong)
  // against a call (CALLX -> RESULT); 300 each, interleaved
  const one = dir.nodeFor(names[0]!)
  const add = clients[0]!
  const echoMs: number[] = []
  const callMs: number[] = []
  for (let i = 0; i < 300; i++) {
    let t = performance.now()
    await one.echo(new Uint8Array(8).fill(i & 255))
    echoMs.push(performance.now() - t)
    t = performance.now()
    await add.call({ a: BigInt(i), b: 1n })
    callMs.push(performance.now() - t)
  }
  const out = {
    fleet_robots: n,
    fleet_calls_per_s: Math.round(calls / elapsed),
    fleet_call_p50_ms: Number(pct(lat, 50).toFixed(2)),
    fleet_call_p99_ms: Number(pct(lat, 99).toFixed(2)),
    fleet_call_errors: errors,
    /** idle round trips on one robot: raw echo, a call, and their ratio (the protocol's cost over the link's floor) */
    mqtt_echo_rtt_p50_ms: Number(pct(echoMs, 50).toFixed(3)),
    mqtt_call_rtt_p50_ms: Number(pct(callMs, 50).toFixed(3)),
    mqtt_rtt_ratio: Number((pct(callMs, 50) / pct(echoMs, 50)).toFixed(2)),
    fleet_connect_s: Number(connectS.toFixed(2)),
    fleet_first_calls_s: Number(firstS.toFixed(2)),
    fleet_layout: layout,
    fleet_inflight: inflight,
    /** CPU seconds per second: broker + host directory (+ robots in the `one` layout) */
    fleet_cpu_main: Number(((mine.user + mine.system) / 1e6 / elapsed).toFixed(2)),
    /** CPU seconds per second of the robots' process (split layout) */
    fleet_cpu_robots: Number((theirs.cpu / elapsed).toFixed(2)),
    /** CPU ms per call, all processes: the cost that does not depend on what else runs on the machine */
    fleet_cpu_ms_per_call: Number((((mine.user + mine.system) / 1e6 + theirs.cpu) * 1000 / Math.max(1, calls)).toFixed(3)),
    fleet_rss_main_mb: Math.round(process.memoryUsage().rss / 1e6),
    fleet_rss_robots_mb: Math.round(theirs.rss / 1e6),
  }
  log(`${out.fleet_calls_per_s} calls/s over ${n} robots, p50 ${out.fleet_call_p50_ms} ms, p99 ${out.fleet_call_p99_ms} ms, ${errors} errors`)
  await dir.close()
  await Promise.all(robots.map((r) => r.close()))
  if (child) {
    const exited = new Promise<void>((resolve) => child!.once("exit", () => resolve()))
    child.stdin!.end()
    await exited
  }
  await broker.close()
  if (json) console.log(JSON.stringify(out, null, 2))
  else console.log(out)
}

main().catch((e) => {
  console.error(`bench/fleet: ${(e as Error).stack ?? e}`)
  process.exit(1)
})
