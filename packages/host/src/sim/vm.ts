// The DeviceScript VM as a child process: build a firmware entry (under the shared devs lock) into a
// private folder, then run it with `devs run` against a devtools-compatible hub on
// ws://127.0.0.1:8081 (or ROBOT_SIM_PORT's port: transport/hubport.ts). The VM gets its own process group so
// close() kills all of it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { basename, dirname, join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { folderWith } from "../config"
import { DEVTOOLS_PORT, portLockFile, SIM_PORT_ENV, simPort } from "../transport/hubport"

/**
 * The project root: this repository's, four levels up from packages/host/src/sim; in a project
 * that installed the package (node_modules/@robot-services/host/dist/sim), the folder holding
 * that node_modules, five levels up.
 */
export const ROOT = basename(resolve(__dirname, "../../../..")) === "node_modules" ? resolve(__dirname, "../../../../..") : resolve(__dirname, "../../../..")

/** The DeviceScript project `entry` belongs to: the nearest folder above it with a devsconfig.json (else ROOT). */
export function projectOf(entry: string): string {
  return folderWith("devsconfig.json", dirname(entry)) ?? ROOT
}

/** The DeviceScript CLI this package depends on (wherever npm placed it). */
export const DEVS_CLI = join(dirname(require.resolve("@devicescript/cli/package.json", { paths: [ROOT, __dirname] })), "devicescript")
const CLI = DEVS_CLI
const DEVS_LOCK = "/tmp/devs.lock"
const CACHE = "/tmp/rosservices-fw"

export interface BuiltFirmware {
  /** the entry it was built from (absolute) */
  entry: string
  /** private folder with bytecode.devs, bytecode-dbg.json, bytecode-sizes.md */
  dir: string
  /** compiled program size in bytes */
  bytecodeBytes: number
}

function walk(dir: string, out: string[]) {
  if (!existsSync(dir)) return
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (n.endsWith(".ts") || n.endsWith(".md") || n.endsWith(".json")) out.push(p)
  }
}

/** Key over every source a firmware build can read, so an unchanged tree is not rebuilt. */
function sourceKey(entry: string, root: string): string {
  const files: string[] = [entry]
  if (existsSync(join(root, "devsconfig.json"))) files.push(join(root, "devsconfig.json"))
  walk(join(root, "src"), files)
  walk(join(root, "test/firmware"), files)
  walk(join(root, "bench/firmware"), files)
  // the device library, wherever the project's node_modules has it (a workspace link here)
  try {
    walk(dirname(require.resolve("@robot-services/device/package.json", { paths: [root] })), files)
  } catch {
    // not installed: the build reports it
  }
  // a user's project may have no services/ (no specs of its own)
  const services = join(root, "services")
  if (existsSync(services)) for (const n of readdirSync(services).sort()) if (n.endsWith(".md")) files.push(join(services, n))
  const h = createHash("sha256")
  for (const f of files) h.update(f + "\0").update(readFileSync(f)).update("\0")
  return h.digest("hex").slice(0, 20)
}

/**
 * Builds `entry` (path from the project root or absolute) with `devs build` under `flock
 * /tmp/devs.lock`, and copies the outputs to a private cache folder. Reuses a build of identical
 * sources. Throws with the compiler output on failure.
 */
export function buildFirmware(entry: string): BuiltFirmware {
  const abs = resolve(ROOT, entry)
  if (!existsSync(abs)) throw new Error(`firmware entry not found: ${abs} (set devs.json's firmware.entry, or pass --firmware <entry>)`)
  const root = projectOf(abs)
  const dir = join(CACHE, sourceKey(abs, root))
  const devs = join(dir, "bytecode.devs")
  if (!existsSync(devs)) {
    mkdirSync(dir, { recursive: true })
    const script =
      `"${process.execPath}" "${CLI}" build "$1" --quiet && ` +
      `cp .devicescript/bin/bytecode.devs .devicescript/bin/bytecode-dbg.json .devicescript/bin/bytecode-sizes.md "$2"/`
    const r = spawnSync("flock", ["-w", "300", DEVS_LOCK, "sh", "-c", script, "build", abs, dir], {
      cwd: root,
      encoding: "utf8",
      timeout: 320_000,
    })
    if (r.status !== 0 || !existsSync(devs)) {
      throw new Error(`devs build ${entry} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`)
    }
  }
  return { entry: abs, dir, bytecodeBytes: statSync(devs).size }
}

export interface VmProcess {
  readonly child: ChildProcess
  /** console and dmesg lines of the VM, in order */
  readonly log: string[]
  /** resolves with the first log line matching `re` (already seen lines count) */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>
  /** kills the VM's process group; resolves when it is gone */
  kill(): Promise<void>
  readonly exited: boolean
}

