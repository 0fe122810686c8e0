// Bridge benchmark. Two figures:
//  (a) bridge_rtt_ratio: an AddTwoInts call through the rosbridge WebSocket divided by the same
//      call through the host client directly, on the same device (p50 of interleaved calls, one at
//      a time). Target <= 1.05. Meaningful against a real device (the VM, through the rig); against
//      the in-memory node only the added milliseconds (bridge_added_ms_p50) mean something.
//  (a') foxglove_rtt_ratio: the same call through the Foxglove WebSocket protocol (a CDR request,
//      as Foxglove sends for ROS 2 schemas) divided by the direct call; foxglove_call_p50_ms is its
//      p50. Target <= 1.05. Measured in the same interleaved loop as (a).
//  (b) bridge_calls_per_s: AddTwoInts calls/s the bridge sustains against the in-memory device
//      (packages/host/src/demo/memory.ts: handlers on the host, no robot), from 4 WebSocket clients with 16
//      calls in flight each. Target >= 5000.
//  (c) bridge_victim_call_p99_ms: p99 of a small call (AddTwoInts on an in-memory robot, through
//      rosbridge and the HTTP API in turn) from a second client on 127.0.0.1 while one client runs
//      each abuse of issue 20 for 3 s against a bridge in front of a demo fleet of 200 robots:
//      hostile robot-name globs (`*` x 63 + `Z`, several per request), 40 POSTs announcing a body they
//      never send, batches of 100 concurrent UXGA pictures, bursts of 50,000 rosbridge calls (issue
//      16), 10,000 subscriptions to every Foxglove channel and 20,000 rosbridge topics again and
//      again, waves of 3,000 WebSockets (the last three from 127.0.0.2: another client address). Per
//      abuse (`_glob`, `_stalled_bodies`, `_pictures`, `_messages`, `_subscriptions`,
//      `_connections`) and the max of them. Target <= 3 x bridge_ws_call_p50_ms.
//      bridge_victim_call_max_ms: the victim's slowest call during all of them.
// `benchBridge()` is what bench/run.ts includes; `node --import tsx bench/bridge.ts [--no-rig]`
// runs it alone (with the rig: test/firmware/services_fw.ts in the VM for figure (a)), and
// `--victim` runs figure (c) alone (no rig).
import { spawn } from "node:child_process"
import * as path from "node:path"
import WebSocket from "ws"
import type { RobotNode } from "../packages/host/src/client/api"
import { AddTwoInts, serviceTypes } from "../packages/host/src/gen/interfaces"
import { demoFleet, demoMemoryNode } from "../packages/host/src/demo/demo"
import { rawRosClient } from "../harness/rosbridge"
import { startBridge } from "../packages/host/src/bridge/server"

export interface BridgeBenchResult {
  /** calls/s through the bridge against the in-memory device (4 clients x 16 in flight) */
  bridge_calls_per_s: number
  /** p50 of a call through the bridge minus p50 of the same call to the in-memory node directly (ms) */
  bridge_added_ms_p50: number
  /** (a), only when a device node was given */
  bridge_rtt_ratio?: number
  bridge_ws_call_p50_ms?: number
  bridge_direct_call_p50_ms?: number
  /** (a'), only when a device node was given */
  foxglove_rtt_ratio?: number
  foxglove_call_p50_ms?: number
  /** p50 of a Foxglove call minus p50 of the direct call, in-memory device (ms) */
  foxglove_added_ms_p50: number
  /** (c): max over the three abuses of the second client's p99 (ms) */
  bridge_victim_call_p99_ms: number
  bridge_victim_call_p99_ms_glob: number
  bridge_victim_call_p99_ms_stalled_bodies: number
  bridge_victim_call_p99_ms_pictures: number
  bridge_victim_call_p99_ms_messages: number
  bridge_victim_call_p99_ms_subscriptions: number
  bridge_victim_call_p99_ms_connections: number
  /** the slowest of the victim's calls during all the attacks */
  bridge_victim_call_max_ms: number
  /** the second client's p50 with no abuse (ms) */
  bridge_victim_call_p50_ms_idle: number
}

