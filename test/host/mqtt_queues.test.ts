// What a broker holds for a host that stops reading (issue 20): bounded on both brokers, and on the
// embedded one the other hosts keep getting their messages meanwhile (aedes alone waits for a slow
// client's socket to drain before delivering anything else: one host that stops reading would
// stall the robot's answers to every host). The robot's side of a slow link is tested in the VM
// (mqtt_device.test.ts, "a slow reader between the robot and the broker").
import assert from "node:assert/strict"
import { existsSync, readFileSync } from "node:fs"
import type { Socket } from "node:net"
import type { MqttClient } from "mqtt"
import { test } from "node:test"
import { afterGc } from "../support/memory"
import { callLoop, max } from "../support/victim"
import { runScript } from "../support/child"
import * as net from "node:net"
import { HOST_SHARE_BYTES, MAX_PACKET_BYTES, MAX_PENDING, MAX_PENDING_PER_ADDRESS, MAX_QUEUED_BYTES, MAX_SUBSCRIPTIONS, startBroker } from "../../packages/host/src/mqtt/broker"
import { MemoryRobot } from "../../packages/host/src/mqtt/memrobot"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import { MOSQUITTO, embeddedBroker, rawClient, startMosquitto, until, varint } from "./mqtt_helpers"

/** the JavaScript heap and the buffers outside it (where a socket's data is kept), after GC */
const heldAfterGc = () => {
  const m = afterGc()
  return m.heapUsed + m.arrayBuffers
}

/** A host that subscribed to `topic`, then stopped reading its socket. */
async function idleHost(url: string, topic: string, opts: { username?: string; password?: string } = {}) {
  const c = await rawClient(url, { clientId: "idle", ...opts })
  await c.subscribeAsync(topic)
  ;(c.stream as Socket).pause()
  return c
}

test("embedded broker: a host that does not read holds at most MAX_QUEUED_BYTES, and another host is served meanwhile", async () => {
  const broker = await embeddedBroker()
  try {
    const idle = await idleHost(broker.url, "robots/+/out/idle")
    const other = await rawClient(broker.url, { clientId: "other" })
    let got = 0
    other.on("message", () => got++)
    await other.subscribeAsync("robots/r1/out/other")
    // (without users the broker takes the user name given as the identity: the robot r1, ...)
    const robots = await Promise.all(Array.from({ length: 32 }, (_, k) => rawClient(broker.url, { clientId: `robot-r${k}`, username: `r${k}` })))
    const robot = robots[1]!
    const frame = Buffer.alloc(16 * 1024, 7)
    // 16 MiB to the idle host, from 32 robots in turn (each may hold ROBOT_SHARE_BYTES of the host's
    // queue: together they reach its bound), a small frame to the other host after each 64 of them
    for (let i = 0; i < 1024; i++) {
      await robots[i % 32]!.publishAsync(`robots/r${i % 32}/out/idle`, frame, { qos: 1 })
      if (i % 64 === 63) await robot.publishAsync("robots/r1/out/other", Buffer.from("hi"), { qos: 1 })
      assert.ok(broker.queuedBytes("idle") <= MAX_QUEUED_BYTES + frame.length + 64, `${broker.queuedBytes("idle")} bytes held for the idle host`)
    }
    await until(() => got === 16, "the other host's 16 messages", 10000)
    assert.ok(broker.queuedBytes("idle") >= MAX_QUEUED_BYTES / 2, "the idle host's queue filled up to the bound")
    await Promise.all([idle.endAsync(true), other.endAsync(true), ...robots.map((r) => r.endAsync(true))])
  } finally {
    await broker.close()
  }
})

