// Bridge benchmark. Two figures:
//  (a) bridge_rtt_ratio: an AddTwoInts call through the rosbridge WebSocket divided by the same
//      call through the host client directly, on the same device (p50 of interleaved calls, one at
//      a time). Target <= 1.05. Meaningful against a real device (the VM, through the rig); against
//      the in-memory node only the added milliseconds (bridge_added_ms_p50) mean something.
//  (a') foxglove_rtt_ratio: the same call through the Foxglove WebSocket protocol (a CDR request,
//      as Foxglove sends for ROS 2 schemas) divided by the direct call; foxglove_call_p50_ms is its
//      p50. Target <= 1.05. Measured in the same interleaved loop as (a).
//  (b) bridge_calls_per_s: AddTwoInts calls/s the bridge sustains against the in-memory device
//      (host/bridge/memory.ts: handlers on the host, no robot), from 4 WebSocket clients with 16
//      calls in flight each. Target >= 5000.
// `benchBridge()` is what bench/run.ts includes; `node --import tsx bench/bridge.ts [--no-rig]`
// runs it alone (with the rig: test/firmware/services_fw.ts in the VM for figure (a)).
import WebSocket from "ws"
import type { RobotNode } from "../host/client/api"
import { AddTwoInts, serviceTypes } from "../host/gen/interfaces"
import { demoMemoryNode } from "../host/bridge/demo"
import { startBridge } from "../host/bridge/server"

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
}

function p50(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

/** A bare rosbridge client: one socket, calls matched by id (so client cost stays out of the figure). */
async function rawClient(url: string) {
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  const waiting = new Map<string, (m: any) => void>()
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString())
    const w = waiting.get(m.id)
    if (w) {
      waiting.delete(m.id)
      w(m)
    }
  })
  let n = 0
  return {
    call(service: string, args: unknown): Promise<any> {
      const id = `b${n++}`
      return new Promise((resolve, reject) => {
        waiting.set(id, (m) => (m.result ? resolve(m.values) : reject(new Error(String(m.values)))))
        ws.send(JSON.stringify({ op: "call_service", id, service, args }))
      })
    },
    close: () => ws.close(),
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
  const out: BridgeBenchResult = {
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
  let rig: { node: RobotNode; close(): Promise<void> } | undefined
  if (!process.argv.includes("--no-rig")) {
    const { startRig } = require("../host/sim/rig") as typeof import("../host/sim/rig")
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
