// cli_call_ms, for bench/run.ts: what a user waits for one `robot service call`, a new process
// each time (start-up, connect, discovery, the call), through a bridge in front of the VM.
import { spawn } from "node:child_process"
import { join } from "node:path"
import { serviceTypes } from "../packages/host/src/gen/interfaces"
import type { ServiceNode } from "../packages/host/src/client/node"
import { startBridge } from "../packages/host/src/bridge/server"
import { ROOT } from "../packages/host/src/sim/vm"
import { pct } from "./measure"

/** p50 wall time (ms) of `robot service call /add_two_ints` as a new process, through a bridge in front of `node`. */
export async function cliCallFigure(node: ServiceNode): Promise<number> {
  const bridge = await startBridge({ node, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes })
  try {
    const t: number[] = []
    for (let i = 0; i <= 10; i++) {
      const t0 = performance.now()
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, [join(ROOT, "packages/host/bin/robot.js"), "service", "call", "/add_two_ints", `{a: ${i}, b: 1}`, "--url", bridge.wsUrl], { cwd: ROOT })
        let out = ""
        p.stdout.on("data", (d) => (out += d))
        p.stderr.on("data", (d) => (out += d))
        p.on("close", (code) => resolve({ code, out }))
      })
      if (r.code !== 0 || !r.out.includes(`sum=${i + 1}`)) throw new Error(`robot service call failed (${r.code}): ${r.out}`)
      if (i > 0) t.push(performance.now() - t0) // the first builds the CLI's bundle if it is stale
    }
    return Math.round(pct(t, 50))
  } finally {
    await bridge.close()
  }
}