test("embedded broker: a host flooding a robot that reads slowly cannot make the broker drop another host's messages to it (issue 16): each host holds at most HOST_SHARE_BYTES of the robot's queue", { timeout: 120000 }, async () => {
  const lines: string[] = []
  // (the rate each host may send a robot set out of the way: this is the queue's bound alone; the
  // rate is tested with the VM robot, mqtt_device "a host that sends as fast as the broker takes it")
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l), hostRateBytesPerS: 1 << 30 })
  // the robot: subscribed to what hosts send it, then not reading (a robot busy with a flood reads
  // as slowly as it can handle what comes)
  const robot = await rawClient(broker.url, { clientId: "robot-r1", username: "r1" })
  const got = new Map<string, number>()
  robot.on("message", (topic) => got.set(topic, (got.get(topic) ?? 0) + 1))
  await robot.subscribeAsync("robots/r1/in/+")
  ;(robot.stream as Socket).pause()
  // 50 MB from the flooder (more than the kernel's loopback buffers take), its last publish QoS 1:
  // acknowledged once the broker has handled everything before it
  const script = `
    const mqtt = require("mqtt")
    const c = mqtt.connect(process.argv[1], { clientId: "flooder" })
    c.on("connect", () => {
      const p = Buffer.alloc(1000, 1)
      for (let i = 1; i < 50000; i++) c.publish("robots/r1/in/flooder", p)
      c.publish("robots/r1/in/flooder", p, { qos: 1 }, () => process.stdout.write("done\\n"))
    })
  `
  const flooder = runScript(script, [broker.url])
  const victim = await rawClient(broker.url, { clientId: "victim" })
  try {
    await flooder.line("the broker handled the flood", (l) => l === "done")
    assert.ok(broker.queuedBytes("r1") > 0, "the robot's queue at the broker is empty: the flood did not fill the kernel's buffers")
    for (let i = 0; i < 20; i++) await victim.publishAsync("robots/r1/in/victim", Buffer.from(`call ${i}`), { qos: 1 })
    // the flooder's share of the robot's queue, not the whole bound (and the socket's own 16 KiB:
    // a message counts as taken once the socket accepts it under its high-water mark)
    assert.ok(broker.queuedBytes("r1") <= HOST_SHARE_BYTES + 16384 + 2048, `${broker.queuedBytes("r1")} bytes held for the robot`)
    ;(robot.stream as Socket).resume()
    await until(() => got.get("robots/r1/in/victim") === 20, "the victim's 20 messages", 30000)
    assert.ok(lines.some((l) => l.startsWith("host flooder ") && l.endsWith("dropping its messages to it")), lines.slice(-5).join(" | "))
  } finally {
    flooder.kill()
    await Promise.all([robot.endAsync(true), victim.endAsync(true)])
    await broker.close()
  }
})

test("mosquitto with the docs' configuration: a host that does not read costs the broker about max_queued_messages frames", { skip: !existsSync(MOSQUITTO) && "no mosquitto" }, async () => {
  const users = [
    { name: "bridge", password: "pw-bridge" },
    { name: "r1", password: "pw-r1" },
  ]
  const m = await startMosquitto(users)
  try {
    const rss = () => {
      const status = readFileSync(`/proc/${m.pid}/status`, "utf8")
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024
    }
    // (a host user may read only its own answers: robots/+/out/<user>)
    const idle = await idleHost(m.url, "robots/r1/out/bridge", { username: "bridge", password: "pw-bridge" })
    const robot = await rawClient(m.url, { clientId: "robot-r1", username: "r1", password: "pw-r1" })
    const before = rss()
    // frames of the largest size a robot sends (maxRecord 4096)
    const frame = Buffer.alloc(4096, 7)
    for (let i = 0; i < 8192; i++) await robot.publishAsync("robots/r1/out/bridge", frame, { qos: 1 })
    const grown = rss() - before
    console.log(`# mosquitto: 32 MiB published to a host that does not read: +${(grown / 1024).toFixed(0)} KiB`)
    // max_queued_messages 200 x 4 KB, plus what the sockets hold; with mosquitto's default (1000
    // messages; max_queued_bytes does not count QoS 0) 16 KB messages held 16 MB
    assert.ok(grown < 2 * 1024 * 1024, `mosquitto grew by ${grown} bytes`)
    await Promise.all([idle.endAsync(true), robot.endAsync(true)])
  } finally {
    await m.close()
  }
})

