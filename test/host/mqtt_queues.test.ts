// What a broker holds for a host that stops reading (issue 20): bounded on both brokers, and on the
// embedded one the other hosts keep getting their messages meanwhile (aedes alone waits for a slow
// client's socket to drain before delivering anything else: one host that stops reading would
// stall the robot's answers to every host). The robot's side of a slow link is tested in the VM
// (mqtt_device.test.ts, "a slow reader between the robot and the broker").
import assert from "node:assert/strict"
import { existsSync, readFileSync } from "node:fs"
import type { Socket } from "node:net"
import { test } from "node:test"
import { MAX_QUEUED_BYTES } from "../../packages/host/src/mqtt/broker"
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
