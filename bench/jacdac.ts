// The Jacdac link's figures on the VM's test firmware, for bench/run.ts: round trips against the
// raw echo floor, the send floor, bulk and small-call throughput, and what a 256 KiB stream does
// to the small calls beside it.
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { CMD_ECHO, JACDAC_PAYLOAD, ROS_SERVICES_CLASS } from "../packages/host/src/client/records"
import type { ServiceNode } from "../packages/host/src/client/node"
import { jd, type JD } from "../packages/host/src/transport/jacdac"
import { Echo, echo } from "../harness/services"
import { pct, rate, sleep, timed } from "./measure"

/** Raw echo through the `echo` command: resolves with the report's payload. */
function makeEcho(node: ServiceNode) {
  const dev = node.device!
  const idx = dev.services({ serviceClass: ROS_SERVICES_CLASS })[0]!.serviceIndex
  const waiting = new Map<string, () => void>()
  node.bus.on(jd.PACKET_REPORT, (pkt: JD.Packet) => {
    if (pkt.device !== dev || pkt.serviceIndex !== idx || pkt.serviceCommand !== CMD_ECHO) return
    const k = Buffer.from(pkt.data).toString("hex")
    const w = waiting.get(k)
    if (w) {
      waiting.delete(k)
      w()
    }
  })
  let n = 0
  return (): Promise<void> => {
    const payload = new Uint8Array(8)
    new DataView(payload.buffer).setUint32(0, ++n, true)
    return new Promise<void>((resolve, reject) => {
      const k = Buffer.from(payload).toString("hex")
      const t = setTimeout(() => {
        waiting.delete(k)
        reject(new Error("raw echo timed out"))
      }, 5000)
      waiting.set(k, () => {
        clearTimeout(t)
        resolve()
      })
      const pkt = jd.Packet.from(CMD_ECHO, payload)
      pkt.serviceIndex = idx
      void pkt.sendCmdAsync(dev)
    })
  }
}

/**
 * Calls against the raw echo (one at a time), the send floor (8 raw echoes in flight), 64 KiB
 * responses and AddTwoInts with 8 callers. `bulkBytesPerS` is unrounded: mqtt_bulk_vs_jacdac
 * divides by it.
 */
export async function linkFigures(node: ServiceNode, log: (msg: string) => void) {
  const add = node.createClient(AddTwoInts, "add_two_ints")
  const ec = node.createClient(Echo, "echo")
  await add.waitForService()
  const rawEcho = makeEcho(node)
  log("warming up")
  for (let i = 0; i < 20; i++) {
    await rawEcho()
    await add.call({ a: 1n, b: 2n })
  }
  log("echo / call round trips")
  const echoT: number[] = []
  const callT: number[] = []
  for (let i = 0; i < 150; i++) {
    echoT.push(await timed(rawEcho))
    callT.push(await timed(() => add.call({ a: BigInt(i), b: 1n })))
  }
  log("raw send floor (8 echoes in flight)")
  const rawPps = await rate(8, 4000, rawEcho)
  log(`  polls so far ${node.stats.polls}`)
  log("bulk 64 KiB")
  let bulkBytes = 0
  let bulkMs = 0
  for (let i = 0; i < 3; i++) {
    const t = performance.now()
    const r = await ec.call(echo("", { size: 65536 }), { timeoutMs: 60000 })
    bulkMs += performance.now() - t
    bulkBytes += Echo.response.encode(r).length
  }
  const bulkBps = bulkBytes / (bulkMs / 1000)
  log(`  polls so far ${node.stats.polls}`)
  log("small calls, 8 callers")
  const small = await rate(8, 4000, () => add.call({ a: 3n, b: 4n }, { timeoutMs: 20000 }))
  log(`  polls so far ${node.stats.polls}`)
  const echoP50 = pct(echoT, 50)
  const callP50 = pct(callT, 50)
  return {
    figures: {
      echo_rtt_p50_ms: +echoP50.toFixed(2),
      call_rtt_p50_ms: +callP50.toFixed(2),
      call_rtt_p99_ms: +pct(callT, 99).toFixed(2),
      rtt_ratio: +(callP50 / echoP50).toFixed(3),
      raw_packets_per_s: +rawPps.toFixed(1),
      bulk_bytes_per_s: Math.round(bulkBps),
      bulk_ratio: +(bulkBps / (JACDAC_PAYLOAD * rawPps)).toFixed(3),
      small_calls_per_s: +small.toFixed(1),
      small_calls_ratio: +(small / rawPps).toFixed(2),
    },
    bulkBytesPerS: bulkBps,
  }
}

/**
 * AddTwoInts spaced 100 ms apart, idle and then beside a clean 256 KiB response, and back to back
 * for the rest of that stream. `cleanBytesPerS` (the stream's goodput, unrounded) is what the
 * lossy link's 256 KiB is compared with.
 */
export async function streamFigures(node: ServiceNode, log: (msg: string) => void) {
  const add = node.createClient(AddTwoInts, "add_two_ints")
  const ec = node.createClient(Echo, "echo")
  log("idle calls, 100 ms apart")
  const idleT: number[] = []
  for (let i = 0; i < 180; i++) {
    await sleep(100)
    idleT.push(await timed(() => add.call({ a: 1n, b: 1n })))
  }
  log("256 KiB clean, with small calls beside it")
  const size = 256 * 1024
  const duringT: number[] = []
  let bulkDone = false
  const tb = performance.now()
  const big = ec.call(echo("", { size }), { timeoutMs: 120000 }).then((r) => {
    bulkDone = true
    return r
  })
  // spaced 100 ms apart, as the idle calls: does a stream delay an answer? Then back to back for
  // the rest of the stream: how many small calls the link still carries beside it.
  await sleep(300)
  for (let i = 0; i < 180 && !bulkDone; i++) {
    await sleep(100)
    duringT.push(await timed(() => add.call({ a: 2n, b: 2n }, { timeoutMs: 20000 })))
  }
  let backToBack = 0
  const tbb = performance.now()
  while (!bulkDone) {
    await add.call({ a: 3n, b: 3n }, { timeoutMs: 20000 })
    backToBack++
  }
  const backToBackPerS = backToBack / ((performance.now() - tbb) / 1000)
  const bigR = await big
  const cleanBulkBps = Echo.response.encode(bigR).length / ((performance.now() - tb) / 1000)
  return {
    figures: {
      idle_call_rtt_p50_ms: +pct(idleT, 50).toFixed(2),
      idle_call_rtt_p99_ms: +pct(idleT, 99).toFixed(2),
      small_call_p99_during_bulk_ms: +pct(duringT, 99).toFixed(2),
      small_call_p50_during_bulk_ms: +pct(duringT, 50).toFixed(2),
      small_calls_during_bulk: duringT.length,
      back_to_back_calls_per_s_during_bulk: +backToBackPerS.toFixed(1),
      clean_256k_bytes_per_s: Math.round(cleanBulkBps),
    },
    cleanBytesPerS: cleanBulkBps,
  }
}