test("embedded broker: a burst of publishes (issue 16): one client sends 200,000 at once to a topic nobody subscribes to; the broker takes them all, and another host's calls through it are served during it", { timeout: 120000 }, async () => {
  const broker = await embeddedBroker()
  const robot = await MemoryRobot.start({ url: broker.url, name: "r1" }, (r) => r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: q.a + q.b })))
  const host = await connect({ transport: mqttTransport({ url: broker.url, robot: "r1" }) })
  const N = 200000
  // In a process of its own (its writing costs the test's process nothing). Its last publish is QoS 1:
  // the broker acknowledges it once it has handled everything before it.
  const script = `
    const mqtt = require("mqtt")
    const c = mqtt.connect(process.argv[1], { clientId: "flooder" })
    c.on("connect", () => {
      const p = Buffer.alloc(100, 1)
      process.stdout.write("start\\n")
      for (let i = 1; i < Number(process.argv[2]); i++) c.publish("robots/nobody/in/flooder", p)
      c.publish("robots/nobody/in/flooder", p, { qos: 1 }, () => process.stdout.write("done\\n"))
    })
  `
  const child = runScript(script, [broker.url, String(N)])
  try {
    const add = host.createClient(AddTwoInts, "/add_two_ints")
    assert.equal((await add.call({ a: 1n, b: 2n })).sum, 3n)
    const v = callLoop(async () => {
      const r = await add.call({ a: 2n, b: 3n })
      return { result: r.sum === 5n, values: r.sum }
    })
    await child.line("it connected", (l) => l === "start")
    const t0 = performance.now()
    await child.line("the broker acknowledged the burst's last publish", (l) => l === "done")
    const burstMs = performance.now() - t0
    await v.stop()
    assert.deepEqual(v.failures, [])
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.ok(during.length >= 10, `the other host made ${during.length} calls during the ${burstMs.toFixed(0)} ms burst`)
    // (before each client's input took turns: 1.3-1.5 s, the burst parsed and handled in one go; 46-105 ms since, with both cores busy)
    const slowest = max(during)
    assert.ok(slowest < 300, `the other host's slowest call took ${slowest.toFixed(1)} ms during the ${burstMs.toFixed(0)} ms burst`)
  } finally {
    child.kill()
    await host.close()
    await robot.close()
    await broker.close()
  }
})

/** A CONNECT packet (MQTT 3.1.1, clean session, keep-alive 60 s). */
function connectPacket(clientId: string, user?: string, password?: string): Buffer {
  const str = (t: string) => {
    const b = Buffer.from(t)
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b])
  }
  const flags = 0x02 | (user ? 0x80 : 0) | (password ? 0x40 : 0)
  const body = Buffer.concat([str("MQTT"), Buffer.from([4, flags, 0, 60]), str(clientId), ...(user ? [str(user)] : []), ...(password ? [str(password)] : [])])
  return Buffer.concat([Buffer.from([0x10, ...varint(body.length)]), body])
}

/**
 * A raw client that connects to the broker at `port`, then announces a PUBLISH of 200 MB on `topic`
 * and writes up to 20 MiB of it, calling `between` after each MiB. Resolves once the broker closes
 * the connection (with the MiB written and the packet's size), or rejects 10 s after the 20 MiB.
 */
