// Shared by the bridge, CLI and browser tests: a bridge on a free port in front of the in-memory
// demo node, and real roslib (ESM, loaded with import()) connected to it.
import { spawn } from "node:child_process"
import * as path from "node:path"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"
import { demoMemoryNode } from "../../packages/host/src/demo/demo"
import type { MemoryNode } from "../../packages/host/src/demo/memory"
import { startBridge, type Bridge, type BridgeOptions } from "../../packages/host/src/bridge/server"

export interface Fixture {
  node: MemoryNode
  bridge: Bridge
  close(): Promise<void>
}

/** Demo memory node + bridge on 127.0.0.1, port 0. Close it in `finally`. */
export async function startFixture(options: Partial<BridgeOptions> = {}, node: MemoryNode = demoMemoryNode()): Promise<Fixture> {
  const bridge = await startBridge({ node, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes, ...options })
  return {
    node,
    bridge,
    async close() {
      await bridge.close()
      await node.close()
    },
  }
}

// roslib is ESM-only: typed loosely here, its behaviour is what the tests check.
export type RosLib = any

let roslib: Promise<RosLib> | undefined
export function loadRoslib(): Promise<RosLib> {
  roslib ??= import("roslib")
  return roslib
}

/** A roslib Ros connected to `url`; rejects on error/close before the connection opens. */
export async function connectRos(url: string): Promise<any> {
  const R = await loadRoslib()
  const ros = new R.Ros({})
  await new Promise<void>((resolve, reject) => {
    ros.once("connection", () => resolve())
    ros.once("error", (e: unknown) => reject(new Error(`roslib error: ${String((e as { message?: string })?.message ?? e)}`)))
    ros.once("close", () => reject(new Error("roslib: closed before connecting")))
    ros.connect(url).catch(reject)
  })
  return ros
}

/** roslib Service.callService as a promise: resolves with values, rejects with the failure text. */
export async function rosCall(ros: any, name: string, serviceType: string, args: unknown, timeoutS?: number): Promise<any> {
  const R = await loadRoslib()
  const svc = new R.Service({ ros, name, serviceType })
  return new Promise((resolve, reject) => svc.callService(args, resolve, (e: unknown) => reject(new Error(String(e))), timeoutS))
}

/** Wraps a roslib getter that takes (args..., ok, fail). */
export function rosGet<T>(f: (ok: (v: T) => void, fail: (e: unknown) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => f(resolve, (e) => reject(new Error(String(e)))))
}

/** Closes a roslib connection and waits for the close event. */
export function closeRos(ros: any): Promise<void> {
  if (!ros.isConnected) return Promise.resolve()
  return new Promise((resolve) => {
    ros.once("close", () => resolve())
    ros.close()
  })
}

/** The repository root (where `packages/host/bin/robot.js` lives). */
export const ROOT = path.join(__dirname, "..", "..")

/** Runs the real `robot` binary to completion; it is killed (SIGKILL) after `timeoutMs`. */
export function runRobot(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), ...args], { cwd: ROOT, env: { ...process.env, ...options.env } })
    let stdout = ""
    let stderr = ""
    p.stdout.on("data", (d) => (stdout += d))
    p.stderr.on("data", (d) => (stderr += d))
    const t = setTimeout(() => p.kill("SIGKILL"), options.timeoutMs ?? 60000)
    p.on("error", reject)
    p.on("close", (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    })
  })
}

/**
 * Starts the real `robot bridge` (or `robot sim`) with `args` and resolves once it printed "bridge
 * ready": its dashboard (http) and rosbridge (ws) URLs, what it printed so far, and `stop()` (Ctrl+C,
 * resolves when it has exited). Rejects with its output if it exits first.
 */
export async function runningBridge(args: string[]): Promise<{ url: string; wsUrl: string; out: () => string; err: () => string; stop(): Promise<void> }> {
  const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), ...args], { cwd: ROOT })
  let out = ""
  let err = ""
  p.stderr.on("data", (d) => (err += d))
  const stop = async () => {
    const closed = new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once("close", r)))
    p.kill("SIGINT")
    await closed
  }
  try {
    const [url, wsUrl] = await new Promise<[string, string]>((resolve, reject) => {
      p.stdout.on("data", (d) => {
        out += d
        const http = /dashboard: (http:\/\/[\d.:]+)\//.exec(out)
        const ws = /rosbridge: (ws:\/\/[\d.:]+)/.exec(out)
        if (http && ws && out.includes("bridge ready")) resolve([http[1]!, ws[1]!])
      })
      p.on("close", (code) => reject(new Error(`robot ${args.join(" ")} exited (${code}): ${out}\n${err}`)))
    })
    return { url, wsUrl, out: () => out, err: () => err, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

export { rawRosClient } from "../../harness/rosbridge"

/** A WebSocket's messages in the order they came: `next()` resolves with the next one (parsed JSON). */
export function inOrder(ws: import("ws").WebSocket): () => Promise<any> {
  const inbox: any[] = []
  const waiters: (() => void)[] = []
  ws.on("message", (d) => {
    inbox.push(JSON.parse(d.toString()))
    waiters.shift()?.()
  })
  return () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise<any>((r) => waiters.push(() => r(inbox.shift()))))
}

/**
 * A bare rosbridge client for topics and ops roslib does not cover: every message it gets (`got`),
 * `next` to wait for one that matches (already here or to come), `send`, and the socket.
 */
export async function rawClient(url: string) {
  const { default: WebSocket } = await import("ws")
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  const got: any[] = []
  const waiters: { match: (m: any) => boolean; resolve: (m: any) => void }[] = []
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString())
    got.push(m)
    for (const w of waiters.slice()) {
      if (!w.match(m)) continue
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(m)
    }
  })
  return {
    ws,
    got,
    send: (m: unknown) => ws.send(JSON.stringify(m)),
    /** the first message (already here or to come) that matches, within `timeoutMs` */
    next(match: (m: any) => boolean, what: string, timeoutMs = 10000): Promise<any> {
      const have = got.find(match)
      if (have) {
        got.splice(got.indexOf(have), 1)
        return Promise.resolve(have)
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${what} in ${timeoutMs} ms; got ${JSON.stringify(got).slice(0, 600)}`)), timeoutMs)
        waiters.push({
          match,
          resolve: (m) => {
            clearTimeout(t)
            got.splice(got.indexOf(m), 1)
            resolve(m)
          },
        })
      })
    },
    close: () => ws.close(),
  }
}
