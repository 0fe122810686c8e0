// The robot's MQTT link (docs/mqtt.md, packages/device/src/net/mqtt.ts) with real parts: the test firmware in the
// DeviceScript VM (its MQTT settings written by the rig through Jacdac), an in-process aedes broker,
// a TCP proxy between the VM and the broker that the test can cut, and hosts made of the `mqtt`
// package and the record codec (packages/host/src/client/records.ts). The same VM serves Jacdac at the same time.
// After every fault the robot must come back by itself with the same bootId. No fixed sleeps.
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { after, before, describe, test } from "node:test"
import mqtt, { type MqttClient } from "mqtt"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import {
  JACDAC_PAYLOAD,
  Kind,
  PROTOCOL_VERSION,
  encodeCall,
  encodeData,
  encodeDone,
  encodeName,
  encodeList,
  encodeOpen,
  packRecords,
  parseDeviceFrame,
  encodePoll,
  rec,
  type DeviceRecord,
  type HelloRecord,
} from "../../packages/host/src/client/records"
import { mqttSettings, startRig, type Rig } from "../../packages/host/src/sim/rig"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport, type MqttNode } from "../../packages/host/src/client/mqtt"
import { startBroker as startEmbeddedBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { jd } from "../../packages/host/src/transport/jacdac"
import { Echo, Upload, echo, pattern, uploadHash } from "../../harness/services"
import { testFirmware } from "./services_fixture"
import { runScript } from "../support/child"

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Aedes } = require("aedes")

const NAME = "r1"
const T = (ms: number) => ({ timeoutMs: ms })

/** Resolves when `cond()` holds (checked every 20 ms); rejects after `timeoutMs` naming `what`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** The `p`th percentile of `xs` (ms). */
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]! : NaN
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
}

/**
 * A self-signed certificate for 127.0.0.1 made by openssl (the VM trusts it through
 * NODE_EXTRA_CA_CERTS), or why there is none (no openssl: the TLS tests are skipped).
 */
function selfSignedCert(): { key: Buffer; cert: Buffer; certPath: string } | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), "mqtt-tls-"))
  const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" })
  if (gen.status !== 0) return { skip: `no openssl to make a certificate: ${gen.error?.message ?? gen.stderr}` }
  return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")), certPath: join(dir, "cert.pem") }
}
/** the TLS tests' certificate (made once, at load) */
const tlsCert = selfSignedCert()

/** An aedes broker on 127.0.0.1:`port`; `kill()` closes it and every client socket. */
async function startBroker(port: number) {
  const broker = await Aedes.createBroker()
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.once("close", () => sockets.delete(s))
    broker.handle(s)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => resolve())
  })
  return {
    broker,
    async kill() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
      await new Promise<void>((r) => broker.close(() => r()))
    },
  }
}

/**
 * A TCP proxy to `target` that the test can cut, write raw bytes into towards the client, make
 * swallow new connections (`hold`: accepted, never answered) or mute towards the client (`mute`).
 * What the broker sends the client is cut into MQTT packets, so the broker's PUBACKs alone can be
 * held (`holdAcks`) while its PUBLISHes go on.
 */