function p50(xs: number[]): number {
  return pct(xs, 50)
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

/** A bare rosbridge client (harness/rosbridge.ts): `call` resolves with the values, rejects with a failed call's message. */
async function rawClient(url: string) {
  const c = await rawRosClient(url)
  return {
    call: (service: string, args: unknown): Promise<any> => c.call(service, args).then((m) => (m.result ? m.values : Promise.reject(new Error(String(m.values))))),
    close: () => c.close(),
  }
}

/** A bare Foxglove client: one socket, the service id from advertiseServices, calls matched by call id. */
async function rawFoxglove(url: string, service: string) {
  const ws = new WebSocket(url, ["foxglove.websocket.v1"])
  const waiting = new Map<number, (data: Buffer | Error) => void>()
  let serviceId: number | undefined
  const advertised = new Promise<void>((resolve, reject) => {
    ws.once("error", reject)
    ws.on("message", (d, isBinary) => {
      const b = d as Buffer
      if (!isBinary) {
        const m = JSON.parse(b.toString())
        if (m.op === "advertiseServices") {
          const s = m.services.find((x: { name: string }) => x.name === service)
          if (s) {
            serviceId = s.id
            resolve()
          }
        } else if (m.op === "serviceCallFailure") waiting.get(m.callId)?.(new Error(m.message))
        return
      }
      if (b[0] !== 3) return
      const callId = b.readUInt32LE(5)
      const w = waiting.get(callId)
      if (w) {
        waiting.delete(callId)
        w(b.subarray(13 + b.readUInt32LE(9)))
      }
    })
  })
  await advertised
  let n = 1
  return {
    call(request: Uint8Array): Promise<Buffer> {
      const callId = n++
      const head = Buffer.alloc(16)
      head[0] = 2
      head.writeUInt32LE(serviceId!, 1)
      head.writeUInt32LE(callId, 5)
      head.writeUInt32LE(3, 9)
      head.write("cdr", 13)
      return new Promise((resolve, reject) => {
        waiting.set(callId, (r) => (r instanceof Error ? reject(r) : resolve(r)))
        ws.send(Buffer.concat([head, request]))
      })
    },
    close: () => ws.close(),
  }
}

/** Interleaved direct and bridged calls to `service` on `node`; p50 of each. */
async function compare(node: RobotNode, service: string, calls: number) {
  const bridge = await startBridge({ node, port: 0, typeRegistry: serviceTypes })
  const ws = await rawClient(bridge.wsUrl)
  const fox = await rawFoxglove(bridge.wsUrl, service)
  const direct = node.createClient(AddTwoInts, service)
  const d: number[] = []
  const b: number[] = []
  const fx: number[] = []
  try {
    for (let i = 0; i < 20; i++) {
      await direct.call({ a: 1n, b: BigInt(i) })
      await ws.call(service, { a: 1, b: i })
      await fox.call(AddTwoInts.request.encode({ a: 1n, b: BigInt(i) }))
    }
    for (let i = 0; i < calls; i++) {
      let t = performance.now()
      const r1 = await direct.call({ a: BigInt(i), b: 1n })
      d.push(performance.now() - t)
      t = performance.now()
      const r2 = await ws.call(service, { a: i, b: 1 })
      b.push(performance.now() - t)
      const req = AddTwoInts.request.encode({ a: BigInt(i), b: 2n })
      t = performance.now()
      const r3 = await fox.call(req)
      fx.push(performance.now() - t)
      if (r1.sum !== BigInt(i + 1) || r2.sum !== i + 1 || AddTwoInts.response.decode(r3).sum !== BigInt(i + 2)) throw new Error(`wrong sum at call ${i}`)
    }
  } finally {
    ws.close()
    fox.close()
    await bridge.close()
  }
  return { direct: p50(d), ws: p50(b), foxglove: p50(fx) }
}

/** calls/s through the bridge against the in-memory node, `clients` x `depth` in flight for `ms`. */
async function throughput(ms: number, clients = 4, depth = 16): Promise<number> {
  const node = demoMemoryNode()
  // the in-flight bound counts per client address: these clients all come from 127.0.0.1
  const bridge = await startBridge({ node, port: 0, typeRegistry: serviceTypes, maxInFlightPerClient: clients * depth })
  const conns = await Promise.all(Array.from({ length: clients }, () => rawClient(bridge.wsUrl)))
  let done = 0
  let stop = false
  try {
    const t0 = performance.now()
    await Promise.all(
      conns.flatMap((c) =>
        Array.from({ length: depth }, async (_, k) => {
          for (let i = 0; !stop; i++) {
            const r = await c.call("/add_two_ints", { a: i, b: k })
            if (r.sum !== i + k) throw new Error("wrong sum")
            done++
            if (performance.now() - t0 > ms) stop = true
          }
        }),
      ),
    )
    return Math.round(done / ((performance.now() - t0) / 1000))
  } finally {
    for (const c of conns) c.close()
    await bridge.close()
    await node.close()
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// The attacker of (c), a process of its own (as an attacker is: its own work must not be counted
// in the bridge's event loop). argv: mode, bridge port, ms. Prints "go" once the attack is under way.
const ATTACKER = String.raw`
const [mode, port, ms] = process.argv.slice(1)
// (another client machine: the bridge bounds connections per address, and the victim's is 127.0.0.1)
const ATTACKER_ADDRESS = "127.0.0.2"
const http = require("node:http"), net = require("node:net")
const end = Date.now() + Number(ms)
const go = () => process.stdout.write("go\n")
const get = (path, method = "GET", body) => new Promise((resolve) => {
  const req = http.request({ host: "127.0.0.1", port: Number(port), path, method, headers: body ? { "content-type": "application/json" } : {} }, (res) => { res.resume(); res.on("end", resolve) })
  req.on("error", resolve)
  req.end(body)
})
async function main() {
  if (mode === "glob") {
    const hostile = ["*".repeat(63) + "Z", "*a".repeat(32), "*" + "?".repeat(31) + "*Z", "*r*o*b*o*t*1*2*3*4*5*6*7*8*9*0*Z"]
    go()
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (Date.now() < end) {
        await get("/api/robots?robots=" + encodeURIComponent(hostile[0]))
        await get("/api/group/add_two_ints?robots=" + encodeURIComponent(hostile.join(",")), "POST", "{}")
      }
    }))
  } else if (mode === "stall") {
    const socks = await Promise.all(Array.from({ length: 40 }, () => new Promise((resolve, reject) => {
      const s = net.connect(Number(port), "127.0.0.1", () => {
        s.write("POST /api/services/robot1/add_two_ints HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        resolve(s)
      })
      s.on("data", () => {})
      s.on("error", () => {})
    })))
    go()
    while (Date.now() < end) await new Promise((r) => setTimeout(r, 20))
    for (const s of socks) s.destroy()
  } else if (mode === "pictures") {
    const WebSocket = require("ws")
    const ws = new WebSocket("ws://127.0.0.1:" + port)
    await new Promise((r) => ws.once("open", r))
    const waiting = new Map()
    ws.on("message", (d) => { const m = JSON.parse(d.toString()); const w = waiting.get(m.id); if (w) { waiting.delete(m.id); w() } })
    let n = 0
    const call = () => new Promise((resolve) => { const id = "p" + n++; waiting.set(id, resolve); ws.send(JSON.stringify({ op: "call_service", id, service: "/robot1/take_picture", args: { resolution: 6, quality: 80 } })) })
    go()
    while (Date.now() < end) await Promise.all(Array.from({ length: 100 }, call))
    ws.close()
  } else if (mode === "messages") {
    // a burst of 50,000 calls of a service that does not exist every 300 ms, answers read and not waited for
    const WebSocket = require("ws")
    const ws = new WebSocket("ws://127.0.0.1:" + port, { localAddress: ATTACKER_ADDRESS })
    await new Promise((r) => ws.once("open", r))
    ws.on("message", () => {})
    const msg = JSON.stringify({ op: "call_service", id: "x", service: "/no_such_service", args: {} })
    go()
    while (Date.now() < end) {
      // (what the bridge has not taken yet waits in this process: at most a few bursts)
      if (ws.bufferedAmount < 8 << 20) for (let i = 0; i < 50000; i++) ws.send(msg)
      await new Promise((r) => setTimeout(r, 300))
    }
    ws.terminate()
  } else if (mode === "subscriptions") {
    // a Foxglove client subscribing 10,000 times to every channel, and 20,000 rosbridge topics, again and again
    const WebSocket = require("ws")
    go()
    while (Date.now() < end) {
      const fox = new WebSocket("ws://127.0.0.1:" + port, ["foxglove.websocket.v1"], { localAddress: ATTACKER_ADDRESS })
      const ros = new WebSocket("ws://127.0.0.1:" + port, { localAddress: ATTACKER_ADDRESS })
      const channels = await new Promise((resolve) => fox.on("message", (d, binary) => {
        if (binary) return
        const m = JSON.parse(d.toString())
        if (m.op === "advertise") resolve(m.channels)
      }))
      await new Promise((r) => (ros.readyState === 1 ? r() : ros.once("open", r)))
      let id = 1
      for (const ch of channels) for (let k = 0; k < 10000; k += 5000) fox.send(JSON.stringify({ op: "subscribe", subscriptions: Array.from({ length: 5000 }, () => ({ id: id++, channelId: ch.id })) }))
      for (let i = 0; i < 20000; i++) ros.send(JSON.stringify({ op: "subscribe", topic: "/t" + i + "/_action/status" }))
      await new Promise((r) => ros.send("{}", r))
      await new Promise((r) => setTimeout(r, 200))
      fox.close()
      ros.close()
    }
  } else if (mode === "connections") {
    // waves of 3,000 Foxglove WebSockets, each wave closed once all have opened or been refused
    const WebSocket = require("ws")
    go()
    while (Date.now() < end) {
      const all = Array.from({ length: 3000 }, () => {
        const w = new WebSocket("ws://127.0.0.1:" + port, ["foxglove.websocket.v1"], { localAddress: ATTACKER_ADDRESS })
        w.on("error", () => {})
        return new Promise((r) => { w.once("open", () => r(w)); w.once("unexpected-response", () => r(null)); w.once("error", () => r(null)) })
      })
      const open = await Promise.all(all)
      for (const w of open) w && w.terminate()
    }
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
`

/** Starts the attacker process; resolves once its attack is under way, with its end. */
async function attack(mode: Exclude<VictimMode, "idle">, port: number, ms: number): Promise<Promise<void>> {
  const child = spawn(process.execPath, ["-e", ATTACKER, mode, String(port), String(ms)], { cwd: path.join(__dirname, ".."), stdio: ["ignore", "pipe", "pipe"] })
  let err = ""
  child.stderr.on("data", (d) => (err += d))
  const ended = new Promise<void>((resolve, reject) => child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`the ${mode} attacker failed (${code}): ${err}`)))))
  await Promise.race([new Promise<void>((resolve) => child.stdout.on("data", (d) => String(d).includes("go") && resolve())), ended])
  return ended
}

