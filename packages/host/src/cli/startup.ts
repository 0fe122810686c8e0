// Start-up helpers shared by `robot sim` and `robot bridge`: the simulator lock (--wait), start-up
// progress, a port check. Their own module so that the two verbs do not import each other (they
// did: an import circle between cli/bridge.ts and cli/sim.ts).
import * as net from "node:net"
import { acquirePortLock, PortLockBusyError } from "../sim/vm"

/** `--wait [seconds]`: how long to wait for the simulator lock (ms); 0 without --wait. */
export function lockWaitMs(wait: string | boolean | undefined): number {
  if (wait === undefined || wait === false) return 0
  if (wait === true) return 300_000
  const n = Number(wait)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--wait takes a number of seconds, got ${wait}`)
  return Math.ceil(n * 1000)
}

/** Why a start-up step can be slow, said when it takes more than SLOW_MS. */
const SLOW_MS = 5000
const WHY_SLOW: [RegExp, string][] = [
  [/^building/, "the first build of a firmware compiles it (20-30 s); another build holding /tmp/devs.lock makes this one wait"],
  [/^taking the simulator port lock/, "another `robot sim` or a test suite is using the simulator (--wait was given)"],
  [/^starting the DeviceScript VM/, "the VM loads and checks the firmware; a busy machine slows it down"],
  [/^VM up/, "the firmware starts its services and binds the simulated hardware"],
]

/** Start-up progress on stderr: each step with the time since start, and why when one is slow. */
export function startupProgress(write: (line: string) => void = (l) => console.error(l), slowMs = SLOW_MS): { step: (s: string) => void; done: () => void } {
  const t0 = performance.now()
  let timer: NodeJS.Timeout | undefined
  const at = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`
  return {
    step(s) {
      clearTimeout(timer)
      write(`[sim] ${at()}: ${s}`)
      const why = WHY_SLOW.find(([re]) => re.test(s))?.[1]
      if (why) {
        timer = setTimeout(() => write(`[sim] ${at()}: still ${s.split(" (")[0]}: ${why}`), slowMs)
      }
    },
    done() {
      clearTimeout(timer)
    },
  }
}

/** Resolves if host:port can be listened on now; else rejects with the bridge's message for a taken port. */
export function ensurePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once("error", (e: NodeJS.ErrnoException) => {
      // the CLI's calls go to devs.json's bridge.port (default 9090): another port needs --url on each
      if (e.code === "EADDRINUSE") {
        reject(new Error(`port ${port} on ${host} is in use (another bridge or rosbridge running?): pass --port <n>, and --url ws://${host}:<n> to every \`robot service\` call (or set bridge.port in devs.json: both then use it)`))
      }
      else reject(e)
    })
    srv.listen(port, host, () => srv.close(() => resolve()))
  })
}

/** The message for a simulator lock held by another program. */
export function lockAdvice(msg: string): string {
  return `cannot start the simulator: ${msg}. Stop that program, or run again with --wait [seconds] to wait until it is done.`
}

/**
 * Fails at once, naming the holder, when the simulator lock is taken (the rig takes it for real
 * later, with `acquirePortLock(waitMs)`). The probe's lock is gone when this resolves (release()
 * closes the locked file itself), so the rig's `flock -n` right after cannot meet it (issue 17).
 */
export async function probeSimulatorLock(lockFile?: string): Promise<void> {
  try {
    const lock = await acquirePortLock(0, lockFile)
    lock.release()
  } catch (e) {
    throw e instanceof PortLockBusyError ? new Error(lockAdvice(e.message)) : e
  }
}
