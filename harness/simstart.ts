// `robot sim` started as a user starts it (a new process, no --wait) several times in a row, each
// start waited for until its bridge answers on 127.0.0.1:9090 and then stopped with Ctrl+C (SIGINT)
// before the next (issue 17: `npm start` refused to start on its own simulator lock). Used by
// test/host/cli_sim_start.test.ts (3 starts) and the benchmark (bench/starts.ts: 20 starts).
import { spawn, type ChildProcess } from "node:child_process"
import { readFileSync, statSync } from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { acquirePortLock } from "../packages/host/src/sim/vm"

const ROOT = path.join(__dirname, "..")
const BRIDGE = "http://127.0.0.1:9090"
const LOCK = "/tmp/port8081.lock"

/**
 * True while a process holds the simulator lock or waits for it (/proc/locks lists both: a waiter
 * with "->"); undefined where /proc/locks cannot be read.
 */
function lockInUse(): boolean | undefined {
  try {
    const ino = statSync(LOCK).ino
    const re = new RegExp(`\\bFLOCK\\b.*:${ino} `)
    return readFileSync("/proc/locks", "utf8").split("\n").some((l) => re.test(l))
  } catch {
    return undefined
  }
}

/**
 * Waits until no other program holds the simulator lock or waits for it (true), or until
 * `deadline` (false). A start without --wait can only take the lock while nobody is queued for it:
 * the test suites of other engineers on this machine queue with `flock -w` and take it the moment
 * it is released, so waiting for it to be released alone lost every race to them.
 */
async function lockFree(deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const busy = lockInUse()
    if (busy === undefined) {
      // (no /proc/locks: wait until the lock can be taken, as a queued suite would)
      const l = await acquirePortLock(Math.max(1000, deadline - Date.now())).catch(() => undefined)
      l?.release()
      return l !== undefined
    }
    if (!busy) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

/** True when 127.0.0.1:`port` can be listened on now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once("error", () => resolve(false))
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)))
  })
}

/** One `robot sim` whose bridge answers: its process, its output so far, and how to stop it. */
export interface RunningSim {
  readonly child: ChildProcess
  /** ms from the spawn until its own bridge answered GET /api/services */
  readonly startMs: number
  /** stdout and stderr so far */
  out(): string
  /** Ctrl+C: resolves with the exit code, the ms it took and whether 9090 was free again after it */
  stop(): Promise<{ code: number | null; ms: number; portFreed: boolean }>
}

export type SimStart =
  | { kind: "up"; sim: RunningSim }
  /** another program (`holder`, a pid) held the simulator lock: not this start's fault */
  | { kind: "busy"; holder: number; out: string }
  /** 9090 was taken by another program: the start cannot be judged */
  | { kind: "port"; out: string }
  /** anything else: the start failed */
  | { kind: "failed"; out: string }

/**
 * Starts `robot sim` and waits until its own bridge answers: the 200 of GET /api/services alone is
 * not enough (another program's bridge on 9090 answers too), so its output must also say `bridge
 * ready` with the dashboard on 9090, which it prints only after its bridge listened there.
 */
export async function startSim(timeoutMs = 120_000): Promise<SimStart> {
  const t0 = performance.now()
  const child = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), "sim"], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] })
  let out = ""
  child.stdout!.on("data", (d) => (out += d))
  child.stderr!.on("data", (d) => (out += d))
  // ("close": after the exit and the last of its output)
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)))
  const deadline = Date.now() + timeoutMs
  const ours = () => /dashboard: http:\/\/127\.0\.0\.1:9090\//.test(out) && /bridge ready/.test(out)
  let up = false
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    if (ours() && (await fetch(`${BRIDGE}/api/services`).then((r) => r.status === 200, () => false))) {
      up = true
      break
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  const startMs = performance.now() - t0
  if (!up) {
    const hung = child.exitCode === null && child.signalCode === null
    if (hung) child.kill("SIGKILL")
    await exited
    if (/port 9090 on 127\.0\.0\.1 is in use/.test(out)) return { kind: "port", out }
    // the holder named by the refusal: a pid other than this start's own is another program
    const m = /port8081\.lock is taken \(flock exit 1\): pid (\d+) /.exec(out)
    if (m && Number(m[1]) !== child.pid) return { kind: "busy", holder: Number(m[1]), out }
    return { kind: "failed", out: `${hung ? `no bridge on 9090 after ${timeoutMs} ms` : `exit ${child.exitCode ?? child.signalCode}`}:\n${out}` }
  }
  return {
    kind: "up",
    sim: {
      child,
      startMs,
      out: () => out,
      async stop() {
        const t = performance.now()
        child.kill("SIGINT")
        let timer: NodeJS.Timeout | undefined
        const code = await Promise.race([
          exited,
          new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), 60_000))),
        ]).finally(() => clearTimeout(timer))
        if (code === "hung") {
          child.kill("SIGKILL")
          await exited
          return { code: null, ms: performance.now() - t, portFreed: await portFree(9090) }
        }
        return { code, ms: performance.now() - t, portFreed: await portFree(9090) }
      },
    },
  }
}