/**
 * (c): the second client's small calls (rosbridge and HTTP in turn, 5 ms apart) while `mode`'s
 * attacker runs for `ms` (none for "idle"); their latencies. Throws if one of them fails: the
 * victim must be served, not refused.
 */
type VictimMode = "idle" | "glob" | "stall" | "pictures" | "messages" | "subscriptions" | "connections"

async function victimDuring(bridge: { url: string; wsUrl: string; port: number }, ms: number, mode: VictimMode): Promise<number[]> {
  const ws = await rawClient(bridge.wsUrl)
  const lat: number[] = []
  try {
    for (let i = 0; i < 20; i++) await ws.call("/robot2/add_two_ints", { a: 1, b: i })
    const attacker = mode === "idle" ? Promise.resolve() : await attack(mode, bridge.port, ms + 500)
    const end = performance.now() + ms
    for (let i = 0; performance.now() < end; i++) {
      const t = performance.now()
      if (i % 2 === 0) {
        const r = await ws.call("/robot2/add_two_ints", { a: i, b: 1 })
        if (r.sum !== i + 1) throw new Error(`victim: wrong sum ${JSON.stringify(r)}`)
      } else {
        const r = await fetch(`${bridge.url}/api/services/robot2/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"a": ${i}, "b": 2}` })
        const body = await r.text()
        if (r.status !== 200 || JSON.parse(body).sum !== i + 2) throw new Error(`victim refused over HTTP: ${r.status} ${body}`)
      }
      lat.push(performance.now() - t)
      await sleep(5)
    }
    await attacker
  } finally {
    ws.close()
  }
  return lat
}