async function startProxy(target: number) {
  const pairs = new Set<[net.Socket, net.Socket]>()
  const held = new Set<net.Socket>()
  let hold = false
  let mute = false
  let slow = 0
  let stall = false
  let holdDown = false
  let fromClient = 0
  let toClient = 0
  let held2: [net.Socket, Buffer][] = []
  let holdAcks = false
  let heldAcks: [net.Socket, Buffer][] = []
  let publishes = 0
  const server = net.createServer((down) => {
    if (hold) {
      held.add(down)
      down.on("error", () => down.destroy()).on("close", () => held.delete(down))
      down.resume()
      return
    }
    const up = net.connect(target, "127.0.0.1")
    const pair: [net.Socket, net.Socket] = [down, up]
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      down.destroy()
      up.destroy()
    }
    down.on("error", end).on("close", end)
    up.on("error", end).on("close", end)
    // client -> broker: counted; read at `slow` bytes/s (0: at once), or not at all while `stall`
    down.on("data", (d: Buffer) => {
      fromClient += d.length
      up.write(d)
      if (slow > 0 || stall) {
        down.pause()
        const t = setTimeout(function again() {
          if (stall) setTimeout(again, 20)
          else down.resume()
        }, slow > 0 ? (d.length / slow) * 1000 : 20)
        t.unref?.()
      }
    })
    if (stall) down.pause()
    // broker -> client, cut into packets: type byte, remaining length (7 bits a byte, 1-4 bytes), body
    let rest = Buffer.alloc(0)
    up.on("data", (d: Buffer) => {
      if (mute) return
      toClient += d.length
      rest = rest.length ? Buffer.concat([rest, d]) : d
      const out: Buffer[] = []
      let o = 0
      for (;;) {
        let len = 0
        let i = o + 1
        let whole = false
        for (let mul = 1; i < rest.length && i < o + 5; i++, mul *= 128) {
          len += (rest[i]! & 127) * mul
          if (!(rest[i]! & 128)) {
            whole = true
            i++
            break
          }
        }
        if (!whole || i + len > rest.length) break
        const pkt = rest.subarray(o, i + len)
        if (holdAcks && rest[o]! >> 4 === 4) heldAcks.push([down, Buffer.from(pkt)])
        else out.push(pkt)
        if (rest[o]! >> 4 === 3) publishes++
        o = i + len
      }
      rest = Buffer.from(rest.subarray(o))
      if (!out.length) return
      const b = Buffer.concat(out)
      if (holdDown) held2.push([down, b])
      else down.write(b)
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return pairs.size
    },
    /** destroys every connection (the robot sees its socket closed, the broker loses the robot) */
    cut() {
      for (const [d, u] of [...pairs]) {
        d.destroy()
        u.destroy()
      }
      for (const d of [...held]) d.destroy()
    },
    /** new connections are accepted and never answered */
    set hold(v: boolean) {
      hold = v
    },
    /** nothing from the broker reaches the client */
    set mute(v: boolean) {
      mute = v
    },
    /** bytes written towards the client (the robot) so far */
    get toClient() {
      return toClient
    },
    /** bytes read from the client (the robot) so far */
    get fromClient() {
      return fromClient
    },
    /** reads from the client at most this many bytes/s (0: no limit): a slow link */
    set slow(v: number) {
      slow = v
    },
    /** stops reading from the client (what it writes piles up on its side) */
    set stall(v: boolean) {
      stall = v
      for (const [d] of pairs) {
        if (v) d.pause()
        else d.resume()
      }
    },
    /** holds what the broker sends to the client until set false again (then delivers it in order) */
    set holdDown(v: boolean) {
      holdDown = v
      if (!v) {
        const h = held2
        held2 = []
        for (const [d, b] of h) if (!d.destroyed) d.write(b)
      }
    },
    /** holds the broker's PUBACKs to the client until set false again (then delivers them); the rest passes */
    set holdAcks(v: boolean) {
      holdAcks = v
      if (!v) {
        const h = heldAcks
        heldAcks = []
        for (const [d, b] of h) if (!d.destroyed) d.write(b)
      }
    },
    /** PUBLISHes the broker sent the client so far */
    get publishes() {
      return publishes
    },
    /** PUBACKs held so far */
    get acksHeld() {
      return heldAcks.length
    },
    /** writes raw bytes to every client (the robot) as if the broker sent them */
    inject(b: Uint8Array) {
      for (const [d] of pairs) d.write(b)
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

/** Writes settings as raw text through the VM's Jacdac settings service (as a host tool might). */
class RawSettings {
  constructor(private readonly rig: Rig) {}
  async set(values: Record<string, string>) {
    const svc = this.rig.bus.services({ serviceClass: jd.SRV_SETTINGS })[0]
    assert.ok(svc, "the VM's settings service")
    const c = new jd.SettingsClient(svc)
    for (const [k, v] of Object.entries(values)) await c.setStringValue(k, v)
  }
}

/** A host on MQTT: the `mqtt` client plus the record codec; keeps every record the robot sent it. */
class Host {
  readonly records: DeviceRecord[] = []
  readonly frameSizes: number[] = []
  readonly pongs: Buffer[] = []
  private seq = 0
  session = 0
  constructor(
    readonly client: MqttClient,
    readonly id: string,
    readonly robot = NAME,
  ) {
    client.on("message", (topic, payload) => {
      if (topic === `robots/${robot}/out/${id}`) {
        this.frameSizes.push(payload.length)
        this.records.push(...parseDeviceFrame(payload))
      } else if (topic === `robots/${robot}/pong/${id}`) this.pongs.push(payload)
    })
  }

  static async connect(port: number, id: string, robot = NAME): Promise<Host> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, reconnectPeriod: 0 })
    const h = new Host(client, id, robot)
    await client.subscribeAsync([`robots/${robot}/out/${id}`, `robots/${robot}/pong/${id}`])
    return h
  }

  async send(records: Uint8Array[], max = JACDAC_PAYLOAD) {
    for (const f of packRecords(records, max)) await this.client.publishAsync(`robots/${this.robot}/in/${this.id}`, Buffer.from(f))
  }

  /** The first record (in arrival order, not yet taken) matching `pred`; waits for it. */
  async take<R extends DeviceRecord>(what: string, pred: (r: DeviceRecord) => r is R, timeoutMs?: number): Promise<R>
  async take(what: string, pred: (r: DeviceRecord) => boolean, timeoutMs?: number): Promise<DeviceRecord>
  async take(what: string, pred: (r: DeviceRecord) => boolean, timeoutMs = 10000): Promise<DeviceRecord> {
    let i = -1
    await until(what, () => (i = this.records.findIndex(pred)) >= 0, timeoutMs)
    return this.records.splice(i, 1)[0]!
  }

  async hello(): Promise<HelloRecord> {
    this.records.length = 0
    await this.send([encodeList()])
    return (await this.take("HELLO", (r) => r.kind === "hello")) as HelloRecord
  }

  async open(): Promise<number> {
    const nonce = (Math.random() * 0xffffffff) >>> 0
    await this.send([encodeOpen({ nonce, version: PROTOCOL_VERSION })])
    const s = await this.take("SESSION", (r) => r.kind === "session" && r.nonce === nonce)
    assert.ok(s.kind === "session" && s.session !== 0, "the robot refused the session")
    this.session = s.session
    this.seq = 0
    return s.session
  }

  /** Sends a CALL (then DATA within `window`), returns its seq; `result(seq)` collects the answer. */
  async startCall(name: string, hash32: number, req: Uint8Array, opts: { max?: number; window?: number } = {}): Promise<number> {
    const seq = ++this.seq
    const max = opts.max ?? JACDAC_PAYLOAD
    const nm = encodeName(name)
    const first = Math.min(req.length, max - 3 - 25 - nm.length)
    await this.send([encodeCall({ session: this.session, seq, ack: 0, timeoutMs: 20000, hash32, total: req.length, name: nm, data: req.subarray(0, first) })], max)
    let off = first
    let acked = 0
    while (off < req.length) {
      if (opts.window && off - acked >= opts.window) {
        const st = await this.take("STATUS(receiving)", (r) => r.kind === "status" && r.seq === seq)
        if (st.kind === "status") acked = st.offset
        continue
      }
      const n = Math.min(req.length - off, max - 3 - 12)
      await this.send([encodeData({ session: this.session, seq, offset: off, data: req.subarray(off, off + n) })], max)
      off += n
    }
    return seq
  }

  /** The answer to `seq`: RESULT then RDATA up to its total (POLLs every `pollMs` while silent). */
  async result(seq: number, timeoutMs = 20000, pollMs = 0): Promise<{ status: number; data: Uint8Array; message: string }> {
    const end = Date.now() + timeoutMs
    const mine = (r: DeviceRecord) => (r.kind === "result" || r.kind === "rdata") && r.session === this.session && r.seq === seq
    let have = 0
    let total = -1
    let data = new Uint8Array(0)
    while (total < 0 || have < total) {
      let r: DeviceRecord
      try {
        r = await this.take(`the answer to call ${seq}`, mine, pollMs || Math.max(1, end - Date.now()))
      } catch (e) {
        if (!pollMs || Date.now() > end) throw e
        await this.send([encodePoll({ session: this.session, seq, have })])
        continue
      }
      if (r.kind === "result") {
        if (r.status !== 0) return { status: r.status, data: r.data, message: Buffer.from(r.data).toString() }
        total = r.total
        data = new Uint8Array(total)
        data.set(r.data, 0)
        have = r.data.length
      } else if (r.kind === "rdata" && total >= 0 && r.offset === have) {
        data.set(r.data, have)
        have += r.data.length
      }
    }
    await this.send([encodeDone({ session: this.session, seqs: [seq] })])
    return { status: 0, data, message: "" }
  }

  async add(a: bigint, b: bigint): Promise<bigint> {
    const seq = await this.startCall("/add_two_ints", AddTwoInts.hash32, AddTwoInts.request.encode({ a, b }))
    const r = await this.result(seq)
    assert.equal(r.status, 0, r.message)
    return AddTwoInts.response.decode(r.data).sum
  }

  close() {
    return this.client.endAsync(true)
  }
}

describe("the robot's MQTT link (VM, aedes)", () => {
  let rig: Rig
  let brokerPort: number
  let broker: Awaited<ReturnType<typeof startBroker>>
  let proxy: Awaited<ReturnType<typeof startProxy>>
  let watcher: MqttClient
  /** every payload published on robots/r1/online, in order */
  const presence: string[] = []
  let boot = 0
  const hosts: Host[] = []

  async function host(id: string): Promise<Host> {
    const h = await Host.connect(brokerPort, id)
    hosts.push(h)
    return h
  }

  async function watch() {
    watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: "watcher", reconnectPeriod: 0 })
    watcher.on("message", (topic, p) => {
      if (topic === `robots/${NAME}/online`) presence.push(p.toString())
    })
    await watcher.subscribeAsync(`robots/${NAME}/online`)
  }

  /** the robot says `online` (again) after `from` entries of `presence` */
  async function online(from: number, timeoutMs = 20000) {
    try {
      await until(`robots/${NAME}/online = online`, () => presence.slice(from).includes("online"), timeoutMs)
    } catch (e) {
      throw new Error(`${(e as Error).message} (seen since: ${presence.slice(from).join(",") || "nothing"}); VM log:\n${rig?.vm.log.slice(-15).join("\n")}`)
    }
  }

  /** same program as at the start, and a call answers over MQTT and over Jacdac */
  async function healthy(what: string) {
    const h = await host(`hh${hosts.length}`)
    const hello = await h.hello()
    assert.equal(hello.bootId, boot, `${what}: the program restarted`)
    await h.open()
    assert.equal(await h.add(40n, 2n), 42n, what)
    const r = await rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 2n }, T(5000))
    assert.equal(r.sum, 3n, `${what}: Jacdac`)
    assert.equal(rig.vm.log.filter((l) => /panic|OutOfMemory|InfiniteLoop|Exception/i.test(l)).length, 0, rig.vm.log.slice(-20).join("\n"))
    await h.close()
  }

  before(async () => {
    brokerPort = await freePort()
    broker = await startBroker(brokerPort)
    proxy = await startProxy(brokerPort)
    await watch()
    rig = await startRig({
      firmware: testFirmware(),
      echoVm: process.env.RS_ECHO_VM === "1",
      mqtt: { url: `mqtt://127.0.0.1:${proxy.port}`, name: NAME },
    })
    boot = rig.node.limits!.bootId
    await online(0)
  })
  after(async () => {
    for (const h of hosts) await h.close().catch(() => {})
    await watcher?.endAsync(true).catch(() => {})
    await rig?.close()
    await proxy?.close()
    await broker?.kill()
  })

  test("presence: `online` is retained; the will says `offline` when the robot's socket is cut, then it is back by itself", async () => {
    // a late subscriber gets the retained state
    const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: "late", reconnectPeriod: 0 })
    const seen: { p: string; retain: boolean }[] = []
    late.on("message", (_t, p, pk) => seen.push({ p: p.toString(), retain: pk.retain }))
    await late.subscribeAsync(`robots/${NAME}/online`)
    await until("the retained online", () => seen.length > 0)
    assert.deepEqual(seen[0], { p: "online", retain: true })
    await late.endAsync(true)

    const from = presence.length
    proxy.cut()
    await until("the will (offline)", () => presence.slice(from).includes("offline"))
    await online(presence.indexOf("offline", from) + 1)
    await healthy("after the cut")
  })

  test("OPEN -> SESSION, LIST -> HELLO with the MQTT frame size and window", async () => {
    const h = await host("h1")
    const hello = await h.hello()
    assert.equal(hello.bootId, boot)
    assert.equal(hello.maxRecord, 2048, "clamp(budget / 12, 236, 4096)")
    assert.equal(hello.window, 4096, "window = two frames")
    // the Jacdac link still announces its own: 236-byte packets, a 944-byte window
    assert.equal(rig.node.limits?.window, 944)
    const services = await until("SERVICE records", () => h.records.filter((r) => r.kind === "service").length >= hello.count).then(() =>
      h.records.filter((r) => r.kind === "service").map((r) => (r.kind === "service" ? r.name : "")),
    )
    assert.ok(services.includes("/add_two_ints") && services.includes("/echo"), services.join(","))
    const s = await h.open()
    assert.ok(s > 0)
    assert.equal(await h.add(2n, 3n), 5n)
  })

  test("both links at once: calls over MQTT and over Jacdac in the same VM, side by side", async () => {
    const h = await host("both")
    await h.open()
    const jc = rig.node.createClient(Echo, "echo")
    const [viaMqtt, viaJacdac] = await Promise.all([
      (async () => {
        const seq = await h.startCall("/echo", Echo.hash32, Echo.request.encode(echo("mqtt", { delay_ms: 300, size: 10 })))
        return Echo.response.decode((await h.result(seq)).data)
      })(),
      jc.call(echo("jacdac", { delay_ms: 300, size: 10 }), T(5000)),
    ])
    assert.equal(viaMqtt.text, "mqtt")
    assert.equal(viaJacdac.text, "jacdac")
    assert.deepEqual([...viaMqtt.data], [...pattern(10)])
    // a Jacdac host never hears MQTT answers and vice versa: each got exactly its own
    assert.equal(h.records.filter((r) => r.kind === "result").length, 0)
  })

  test("a 96 KiB response over MQTT, in frames larger than 236 bytes, and a 12 KB upload", async () => {
    const h = await host("big")
    await h.open()
    const n = 96 * 1024
    const t0 = performance.now()
    const seq = await h.startCall("/echo", Echo.hash32, Echo.request.encode(echo("big", { size: n })))
    const r = await h.result(seq, 30000)
    const ms = performance.now() - t0
    assert.equal(r.status, 0, r.message)
    const res = Echo.response.decode(r.data)
    assert.equal(res.data.length, n)
    assert.deepEqual(Buffer.from(res.data), Buffer.from(pattern(n)))
    const biggest = Math.max(...h.frameSizes)
    assert.ok(biggest > 236 && biggest <= 2048, `largest frame ${biggest}`)
    console.log(`# 96 KiB over MQTT in ${ms.toFixed(0)} ms (${((n / ms) * 1000 / 1024).toFixed(0)} KiB/s), frames up to ${biggest} bytes`)

    // and an upload in 2 KB frames within the announced window
    const up = pattern(11000)
    const useq = await h.startCall("/upload", Upload.hash32, Upload.request.encode({ data: up }), { max: 2048, window: 4096 })
    const ur = await h.result(useq)
    assert.equal(ur.status, 0, ur.message)
    assert.deepEqual(Upload.response.decode(ur.data), { length: up.length, hash: uploadHash(up) })
  })

  test("echo/<host> comes back unchanged on pong/<host>", async () => {
    const h = await host("pinger")
    const payloads = [Buffer.from("ping"), Buffer.alloc(0), Buffer.from(pattern(2000))]
    for (const p of payloads) await h.client.publishAsync(`robots/${NAME}/echo/pinger`, p)
    await until("3 pongs", () => h.pongs.length === 3)
    assert.deepEqual(h.pongs, payloads)
  })

  test("cross-link isolation: a session of Jacdac, or of another MQTT host, is unknown on MQTT (NOSESSION)", async () => {
    const jacdacSession = rig.node.session
    assert.ok(jacdacSession !== 0)
    const a = await host("iso-a")
    const b = await host("iso-b")
    const sa = await a.open()
    // b names the Jacdac session and a's session: both unknown to b
    const req = Echo.request.encode(echo("intruder"))
    for (const s of [jacdacSession, sa]) {
      await b.send([encodeCall({ session: s, seq: 1, ack: 0, timeoutMs: 5000, hash32: Echo.hash32, total: req.length, name: encodeName("/echo"), data: req }), encodePoll({ session: s, seq: 1, have: 0 })])
      await b.take(`NOSESSION ${s}`, (r) => r.kind === "nosession" && r.session === s)
    }
    // and the MQTT session is unknown on Jacdac
    const seenOnJacdac: number[] = []
    const off = rig.node.onDeviceRecord((r) => {
      if (r.kind === "nosession") seenOnJacdac.push(r.session)
    })
    try {
      await rig.node.sendRawFrame(encodePoll({ session: sa, seq: 1, have: 0 }))
      await until("NOSESSION on Jacdac", () => seenOnJacdac.includes(sa))
    } finally {
      off()
    }
    // the owners' sessions are untouched
    assert.equal(await a.add(1n, 1n), 2n)
    assert.equal((await rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 2n, b: 2n }, T(5000))).sum, 4n)
    assert.equal(a.records.filter((r) => r.kind === "nosession").length, 0)
  })

  test("peers are bounded (3): a host beyond them takes the least recently used idle one; that host keeps its session", async () => {
    const hs: Host[] = []
    for (const id of ["p1", "p2", "p3", "p4", "p5"]) {
      const h = await host(id)
      await h.open()
      hs.push(h)
    }
    // p4 and p5 took the peers of the hosts quiet the longest (p1, p2), whose sessions were parked:
    // every host still has its session (a parked one is bound again when its host is back)
    for (const h of hs.slice(1).reverse()) {
      await h.send([encodePoll({ session: h.session, seq: 99, have: 0 })])
      const r = await h.take("STATUS or NOSESSION", (x) => (x.kind === "status" && x.seq === 99) || x.kind === "nosession")
      assert.equal(r.kind, "status", `${h.id} lost its session`)
    }
    // p1's session was parked, not forgotten: its next frame takes the peer idle longest,
    // and it calls in the session it opened
    const p1 = hs[0]!
    await p1.send([encodePoll({ session: p1.session, seq: 99, have: 0 })])
    const r = await p1.take("STATUS or NOSESSION", (x) => (x.kind === "status" && x.seq === 99) || x.kind === "nosession")
    assert.equal(r.kind, "status", "p1 lost its session")
    assert.equal(await p1.add(3n, 4n), 7n)
    // and p2, whose peer p1 took, too
    assert.equal(await hs[1]!.add(1n, 4n), 5n)
  })

  test("peers are bounded: when all 3 have calls in flight, a new host's frame is dropped (logged), and served later", async () => {
    const busy: Host[] = []
    const seqs: number[] = []
    for (const id of ["b1", "b2", "b3"]) {
      const h = await host(id)
      await h.open()
      seqs.push(await h.startCall("/echo", Echo.hash32, Echo.request.encode(echo(id, { delay_ms: 2500 }))))
      busy.push(h)
    }
    const late = await host("b4")
    await late.send([encodeOpen({ nonce: 77, version: PROTOCOL_VERSION })])
    await rig.vm.waitForLog(/mqtt: 3 hosts have calls in flight: a frame from b4 is dropped/, 5000)
    for (let i = 0; i < 3; i++) assert.equal(Echo.response.decode((await busy[i]!.result(seqs[i]!)).data).text, busy[i]!.id)
    assert.equal(late.records.length, 0, "nothing answered the dropped frame")
    await late.open()
    assert.equal(await late.add(8n, 9n), 17n)
  })

  test("a frame that waits for the broker's window goes to the host it was filled for, never to the host its peer serves by then", async () => {
    // Host ids of one length (the client library's are): the topic's length cannot tell them apart.
    // a's answer waits for the window (the broker's PUBACKs held, the window filled with pongs);
    // meanwhile d and e send, and c, a new host, takes the peer idle longest: a's.
    const a = await host("wait-a")
    const d = await host("wait-d")
    const e = await host("wait-e")
    const c = await host("wait-c")
    await a.open()
    await d.hello()
    const frame = (await e.hello()).maxRecord
    // (over Jacdac: "<budget used>/<call records>/<calls in flight>/<sessions>")
    const stats = rig.node.createClient(Echo, "echo")
    const stat = async (i: number) => Number((await stats.call(echo("", { mode: 12 }), T(5000))).text.split("/")[i])
    let seq = 0
    proxy.holdAcks = true
    try {
      // pongs, each within the robot's frame size, largest first, until the window has no room for
      // an answer (a pong that does not fit is dropped by the robot)
      const sizes = [...Array<number>(Math.ceil(20000 / (frame - 64))).fill(frame - 64)]
      for (let n = 512; n >= 1; n >>= 1) sizes.push(n, n)
      for (const n of sizes) await e.client.publishAsync(`robots/${NAME}/echo/${e.id}`, Buffer.alloc(n, 1))
      await until("the last pongs the window took", async () => {
        const k = e.pongs.length
        const acks = proxy.acksHeld
        await stat(3)
        await stat(3)
        return k > 0 && e.pongs.length === k && proxy.acksHeld === acks
      })
      const records = await stat(1)
      seq = await a.startCall("/add_two_ints", AddTwoInts.hash32, AddTwoInts.request.encode({ a: 20n, b: 22n }))
      await until("a's call answered (one more call record; in flight: only the stats call)", async () => (await stat(1)) > records && (await stat(2)) === 1)
      await stat(2)
      assert.equal(a.records.filter((r) => r.kind === "result").length, 0, "the window had room for a's answer: the test did not fill it")
      // (the robot reads its socket in order: c's OPEN is read before the PUBACKs that follow it)
      const published = proxy.publishes
      await d.send([encodeList()])
      await e.send([encodeList()])
      await c.send([encodeOpen({ nonce: 5, version: PROTOCOL_VERSION })])
      await until("the three frames on their way to the robot", () => proxy.publishes >= published + 3)
      assert.ok(proxy.acksHeld > 0)
    } finally {
      proxy.holdAcks = false
    }
    await c.take("c's SESSION", (r) => r.kind === "session" && r.nonce === 5)
    const leaked = c.records.filter((r) => "session" in r && r.session === a.session)
    assert.deepEqual(leaked, [], "records of a's session were published on c's topic")
    // a's answer was kept for it: a POLL brings it
    const r = await a.result(seq, 10000, 300)
    assert.equal(r.status, 0, r.message)
    assert.equal(AddTwoInts.response.decode(r.data).sum, 42n)
  })

  test("broker killed and restarted on the same port: the robot is back online by itself, same bootId", async () => {
    const from = presence.length
    await watcher.endAsync(true)
    await broker.kill()
    await until("the robot's socket closed", () => proxy.connections === 0)
    broker = await startBroker(brokerPort)
    await watch()
    await online(from)
    await healthy("after the broker restart")
  })

  test("the robot's socket cut in the middle of a call: it reconnects, the call's answer is still there", async () => {
    const h = await host("midcall")
    await h.open()
    const seq = await h.startCall("/echo", Echo.hash32, Echo.request.encode(echo("slow", { delay_ms: 1500, size: 20000 })))
    await h.send([encodePoll({ session: h.session, seq, have: 0 })])
    await h.take("STATUS(running)", (r) => r.kind === "status" && r.seq === seq && r.state === 2)
    const from = presence.length
    proxy.cut()
    await online(from)
    // the host polls on silence; the robot answers from its retained result or running call
    const r = await h.result(seq, 20000, 500)
    assert.equal(r.status, 0, r.message)
    assert.deepEqual(Buffer.from(Echo.response.decode(r.data).data), Buffer.from(pattern(20000)))
    await healthy("after the mid-call cut")
  })

  test("garbage: bad records, an oversized PUBLISH and bytes that are no MQTT leave the robot serving", async () => {
    const h = await host("junk")
    // records that do not parse: answered with ERROR, nothing else
    await h.client.publishAsync(`robots/${NAME}/in/junk`, Buffer.from([0xff, 0xff, 0xff, 1, 2, 3]))
    await h.take("ERROR", (r) => r.kind === "error")
    await h.client.publishAsync(`robots/${NAME}/in/junk`, Buffer.from(rec(Kind.CALL, new Uint8Array(3))))
    // a PUBLISH far larger than any frame: skipped, never held
    // (16 KiB: the simulator hands the firmware what node reads at once, up to 64 KiB, which does
    // not fit its heap; the ESP32's runtime reads 128 bytes at a time, any message size is skipped)
    await h.client.publishAsync(`robots/${NAME}/in/junk`, Buffer.alloc(16 * 1024, 0x17))
    await h.client.publishAsync(`robots/${NAME}/echo/junk`, Buffer.alloc(8 * 1024, 1))
    await rig.vm.waitForLog(/mqtt: skipped a message of 164\d\d bytes/, 10000)
    await rig.vm.waitForLog(/mqtt: skipped a message of 82\d\d bytes/, 10000)
    await h.open()
    assert.equal(await h.add(5n, 5n), 10n)
    // bytes that are no MQTT, as if from the broker: the robot drops the connection and comes back
    const from = presence.length
    proxy.inject(Buffer.from([0x00, 0x01, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff]))
    await rig.vm.waitForLog(/mqtt: unexpected packet type 0/, 10000)
    await online(from)
    await healthy("after garbage")
  })

  test("a program restart whose old connection the new one takes over: the robot stays online (it answers its own will)", async () => {
    // if the old program's connection outlived the restart, the broker would drop it when the new
    // program connects with the same client id and publish its will `offline` after the new
    // program's `online`: the retained state must end `online` whatever the order
    const before = rig.node.limits!.bootId
    await rig.node.createClient(Echo, "echo").call(echo("reset", { mode: 3, delay_ms: 50 }), { timeoutMs: 3000 }).catch(() => {})
    await until("the new program's HELLO", () => rig.node.limits !== undefined && rig.node.limits.bootId !== before, 20000)
    await until("presence settled on online", () => presence[presence.length - 1] === "online", 20000)
    // the retained state a new host sees, a moment later
    await new Promise((r) => setTimeout(r, 1500)) // (let a late will arrive: there is no event for "nothing more comes")
    const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: "late-restart", reconnectPeriod: 0 })
    const seen: string[] = []
    late.on("message", (_t, p) => seen.push(p.toString()))
    await late.subscribeAsync(`robots/${NAME}/online`)
    await until("the retained presence", () => seen.length > 0)
    await late.endAsync(true)
    assert.equal(seen[0], "online", `retained presence after a restart: ${seen[0]} (seen: ${presence.slice(-6).join(",")})`)
    boot = rig.node.limits!.bootId
  })

  test("a reset keeps the settings (raw text too): the new program comes back on MQTT by itself", async () => {
    // settings written as raw text (not the JSON text of `.env`), then a device reset
    // (a trailing slash, which the firmware ignores, tells this raw value from the JSON one in the flash)
    const url = `mqtt://127.0.0.1:${proxy.port}/`
    await new RawSettings(rig).set(mqttSettings({ url, name: NAME }))
    const flash = join(rig.firmware.dir, ".devicescript", "flash", "sim.bin")
    await until("the settings in the VM's flash", () => existsSync(flash) && readFileSync(flash).includes(Buffer.from(url)))
    const from = presence.length
    await rig.restartVm()
    await online(from)
    const h = await host("after-reset")
    const hello = await h.hello()
    assert.notEqual(hello.bootId, boot, "a new program")
    await h.open()
    assert.equal(await h.add(6n, 7n), 13n)
  })
})