async function oversizePublish(port: number, connect: Buffer, topic: string, between: (mib: number) => Promise<void>) {
  const s = net.connect(port, "127.0.0.1")
  try {
    await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject))
    s.on("error", () => {})
    const closed = new Promise<void>((resolve) => s.once("close", () => resolve()))
    const connack = new Promise((resolve) => s.once("data", resolve))
    s.write(connect)
    await connack
    const remaining = 2 + topic.length + 200_000_000
    const header = [0x30, ...varint(remaining)]
    s.write(Buffer.concat([Buffer.from(header), Buffer.from([0, topic.length]), Buffer.from(topic)]))
    const chunk = Buffer.alloc(1 << 20, 0x41)
    let wrote = 0
    for (let i = 0; i < 20 && !s.destroyed; i++) {
      if (!s.write(chunk)) await Promise.race([new Promise((r) => s.once("drain", r)), closed])
      wrote++
      await between(i)
    }
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`the broker kept the connection open after ${wrote} MiB`)), 10000))])
    return { wrote, packetBytes: header.length + remaining }
  } finally {
    s.destroy()
  }
}

test("embedded broker: a packet larger than its bound (issue 16): a client announcing a 200 MB publish is disconnected once its header is read, the broker holds none of it, and another host is served meanwhile", { timeout: 60000 }, async () => {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l) })
  const robot = await MemoryRobot.start({ url: broker.url, name: "r1" }, (r) => r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: q.a + q.b })))
  const host = await connect({ transport: mqttTransport({ url: broker.url, robot: "r1" }) })
  try {
    const add = host.createClient(AddTwoInts, "/add_two_ints")
    assert.equal((await add.call({ a: 1n, b: 2n })).sum, 3n)
    const held0 = heldAfterGc()
    // another host's call between two megabytes
    const r = await oversizePublish(broker.port, connectPacket("big"), "robots/nobody/in/big", async (i) => assert.equal((await add.call({ a: BigInt(i), b: 1n })).sum, BigInt(i + 1)))
    // (before the bound: the connection stayed open and the broker held the 20 MiB that had come)
    const kept = heldAfterGc() - held0
    assert.ok(kept < 8 * 1048576, `the broker keeps ${(kept / 1048576).toFixed(1)} MiB more`)
    assert.ok(r.wrote <= 2, `${r.wrote} MiB written before the broker closed the connection`)
    assert.ok(lines.includes(`client big sent a packet of ${r.packetBytes} bytes (at most ${MAX_PACKET_BYTES}): disconnected`), lines.join(" | "))
    assert.equal((await add.call({ a: 5n, b: 6n })).sum, 11n)
  } finally {
    await host.close()
    await robot.close()
    await broker.close()
  }
})