/** The three abuses of issue 20 against a bridge in front of 200 demo robots; the victim's figures. */
export async function benchVictim(log: (s: string) => void = () => {}, ms = 3000) {
  const fleet = demoFleet(200)
  const bridge = await startBridge({ node: fleet, port: 0, typeRegistry: serviceTypes })
  try {
    log("bridge: a second client's small calls, idle ...")
    const idle = await victimDuring(bridge, 1000, "idle")
    log("bridge: ... while another process sends hostile robot-name globs ...")
    const glob = await victimDuring(bridge, ms, "glob")
    log("bridge: ... while another process holds 40 POSTs whose body never comes ...")
    const stalled = await victimDuring(bridge, ms, "stall")
    log("bridge: ... while another process asks for 100 UXGA pictures at once, again and again ...")
    const pictures = await victimDuring(bridge, ms, "pictures")
    log("bridge: ... while another process sends bursts of 50,000 rosbridge calls ...")
    const messages = await victimDuring(bridge, ms, "messages")
    log("bridge: ... while another process subscribes 10,000 times to every Foxglove channel and to 20,000 rosbridge topics, again and again ...")
    const subscriptions = await victimDuring(bridge, ms, "subscriptions")
    log("bridge: ... while another process opens waves of 3,000 WebSockets ...")
    const connections = await victimDuring(bridge, ms, "connections")
    const p99 = (xs: number[]) => Number(pct(xs, 99).toFixed(2))
    const out = {
      bridge_victim_call_p99_ms_glob: p99(glob),
      bridge_victim_call_p99_ms_stalled_bodies: p99(stalled),
      bridge_victim_call_p99_ms_pictures: p99(pictures),
      bridge_victim_call_p99_ms_messages: p99(messages),
      bridge_victim_call_p99_ms_subscriptions: p99(subscriptions),
      bridge_victim_call_p99_ms_connections: p99(connections),
      bridge_victim_call_p50_ms_idle: Number(p50(idle).toFixed(2)),
    }
    const top = (xs: number[]) => Math.max(...xs).toFixed(1)
    log(`  victim calls: ${idle.length} idle, ${glob.length} (globs), ${stalled.length} (stalled bodies), ${pictures.length} (pictures), ${messages.length} (messages), ${subscriptions.length} (subscriptions), ${connections.length} (connections)`)
    log(`  slowest: ${top(glob)} (globs), ${top(stalled)} (stalled bodies), ${top(pictures)} (pictures), ${top(messages)} (messages), ${top(subscriptions)} (subscriptions), ${top(connections)} (connections) ms`)
    const { bridge_victim_call_p50_ms_idle: _idle, ...attacks } = out
    const all = [glob, stalled, pictures, messages, subscriptions, connections]
    return { bridge_victim_call_p99_ms: Math.max(...Object.values(attacks)), ...out, bridge_victim_call_max_ms: Number(Math.max(...all.flat()).toFixed(2)) }
  } finally {
    await bridge.close()
    await fleet.close()
  }
}