describe("the robot's MQTT connection when the broker misbehaves (a second VM)", () => {
  const name = "r2"
  let rig: Rig
  let brokerPort: number
  let broker: Awaited<ReturnType<typeof startBroker>>
  let proxy: Awaited<ReturnType<typeof startProxy>>
  let watcher: MqttClient
  const presence: string[] = []
  /** user and password of every CONNECT the broker saw from the robot */
  const logins: string[] = []
  let refuse = 0
  /** when the broker got each of the robot's PINGREQs (ms) */
  const pingTimes: number[] = []

  async function online(from: number, timeoutMs = 20000) {
    try {
      await until(`robots/${name}/online = online`, () => presence.slice(from).includes("online"), timeoutMs)
    } catch (e) {
      throw new Error(`${(e as Error).message} (seen since: ${presence.slice(from).join(",") || "nothing"}); VM log:\n${rig?.vm.log.slice(-15).join("\n")}`)
    }
  }

  before(async () => {
    brokerPort = await freePort()
    broker = await startBroker(brokerPort)
    broker.broker.authenticate = (client: { id: string }, user: string, pass: Buffer | undefined, cb: (e: Error | null, ok: boolean) => void) => {
      if (client.id !== `robot-${name}`) return cb(null, true)
      logins.push(`${user}:${pass?.toString()}`)
      if (!refuse) return cb(null, true)
      cb(Object.assign(new Error("refused"), { returnCode: refuse }), false)
    }
    broker.broker.on("ping", (_p: unknown, client: { id: string }) => {
      if (client.id === `robot-${name}`) pingTimes.push(Date.now())
    })
    proxy = await startProxy(brokerPort)
    watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: "watcher2", reconnectPeriod: 0 })
    watcher.on("message", (_t, p) => presence.push(p.toString()))
    await watcher.subscribeAsync(`robots/${name}/online`)
    rig = await startRig({
      firmware: testFirmware(),
      echoVm: process.env.RS_ECHO_VM === "1",
      mqtt: { url: `mqtt://127.0.0.1:${proxy.port}`, name, user: "robot-user", pass: "s3cret" },
    })
    await online(0)
  })
  after(async () => {
    await watcher?.endAsync(true).catch(() => {})
    await rig?.close()
    await proxy?.close()
    await broker?.kill()
  })

  test("MQTT_USER/MQTT_PASS are sent; a refused CONNECT is named in the log and retried until accepted", async () => {
    assert.deepEqual(logins, ["robot-user:s3cret"])
    refuse = 4
    const from = presence.length
    proxy.cut()
    await until("the will (offline)", () => presence.slice(from).includes("offline"))
    await rig.vm.waitForLog(/mqtt: broker refused the connection: 4 bad user name or password/, 15000)
    refuse = 0
    await online(presence.indexOf("offline", from) + 1)
    assert.ok(logins.length >= 3)
  })

  test("a CONNACK that never comes: the robot gives up after 10 s and connects again", async () => {
    proxy.hold = true
    const from = presence.length
    const t0 = Date.now()
    proxy.cut()
    await rig.vm.waitForLog(/mqtt: no CONNACK/, 20000)
    const waited = Date.now() - t0
    proxy.hold = false
    await online(from)
    assert.ok(waited >= 9000, `gave up after ${waited} ms`)
  })

  test("keep-alive: a PINGREQ every 15 s; a PINGRESP that never comes: the robot reconnects", async () => {
    // the connection made after the last test: its next PINGREQ within 15 s (+ the VM's scheduling)
    const p0 = pingTimes.length
    const down0 = proxy.toClient
    await until("a PINGREQ", () => pingTimes.length > p0, 20000)
    // its PINGRESP is on its way to the robot before the proxy goes mute (muting earlier made this
    // PINGREQ the unanswered one: CI failure of stop 21)
    await until("the PINGRESP passed the proxy", () => proxy.toClient >= down0 + 2, 5000)
    // the broker's answers stop reaching the robot: the next PINGREQ goes unanswered
    proxy.mute = true
    const from = presence.length
    await rig.vm.waitForLog(/mqtt: no PINGRESP/, 30000)
    const gaveUp = Date.now()
    proxy.mute = false
    assert.ok(pingTimes.length > p0 + 1, "the next PINGREQ reached the broker")
    const period = pingTimes[p0 + 1]! - pingTimes[p0]!
    assert.ok(period > 14000 && period < 17000, `PINGREQ period ${period} ms`)
    const timeout = gaveUp - pingTimes[p0 + 1]!
    assert.ok(timeout > 9000 && timeout < 12000, `gave up ${timeout} ms after the PINGREQ`)
    await online(from)
    assert.equal(rig.vm.log.filter((l) => /panic|OutOfMemory|InfiniteLoop|Exception/i.test(l)).length, 0)
  })

  test("mqtts://: TLS to a broker whose certificate the VM trusts (NODE_EXTRA_CA_CERTS), after a reset", async (t) => {
    if ("skip" in tlsCert) {
      t.skip(tlsCert.skip)
      return
    }
    const { key, cert } = tlsCert
    const tlsBroker = await Aedes.createBroker()
    const server = tls.createServer({ key, cert }, tlsBroker.handle)
    const sockets = new Set<net.Socket>()
    server.on("connection", (c: net.Socket) => {
      sockets.add(c)
      c.once("close", () => sockets.delete(c))
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
    const port = (server.address() as net.AddressInfo).port
    const seen: string[] = []
    const w = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { clientId: "tls-watcher", ca: cert, reconnectPeriod: 0 })
    try {
      w.on("message", (_t, p) => seen.push(p.toString()))
      await w.subscribeAsync(`robots/${name}/online`)
      const url = `mqtts://127.0.0.1:${port}`
      await rig.writeSettings(mqttSettings({ url, name }))
      const flash = join(rig.firmware.dir, ".devicescript", "flash", "sim.bin")
      await until("the settings in the VM's flash", () => existsSync(flash) && readFileSync(flash).includes(Buffer.from(url)))
      // the VM is a Node process: it trusts the test's certificate through NODE_EXTRA_CA_CERTS
      process.env.NODE_EXTRA_CA_CERTS = tlsCert.certPath
      await rig.restartVm()
      await until("online over TLS", () => seen.includes("online"))
      assert.ok(rig.vm.log.some((l) => l.includes(`connecting to tls://127.0.0.1:${port}`)), rig.vm.log.slice(-10).join("\n"))
    } finally {
      delete process.env.NODE_EXTRA_CA_CERTS
      await w.endAsync(true)
      for (const c of sockets) c.destroy()
      await new Promise<void>((r) => server.close(() => r()))
      await new Promise<void>((r) => tlsBroker.close(() => r()))
    }
  })

  test("a ROBOT_NAME the host tools cannot address (not 1-32 characters of [A-Za-z0-9_-]) leaves the link off, the log naming the rule", async () => {
    // (last in this suite: the VM stays off MQTT) a dot: no topic separator or wildcard, but outside
    // the rule of the host tools and the embedded broker (client/names.ts ROBOT_NAME)
    const bad = "rover.1"
    await rig.writeSettings(mqttSettings({ url: `mqtt://127.0.0.1:${proxy.port}`, name: bad }))
    const flash = join(rig.firmware.dir, ".devicescript", "flash", "sim.bin")
    await until("the settings in the VM's flash", () => existsSync(flash) && readFileSync(flash).includes(Buffer.from(bad)))
    await rig.restartVm()
    await rig.vm.waitForLog(/mqtt: off \(ROBOT_NAME 'rover\.1' is not 1-32 characters of \[A-Za-z0-9_-\]\)/, 20000)
    assert.ok(!rig.vm.log.some((l) => l.includes(`robots/${bad}/`)), rig.vm.log.slice(-10).join("\n"))
  })
})