test("mosquitto with the docs' configuration: a client announcing a 200 MB publish is disconnected (max_packet_size)", { skip: !existsSync(MOSQUITTO) && "no mosquitto" }, async () => {
  const m = await startMosquitto([{ name: "bridge", password: "pw-bridge" }])
  try {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${m.pid}/status`, "utf8"))![1]) * 1024
    const before = rss()
    const r = await oversizePublish(m.port, connectPacket("bridge", "bridge", "pw-bridge"), "robots/r1/in/bridge", async () => {})
    // (closed before the 20 MiB were written: without the line it stays open and oversizePublish
    // rejects. How much was written first is up to the scheduler, the writer not waiting: the
    // kernel's loopback buffers took 4 MiB before mosquitto ran once in a CI run, 1-2 when quiet)
    assert.ok(r.wrote < 20, `${r.wrote} MiB written before mosquitto closed the connection`)
    assert.ok(rss() - before < 8 * 1048576, `mosquitto grew by ${rss() - before} bytes`)
  } finally {
    await m.close()
  }
})

test("embedded broker: subscriptions without end (issue 16): a host holds at most MAX_SUBSCRIPTIONS topic filters, the rest are refused in the SUBACK, the broker holds little for them, and unsubscribing makes room", { timeout: 60000 }, async () => {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l) })
  const c = await rawClient(broker.url, { clientId: "h1" })
  // the QoS granted to each filter, 128 for a refused one (the mqtt package rejects a SUBACK with one)
  const subscribe = (subs: string | Record<string, { qos: 0 }>): Promise<number[]> =>
    c.subscribeAsync(subs).then(
      (g) => g.map((x) => x.qos),
      (e: { packet?: { granted?: number[] } }) => e.packet?.granted ?? Promise.reject(e),
    )
  try {
    const held0 = heldAfterGc()
    // 20,000 filters the host's rules allow (robots/+/out/h1 for as many robot names), 1,000 per SUBSCRIBE
    const granted: number[] = []
    for (let k = 0; k < 20000; k += 1000) {
      const subs: Record<string, { qos: 0 }> = {}
      for (let i = k; i < k + 1000; i++) subs[`robots/r${i}-${"x".repeat(40)}/out/h1`] = { qos: 0 }
      granted.push(...(await subscribe(subs)))
    }
    assert.equal(granted.filter((q) => q === 0).length, MAX_SUBSCRIPTIONS)
    assert.equal(granted.filter((q) => q === 128).length, 20000 - MAX_SUBSCRIPTIONS)
    // (before the bound: 100,000 such subscriptions held 142 MiB)
    const kept = heldAfterGc() - held0
    assert.ok(kept < 8 * 1048576, `the broker holds ${(kept / 1048576).toFixed(1)} MiB for them`)
    assert.equal(lines.filter((l) => l === `client h1 holds ${MAX_SUBSCRIPTIONS} subscriptions: further ones refused`).length, 1, lines.join(" | "))
    // a filter it holds may be asked again; one freed makes room for another
    assert.deepEqual(await subscribe(`robots/r0-${"x".repeat(40)}/out/h1`), [0])
    await c.unsubscribeAsync(`robots/r1-${"x".repeat(40)}/out/h1`)
    assert.deepEqual(await subscribe("robots/fresh/out/h1"), [0])
    assert.deepEqual(await subscribe("robots/fresh2/out/h1"), [128])
  } finally {
    await c.endAsync(true)
    await broker.close()
  }
})

test("embedded broker: retained messages (issue 16): only a robot's presence is kept, at most MAX_RETAINED_BYTES of it; larger or other retained publishes are refused and nothing of them is kept", { timeout: 60000 }, async () => {
  const broker = await embeddedBroker()
  const clients: MqttClient[] = []
  try {
    // a robot's presence as the robots send it is kept (and the clients' code is warm before the measure)
    const r = await rawClient(broker.url, { clientId: "robot-ok", username: "ok" })
    clients.push(r)
    await r.publishAsync("robots/ok/online", "online", { qos: 1, retain: true })
    // 40 robots (anonymous: each identity its own) announcing a presence of 200 KB, kept for every
    // later subscriber; in a process of their own, so that only the broker's memory is measured here
    const script = `
      const mqtt = require("mqtt")
      const big = Buffer.alloc(200 * 1024, 0x41)
      ;(async () => {
        for (let i = 0; i < 40; i++) {
          const c = mqtt.connect(process.argv[1], { clientId: "robot-big" + i, username: "big" + i, reconnectPeriod: 0 })
          await new Promise((resolve) => c.on("connect", resolve))
          await new Promise((resolve) => {
            c.publish("robots/big" + i + "/online", big, { qos: 1, retain: true }, resolve)
            c.on("close", resolve)
          })
          c.end(true)
        }
      })().then(() => process.exit(0))
    `
    assert.equal(await runScript(script, [broker.url]).exited, 0, "the robots' process")
    // a later subscriber gets the one presence as it was sent, nothing of the 40 (before the bound:
    // all 40, 8 MB kept for every subscriber)
    const h = await rawClient(broker.url, { clientId: "watcher" })
    clients.push(h)
    const got = new Map<string, number>()
    h.on("message", (topic, payload) => got.set(topic, payload.length))
    await h.subscribeAsync("robots/+/online")
    await until(() => got.has("robots/ok/online"), "the retained presence of robot ok", 5000)
    await new Promise((res) => setTimeout(res, 200))
    assert.deepEqual([...got], [["robots/ok/online", 6]])
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {})
    await broker.close()
  }
})

/**
 * A process of its own that opens `n` TCP connections from 127.0.0.2 (or, with `addresses` > 1, from
 * as many addresses 127.0.1.1, 127.0.1.2, ... in turn) to the broker at `port` (and,
 * with `connect`, sends each a CONNECT of its own client id, anonymous), keeps them, and prints
 * `{ open, closed, connacked }` once every connection is open or refused and 3 s more have passed:
 * how many the broker still holds, how many it closed, how many it let in. (Its sockets cost the
 * test's process, where the broker runs, nothing.)
 */
function connectionFlood(port: number, n: number, connect: boolean, addresses = 1) {
  const script = `
    const net = require("node:net")
    const [port, n, connect, addresses] = process.argv.slice(1).map(Number)
    const c = { open: 0, closed: 0, connacked: 0, failed: 0 }
    let settled = 0
    const settle = () => { if (++settled === n) setTimeout(() => process.stdout.write(JSON.stringify(c) + "\\n"), 3000) }
    let i = 0
    const one = () => {
      const id = "f" + i++
      const s = net.connect({ port, host: "127.0.0.1", localAddress: addresses > 1 ? "127.0.1." + (1 + (i % addresses)) : "127.0.0.2" })
      let up = false
      s.on("connect", () => {
        up = true
        c.open++
        settle()
        if (connect) {
          const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from("MQTT"), Buffer.from([4, 2, 0, 60, 0, id.length]), Buffer.from(id)])
          s.write(Buffer.concat([Buffer.from([0x10, body.length]), body]))
        }
      })
      s.on("data", (d) => { if (d[0] === 0x20 && d[3] === 0) c.connacked++ })
      s.on("error", () => {})
      s.on("close", () => { if (up) { c.open--; c.closed++ } else { c.failed++; settle() } })
    }
    // (as fast as the loop allows: 200 a turn)
    const burst = () => { for (let k = 0; k < 200 && i < n; k++) one(); if (i < n) setImmediate(burst) }
    burst()
  `
  const child = runScript(script, [String(port), String(n), connect ? "1" : "0", String(addresses)])
  const report = child.line("its report").then((l) => JSON.parse(l) as { open: number; closed: number; connacked: number; failed: number })
  return { report, stop: () => child.kill() }
}

/** Another host's calls to robot r1 through the broker while `attack` runs: its slowest, and its failures. */
async function servedDuring<T>(host: import("../../packages/host/src/client/api").RobotNode, attack: () => Promise<T>) {
  const add = host.createClient(AddTwoInts, "/add_two_ints")
  assert.equal((await add.call({ a: 1n, b: 2n })).sum, 3n)
  const v = callLoop(async () => {
    const r = await add.call({ a: 2n, b: 3n })
    return { result: r.sum === 5n, values: r.sum }
  })
  const t0 = performance.now()
  try {
    const result = await attack()
    return { result, during: v.ms.filter((_, i) => v.ends[i]! >= t0), failures: v.failures }
  } finally {
    await v.stop()
  }
}

test("embedded broker with users: connections that never send CONNECT (issue 16): 5,000 from one address; the broker keeps at most its bound of them, closes the rest at once, holds little, and other hosts are served during it", { timeout: 120000 }, async () => {
  const lines: string[] = []
  const users = [
    { name: "r1", password: "pr1", role: "robot" as const },
    { name: "alice", password: "pa", role: "host" as const },
  ]
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users, log: (l) => lines.push(l) })
  const robot = await MemoryRobot.start({ url: broker.url, name: "r1", username: "r1", password: "pr1" }, (r) => r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: q.a + q.b })))
  const host = await connect({ transport: mqttTransport({ url: broker.url, robot: "r1", username: "alice", password: "pa" }) })
  const held0 = heldAfterGc()
  const flood = connectionFlood(broker.port, 5000, false)
  try {
    const { result: n, during, failures } = await servedDuring(host, () => flood.report)
    const kept = heldAfterGc() - held0
    assert.deepEqual(failures, [])
    assert.ok(during.length >= 10, `the other host made ${during.length} calls during the flood`)
    assert.ok(max(during) < 400, `the other host's slowest call took ${max(during).toFixed(1)} ms (${JSON.stringify(n)})`)
    // (before the bound: all 5,000 held, 37 MiB, each until aedes' connect timeout of 30 s)
    // (counted at the broker: a connection the kernel's accept queue had no room for may still
    // look open to the flooder)
    assert.equal(broker.connectionCount(), MAX_PENDING_PER_ADDRESS + 2, `the broker holds ${broker.connectionCount()} connections: the robot's, the host's and the flood's (${JSON.stringify(n)})`)
    assert.equal(n.open + n.closed + n.failed, 5000, JSON.stringify(n))
    assert.ok(n.closed >= 3000, `the broker closed ${n.closed} of the flood's connections (${JSON.stringify(n)})`)
    assert.ok(kept < 8 * 1048576, `the broker holds ${(kept / 1048576).toFixed(1)} MiB for them (${JSON.stringify(n)})`)
    assert.equal(lines.filter((l) => l.startsWith(`refused connections from 127.0.0.2: ${MAX_PENDING_PER_ADDRESS} have not sent CONNECT`)).length, 1, lines.slice(-5).join(" | "))
  } finally {
    flood.stop()
    await host.close()
    await robot.close()
    await broker.close()
  }
})

