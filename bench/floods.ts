// flood_restarts, for bench/run.ts: the device's own host sends 2 s of hostile frames at 1,000/s,
// LIST and POLL floods, 8 oversized CALLs every 100 ms and random garbage; the device must not
// restart.
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { DEFAULT_TIMEOUT_MS } from "../packages/host/src/client/calls"
import { JACDAC_PAYLOAD, encodeCall, encodeList, encodePoll, packRecords } from "../packages/host/src/client/records"
import type { Rig } from "../packages/host/src/sim/rig"
import { rng } from "../harness/link"
import { Echo } from "../harness/services"
import { sleep } from "./measure"

/** floods the device with every kind of hostile frame; returns how many times its program restarted */
export async function floodRestarts(rig: Rig): Promise<number> {
  const n = rig.node
  const boots = new Set<number>([n.limits!.bootId])
  const off = n.onDeviceRecord((r) => {
    if (r.kind === "hello") boots.add(r.bootId)
  })
  const name = new TextEncoder().encode("/echo")
  const rand = rng(5)
  const lists = packRecords(Array.from({ length: 78 }, () => encodeList()))[0]!
  const polls = packRecords(Array.from({ length: 15 }, (_, i) => encodePoll({ session: n.session, seq: 0x5000_0000 + i, have: 0 })))[0]!
  const t0 = performance.now()
  for (let i = 0; i < 1000; i++) {
    if (i % 50 === 0) {
      const big = Array.from({ length: 8 }, (_, k) => encodeCall({ session: n.session, seq: 0x6100_0000 + i * 8 + k, ack: 0, timeoutMs: 300, hash32: Echo.hash32, total: 12000, name, data: new Uint8Array(8) }))
      for (const p of packRecords(big)) await n.sendRawFrame(p)
    }
    await n.sendRawFrame(i % 10 === 0 ? lists : polls)
    const g = new Uint8Array(1 + Math.floor(rand() * (JACDAC_PAYLOAD - 1)))
    for (let j = 0; j < g.length; j++) g[j] = Math.floor(rand() * 256)
    await n.sendRawFrame(g)
    const ahead = (i + 1) * 2 - (performance.now() - t0)
    if (ahead > 20) await sleep(ahead)
  }
  await n.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 1n }, { timeoutMs: DEFAULT_TIMEOUT_MS })
  off()
  return boots.size - 1 + (rig.vm.log.some((l) => /PANIC/.test(l)) ? 1 : 0)
}
