// What the service runtime costs the device, for bench/run.ts: its bytecode, read from the test
// firmware's build, and the heap each call in flight holds, probed on the running program.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { Rig } from "../packages/host/src/sim/rig"
import { heapFree } from "../harness/heap"

/**
 * Bytecode of the service runtime: the functions the compiler placed in `packages/device/src/rpc/*.ts` and
 * `packages/device/src/lib/services.ts` (the debug info gives each function's position in the concatenated
 * sources), summed exactly.
 */
export function runtimeBytecode(rig: Rig): { runtime: number; total: number } {
  const dbg = JSON.parse(readFileSync(join(rig.firmware.dir, "bytecode-dbg.json"), "utf8")) as {
    sources: { path: string; length: number }[]
    functions: { name: string; location: [number, number]; size: number }[]
  }
  const ranges: [number, number][] = []
  let off = 0
  for (const src of dbg.sources) {
    // (the robot imports the library by name: its sources are under node_modules/@robot-services/device/)
    const p = src.path.replace(/^node_modules\/@robot-services\/device\//, "packages/device/")
    if (p === "packages/device/src/lib/services.ts" || p.startsWith("packages/device/src/rpc/")) ranges.push([off, off + src.length])
    off += src.length
  }
  if (!ranges.length) throw new Error("the service runtime is not among the firmware's sources")
  let runtime = 0
  let total = 0
  for (const f of dbg.functions) {
    total += f.size
    if (ranges.some(([a, b]) => f.location[0] >= a && f.location[0] < b)) runtime += f.size
  }
  return { runtime, total }
}

/** Free heap with no call held, and what each of 6 held calls takes from it. */
export async function heapFigures(rig: Rig, log: (msg: string) => void, settled?: RegExp) {
  log("heap probe (five OutOfMemory restarts of the VM program)")
  // the first probe only resets the program, so both measured probes start from the same
  // fresh state (a program that has served calls holds a full de-duplication ring)
  await heapFree(rig, 0)
  const heap0 = await heapFree(rig, 0, settled)
  // (6 held: one host may hold at most maxInFlight - 3 calls beside the probe's own, issue 16).
  // The median of 3: with calls held, single probes of one program spread over 683-1,365 bytes per
  // call (the heap's holes between the held calls' blocks: the probe counts 256-byte buffers)
  const held: number[] = []
  for (let i = 0; i < 3; i++) held.push(await heapFree(rig, 6, settled))
  const heap6 = held.sort((a, b) => a - b)[1]!
  return { heap_bytes_per_inflight_call: Math.round((heap0 - heap6) / 6), heap_free_bytes_idle: heap0 }
}