test("embedded broker with users: connections that never send CONNECT from many addresses (issue 16): 3,000 from 100 addresses; the broker keeps at most MAX_PENDING of them in all", { timeout: 120000 }, async () => {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, users: [{ name: "alice", password: "pa", role: "host" }], log: (l) => lines.push(l) })
  const flood = connectionFlood(broker.port, 3000, false, 100)
  try {
    const n = await flood.report
    assert.equal(broker.connectionCount(), MAX_PENDING, `the broker holds ${broker.connectionCount()} connections (${JSON.stringify(n)})`)
    assert.equal(n.open + n.closed + n.failed, 3000, JSON.stringify(n))
    assert.equal(lines.filter((l) => l.startsWith(`refused connections: ${MAX_PENDING} have not sent CONNECT`)).length, 1, lines.slice(-5).join(" | "))
    // once the flood's connections are gone, a client is let in again
    flood.stop()
    await until(() => broker.connectionCount() === 0, "the flood's connections closed", 10000)
    const c = await rawClient(broker.url, { username: "alice", password: "pa", clientId: "alice" })
    await c.endAsync(true)
  } finally {
    flood.stop()
    await broker.close()
  }
})

test("embedded broker: a connection storm from many addresses (issue 16): 1,000 clients from 100 addresses connect at once (a fleet coming back); each is let in, and other hosts are served during it", { timeout: 120000 }, async () => {
  const broker = await embeddedBroker()
  const robot = await MemoryRobot.start({ url: broker.url, name: "r1" }, (r) => r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: q.a + q.b })))
  const host = await connect({ transport: mqttTransport({ url: broker.url, robot: "r1" }) })
  const flood = connectionFlood(broker.port, 1000, true, 100)
  try {
    const { result: n, during, failures } = await servedDuring(host, () => flood.report)
    assert.deepEqual(failures, [])
    assert.ok(during.length >= 10, `the other host made ${during.length} calls during the storm`)
    // (25-54 ms on a quiet machine; a plain Node server that only accepts shows 30-80 ms pauses of
    // its own under 8,000 connections at once)
    assert.ok(max(during) < 400, `the other host's slowest call took ${max(during).toFixed(1)} ms (${JSON.stringify(n)})`)
    // the bounds on connections not yet let in (MAX_PENDING_PER_ADDRESS, MAX_PENDING) refuse none of them
    assert.deepEqual(n, { open: 1000, closed: 0, connacked: 1000, failed: 0 })
  } finally {
    flood.stop()
    await host.close()
    await robot.close()
    await broker.close()
  }
})
