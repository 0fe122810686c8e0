// The lossy link's figures, for bench/run.ts: a second host behind harness/link.ts's model of a
// serial link (5% loss each way, a 2 KB queue) makes 2,000 counted calls, then takes 256 KiB.
import type { Rig } from "../packages/host/src/sim/rig"
import { linkModel } from "../harness/link"
import { Echo, echo, pattern } from "../harness/services"

/**
 * Exactly once: the firmware counts its mode-4 handler runs, read on the clean host before and
 * after (that read is a run too). The 256 KiB goodput is given against `cleanBytesPerS`, the same
 * response on the clean link.
 */
export async function lossyFigures(rig: Rig, cleanBytesPerS: number, log: (msg: string) => void) {
  log("lossy link (5% loss each way, 2 KB queue): 2,000 counted calls, then 256 KiB")
  const ec = rig.node.createClient(Echo, "echo")
  const model = linkModel({ loss: 0.05, queueBytes: 2048, bytesPerSec: 100000, seed: 11 })
  const lossy = await rig.connect({ pipes: model.pipes })
  await lossy.listServices({ timeoutMs: 30000 })
  const lec = lossy.createClient(Echo, "echo")
  const runs0 = Number((await ec.call(echo("", { mode: 4 }))).text)
  const seen = new Set<number>()
  let calls = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (calls < 2000) {
        calls++
        seen.add(Number((await lec.call(echo("", { mode: 4 }), { timeoutMs: 60000 })).text))
      }
    }),
  )
  const runs1 = Number((await ec.call(echo("", { mode: 4 }))).text)
  const handlerRuns = runs1 - runs0 - 1
  const size = 256 * 1024
  const tl = performance.now()
  const lossyR = await lec.call(echo("", { size }), { timeoutMs: 300000 })
  const lossyBps = Echo.response.encode(lossyR).length / ((performance.now() - tl) / 1000)
  if (Buffer.compare(Buffer.from(lossyR.data), Buffer.from(pattern(size))) !== 0) throw new Error("lossy 256 KiB: wrong bytes")
  log(`  link: ${JSON.stringify(model.stats)}`)
  return {
    lossy_calls: calls,
    lossy_calls_distinct_answers: seen.size,
    lossy_calls_exactly_once: +(handlerRuns / calls).toFixed(4),
    lossy_bulk_ratio: +(lossyBps / cleanBytesPerS).toFixed(3),
  }
}
