// What a broker holds for a host that stops reading (issue 20): bounded on both brokers, and on the
// embedded one the other hosts keep getting their messages meanwhile (aedes alone waits for a slow
// client's socket to drain before delivering anything else: one host that stops reading would
// stall the robot's answers to every host). The robot's side of a slow link is tested in the VM
// (mqtt_device.test.ts, "a slow reader between the robot and the broker").
import assert from "node:assert/strict"
import { existsSync, readFileSync } from "node:fs"
import type { Socket } from "node:net"
import { test } from "node:test"
import { spawn } from "node:child_process"
import { MAX_QUEUED_BYTES } from "../../packages/host/src/mqtt/broker"
import { MemoryRobot } from "../../packages/host/src/mqtt/memrobot"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import { MOSQUITTO, embeddedBroker, rawClient, startMosquitto, until } from "./mqtt_helpers"

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
    const idle = await idleHost(broker.url, "robots/r1/out/idle")
    const other = await rawClient(broker.url, { clientId: "other" })
    let got = 0
    other.on("message", () => got++)
    await other.subscribeAsync("robots/r1/out/other")
    // (without users the broker takes the user name given as the identity: the robot r1)
    const robot = await rawClient(broker.url, { clientId: "robot-r1", username: "r1" })
    const frame = Buffer.alloc(16 * 1024, 7)
    // 16 MiB to the idle host, a small frame to the other host after each 64 of them
    for (let i = 0; i < 1024; i++) {
      await robot.publishAsync("robots/r1/out/idle", frame, { qos: 1 })
      if (i % 64 === 63) await robot.publishAsync("robots/r1/out/other", Buffer.from("hi"), { qos: 1 })
      assert.ok(broker.queuedBytes("idle") <= MAX_QUEUED_BYTES + frame.length + 64, `${broker.queuedBytes("idle")} bytes held for the idle host`)
    }
    await until(() => got === 16, "the other host's 16 messages", 10000)
    assert.ok(broker.queuedBytes("idle") >= MAX_QUEUED_BYTES / 2, "the idle host's queue filled up to the bound")
    await Promise.all([idle.endAsync(true), other.endAsync(true), robot.endAsync(true)])
  } finally {
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
  const child = spawn(process.execPath, ["-e", script, broker.url, String(N)], { stdio: ["ignore", "pipe", "inherit"], cwd: process.cwd() })
  let out = ""
  child.stdout!.on("data", (d) => (out += d))
  try {
    const add = host.createClient(AddTwoInts, "/add_two_ints")
    assert.equal((await add.call({ a: 1n, b: 2n })).sum, 3n)
    const ms: number[] = []
    const ends: number[] = []
    let on = true
    const victim = (async () => {
      while (on) {
        const t = performance.now()
        assert.equal((await add.call({ a: 2n, b: 3n })).sum, 5n)
        ms.push(performance.now() - t)
        ends.push(performance.now())
        await new Promise((r) => setTimeout(r, 2))
      }
    })()
    await until(() => out.includes("start"), "the flooder connected", 10000)
    const t0 = performance.now()
    await until(() => out.includes("done"), "the broker acknowledged the burst's last publish", 60000)
    const burstMs = performance.now() - t0
    on = false
    await victim
    const during = ms.filter((_, i) => ends[i]! >= t0)
    assert.ok(during.length >= 10, `the other host made ${during.length} calls during the ${burstMs.toFixed(0)} ms burst`)
    // (before each client's input took turns: 1.3-1.5 s, the burst parsed and handled in one go; 46-105 ms since, with both cores busy)
    const slowest = during.reduce((a, b) => Math.max(a, b), 0)
    assert.ok(slowest < 300, `the other host's slowest call took ${slowest.toFixed(1)} ms during the ${burstMs.toFixed(0)} ms burst`)
  } finally {
    child.kill()
    await host.close()
    await robot.close()
    await broker.close()
  }
})