/**
 * A private copy of the build for the VMs on hub port `port` (`fw` itself on 8081): `devs run`
 * keeps the VM's flash in its working folder, and VMs of one build on two ports run at the same
 * time, where one's clearFlash or settings would reach the other.
 */
export function buildForPort(fw: BuiltFirmware, port: number): BuiltFirmware {
  if (port === DEVTOOLS_PORT) return fw
  const dir = join(fw.dir, `port${port}`)
  mkdirSync(dir, { recursive: true })
  for (const f of ["bytecode.devs", "bytecode-dbg.json", "bytecode-sizes.md"]) copyFileSync(join(fw.dir, f), join(dir, f))
  return { ...fw, dir }
}

/**
 * Runs `fw` in the WASM VM (`devs run`), which connects to ws://127.0.0.1:`port` (default
 * `simPort()`, 8081 unless ROBOT_SIM_PORT is set): the caller must hold that port's lock and run a
 * hub there. `deviceId` fixes the Jacdac device id (16 hex digits).
 * The VM keeps its flash (DeviceScript settings, e.g. MQTT_URL) in `<fw.dir>/.devicescript/flash`
 * across runs, like a board across resets; `clearFlash` starts it blank, like a new board.
 */
export function startVm(fw: BuiltFirmware, options: { deviceId?: string; echo?: boolean; verbose?: number; clearFlash?: boolean; port?: number } = {}): VmProcess {
  if (options.clearFlash) rmSync(join(fw.dir, ".devicescript", "flash"), { recursive: true, force: true })
  // (sockreads.cjs: socket data reaches the program in the ESP32's pieces, not whole Node reads;
  // it also sends the VM's connection to ROBOT_SIM_PORT's port, which `devs run` cannot be told)
  const args = ["--require", join(__dirname, "sockreads.cjs"), CLI, "run", join(fw.dir, "bytecode-dbg.json")]
  for (let i = 0; i < (options.verbose ?? 0); i++) args.push("-v")
  if (options.deviceId) args.push("--device-id", options.deviceId)
  const env = { ...process.env, [SIM_PORT_ENV]: String(options.port ?? simPort()) }
  const child = spawn(process.execPath, args, { cwd: fw.dir, detached: true, env, stdio: ["ignore", "pipe", "pipe"] })
  const log: string[] = []
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  let exited = false
  const onLine = (raw: string) => {
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\x1b\[[0-9;]*m/g, "")
    log.push(line)
    if (log.length > 5000) log.splice(0, 1000)
    if (options.echo) console.log(`[vm] ${line}`)
    for (const w of [...waiters]) if (w.re.test(line)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(line)
    }
  }
  createInterface({ input: child.stdout! }).on("line", onLine)
  createInterface({ input: child.stderr! }).on("line", onLine)
  const exitP = new Promise<void>((r) => child.once("exit", () => {
    exited = true
    r()
  }))
  const killSync = () => {
    try {
      if (!exited && child.pid) process.kill(-child.pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  process.once("exit", killSync)
  return {
    child,
    log,
    get exited() {
      return exited
    },
    waitForLog(re, timeoutMs = 30000) {
      const seen = log.find((l) => re.test(l))
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const w = { re, resolve: (l: string) => (clearTimeout(t), resolve(l)) }
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1)
          reject(new Error(`VM log never matched ${re} within ${timeoutMs} ms; last lines:\n${log.slice(-20).join("\n")}`))
        }, timeoutMs)
        waiters.push(w)
      })
    },
    async kill() {
      process.removeListener("exit", killSync)
      killSync()
      if (!exited) await exitP
    },
  }
}

/** The port lock is held by someone else (and the caller chose not to wait, or waited in vain). */
export class PortLockBusyError extends Error {
  override readonly name = "PortLockBusyError"
}

/**
 * Who holds `lockFile`: "pid 123 (node --test …)". Found through /proc/<pid>/fdinfo, which lists
 * the flock held through each open file (the holder is the process that has the file open, not the
 * `flock` helper that took the lock for it and exited), else through /proc/locks; a `flock` helper
 * (a shell's `flock file cmd`) is named by the program that started it. Undefined when it cannot be
 * told (not Linux, gone since).
 */
