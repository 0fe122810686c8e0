// The benchmarks bench/run.ts runs as child processes, each after the VM rig is closed: the fleet,
// the actions and the `robot sim` starts. Each prints its figures as JSON; they are folded into
// the run's, the fleet's under fleet_ (its round trips are in-memory robots', kept apart from the VM's).
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { ROOT } from "../packages/host/src/sim/vm"

/**
 * Runs `node --import tsx bench/<file> --json`; throws with the end of its stderr when it fails.
 * Its `# ` lines on stderr (notes such as why one of the 20 starts failed) are passed on either way.
 */
function child(file: string, timeoutMs: number): string {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "bench", file), "--json"], { cwd: ROOT, encoding: "utf8", timeout: timeoutMs })
  if (r.status !== 0) throw new Error(`bench/${file} failed (${r.status}):\n${r.stderr.slice(-2000)}`)
  for (const line of r.stderr.split("\n")) if (line.startsWith("# ")) process.stderr.write(`bench/${file} ${line}\n`)
  return r.stdout.trim()
}

export function childFigures(log: (msg: string) => void): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  log("fleet: in-memory MQTT robots on the embedded broker (bench/fleet.ts, a child process)")
  // (its JSON is the last thing it prints, indented over several lines)
  const text = child("fleet.ts", 300000)
  const f = JSON.parse(text.slice(text.lastIndexOf("\n{") + 1)) as Record<string, unknown>
  for (const [k, v] of Object.entries(f)) out[k.startsWith("fleet_") ? k : `fleet_${k}`] = v
  log("actions: accept, feedback rate, exactly once, cancel to motors stopped (bench/actions.ts, a child process)")
  Object.assign(out, JSON.parse(child("actions.ts", 1_200_000).split("\n").pop()!) as Record<string, unknown>)
  // (each `robot sim` takes the simulator lock and 9090 itself)
  log("start-up: `robot sim` 20 times in a row on a loaded machine (bench/starts.ts, a child process)")
  Object.assign(out, JSON.parse(child("starts.ts", 2_400_000).split("\n").pop()!) as Record<string, unknown>)
  return out
}
