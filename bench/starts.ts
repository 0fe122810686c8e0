// `node --import tsx bench/starts.ts [--json] [--starts N]`: `robot sim` (what `npm start` runs)
// started N times in a row (20 by default) on a loaded machine, as a new user starts it: no --wait,
// one busy process per core running throughout (issue 17: on a busy machine start-up refused, 12
// times of 18, with its own simulator lock "taken by another program"). Each start must open 9090
// (its own bridge answering GET /api/services) and stop with exit 0 on Ctrl+C, 9090 free again,
// before the next starts. test/host/cli_sim_start.test.ts does 3 of these in npm test.
//   sim_starts_ok          starts that opened 9090 and stopped cleanly, of those run ("20/20")
//   sim_start_mean_ms      mean time from the spawn of `robot sim` to its bridge answering;
//   sim_start_max_ms       and the slowest (the firmware build is cached after the first start)
//   sim_stop_mean_ms       mean time from Ctrl+C to its exit
//   sim_start_waits, sim_start_waited_s  starts run again because another program (another suite)
//                          held the simulator lock (not failures: such a start cannot be judged), and
//                          the time spent waiting until nobody held or awaited it (at most 30 min)
//   sim_start_load_processes  busy processes running meanwhile
// A bridge of another program on 9090 makes the starts unjudgeable: the figures then say so.
import { spawn } from "node:child_process"
import { availableParallelism } from "node:os"
import { startsInARow } from "../harness/simstart"

const argv = process.argv.slice(2)
const json = argv.includes("--json")
const i = argv.indexOf("--starts")
const n = i >= 0 ? Number(argv[i + 1]) : 20
const log = (m: string) => {
  if (!json) console.error(m)
}

async function main() {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--starts takes a whole number of starts, got ${argv[i + 1]}`)
  const cores = availableParallelism()
  // one busy process per core: the scheduler then runs a just-released lock helper late, which is
  // when the start-up race of issue 17 showed
  const load = Array.from({ length: cores }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }))
  let r: Awaited<ReturnType<typeof startsInARow>>
  try {
    log(`robot sim: ${n} starts in a row, ${cores} busy processes running`)
    r = await startsInARow(n, { log, waitBudgetMs: 1_800_000 })
  } finally {
    for (const p of load) p.kill("SIGKILL")
  }
  const mean = (xs: number[]) => (xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : null)
  const out = {
    sim_starts_ok: r.notJudged ? `${r.ok}/${r.runs}, then not judged: ${r.notJudged.split("\n")[0]}` : `${r.ok}/${r.runs}`,
    sim_start_mean_ms: mean(r.startMs),
    sim_start_max_ms: r.startMs.length ? Math.round(Math.max(...r.startMs)) : null,
    sim_stop_mean_ms: mean(r.stopMs),
    sim_start_waits: r.waited,
    sim_start_waited_s: Math.round(r.waitedMs / 1000),
    sim_start_load_processes: cores,
  }
  for (const f of r.failures) console.error(`# ${f}`)
  if (json) process.stdout.write(JSON.stringify(out) + "\n")
  else for (const [k, v] of Object.entries(out)) process.stdout.write(`${k.padEnd(28)}${v}\n`)
  // (failed starts are figures, not a crash of the benchmark: run.ts reports them against the target)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