// Heavy traffic and abuse over MQTT (issues 16 item 2, 20, 17): the robot must never restart, and
// other hosts must be served WHILE the load runs. The embedded broker (packages/host/src/mqtt/broker.ts) with a
// proxy in front of the robot that can read slowly (a slow WiFi link) or stall.
// (Issue 20: 4 and 8 hosts uploading at once used to run the robot out of memory. The VM reads the
// robot's socket as the ESP32 does, host/sim/sockreads.cjs; an upload's buffer is taken after the
// read that brought its CALL, and the host streams only once admitted: src/rpc/calls.ts admit.)
describe("the robot's MQTT link under heavy traffic (a third VM, the embedded broker)", () => {
  const name = "r3"
  let rig: Rig
  let broker: EmbeddedBroker
  let proxy: Awaited<ReturnType<typeof startProxy>>
  let boot = 0
  const nodes: MqttNode[] = []

  function panics(): string[] {
    return rig.vm.log.filter((l) => /panic|OutOfMemory|InfiniteLoop|Exception|RangeError/i.test(l))
  }
  function noRestart(what: string) {
    assert.deepEqual(panics(), [], `${what}: ${rig.vm.log.slice(-25).join("\n")}`)
    assert.equal(rig.node.limits!.bootId, boot, `${what}: the program restarted`)
  }
  async function node(): Promise<MqttNode> {
    const n = (await connect({ transport: mqttTransport({ url: broker.url, robot: name }) })) as MqttNode
    nodes.push(n)
    await until(`robot ${name} online for a new host`, () => n.online === true)
    return n
  }
  /**
   * Calls add_two_ints every `everyMs` from a fresh host until `stop()`; each call must answer
   * within `boundMs` (busy retries allowed). Returns the latencies.
   */
  async function victim(everyMs: number, boundMs: number) {
    const n = await node()
    const add = n.createClient(AddTwoInts, "add_two_ints")
    assert.equal((await add.call({ a: 1n, b: 1n }, T(10000))).sum, 2n)
    const times: number[] = []
    const failures: string[] = []
    let stopped = false
    const run = (async () => {
      for (let i = 0n; !stopped; i++) {
        const t0 = performance.now()
        try {
          const r = await add.call({ a: i, b: 1n }, T(boundMs))
          if (r.sum !== i + 1n) failures.push(`wrong sum ${r.sum}`)
          times.push(performance.now() - t0)
        } catch (e) {
          failures.push(`${(e as Error).message} after ${(performance.now() - t0).toFixed(0)} ms`)
        }
        await new Promise((r) => setTimeout(r, everyMs))
      }
    })()
    return {
      times,
      failures,
      async stop() {
        stopped = true
        await run
      },
    }
  }

  before(async () => {
    broker = await startEmbeddedBroker({ host: "127.0.0.1", port: 0 })
    proxy = await startProxy(broker.port)
    rig = await startRig({
      firmware: testFirmware(),
      echoVm: process.env.RS_ECHO_VM === "1",
      mqtt: { url: `mqtt://127.0.0.1:${proxy.port}`, name },
    })
    boot = rig.node.limits!.bootId
    const n = await node()
    await n.listServices({ timeoutMs: 30000 })
  })
  after(async () => {
    for (const n of nodes) await n.close().catch(() => {})
    // (what the robot said about its link, for a failing run)
    for (const l of rig?.vm.log.filter((x) => /mqtt:|PANIC|Exception/.test(x)) ?? []) console.log(`# vm: ${l}`)
    await rig?.close()
    await proxy?.close()
    await broker?.close()
  })

  test("each MQTT peer's heap is charged to the call budget for as long as it lives (PEER_HEAP, 1,600 bytes; 3 peers at most)", async () => {
    // (the budget in use, read over Jacdac: the echo handler's mode 12 answers "budgetUsed/tracked/inFlight/sessions")
    const stats = rig.node.createClient(Echo, "echo")
    const used = async () => Number((await stats.call(echo("", { mode: 12 }), T(5000))).text.split("/")[0])
    // idle: what is charged with the one host of before() (one peer), once its answers are acknowledged
    let b0 = -1
    await until("an idle budget", async () => {
      const a = await used()
      b0 = await used()
      return a === b0
    })
    for (const k of [1, 2, 3]) {
      const n = await node()
      await n.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 2n }, T(10000))
      // the new host's peer stays charged; its call's own charge goes once the call is settled
      const want = b0 + 1600 * Math.min(k, 2)
      await until(`the budget in use back to ${want} after host ${k + 1}`, async () => (await used()) === want, 10000)
    }
  })

  test("a burst of 40 messages of 3,000 bytes (and of 2,000, within every limit) on echo/ and 40 on in/ at once: no restart, another host served during it", async () => {
    const v = await victim(100, 5000)
    const c = await mqtt.connectAsync(broker.url, { clientId: "burst", reconnectPeriod: 0 })
    let pongs = 0
    c.on("message", () => pongs++)
    await c.subscribeAsync(`robots/${name}/pong/burst`)
    try {
      // (3,000 bytes: over maxRecord + 128 since the frames are 2 KB, skipped unheld; 2,000: handled)
      for (let round = 0; round < 3; round++) {
        const m = Buffer.alloc(round === 0 ? 3000 : 2000, 0x41 + round)
        const sent: Promise<unknown>[] = []
        for (let i = 0; i < 40; i++) sent.push(c.publishAsync(`robots/${name}/echo/burst`, m), c.publishAsync(`robots/${name}/in/burst`, m))
        await Promise.all(sent)
        const before = v.times.length
        await until("two victim calls answered after the burst", () => v.times.length >= before + 2 || v.failures.length > 0, 20000)
      }
    } finally {
      await v.stop()
      await c.endAsync(true)
    }
    assert.deepEqual(v.failures, [])
    assert.ok(pongs > 0, "some pongs came back")
    noRestart("after the bursts")
  })

  test("a host that sends as fast as the broker takes it (frames packed with LISTs, 10 s): another host's calls are answered during it, no restart", async () => {
    // Before each host's rate to a robot was bounded at the broker (HOST_RATE_BYTES_PER_S): the
    // broker queued 1 MiB for the robot and the kernel megabytes more, the VM worked through them
    // for seconds, and 7 of another host's 10 calls timed out after 3 s.
    const frame = Buffer.from(packRecords(Array.from({ length: 200 }, () => encodeList()), 2000)[0]!)
    const script = `
      const mqtt = require("mqtt")
      const [url, topic, hex] = process.argv.slice(1)
      const c = mqtt.connect(url, { clientId: "flooder", reconnectPeriod: 0 })
      const p = Buffer.from(hex, "hex")
      let sent = 0
      c.on("connect", () => {
        process.stdout.write("start\\n")
        const go = () => {
          while (c.stream.writableLength < 256 * 1024) { c.publish(topic, p); sent++ }
          c.stream.once("drain", go)
        }
        go()
        setInterval(() => process.stdout.write("sent " + sent + "\\n"), 500)
      })
    `
    const v = await victim(20, 3000)
    const flooder = runScript(script, [broker.url, `robots/${name}/in/flooder`, frame.toString("hex")])
    try {
      await flooder.line("it connected", (l) => l === "start")
      const t0 = performance.now()
      const before = v.times.length
      await new Promise((r) => setTimeout(r, 10000))
      const sent = Number(flooder.lines().filter((l) => l.startsWith("sent ")).pop()?.slice(5) ?? 0)
      const during = v.times.slice(before)
      console.log(`# flood: ${sent} messages of ${frame.length} bytes sent in ${((performance.now() - t0) / 1000).toFixed(1)} s; the other host: ${during.length} calls, p50 ${pct(during, 50).toFixed(1)} ms, max ${Math.max(...during).toFixed(1)} ms`)
      assert.ok(sent > 20000, `the flooder sent only ${sent} messages: no flood`)
      assert.deepEqual(v.failures, [])
      assert.ok(during.length >= 100, `the other host made ${during.length} calls in 10 s`)
    } finally {
      flooder.kill()
      await v.stop()
    }
    noRestart("after the flood")
  })

  for (const hosts of [4, 8]) {
    test(`${hosts} hosts each upload 16 KiB at the same moment: all complete, no restart, another host served during it`, async () => {
      const ns: MqttNode[] = []
      for (let i = 0; i < hosts; i++) ns.push(await node())
      const v = await victim(100, 5000)
      try {
        const data = ns.map((_, i) => pattern(16 * 1024 + i))
        const t0 = performance.now()
        const got = await Promise.all(ns.map((n, i) => n.createClient(Upload, "upload").call({ data: data[i]! }, T(60000))))
        console.log(`# ${hosts} x 16 KiB uploads over MQTT at once: ${(performance.now() - t0).toFixed(0)} ms`)
        for (let i = 0; i < hosts; i++) assert.deepEqual(got[i], { length: data[i]!.length, hash: uploadHash(data[i]!) })
      } finally {
        await v.stop()
        for (const n of ns) await n.close()
      }
      assert.deepEqual(v.failures, [])
      assert.ok(v.times.length > 0, "the other host called during the uploads")
      noRestart(`${hosts} uploads`)
    })
  }

  // (Was a known defect until the MQTT peers' heap was charged to the call budget: in about 1 run
  // of 3 another host went unanswered for 5 s or the program ran out of memory; 6 of 6 runs
  // passed after it, victim max 46-65 ms.)
  test("a 256 KiB response every 250 ms for 20 s, from a host that reads and one that does not: no restart, others served, the broker's queue bounded", async () => {
    const reader = await node()
    const ec = reader.createClient(Echo, "echo")
    // the host that does not read: opens a session, then stops reading its socket and keeps calling
    const idler = await Host.connect(broker.port, "idler", name)
    await idler.open()
    ;(idler.client.stream as net.Socket).pause()
    const v = await victim(200, 5000)
    const calls: Promise<unknown>[] = []
    let answered = 0
    let refused = 0
    const end = Date.now() + 20000
    try {
      while (Date.now() < end) {
        calls.push(ec.call(echo("", { size: 256 * 1024 }), T(60000)).then((r) => {
          assert.equal(r.data.length, 256 * 1024)
          answered++
        }, () => refused++))
        await idler.startCall("/echo", Echo.hash32, Echo.request.encode(echo("", { size: 256 * 1024 })))
        await new Promise((r) => setTimeout(r, 250))
        assert.deepEqual(panics(), [], "during the load")
      }
      const queued = broker.queuedBytes("idler")
      console.log(`# idle host: ${queued} bytes queued for it at the broker`)
      assert.ok(queued <= 1024 * 1024 + 64 * 1024, `the broker holds ${queued} bytes for a host that does not read`)
    } finally {
      await v.stop()
      await Promise.all(calls)
      await idler.close()
    }
    console.log(`# 256 KiB every 250 ms: ${answered} answered, ${refused} refused; victim p50 ${pct(v.times, 50).toFixed(0)} ms max ${Math.max(...v.times).toFixed(0)} ms`)
    assert.deepEqual(v.failures, [])
    assert.ok(answered > 0)
    noRestart("after 20 s of 256 KiB calls")
  })

  test("a slow reader between the robot and the broker: what the robot wrote and the broker has not read stays bounded", async () => {
    const n = await node()
    const ec = n.createClient(Echo, "echo")
    proxy.slow = 64 * 1024
    try {
      const size = 256 * 1024
      const call = ec.call(echo("", { size }), T(60000))
      await until("64 KiB through the slow link", () => proxy.fromClient > 64 * 1024, 20000)
      // the reader stalls for 3 s, and the broker's answers (PUBACKs) are held too: whatever the
      // robot wrote meanwhile comes out at once when reading resumes
      proxy.holdDown = true
      proxy.stall = true
      await new Promise((r) => setTimeout(r, 3000))
      const at = proxy.fromClient
      proxy.slow = 0
      proxy.stall = false
      await new Promise((r) => setTimeout(r, 500))
      const backlog = proxy.fromClient - at
      console.log(`# slow reader: ${backlog} bytes written by the robot while the reader stalled`)
      proxy.holdDown = false
      const r = await call
      assert.deepEqual(Buffer.from(r.data), Buffer.from(pattern(size)))
      // (the window: 16 KB unacknowledged, plus a frame)
      assert.ok(backlog <= 20 * 1024, `${backlog} bytes were written and not read`)
    } finally {
      proxy.slow = 0
      proxy.stall = false
      proxy.holdDown = false
    }
    noRestart("after the slow reader")
  })
})