export function describeLockHolder(lockFile: string): string | undefined {
  try {
    const ino = statSync(lockFile).ino
    const cmd = (p: number) => readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ")
    const parentOf = (p: number) => Number(readFileSync(`/proc/${p}/stat`, "utf8").replace(/^.*\)\s+\S+\s+/, "").split(" ")[0])
    const holders: number[] = []
    const lockLine = new RegExp(`^lock:.*\\bFLOCK\\b.*:${ino} `, "m")
    for (const d of readdirSync("/proc")) {
      const pid = Number(d)
      if (!Number.isInteger(pid) || pid === process.pid) continue
      try {
        for (const fd of readdirSync(`/proc/${pid}/fd`)) {
          if (lockLine.test(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))) {
            holders.push(pid)
            break
          }
        }
      } catch {
        // gone, or not ours to read
      }
    }
    if (holders.length === 0) {
      // processes we may not read: the pid /proc/locks recorded (the one that took the lock)
      for (const l of readFileSync("/proc/locks", "utf8").split("\n")) {
        const f = l.trim().split(/\s+/)
        // (a pid that is gone took it for an open file another process holds: `acquirePortLock`'s
        // flock child exits once it has locked its parent's file)
        if (f[1] === "FLOCK" && Number(f[5]?.split(":")[2]) === ino && Number(f[4]) > 0 && Number(f[4]) !== process.pid && existsSync(`/proc/${f[4]}`)) holders.push(Number(f[4]))
      }
    }
    // a `flock file cmd` and its command both hold it: name the one that asked (flock's parent)
    let who = holders.find((p) => !/^flock\b/.test(cmd(p)) && !holders.includes(parentOf(p))) ?? holders[0]
    if (who === undefined) {
      // no other process: this one may hold it itself (a lock taken and not released: a bug of the
      // caller, which "another program" would hide, as it hid issue 17's probe meeting its own lock)
      for (const fd of readdirSync("/proc/self/fd")) {
        try {
          if (lockLine.test(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))) return `this process (pid ${process.pid}: it took the lock earlier and has not released it)`
        } catch {
          // closed meanwhile
        }
      }
      return undefined
    }
    let line = cmd(who)
    if (/^flock\b/.test(line)) {
      const ppid = parentOf(who)
      if (ppid > 1) {
        who = ppid
        line = cmd(ppid)
      }
    }
    return `pid ${who} (${line.length > 100 ? line.slice(0, 100) + "…" : line})`
  } catch {
    return undefined
  }
}

/** A held port lock (see acquirePortLock). */
export interface PortLock {
  /** Drops the lock, at once: when it returns, the next `flock -n` gets it. Safe to call twice. */
  release(): void
}

/**
 * Takes `flock /tmp/port8081.lock` (the lock of `simPort()`'s port: /tmp/port<port>.lock when
 * ROBOT_SIM_PORT is set) and holds it until `release()` or until this process ends,
 * however it ends. This process opens the file itself and a `flock -n|-w <s> 3` child locks that
 * open file (its fd 3) and exits: the lock belongs to the open file, which only this process keeps
 * open, so there is no helper process that could outlive a release (the earlier helper, a
 * `flock … cat` child, let go of the lock some time after `release()`, and a start-up that probed
 * the lock and then took it met its own probe: issue 17). `timeoutMs` 0 does not wait: a held lock
 * rejects at once with PortLockBusyError naming the holder.
 */
export function acquirePortLock(timeoutMs = 300_000, lockFile = portLockFile(simPort())): Promise<PortLock> {
  return new Promise((resolve, reject) => {
    let fd: number | undefined = openSync(lockFile, "a")
    const release = () => {
      if (fd === undefined) return
      const f = fd
      fd = undefined
      try {
        closeSync(f)
      } catch {
        // closed
      }
    }
    const wait = timeoutMs > 0 ? ["-w", String(Math.ceil(timeoutMs / 1000))] : ["-n"]
    const child = spawn("flock", [...wait, "3"], { stdio: ["ignore", "ignore", "pipe", fd] })
    let stderr = ""
    child.stderr!.on("data", (d) => (stderr += d))
    child.once("error", (e) => {
      release()
      reject(new Error(`cannot run flock to take ${lockFile}: ${e.message}`))
    })
    child.once("exit", (code) => {
      if (code === 0) return resolve({ release })
      release()
      if (code !== 1) return reject(new Error(`flock ${lockFile} failed (exit ${code}): ${stderr.trim()}`))
      const holder = describeLockHolder(lockFile)
      const who = holder ? `${holder} holds it` : "another program holds it"
      const waited = timeoutMs > 0 ? `waited ${Math.round(timeoutMs / 1000)} s for ${lockFile}` : `${lockFile} is taken`
      // (the port is the lock file's; a private lock file of a test stands for 8081's)
      const port = /\/port(\d+)\.lock$/.exec(lockFile)?.[1] ?? DEVTOOLS_PORT
      reject(new PortLockBusyError(`${waited} (flock exit ${code}): ${who}, using the simulator's port ${port} (another \`robot sim\`, or a test suite)`))
    })
  })
}
