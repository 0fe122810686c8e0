// An attacker in a process of its own: a Node script (`node -e`) whose own work would otherwise
// count against the process under test (the bridge or broker runs in the test's process). What it
// prints is read line by line.
import { spawn } from "node:child_process"

export interface Script {
  /** every complete line printed so far */
  lines(): string[]
  /**
   * The first line printed (now or later) that `pred` accepts. Rejects, naming `what` and what was
   * printed, if the process exits before.
   */
  line(what: string, pred?: (l: string) => boolean): Promise<string>
  /** the exit code, once it has exited */
  exited: Promise<number | null>
  kill(): void
}

/** Runs `script` with `args` (its `process.argv.slice(1)`); its stderr goes to the test's. */
export function runScript(script: string, args: string[]): Script {
  const child = spawn(process.execPath, ["-e", script, ...args], { stdio: ["pipe", "pipe", "inherit"], cwd: process.cwd() })
  let out = ""
  const done: string[] = []
  const waiting = new Set<() => void>()
  child.stdout!.on("data", (d) => {
    out += d
    const parts = out.split("\n")
    out = parts.pop()!
    done.push(...parts)
    for (const w of [...waiting]) w()
  })
  let code: number | null | undefined
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (c) => {
      code = c
      for (const w of [...waiting]) w()
      resolve(c)
    }),
  )
  return {
    lines: () => [...done],
    line(what, pred = () => true) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const l = done.find(pred)
          if (l !== undefined) {
            waiting.delete(check)
            resolve(l)
          } else if (code !== undefined) {
            waiting.delete(check)
            reject(new Error(`the attacking process exited (${code}) before ${what}: ${done.join("\n").slice(-500)}`))
          }
        }
        waiting.add(check)
        check()
      })
    },
    exited,
    kill: () => child.kill(),
  }
}