// mqtts:// with the largest frames (issue 17). On the ESP32 every TLS write must be shorter than
// 4096 bytes (MBEDTLS_SSL_OUT_CONTENT_LEN: the runtime asserts, and the board restarts); in the VM
// host/sim/sockreads.cjs ends the VM's process at such a write with a PANIC line. With 4096-byte
// frames (test/firmware/bigframe_fw.ts) a frame's PUBLISH is over that size, so only the link's
// cutting of writes (mqtt.ts PIECE) keeps the robot alive, and TLS's small window (4 KB: one such
// PUBLISH at a time) is the slowest path. The robot reaches the broker over TLS, the hosts over
// plain TCP (the same aedes).
describe("mqtts:// with the largest frames: no TLS write the ESP32 runtime asserts on (a fourth VM)", { skip: "skip" in tlsCert ? tlsCert.skip : false }, () => {
  const name = "r4"
  let rig: Rig
  let tlsBroker: { handle: (s: net.Socket) => void; close(cb: () => void): void }
  let tlsServer: tls.Server
  let tcpServer: net.Server
  const sockets = new Set<net.Socket>()
  let node: MqttNode
  let boot = 0

  const listen = (s: net.Server) =>
    new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as net.AddressInfo).port)))
  const vmEnded = () => `the VM ended (exit ${rig.vm.child.exitCode}):\n${rig.vm.log.slice(-10).join("\n")}`
  /** `p`; when the VM's process ends meanwhile, a rejection that says so with the VM's last lines */
  async function whileAlive<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const gone = new Promise<never>((_, reject) => {
      timer = setInterval(() => rig.vm.exited && reject(new Error(vmEnded())), 50)
    })
    try {
      return await Promise.race([p, gone])
    } catch (e) {
      // (the robot's will, `offline`, may fail the call before the VM's exit is seen here)
      await until("the VM's end", () => rig.vm.exited, 1000).catch(() => {})
      throw rig.vm.exited ? new Error(`${(e as Error).message}; ${vmEnded()}`) : e
    } finally {
      clearInterval(timer)
    }
  }

  before(async () => {
    if ("skip" in tlsCert) return
    tlsBroker = await Aedes.createBroker()
    tlsServer = tls.createServer({ key: tlsCert.key, cert: tlsCert.cert }, tlsBroker.handle)
    tcpServer = net.createServer(tlsBroker.handle)
    for (const s of [tlsServer, tcpServer]) s.on("connection", (c: net.Socket) => {
      sockets.add(c)
      c.once("close", () => sockets.delete(c))
    })
    const tlsPort = await listen(tlsServer)
    const tcpPort = await listen(tcpServer)
    // the VM is a Node process: it trusts the test's certificate through NODE_EXTRA_CA_CERTS
    process.env.NODE_EXTRA_CA_CERTS = tlsCert.certPath
    try {
      rig = await startRig({ firmware: "test/firmware/bigframe_fw.ts", echoVm: process.env.RS_ECHO_VM === "1", mqtt: { url: `mqtts://127.0.0.1:${tlsPort}`, name } })
    } finally {
      delete process.env.NODE_EXTRA_CA_CERTS
    }
    boot = rig.node.limits!.bootId
    node = (await connect({ transport: mqttTransport({ url: `mqtt://127.0.0.1:${tcpPort}`, robot: name }) })) as MqttNode
    await until(`robot ${name} online over TLS`, () => node.online === true, 30000)
    await node.listServices({ timeoutMs: 30000 })
  })
  after(async () => {
    await node?.close().catch(() => {})
    for (const l of rig?.vm.log.filter((x) => /mqtt:|PANIC|Exception/.test(x)) ?? []) console.log(`# vm: ${l}`)
    await rig?.close()
    for (const c of sockets) c.destroy()
    if (tlsServer) await new Promise<void>((r) => tlsServer.close(() => r()))
    if (tcpServer) await new Promise<void>((r) => tcpServer.close(() => r()))
    if (tlsBroker) await new Promise<void>((r) => tlsBroker.close(() => r()))
  })

  test("a 64 KiB answer, a 16 KiB upload and a 4 KiB raw echo in 4096-byte frames over TLS: intact, no TLS write of 4096 bytes or more, no restart", async () => {
    assert.ok(rig.vm.log.some((l) => /connecting to tls:/.test(l)), "the robot connected over TLS")
    assert.equal(node.limits?.maxRecord, 4096, "the largest frames: clamp(budget / 12, 236, 4096)")
    const size = 64 * 1024
    const r = await whileAlive(node.createClient(Echo, "echo").call(echo("tls", { size }), T(60000)))
    assert.deepEqual(Buffer.from(r.data), Buffer.from(pattern(size)))
    const data = pattern(16 * 1024 + 3)
    assert.deepEqual(await whileAlive(node.createClient(Upload, "upload").call({ data }, T(60000))), { length: data.length, hash: uploadHash(data) })
    // a pong is the whole payload in one PUBLISH: 4096 bytes of it, over 4096 with its topic
    const raw = Buffer.from(pattern(4096))
    assert.deepEqual(Buffer.from(await whileAlive(node.echo(raw, { timeoutMs: 20000 }))), raw)
    assert.deepEqual(rig.vm.log.filter((l) => /TLS write of|panic|OutOfMemory|InfiniteLoop|Exception|RangeError/i.test(l)), [], rig.vm.log.slice(-20).join("\n"))
    assert.equal(rig.vm.exited, false, "the VM is running")
    assert.equal(node.limits!.bootId, boot, "the program restarted")
  })
})