/**
 * Runs the bridge benchmark. With `device` (a node with AddTwoInts at `service`, e.g. the rig's
 * node on test/firmware/services_fw.ts) it also measures the WebSocket/direct ratio on it.
 */
export async function benchBridge(options: { device?: RobotNode; service?: string; calls?: number; log?: (s: string) => void } = {}): Promise<BridgeBenchResult> {
  const log = options.log ?? (() => {})
  log("bridge: calls/s against the in-memory device ...")
  const cps = await throughput(3000)
  const mem = demoMemoryNode()
  const m = await compare(mem, "/add_two_ints", 2000)
  await mem.close()
  const victim = await benchVictim(log)
  const out: BridgeBenchResult = {
    ...victim,
    bridge_calls_per_s: cps,
    bridge_added_ms_p50: Number((m.ws - m.direct).toFixed(3)),
    foxglove_added_ms_p50: Number((m.foxglove - m.direct).toFixed(3)),
  }
  if (options.device) {
    log("bridge: WebSocket vs direct on the device ...")
    const r = await compare(options.device, options.service ?? "/add_two_ints", options.calls ?? 200)
    out.bridge_ws_call_p50_ms = Number(r.ws.toFixed(3))
    out.bridge_direct_call_p50_ms = Number(r.direct.toFixed(3))
    out.bridge_rtt_ratio = Number((r.ws / r.direct).toFixed(3))
    out.foxglove_call_p50_ms = Number(r.foxglove.toFixed(3))
    out.foxglove_rtt_ratio = Number((r.foxglove / r.direct).toFixed(3))
  }
  return out
}

