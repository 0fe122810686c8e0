// The simulator's hub port (packages/host/src/transport/hubport.ts): ROBOT_SIM_PORT, and the VM side of it in
// packages/host/src/sim/sockreads.cjs, without the VM. `devs run` connects the VM with
// `new WebSocket("ws://127.0.0.1:8081")` on the global WebSocket, which the CLI sets itself (Node 20
// has none); here a process with the preload sets `ws`'s there the same way and opens that URL. With
// ROBOT_SIM_PORT the connection must reach that port and no other URL may move; unset, or 8081,
// nothing moves. (The VM itself goes through it in every simulator file of the 8091 lane of
// scripts/test-host.ts.)
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { WebSocketServer } from "ws"
import { portLockFile, simPort } from "../../packages/host/src/transport/hubport"

const MODEL = join(__dirname, "../../packages/host/src/sim/sockreads.cjs")
const WS = require.resolve("ws")

/**
 * Runs a process with the model preloaded that sets the global WebSocket (after the preload, as the
 * CLI does; `first`: before it, as a Node with its own would have it) and opens `url`; prints the
 * URL the socket was opened with (as `ws` writes it: with a path), and "open" once connected when
 * `connect` is set.
 */
function opener(url: string, env: NodeJS.ProcessEnv, o: { first?: boolean; connect?: boolean } = {}): Promise<{ code: number | null; out: string }> {
  const set = `globalThis.WebSocket = require(${JSON.stringify(WS)})`
  const open = `const s = new WebSocket(${JSON.stringify(url)}); console.log(s.url);` + (o.connect ? ` s.onopen = () => (console.log("open"), process.exit(0)); s.onerror = (e) => (console.log("error " + e.message), process.exit(1))` : " process.exit(0)")
  const args = ["--require", MODEL, "-e", `${o.first ? "" : set + "; "}${open}`]
  if (o.first) {
    const pre = join(mkdtempSync(join(tmpdir(), "simport-")), "global.cjs")
    writeFileSync(pre, set)
    args.unshift("--require", pre)
  }
  const e = { ...process.env, ...env }
  if (env.ROBOT_SIM_PORT === undefined) delete e.ROBOT_SIM_PORT
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: e, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout!.on("data", (d) => (out += d))
    child.stderr!.on("data", (d) => (out += d))
    child.once("close", (code) => resolve({ code, out }))
  })
}

describe("ROBOT_SIM_PORT: the VM's hub connection", () => {
  let server: WebSocketServer
  let port: number
  before(async () => {
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    await new Promise<void>((r) => server.once("listening", () => r()))
    port = (server.address() as AddressInfo).port
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  test("set: the devtools URL reaches that port, whether the global WebSocket is set after the preload or before it", async () => {
    for (const first of [false, true]) {
      const r = await opener("ws://127.0.0.1:8081", { ROBOT_SIM_PORT: String(port) }, { first, connect: true })
      assert.equal(r.out, `ws://127.0.0.1:${port}/\nopen\n`, `global set ${first ? "before" : "after"} the preload: ${r.out}`)
      assert.equal(r.code, 0)
    }
  })

  test("set: any other URL is left alone", async () => {
    const r = await opener(`ws://127.0.0.1:${port}/x`, { ROBOT_SIM_PORT: "8091" }, { connect: true })
    assert.equal(r.out, `ws://127.0.0.1:${port}/x\nopen\n`)
  })

  test("unset, empty or 8081: nothing moves", async () => {
    for (const env of [{}, { ROBOT_SIM_PORT: "" }, { ROBOT_SIM_PORT: "8081" }]) {
      const r = await opener("ws://127.0.0.1:8081", env)
      assert.equal(r.out, "ws://127.0.0.1:8081/\n", JSON.stringify(env))
    }
  })

  test("a value that is not a port number stops the VM's process, naming it", async () => {
    const r = await opener("ws://127.0.0.1:8081", { ROBOT_SIM_PORT: "80a" })
    assert.notEqual(r.code, 0)
    assert.match(r.out, /ROBOT_SIM_PORT must be a port number, got "80a"/)
  })
})

test("simPort() and the lock file: 8081 and /tmp/port8081.lock by default, ROBOT_SIM_PORT's otherwise", () => {
  const saved = process.env.ROBOT_SIM_PORT
  try {
    delete process.env.ROBOT_SIM_PORT
    assert.equal(simPort(), 8081)
    assert.equal(portLockFile(simPort()), "/tmp/port8081.lock")
    process.env.ROBOT_SIM_PORT = "8091"
    assert.equal(simPort(), 8091)
    assert.equal(portLockFile(simPort()), "/tmp/port8091.lock")
    for (const bad of ["x", "0", "65536", "80.5", " 8091"]) {
      process.env.ROBOT_SIM_PORT = bad
      assert.throws(() => simPort(), /ROBOT_SIM_PORT must be a port number \(1-65535\)/, bad)
    }
  } finally {
    if (saved === undefined) delete process.env.ROBOT_SIM_PORT
    else process.env.ROBOT_SIM_PORT = saved
  }
})