/** What `startsInARow` saw. */
export interface StartsReport {
  /** starts whose bridge answered and that then stopped with exit 0, 9090 free after */
  ok: number
  /** starts judged (a start refused because another program held the lock is run again, not judged) */
  runs: number
  startMs: number[]
  stopMs: number[]
  /** starts run again after another program's simulator lock refused them, and the ms spent on those starts and waits */
  waited: number
  waitedMs: number
  /** why each failed start failed (with its output) */
  failures: string[]
  /**
   * set when the remaining starts were not run: 9090 was taken by another program, or other
   * programs held the simulator lock for the whole of `waitBudgetMs`
   */
  notJudged?: string
}

/**
 * Runs `robot sim` `n` times in a row, each stopped before the next. `each` runs while a start is
 * up (before its stop). A start refused because another program (another engineer's suite) holds
 * the simulator lock is not counted: the lock is waited for until nobody holds or awaits it and
 * the start is run again, for at most `waitBudgetMs` (default 5 min) spent on refused starts and waits in all.
 */
export async function startsInARow(
  n: number,
  options: { each?: (sim: RunningSim, i: number) => Promise<void>; log?: (line: string) => void; waitBudgetMs?: number } = {},
): Promise<StartsReport> {
  const log = options.log ?? (() => {})
  const budget = options.waitBudgetMs ?? 300_000
  const r: StartsReport = { ok: 0, runs: 0, startMs: [], stopMs: [], waited: 0, waitedMs: 0, failures: [] }
  while (r.runs < n) {
    if (!(await portFree(9090))) {
      r.notJudged = `port 9090 is in use by another program on this machine (before start ${r.runs + 1}): a bridge answering there could not be told from robot sim's`
      return r
    }
    const t0 = Date.now()
    const s = await startSim()
    if (s.kind === "port") {
      r.notJudged = `port 9090 was taken by another program during start ${r.runs + 1}:\n${s.out}`
      return r
    }
    if (s.kind === "busy") {
      r.waited++
      log(`start ${r.runs + 1}: pid ${s.holder} holds the simulator lock; waiting until nobody holds or awaits it, then starting again`)
      const free = await lockFree(t0 + budget - r.waitedMs)
      // (the refused start counts as waiting too: a start that keeps losing the lock ends the run)
      r.waitedMs += Date.now() - t0
      if (!free) {
        r.notJudged = `other programs held or awaited the simulator lock (${LOCK}) for ${Math.round(r.waitedMs / 1000)} s in all (last: pid ${s.holder}): start ${r.runs + 1} and after could not be judged`
        return r
      }
      continue
    }
    r.runs++
    if (s.kind !== "up") {
      r.failures.push(`start ${r.runs} did not open 9090 (${s.kind}): ${s.out}`)
      log(`start ${r.runs}: FAILED (${s.kind})`)
      continue
    }
    r.startMs.push(s.sim.startMs)
    let each = ""
    try {
      await options.each?.(s.sim, r.runs - 1)
    } catch (e) {
      each = (e as Error).message
    }
    const st = await s.sim.stop()
    r.stopMs.push(st.ms)
    const bad = [each, st.code !== 0 ? `exit ${st.code} after Ctrl+C` : "", st.portFreed ? "" : "9090 still taken after it ended"].filter(Boolean)
    if (bad.length) r.failures.push(`start ${r.runs}: ${bad.join("; ")}:\n${s.sim.out()}`)
    else r.ok++
    log(`start ${r.runs}: 9090 after ${(s.sim.startMs / 1000).toFixed(1)} s, stopped in ${(st.ms / 1000).toFixed(1)} s${bad.length ? `: FAILED: ${bad.join("; ")}` : ""}`)
  }
  return r
}
