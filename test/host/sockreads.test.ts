// The write side of packages/host/src/sim/sockreads.cjs, the socket model preloaded into the VM's
// process, without the VM: a Node process with the model preloaded opens a program-style socket
// (`{ host, port }` alone, as the VM does) and writes one buffer. On TLS a write the ESP32 runtime
// asserts on (4096 bytes or more: main/sock.c) must end the process with a PANIC line before any of
// it reaches the peer; 4095 bytes, and any size over plain TCP, go through. (The VM test that runs
// the MQTT link against it: mqtt_device.test.ts, "mqtts:// with the largest frames".)
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { after, before, describe, test } from "node:test"

const MODEL = join(__dirname, "../../packages/host/src/sim/sockreads.cjs")

const dir = mkdtempSync(join(tmpdir(), "sockreads-"))
const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" })
const noOpenssl = gen.status !== 0 ? `no openssl to make a certificate: ${gen.error?.message ?? gen.stderr}` : false

/** A server that counts what each connection sent it; `received()` waits for the connection to end. */
function counter(server: net.Server) {
  const ends: Promise<number>[] = []
  server.on(server instanceof tls.Server ? "secureConnection" : "connection", (s: net.Socket) => {
    let n = 0
    ends.push(new Promise((resolve) => {
      s.on("data", (d: Buffer) => (n += d.length))
      s.on("error", () => {})
      s.on("close", () => resolve(n))
    }))
  })
  return { received: async () => (await Promise.all(ends)).reduce((a, b) => a + b, 0), clear: () => (ends.length = 0) }
}

/**
 * Runs a process with the model preloaded that writes `size` bytes in one `write` on a program
 * socket to `port` (as the VM's sockWrite does), then ends it.
 */
function writer(kind: "tls" | "net", port: number, size: number): Promise<{ code: number | null; stderr: string }> {
  const open = kind === "tls" ? `require("node:tls").connect({ host: "127.0.0.1", port: ${port} })` : `require("node:net").createConnection({ host: "127.0.0.1", port: ${port} })`
  const script = `const s = ${open}; s.once("${kind === "tls" ? "secureConnect" : "connect"}", () => (s.write(Buffer.alloc(${size}, 7)), s.end()))`
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--require", MODEL, "-e", script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") },
      stdio: ["ignore", "ignore", "pipe"],
    })
    let stderr = ""
    child.stderr!.on("data", (d) => (stderr += d))
    child.once("close", (code) => resolve({ code, stderr }))
  })
}

describe("sockreads.cjs: the ESP32 runtime's TLS write limit", { skip: noOpenssl }, () => {
  let tlsServer: tls.Server
  let tcpServer: net.Server
  let tlsIn: ReturnType<typeof counter>
  let tcpIn: ReturnType<typeof counter>
  const listen = (s: net.Server) => new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as net.AddressInfo).port)))
  let tlsPort = 0
  let tcpPort = 0

  before(async () => {
    tlsServer = tls.createServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) })
    tcpServer = net.createServer()
    tlsIn = counter(tlsServer)
    tcpIn = counter(tcpServer)
    tlsPort = await listen(tlsServer)
    tcpPort = await listen(tcpServer)
  })
  after(async () => {
    await new Promise<void>((r) => tlsServer.close(() => r()))
    await new Promise<void>((r) => tcpServer.close(() => r()))
  })

  test("a TLS write of 4095 bytes goes through", async () => {
    tlsIn.clear()
    const r = await writer("tls", tlsPort, 4095)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await tlsIn.received(), 4095)
  })

  test("a TLS write of 4096 bytes ends the process with a PANIC line, and none of it is sent", async () => {
    tlsIn.clear()
    const r = await writer("tls", tlsPort, 4096)
    assert.equal(r.code, 134, r.stderr)
    assert.match(r.stderr, /^PANIC: TLS write of 4096 bytes, not under 4096 \(MBEDTLS_SSL_OUT_CONTENT_LEN\): the ESP32 runtime asserts/m)
    assert.equal(await tlsIn.received(), 0)
  })

  test("plain TCP has no such limit: one write of 64 KiB goes through", async () => {
    tcpIn.clear()
    const r = await writer("net", tcpPort, 65536)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await tcpIn.received(), 65536)
  })
})