async function main() {
  const json = process.argv.includes("--json")
  const log = (s: string) => {
    if (!json) console.error(s)
  }
  if (process.argv.includes("--victim")) {
    const v = await benchVictim(log)
    if (json) console.log(JSON.stringify(v))
    else for (const [k, x] of Object.entries(v)) console.log(`${k.padEnd(42)}${x}`)
    return
  }
  let rig: { node: RobotNode; close(): Promise<void> } | undefined
  if (!process.argv.includes("--no-rig")) {
    const { startRig } = require("../packages/host/src/sim/rig") as typeof import("../packages/host/src/sim/rig")
    log("starting the rig (test/firmware/services_fw.ts in the DeviceScript VM) ...")
    rig = await startRig({ firmware: "test/firmware/services_fw.ts" })
  }
  try {
    const r = await benchBridge({ device: rig?.node, log })
    if (json) console.log(JSON.stringify(r))
    else {
      console.log(`bridge_calls_per_s      ${r.bridge_calls_per_s}  (in-memory device, target >= 5000)`)
      console.log(`bridge_added_ms_p50     ${r.bridge_added_ms_p50}  (in-memory device, one call at a time)`)
      console.log(`foxglove_added_ms_p50   ${r.foxglove_added_ms_p50}  (in-memory device, one call at a time)`)
      console.log(`bridge_victim_call_p99_ms  ${r.bridge_victim_call_p99_ms}  (max of: globs ${r.bridge_victim_call_p99_ms_glob}, stalled bodies ${r.bridge_victim_call_p99_ms_stalled_bodies}, pictures ${r.bridge_victim_call_p99_ms_pictures}, messages ${r.bridge_victim_call_p99_ms_messages}, subscriptions ${r.bridge_victim_call_p99_ms_subscriptions}, connections ${r.bridge_victim_call_p99_ms_connections}; idle p50 ${r.bridge_victim_call_p50_ms_idle}; target <= 3 x bridge_ws_call_p50_ms)`)
      if (r.bridge_rtt_ratio !== undefined) {
        console.log(`bridge_ws_call_p50_ms   ${r.bridge_ws_call_p50_ms}`)
        console.log(`bridge_direct_call_p50  ${r.bridge_direct_call_p50_ms}`)
        console.log(`bridge_rtt_ratio        ${r.bridge_rtt_ratio}  (VM device, target <= 1.05)`)
        console.log(`foxglove_call_p50_ms    ${r.foxglove_call_p50_ms}`)
        console.log(`foxglove_rtt_ratio      ${r.foxglove_rtt_ratio}  (VM device, target <= 1.05)`)
      }
    }
  } finally {
    await rig?.close()
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
