// A red-team pass on the embedded broker (packages/host/src/mqtt/broker.ts): hostile clients on
// real loopback sockets, each attack made while another host calls a robot (its calls must keep
// being answered, within the bounds the other broker tests use), and what the broker holds or logs
// for it bounded. The bounds tested elsewhere (queues, packet size, subscriptions, retained
// messages, pending connections: mqtt_queues.test.ts; topic rules: mqtt_acl.test.ts) are not
// repeated here.
import assert from "node:assert/strict"
import * as net from "node:net"
import { test } from "node:test"
import { afterGc } from "../support/memory"
import { runScript } from "../support/child"
import { addLoop, max } from "../support/victim"
import { MAX_FILTERS_PER_SUBSCRIBE, MAX_INFLIGHT_QOS2, MAX_QUEUED_BYTES, SENDER_FLOOR_BYTES, startBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import { rawClient, startTestRobot, until, varint, type TestRobot } from "./mqtt_helpers"

/** the JavaScript heap and the buffers outside it (where a socket's data is kept), after GC */
const heldAfterGc = () => {
  const m = afterGc()
  return m.heapUsed + m.arrayBuffers
}
/**
 * What stays held over `held0` once the broker has settled: the least of samples 100 ms apart, for
 * up to 2 s or until one is under `bound`. A message still on its way (in a socket's buffers, or
 * between aedes' handlers on a loaded machine) is not kept; what the broker keeps stays in every sample.
 */
async function keptOver(held0: number, bound: number) {
  let least = Infinity
  for (let i = 0; i < 20; i++) {
    least = Math.min(least, heldAfterGc() - held0)
    if (least < bound) break
    await new Promise((r) => setTimeout(r, 100))
  }
  return least
}

const str = (t: string | Buffer) => {
  const b = typeof t === "string" ? Buffer.from(t) : t
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b])
}
const packet = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type, ...varint(body.length)]), body])

/** A CONNECT packet (MQTT 3.1.1, keep-alive 60 s; clean session unless told). */
function connectPacket(clientId: string, opts: { clean?: boolean } = {}): Buffer {
  const flags = opts.clean === false ? 0 : 0x02
  return packet(0x10, Buffer.concat([str("MQTT"), Buffer.from([4, flags, 0, 60]), str(clientId)]))
}
/** SUBSCRIBE (packet id `id`) to each filter at `qos`. */
const subscribePacket = (id: number, filters: string[], qos = 0) =>
  packet(0x82, Buffer.concat([Buffer.from([id >> 8, id & 255]), ...filters.map((f) => Buffer.concat([str(f), Buffer.from([qos])]))]))
/** PUBLISH at `qos` (packet id `id` when qos > 0). */
const publishPacket = (topic: string, payload: Buffer, qos = 0, id = 1) =>
  packet(0x30 | (qos << 1), Buffer.concat([str(topic), qos ? Buffer.from([id >> 8, id & 255]) : Buffer.alloc(0), payload]))

/** the same PUBLISH with its retain flag set */
const retained = (p: Buffer) => Buffer.concat([Buffer.from([p[0]! | 1]), p.subarray(1)])

/** A raw TCP connection to the broker; `data` gathers what the broker sent. */
async function rawSocket(port: number) {
  const s = net.connect(port, "127.0.0.1")
  await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject))
  s.on("error", () => {})
  let data = Buffer.alloc(0)
  s.on("data", (d: Buffer) => (data = Buffer.concat([data, d])))
  const closed = new Promise<void>((resolve) => s.once("close", () => resolve()))
  return {
    s,
    closed,
    get data() {
      return data
    },
    /** resolves once the broker sent at least `n` bytes */
    async bytes(n: number, what: string, timeoutMs = 5000) {
      await until(() => data.length >= n || s.destroyed, what, timeoutMs)
      return data
    },
  }
}

/** The victim's calls while the attack ran: none failed, the slowest under 1 s, and at least `calls` made. */
function servedMeanwhile(v: { ms: number[]; failures: string[] }, calls = 0) {
  assert.deepEqual(v.failures, [])
  assert.ok(v.ms.length >= calls, `the other host made ${v.ms.length} calls meanwhile`)
  assert.ok(max(v.ms) < 1000, `the other host's slowest call took ${max(v.ms).toFixed(0)} ms`)
}

/** An anonymous embedded broker (its log kept), robot r1 (mqtt_helpers' test robot) and a host calling it. */
async function setup(options: { hostRateBytesPerS?: number } = {}) {
  const lines: string[] = []
  const broker: EmbeddedBroker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l), ...options })
  const robot: TestRobot = await startTestRobot({ url: broker.url, name: "r1" })
  const host = await connect({ transport: mqttTransport({ url: broker.url, robot: "r1" }) })
  const add = host.createClient(AddTwoInts, "/add_two_ints")
  assert.equal((await add.call({ a: 1n, b: 2n })).sum, 3n)
  return {
    broker,
    lines,
    robot,
    /** the victim: another host calling r1, one call after another, until `stop()` */
    victim() {
      return addLoop(add)
    },
    async close() {
      await host.close()
      await robot.robot.close()
      await broker.close()
    },
  }
}

test("hostile: a client subscribed at QoS 1 that never reads does not stall the broker: another host's calls are answered while QoS 1 messages pile up for it", { timeout: 60000 }, async () => {
  const t = await setup()
  // the sink: anonymous identity `sink` (it may act as robot `sink`), subscribed at QoS 1 to its
  // input, then reading nothing
  const sink = await rawSocket(t.broker.port)
  sink.s.write(connectPacket("sink"))
  sink.s.write(subscribePacket(1, ["robots/sink/in/+"], 1))
  await sink.bytes(4 + 5, "CONNACK and SUBACK")
  // (granted QoS 0: the broker says so in the SUBACK; before, it granted the QoS 1 asked)
  assert.deepEqual([...sink.data.subarray(4, 9)], [0x90, 3, 0, 1, 0])
  sink.s.pause()
  // the flooder: host `flood` sends it QoS 1 messages of 16 KiB (at most what the broker passes to a
  // robot), 3,000 of them (48 MB, more than loopback's buffers take)
  const flood = await rawClient(t.broker.url, { clientId: "flood" })
  const v = t.victim()
  try {
    const payload = Buffer.alloc(16000, 0x41)
    const t0 = performance.now()
    let sent = 0
    for (let i = 0; i < 3000; i++) {
      flood.publish("robots/sink/in/flood", payload, { qos: 1 }, () => sent++)
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5))
    }
    // (the flooder's PUBACKs come when the broker handled each; wait a moment for the rest: the stall
    // shows as the victim's calls waiting meanwhile)
    await until(() => sent === 3000 || performance.now() - t0 > 8000, "the flood handled", 10000).catch(() => {})
    await new Promise((r) => setTimeout(r, 1000))
    await v.stop()
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.deepEqual(v.failures, [])
    assert.ok(during.length >= 10, `the other host made ${during.length} calls during the flood`)
    assert.ok(max(during) < 1000, `the other host's slowest call took ${max(during).toFixed(0)} ms during the flood`)
  } finally {
    await v.stop()
    sink.s.destroy()
    await flood.endAsync(true)
    await t.close()
  }
})

test("hostile: a session asked to be kept (clean session 0) with a QoS 1 subscription, then left: QoS 1 messages sent to it meanwhile are not stored for it; another host is served meanwhile", { timeout: 60000 }, async () => {
  const t = await setup()
  const flood = await rawClient(t.broker.url, { clientId: "flood" })
  /** identity `id` asks for a kept session, subscribes at QoS 1 to its input (as robot `id`), leaves */
  const leave = async (id: string) => {
    const c = await rawSocket(t.broker.port)
    c.s.write(Buffer.concat([connectPacket(id, { clean: false }), subscribePacket(1, [`robots/${id}/in/+`], 1)]))
    await c.bytes(4 + 5, "CONNACK and SUBACK")
    c.s.destroy()
    await c.closed
    await until(() => t.broker.clientCount() === 3, `${id} gone`, 5000)
  }
  const payload = Buffer.alloc(16000, 0x41)
  const send = async (id: string, n: number) => {
    for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: 50 }, () => flood.publishAsync(`robots/${id}/in/flood`, payload, { qos: 1 })))
  }
  const v = t.victim()
  try {
    // (once first, so that what is measured is not the code's first run)
    await leave("warm")
    await send("warm", 50)
    const held0 = heldAfterGc()
    await leave("gone")
    // 2,000 messages of 16 KB (32 MB): before, the broker kept every one for the session
    await send("gone", 2000)
    const kept = await keptOver(held0, 8 * 1048576)
    await v.stop()
    assert.ok(kept < 8 * 1048576, `the broker keeps ${(kept / 1048576).toFixed(1)} MiB for a session gone`)
    servedMeanwhile(v)
    // back, it gets none of them
    const back = await rawSocket(t.broker.port)
    back.s.write(connectPacket("gone", { clean: false }))
    await back.bytes(4, "CONNACK")
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(back.data.length, 4, `the session came back with ${back.data.length - 4} bytes of messages`)
    back.s.destroy()
  } finally {
    await v.stop()
    await flood.endAsync(true)
    await t.close()
  }
})

test("hostile: QoS 2 publishes never released (no PUBREL): the broker holds little for them, and another host is served meanwhile", { timeout: 60000 }, async () => {
  const t = await setup()
  const v = t.victim()
  const q = await rawSocket(t.broker.port)
  try {
    q.s.write(connectPacket("q2"))
    await q.bytes(4, "CONNACK")
    // (once first, so that what is measured is not the code's first run)
    q.s.write(publishPacket("robots/q2/out/x", Buffer.alloc(1000), 2, 60000))
    await q.bytes(8, "a PUBREC")
    const held0 = heldAfterGc()
    // 300 of 200 KB (60 MB) on identity q2's own topic (as robot q2, anonymous), each a fresh packet
    // id; what the broker sends back (a PUBREC each) is read, but no PUBREL is ever sent
    const payload = Buffer.alloc(200 * 1024, 0x41)
    for (let i = 1; i <= 300 && !q.s.destroyed; i++) {
      if (!q.s.write(publishPacket("robots/q2/out/x", payload, 2, i))) await Promise.race([new Promise((r) => q.s.once("drain", r)), q.closed])
    }
    await Promise.race([q.bytes(8 + 300 * 4, "300 PUBRECs", 10000), q.closed])
    const kept = heldAfterGc() - held0
    await v.stop()
    // (before: aedes kept each of them, up to 1,000 per connection, until its PUBREL: 60 MB here)
    assert.ok(kept < 16 * 1048576, `the broker holds ${(kept / 1048576).toFixed(1)} MiB for QoS 2 publishes never released`)
    // the one past the bound closes the connection, logged once
    await q.closed
    assert.equal(q.data.length, 4 + 4 * MAX_INFLIGHT_QOS2, "a PUBREC for each publish within the bound")
    assert.equal(t.lines.filter((l) => l.startsWith("client q2: maxInflightInbound exceeded")).length, 1, t.lines.join(" | "))
    servedMeanwhile(v)
  } finally {
    await v.stop()
    q.s.destroy()
    await t.close()
  }
})

test("hostile: one SUBSCRIBE of 5,000 filters outside the client's rules: each refused in the SUBACK, logged once, the connection kept; another host is served meanwhile", { timeout: 60000 }, async () => {
  const t = await setup()
  const v = t.victim()
  const c = await rawSocket(t.broker.port)
  try {
    c.s.write(connectPacket("subber"))
    await c.bytes(4, "CONNACK")
    const filters = Array.from({ length: 5000 }, (_, i) => `robots/r1/out/other${i}`)
    for (let k = 0; k < 3; k++) c.s.write(subscribePacket(k + 1, filters))
    // SUBACK: 0x90, a remaining length of 2 bytes, packet id, 5,000 return codes
    const suback = 1 + 2 + 2 + 5000
    const got = await c.bytes(4 + 3 * suback, "three SUBACKs")
    for (let k = 0; k < 3; k++) {
      const codes = got.subarray(4 + k * suback + 5, 4 + (k + 1) * suback)
      assert.equal(codes.length, 5000)
      assert.ok(codes.every((x) => x === 0x80), "every filter refused")
    }
    assert.ok(!c.s.destroyed, "the connection is kept")
    await v.stop()
    const denied = t.lines.filter((l) => l.startsWith("denied: subber"))
    // (before: one line per filter, 15,000)
    assert.ok(denied.length === 1, `${denied.length} log lines for the refused filters: ${denied.slice(0, 3).join(" | ")}`)
    servedMeanwhile(v)
    // and how many, once the connection ends
    c.s.destroy()
    await until(() => t.lines.length > 0 && t.lines.some((l) => l === "denied: subber had 14999 more subscriptions refused on that connection"), "the count logged", 5000)
  } finally {
    await v.stop()
    c.s.destroy()
    await t.close()
  }
})

test("hostile: the same SUBSCRIBE to robots/+/online sent 2,000 times at once (each asks the broker to send every robot's retained presence again): another host is served meanwhile, and the broker sends the presences about once", { timeout: 60000 }, async () => {
  const t = await setup()
  // 1,000 robots' presences (anonymous: each identity announces its own, retained, then leaves)
  const R = 1000
  for (let k = 0; k < R; k += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const id = `p${k + i}`
        const c = await rawSocket(t.broker.port)
        c.s.write(Buffer.concat([connectPacket(id), retained(publishPacket(`robots/${id}/online`, Buffer.from("online"), 1, 1))]))
        await c.bytes(4 + 4, "CONNACK and PUBACK")
        c.s.destroy()
        await c.closed
      }),
    )
  }
  const a = await rawSocket(t.broker.port)
  a.s.write(connectPacket("amp"))
  await a.bytes(4, "CONNACK")
  const v = t.victim()
  try {
    const heap0 = heldAfterGc()
    let peak = 0
    const t0 = performance.now()
    // 44 KB of SUBSCRIBEs: as many replays of 1,000 presences (56 MB) if each is honoured
    const one = subscribePacket(1, ["robots/+/online"])
    a.s.write(Buffer.concat(Array.from({ length: 2000 }, () => one)))
    // until the broker has been quiet for 500 ms
    let seen = -1
    while (a.data.length !== seen && performance.now() - t0 < 15000) {
      seen = a.data.length
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, 100))
        const m = process.memoryUsage()
        peak = Math.max(peak, m.heapUsed + m.arrayBuffers - heap0)
      }
    }
    await v.stop()
    let presences = 0
    for (let i = a.data.indexOf("/online"); i >= 0; i = a.data.indexOf("/online", i + 1)) presences++
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.deepEqual(v.failures, [])
    // (before: 36 calls in 5 s, the slowest 874 ms, the broker's heap up 200 MB, and 2,000 replays under way)
    assert.ok(presences >= R && presences <= 3 * (R + 1), `${presences} presences sent for ${R} robots`)
    assert.ok(peak < 64 * 1048576, `the broker's process grew by ${(peak / 1048576).toFixed(0)} MiB meanwhile`)
    // (2,000 SUBSCRIBEs cost the broker time of their own, replays or not: see docs/mqtt.md)
    assert.ok(max(during) < 1500, `the other host's slowest call took ${max(during).toFixed(0)} ms (${during.length} calls)`)
    assert.equal(a.data.subarray(4).filter((b, i, d) => b === 0x90 && d[i + 1] === 3).length >= 2000, true, "a SUBACK for each SUBSCRIBE")
  } finally {
    await v.stop()
    a.s.destroy()
    await t.close()
  }
})

test("hostile: malformed and out-of-order packets, each on a connection of its own, get a refusal or the connection closed, logged at most twice each; another host is served throughout", { timeout: 60000 }, async () => {
  const t = await setup()
  const v = t.victim()
  const connectWith = (name: string, level: number, flags: number, rest: Buffer = str("evil")) => packet(0x10, Buffer.concat([str(name), Buffer.from([level, flags, 0, 60]), rest]))
  const ok = connectPacket("evil")
  /** what the broker must do: close the connection (after what it sent), or answer `answer` and keep it */
  type Case = { name: string; bytes: Buffer[]; closed: boolean; answer?: number[] }
  const cases: Case[] = [
    { name: "protocol name MQTX", bytes: [connectWith("MQTX", 4, 2)], closed: true },
    { name: "MQTT 5 CONNECT (level 5, empty properties)", bytes: [packet(0x10, Buffer.concat([str("MQTT"), Buffer.from([5, 2, 0, 60, 0]), str("evil")]))], closed: true },
    { name: "protocol level 0", bytes: [connectWith("MQTT", 0, 2)], closed: true },
    { name: "reserved connect flag set", bytes: [connectWith("MQTT", 4, 3)], closed: true },
    { name: "will QoS 3", bytes: [connectWith("MQTT", 4, 0x1e, Buffer.concat([str("evil"), str("robots/evil/online"), str("x")]))], closed: true },
    { name: "remaining length of 5 bytes", bytes: [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])], closed: true },
    { name: "PUBLISH before CONNECT", bytes: [publishPacket("robots/r1/in/evil", Buffer.from("x"))], closed: true },
    { name: "a second CONNECT", bytes: [ok, ok], closed: true, answer: [0x20, 2, 0, 0] },
    { name: "client id of 60,000 characters", bytes: [connectPacket("e".repeat(60000))], closed: true, answer: [0x20, 2, 0, 2] },
    { name: "unicode client id", bytes: [connectPacket("röbot")], closed: true, answer: [0x20, 2, 0, 2] },
    { name: "empty client id", bytes: [connectPacket("")], closed: true, answer: [0x20, 2, 0, 2] },
    { name: "topic with NUL", bytes: [ok, publishPacket("robots/r1/in/evil\u0000", Buffer.from("x"))], closed: true, answer: [0x20, 2, 0, 0] },
    { name: "topic with a newline (a forged log line)", bytes: [ok, publishPacket("robots/r1/in/evil\nMQTT broker listening on mqtt://0.0.0.0:1", Buffer.from("x"))], closed: true, answer: [0x20, 2, 0, 0] },
    { name: "topic of 60,000 characters", bytes: [ok, publishPacket("robots/r1/in/" + "e".repeat(60000), Buffer.from("x"))], closed: true, answer: [0x20, 2, 0, 0] },
    { name: "topic of invalid UTF-8", bytes: [ok, packet(0x30, Buffer.concat([str(Buffer.from([0x72, 0xff, 0xfe, 0x2f, 0x69])), Buffer.from("x")]))], closed: true, answer: [0x20, 2, 0, 0] },
    { name: "publish to $SYS", bytes: [ok, publishPacket("$SYS/broker/x", Buffer.from("x"))], closed: true, answer: [0x20, 2, 0, 0] },
    { name: "subscribe to $SYS/#", bytes: [ok, subscribePacket(7, ["$SYS/#"])], closed: false, answer: [0x20, 2, 0, 0, 0x90, 3, 0, 7, 0x80] },
    { name: "reserved packet type 15", bytes: [ok, Buffer.from([0xf0, 0])], closed: true },
    { name: "PUBREL without PUBREC", bytes: [ok, Buffer.from([0x62, 2, 0, 5])], closed: false, answer: [0x20, 2, 0, 0, 0x70, 2, 0, 5] },
    { name: "CONNECT split byte by byte", bytes: [...ok].map((b) => Buffer.from([b])), closed: false, answer: [0x20, 2, 0, 0] },
  ]
  try {
    for (const c of cases) {
      const before = t.lines.length
      const s = await rawSocket(t.broker.port)
      for (const b of c.bytes) {
        s.s.write(b)
        if (c.bytes.length > 2) await new Promise((r) => setTimeout(r, 1))
      }
      if (c.closed) await Promise.race([s.closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`${c.name}: the connection is still open after 3 s`)), 3000))])
      else await s.bytes(c.answer!.length, `${c.name}: the answer`)
      if (c.answer) assert.deepEqual([...s.data], c.answer, `${c.name}: what the broker sent`)
      if (!c.closed) {
        await new Promise((r) => setTimeout(r, 100))
        assert.ok(!s.s.destroyed, `${c.name}: the connection is kept`)
      }
      s.s.destroy()
      await s.closed
      const logged = t.lines.slice(before)
      assert.ok(logged.length <= 2, `${c.name}: ${logged.length} log lines: ${logged.join(" | ").slice(0, 500)}`)
      for (const l of logged) {
        assert.ok(l.length <= 300, `${c.name}: a log line of ${l.length} characters: ${l.slice(0, 200)}…`)
        assert.ok(!/[\x00-\x1f]/.test(l), `${c.name}: a log line with control characters: ${JSON.stringify(l)}`)
      }
    }
    await v.stop()
    servedMeanwhile(v)
  } finally {
    await v.stop()
    await t.close()
  }
})

test("hostile: 2,000 SUBSCRIBE packets (and then 2,000 UNSUBSCRIBEs) at once from one client: another host's messages and calls go through the broker meanwhile without waiting behind them", { timeout: 60000 }, async () => {
  const t = await setup()
  // a pair of raw clients timing each message through the broker (one every 2 ms)
  const pa = await rawClient(t.broker.url, { clientId: "pa" })
  await pa.subscribeAsync("robots/pa/in/+")
  const pb = await rawClient(t.broker.url, { clientId: "pb" })
  const latencies: number[] = []
  pa.on("message", (_t, p) => latencies.push(performance.now() - Number(p.toString())))
  const a = await rawSocket(t.broker.port)
  a.s.write(connectPacket("subs"))
  await a.bytes(4, "CONNACK")
  const v = t.victim()
  const timer = setInterval(() => pb.publish("robots/pa/in/pb", String(performance.now())), 2)
  try {
    const t0 = performance.now()
    // (a filter the rules allow, matching no retained message: the cost is the packets' own)
    a.s.write(Buffer.concat(Array.from({ length: 2000 }, (_, i) => subscribePacket(i + 1, ["robots/subs/in/+"]))))
    await a.bytes(4 + 2000 * 5, "2,000 SUBACKs", 10000)
    const unsubscribe = (id: number) => packet(0xa2, Buffer.concat([Buffer.from([id >> 8, id & 255]), str("robots/subs/in/+")]))
    a.s.write(Buffer.concat(Array.from({ length: 2000 }, (_, i) => unsubscribe(i + 1))))
    await a.bytes(4 + 2000 * 5 + 2000 * 4, "2,000 UNSUBACKs", 10000)
    await new Promise((r) => setTimeout(r, 100))
    clearInterval(timer)
    await v.stop()
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.deepEqual(v.failures, [])
    const sorted = latencies.filter((_, i) => i > 0).sort((x, y) => x - y)
    const p95 = sorted[Math.floor(sorted.length * 0.95)] ?? 0
    // (before: 2,000 SUBSCRIBEs were handled 370 at a time, each turn of the broker's event loop about
    // 100 ms: a message waited up to 137 ms in the broker, a call up to 300-860 ms. The tail of one
    // run is the machine's too: with the subscribes handled 256 to a turn (SUBSCRIBE_COST 1, a check
    // of this test) messages' p95 was 55-64 ms alone and 90-108 with two busy loops beside, their max
    // 70-104 and 113-190; as the broker is, p95 13-15 and 17-25, max 27-44 and 32-45, and up to 120
    // beside a CI run, where a bound of 60 on the max failed)
    const detail = `messages through the broker meanwhile: p95 ${p95.toFixed(0)} ms, max ${max(sorted).toFixed(0)} ms (${sorted.length})`
    assert.ok(p95 < 40, detail)
    assert.ok(max(sorted) < 150, detail)
    assert.ok(max(during) < 150, `the other host's slowest call took ${max(during).toFixed(0)} ms (${during.length} calls)`)
  } finally {
    clearInterval(timer)
    await v.stop()
    a.s.destroy()
    await Promise.all([pa.endAsync(true), pb.endAsync(true)])
    await t.close()
  }
})

test("hostile: a flood of PINGREQs (2 bytes each) from a client that never reads: another host's calls keep their pace meanwhile", { timeout: 60000 }, async () => {
  const t = await setup()
  const base = t.victim()
  await new Promise((r) => setTimeout(r, 1500))
  await base.stop()
  // in a process of its own: its writing costs the test's process nothing
  const script = `
    const net = require("net")
    const s = net.connect(Number(process.argv[1]), "127.0.0.1", () => {
      const id = Buffer.from("pinger")
      const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from("MQTT"), Buffer.from([4, 2, 0, 60, 0, id.length]), id])
      s.write(Buffer.concat([Buffer.from([0x10, body.length]), body]))
      s.pause()
      const ping = Buffer.alloc(100000)
      for (let i = 0; i < ping.length; i += 2) ping[i] = 0xc0
      process.stdout.write("start\\n")
      const go = () => {
        while (s.write(ping)) {}
        s.once("drain", go)
      }
      go()
    })
    s.on("error", () => {})
  `
  const child = runScript(script, [String(t.broker.port)])
  try {
    await child.line("it connected", (l) => l === "start")
    const v = t.victim()
    await new Promise((r) => setTimeout(r, 1500))
    await v.stop()
    assert.deepEqual(v.failures, [])
    // (before: 4,096 PINGREQs handled per turn of the broker's loop, 8 KiB of them; the other host made
    // 42-45 calls in 2 s where it made 613-644 before the flood, 1/14; 0.3 of them since, in this whole
    // file. The flooder is a process of its own that takes a core: in CI, beside two other lanes on 2
    // cores, one run made 98 in 1.5 s against 494, just under 1/5; the bound is 1/8, which the defect
    // still fails)
    assert.ok(v.ms.length >= base.ms.length / 8, `the other host made ${v.ms.length} calls in 1.5 s during the flood, ${base.ms.length} before it`)
    assert.ok(max(v.ms) < 300, `the other host's slowest call took ${max(v.ms).toFixed(0)} ms`)
  } finally {
    child.kill()
    await t.close()
  }
})

test("hostile: presences announced under ever new anonymous identities: the broker keeps at most maxRetained of them; a robot whose presence is kept still updates it, and an empty one makes room", { timeout: 60000 }, async () => {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l), maxRetained: 100 })
  /** identity `id` announces `payload` as its presence (retained, QoS 1): true if the broker took it */
  const announce = async (id: string, payload: string) => {
    const c = await rawSocket(broker.port)
    c.s.write(Buffer.concat([connectPacket(id), retained(publishPacket(`robots/${id}/online`, Buffer.from(payload), 1, 1))]))
    await Promise.race([c.bytes(8, "PUBACK"), c.closed])
    const took = c.data.length >= 8
    c.s.destroy()
    await c.closed
    return took
  }
  try {
    const took: boolean[] = []
    for (let k = 0; k < 300; k += 50) took.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => announce(`n${k + i}`, "online")))))
    // (before: every one kept, about 1 KB each: 5,000 identities held 5 MiB, without end)
    assert.equal(took.filter((x) => x).length, 100, "presences taken")
    const kept = await rawClient(broker.url, { clientId: "looker" })
    let seen = 0
    kept.on("message", () => seen++)
    await kept.subscribeAsync("robots/+/online")
    await until(() => seen >= 100, "the presences kept", 5000)
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(seen, 100)
    // a robot already kept updates its presence; a new one is refused until one is removed
    const keptIds = took.map((x, i) => (x ? `n${i}` : "")).filter(Boolean)
    assert.equal(await announce(keptIds[0]!, "offline"), true)
    assert.equal(await announce("fresh", "online"), false)
    assert.equal(await announce(keptIds[1]!, ""), true)
    assert.equal(await announce("fresh", "online"), true)
    assert.ok(lines.some((l) => l.includes("retained")), lines.slice(-3).join(" | "))
    await kept.endAsync(true)
  } finally {
    await broker.close()
  }
})

test("hostile: 3,000 hosts, each a new anonymous identity, send robot r1 one message and leave: the broker's accounts of r1's senders stay bounded, and another host is served meanwhile", { timeout: 60000 }, async () => {
  const t = await setup()
  /** identity `id` sends r1 one small frame on its input topic, then disconnects */
  const once = async (id: string) => {
    const c = await rawSocket(t.broker.port)
    c.s.write(Buffer.concat([connectPacket(id), publishPacket(`robots/r1/in/${id}`, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0])), Buffer.from([0xe0, 0])]))
    await c.closed
  }
  const v = t.victim()
  try {
    for (let k = 0; k < 3000; k += 50) await Promise.all(Array.from({ length: 50 }, (_, i) => once(`a${k + i}`)))
    await new Promise((r) => setTimeout(r, 100))
    await v.stop()
    // (before: one account per identity that ever sent, about 100 bytes each, kept until r1 left)
    const held = t.broker.sendersHeld("r1")
    assert.ok(held <= 128, `the broker keeps accounts of ${held} senders to r1`)
    servedMeanwhile(v, 10)
  } finally {
    await v.stop()
    await t.close()
  }
})

test("hostile: sessions asked to be kept (clean session 0) under ever new anonymous identities, each left holding 1,000 subscriptions and 16 QoS 2 publishes never released: the broker keeps a bounded amount for them, and another host is served meanwhile", { timeout: 120000 }, async () => {
  const t = await setup()
  const payload = Buffer.alloc(32 * 1024, 0x41)
  /** identity `id` keeps a session: 1,000 filters of its own input, 16 QoS 2 publishes without PUBREL, then leaves */
  const keep = async (id: string) => {
    const c = await rawSocket(t.broker.port)
    c.s.write(connectPacket(id, { clean: false }))
    // (in SUBSCRIBEs of 50 filters: at most MAX_FILTERS_PER_SUBSCRIBE of one are granted)
    for (let k = 0; k < 20; k++) c.s.write(subscribePacket(k + 1, Array.from({ length: 50 }, (_, j) => `robots/${id}/in/t${k * 50 + j}`)))
    for (let i = 1; i <= MAX_INFLIGHT_QOS2; i++) c.s.write(publishPacket(`robots/${id}/out/x`, payload, 2, i))
    // CONNACK, 20 SUBACKs of 50 grants (4 + 50 bytes each), a PUBREC each
    await Promise.race([c.bytes(4 + 20 * 54 + 4 * MAX_INFLIGHT_QOS2, "CONNACK, SUBACKs and PUBRECs", 10000), c.closed])
    c.s.destroy()
    await c.closed
  }
  await keep("k-warm")
  const held0 = heldAfterGc()
  const v = t.victim()
  try {
    for (let k = 0; k < 120; k += 10) await Promise.all(Array.from({ length: 10 }, (_, i) => keep(`k${k + i}`)))
    const kept = await keptOver(held0, 24 * 1048576)
    await v.stop()
    // (before: every such session was kept whole for good: 120 identities held 78 MiB, 200 held 130)
    assert.ok(kept < 24 * 1048576, `the broker holds ${(kept / 1048576).toFixed(1)} MiB for sessions kept by clients that left`)
    // the session left last is still kept (CONNACK's session present 1); the first was dropped
    const back = async (id: string) => {
      const c = await rawSocket(t.broker.port)
      c.s.write(connectPacket(id, { clean: false }))
      const d = await c.bytes(4, "CONNACK")
      c.s.destroy()
      return d[2]
    }
    await keep("k-last")
    assert.equal(await back("k-last"), 1, "the session left last is kept")
    assert.equal(await back("k0"), 0, "the session left first is dropped")
    assert.ok(t.lines.some((l) => l.includes("dropping those left longest ago")), t.lines.slice(-3).join(" | "))
    servedMeanwhile(v, 10)
  } finally {
    await v.stop()
    await t.close()
  }
})

test("hostile: 10 clients each send one SUBSCRIBE of 1,000 filters their rules allow, at once: MAX_FILTERS_PER_SUBSCRIBE of each are granted and the rest refused in the SUBACK, logged once per client, and another host is served meanwhile", { timeout: 60000 }, async () => {
  const t = await setup()
  /** identity `id` subscribes 1,000 filters of its own input in one SUBSCRIBE; resolves with its SUBACK's return codes */
  const many = async (id: string) => {
    const c = await rawSocket(t.broker.port)
    c.s.write(connectPacket(id))
    c.s.write(subscribePacket(1, Array.from({ length: 1000 }, (_, j) => `robots/${id}/in/t${j}`)))
    const d = await c.bytes(4 + 4 + 1000, "CONNACK and SUBACK", 10000)
    c.s.destroy()
    await c.closed
    // (CONNACK 4 bytes; SUBACK: type, 2 bytes of remaining length, packet id, a code per filter)
    return [...d.subarray(4 + 5, 4 + 5 + 1000)]
  }
  const v = t.victim()
  try {
    for (let k = 0; k < 6; k++) {
      const codes = await Promise.all(Array.from({ length: 10 }, (_, i) => many(`f${k}-${i}`)))
      for (const c of codes) {
        assert.equal(c.length, 1000)
        assert.deepEqual([...new Set(c.slice(0, MAX_FILTERS_PER_SUBSCRIBE))], [0], "the first filters granted at QoS 0")
        assert.deepEqual([...new Set(c.slice(MAX_FILTERS_PER_SUBSCRIBE))], [0x80], "the rest refused")
      }
    }
    await v.stop()
    // (before: each SUBSCRIBE's 1,000 subscriptions were all made at once, and in the test of kept
    // sessions above, which sent such SUBSCRIBEs, the other host's slowest call took 450-930 ms on
    // this machine, 1,563 ms in CI; now 125-170 ms there, 134-167 ms here)
    servedMeanwhile(v, 5)
    assert.equal(t.lines.filter((l) => l.includes("SUBSCRIBE of more than")).length, 60, t.lines.slice(-3).join(" | "))
  } finally {
    await v.stop()
    await t.close()
  }
})

test("hostile: a robot floods the topics a host reads (8 MiB to robots/r2/out/h1) while that host reads slowly: another robot's messages to the host, sent during the flood, still reach it", { timeout: 60000 }, async () => {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l) })
  const host = await rawSocket(broker.port)
  const r1 = await rawSocket(broker.port)
  const r2 = await rawSocket(broker.port)
  try {
    // h1 reads every robot's answers to it (as a fleet's host does), then stops reading
    host.s.write(Buffer.concat([connectPacket("h1"), subscribePacket(1, ["robots/+/out/h1"])]))
    await host.bytes(4 + 5, "CONNACK and SUBACK")
    host.s.pause()
    r1.s.write(connectPacket("r1"))
    r2.s.write(connectPacket("r2"))
    await r1.bytes(4, "r1's CONNACK")
    await r2.bytes(4, "r2's CONNACK")
    // r2 sends far more than the broker holds for a client (MAX_QUEUED_BYTES) and the sockets buffer
    const chunk = Buffer.concat(Array.from({ length: 64 }, () => publishPacket("robots/r2/out/h1", Buffer.alloc(1000, 7))))
    for (let i = 0; i < 128; i++) if (!r2.s.write(chunk)) await new Promise((r) => r2.s.once("drain", r))
    await until(() => lines.some((l) => /h1/.test(l) && /drop/.test(l)), "the broker dropping messages to h1", 20000)
    // during the flood (h1 still not reading): r1's answers to h1
    for (let i = 0; i < 20; i++) r1.s.write(publishPacket("robots/r1/out/h1", Buffer.from(`answer ${i}`)))
    await new Promise((r) => setTimeout(r, 300))
    host.s.resume()
    const marker = Buffer.from("robots/r1/out/h1")
    const got = () => {
      let n = 0
      for (let at = host.data.indexOf(marker); at >= 0; at = host.data.indexOf(marker, at + 1)) n++
      return n
    }
    await until(() => got() >= 20, "r1's 20 answers at h1", 20000).catch(() => {})
    // (before: h1's queue full of r2's flood, the broker dropped every message to h1 alike, r1's 20 too)
    assert.equal(got(), 20, `h1 received ${got()} of r1's 20 messages; the broker's log: ${lines.filter((l) => /h1|r1|r2/.test(l)).slice(0, 5).join(" | ")}`)
  } finally {
    for (const c of [host, r1, r2]) c.s.destroy()
    await broker.close()
  }
})

/**
 * A client of identity `id` subscribed to `filter` that reads its socket slowly: at most `bytes`
 * every `everyMs` ms (the rest waits in the kernel's buffers and, once they are full, at the broker).
 * It parses the PUBLISHes it takes and tells `onPublish` of each.
 */
async function slowReader(port: number, id: string, filter: string, bytes: number, everyMs: number, onPublish: (topic: string, payload: Buffer) => void) {
  const s = net.connect(port, "127.0.0.1")
  await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject))
  s.on("error", () => {})
  s.write(Buffer.concat([connectPacket(id), subscribePacket(1, [filter])]))
  let acks = 0
  let rest = Buffer.alloc(0)
  const parse = (b: Buffer) => {
    rest = rest.length ? Buffer.concat([rest, b]) : b
    let at = 0
    for (;;) {
      // (the fixed header: a type byte and a remaining length of 1-4 bytes)
      let len = 0
      let i = at + 1
      for (let mul = 1; i < rest.length; i++, mul *= 128) {
        len += (rest[i]! & 127) * mul
        if (!(rest[i]! & 128)) break
      }
      if (i >= rest.length || i + 1 + len > rest.length) break
      if (rest[at]! >> 4 === 3) {
        const tl = rest.readUInt16BE(i + 1)
        onPublish(rest.toString("latin1", i + 3, i + 3 + tl), rest.subarray(i + 3 + tl, i + 1 + len))
      } else acks++
      at = i + 1 + len
    }
    rest = rest.subarray(at)
  }
  const timer = setInterval(() => {
    const n = Math.min(bytes, s.readableLength)
    const b = (n > 0 ? s.read(n) : s.read()) as Buffer | null
    if (b) parse(b)
  }, everyMs)
  await until(() => acks >= 2, `${id}'s CONNACK and SUBACK`, 5000)
  return {
    close() {
      clearInterval(timer)
      s.destroy()
    },
  }
}

/**
 * `n` flooders (anonymous identities `<prefix>0`...) each sending `topic(id)` messages of `size`
 * bytes as fast as their sockets take them, until `stop()`.
 */
async function flooders(port: number, prefix: string, n: number, topic: (id: string) => string, size: number) {
  const socks = await Promise.all(Array.from({ length: n }, () => rawSocket(port)))
  await Promise.all(socks.map((c, k) => (c.s.write(connectPacket(`${prefix}${k}`)), c.bytes(4, `${prefix}${k}'s CONNACK`))))
  let running = true
  const loops = socks.map(async (c, k) => {
    const chunk = Buffer.concat(Array.from({ length: 8 }, () => publishPacket(topic(`${prefix}${k}`), Buffer.alloc(size, 7))))
    while (running && !c.s.destroyed) {
      if (!c.s.write(chunk)) await Promise.race([new Promise((r) => c.s.once("drain", r)), c.closed])
    }
  })
  return {
    async stop() {
      running = false
      for (const c of socks) c.s.destroy()
      await Promise.all(loops)
    },
  }
}

/**
 * 24 flooders send `receiver` (identity `id`, subscribed to `filter`, reading 32 KiB every 10 ms)
 * messages of 4,000 bytes on `floodTopic(flooder)` as fast as the broker takes them: 24 shares of 64
 * KiB are past MAX_QUEUED_BYTES. Once the receiver's queue is full, a polite sender (identity
 * `polite`) sends a small message on `politeTopic` every 100 ms for 4 s; the flood runs on until all
 * of them reached the receiver, or 15 s. Returns what arrived, how late, and the receiver's queue
 * at the broker meanwhile (sampled every 5 ms).
 */
async function floodWithPolite(o: { id: string; filter: string; floodTopic: (flooder: string) => string; politeTopic: string; hostRateBytesPerS?: number }) {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l), hostRateBytesPerS: o.hostRateBytesPerS })
  const sentAt: number[] = []
  const late: number[] = []
  const receiver = await slowReader(broker.port, o.id, o.filter, 32 * 1024, 10, (topic, payload) => {
    if (topic === o.politeTopic) late.push(performance.now() - sentAt[Number(payload.toString())]!)
  })
  const polite = await rawSocket(broker.port)
  polite.s.write(connectPacket("polite"))
  await polite.bytes(4, "polite's CONNACK")
  const flood = await flooders(broker.port, "f", 24, o.floodTopic, 4000)
  /** the receiver's queue at the broker, sampled while the polite messages were on their way */
  const queued: number[] = []
  let sampling = false
  const sample = setInterval(() => sampling && queued.push(broker.queuedBytes(o.id)), 5)
  try {
    await until(() => lines.some((l) => l.startsWith(`client ${o.id} does not read`)), `${o.id}'s queue full`, 20000)
    sampling = true
    for (let i = 0; i < 40; i++) {
      sentAt.push(performance.now())
      polite.s.write(publishPacket(o.politeTopic, Buffer.from(String(i))))
      await new Promise((r) => setTimeout(r, 100))
    }
    await until(() => late.length >= 40, "the polite messages", 15000).catch(() => {})
    sampling = false
    return { arrived: late.length, late, queued, lines }
  } finally {
    clearInterval(sample)
    await flood.stop()
    receiver.close()
    polite.s.destroy()
    await broker.close()
  }
}

/** what floodWithPolite gave, in one line */
const politeFigures = (r: { arrived: number; late: number[]; queued: number[] }) =>
  `${r.arrived} of 40 polite messages arrived during the flood, the latest after ${max(r.late).toFixed(0)} ms; ` +
  `the receiver's queue at the broker ${max(r.queued)} bytes at most, past MAX_QUEUED_BYTES in ${r.queued.filter((q) => q > MAX_QUEUED_BYTES).length} of ${r.queued.length} samples`

/** the bound of boundQueue: MAX_QUEUED_BYTES, one message past it, and each sender's floor (24 flooders and the polite one) */
const queueBound = MAX_QUEUED_BYTES + SENDER_FLOOR_BYTES + 25 * SENDER_FLOOR_BYTES

test("hostile: 24 robots flood the topics a fleet's host reads while it reads slowly (24 x ROBOT_SHARE_BYTES is past MAX_QUEUED_BYTES): another robot's answers sent during the flood all reach the host meanwhile, and the host's queue stays within MAX_QUEUED_BYTES and a frame per robot", { timeout: 60000 }, async () => {
  const r = await floodWithPolite({ id: "h1", filter: "robots/+/out/h1", floodTopic: (f) => `robots/${f}/out/h1`, politeTopic: "robots/polite/out/h1" })
  console.log(politeFigures(r))
  // (before: 0 of 40 arrived; every robot's messages were dropped alike once 16 flooders' shares filled the queue)
  assert.equal(r.arrived, 40, politeFigures(r))
  assert.ok(r.queued.filter((q) => q > MAX_QUEUED_BYTES).length >= r.queued.length / 2, `the flood did not keep the queue full: ${politeFigures(r)}`)
  assert.ok(max(r.queued) <= queueBound, politeFigures(r))
})

test("hostile: 24 hosts flood a robot that reads slowly (24 x HOST_SHARE_BYTES is past MAX_QUEUED_BYTES): another host's messages sent during the flood all reach the robot meanwhile, and the robot's queue stays within MAX_QUEUED_BYTES and a frame per host", { timeout: 60000 }, async () => {
  // (the rate each host may send a robot set out of the way: this is the queue's bound alone; the
  // rate is tested with the VM robot, mqtt_device "a host that sends as fast as the broker takes it")
  const r = await floodWithPolite({ id: "r1", filter: "robots/r1/in/+", floodTopic: (f) => `robots/r1/in/${f}`, politeTopic: "robots/r1/in/polite", hostRateBytesPerS: 1 << 30 })
  console.log(politeFigures(r))
  assert.equal(r.arrived, 40, politeFigures(r))
  assert.ok(r.queued.filter((q) => q > MAX_QUEUED_BYTES).length >= r.queued.length / 2, `the flood did not keep the queue full: ${politeFigures(r)}`)
  assert.ok(max(r.queued) <= queueBound, politeFigures(r))
})

test("hostile: 2,000 hosts, each a new anonymous identity, send a robot that does not read one frame each and leave: what the broker holds for the robot stays within MAX_QUEUED_BYTES and a floor per client connected", { timeout: 120000 }, async () => {
  const lines: string[] = []
  const broker = await startBroker({ host: "127.0.0.1", port: 0, log: (l) => lines.push(l) })
  const robot = await rawSocket(broker.port)
  robot.s.write(Buffer.concat([connectPacket("r1"), subscribePacket(1, ["robots/r1/in/+"])]))
  await robot.bytes(4 + 5, "CONNACK and SUBACK")
  robot.s.pause()
  const frame = Buffer.alloc(16000, 7)
  /** identity `id` sends r1 one frame, then disconnects */
  const once = async (id: string) => {
    const c = await rawSocket(broker.port)
    c.s.write(connectPacket(id))
    await c.bytes(4, "CONNACK")
    c.s.write(Buffer.concat([publishPacket(`robots/r1/in/${id}`, frame), Buffer.from([0xe0, 0])]))
    await c.closed
  }
  let peak = 0
  try {
    for (let k = 0; k < 2000; k += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => once(`a${k + i}`)))
      peak = Math.max(peak, broker.queuedBytes("r1"))
      // the next round once the broker has seen this one leave: r1 and 50 senders connected at most
      // (a sender's socket closed on its side may still count at the broker for a while on a busy
      // machine: in one CI run beside two other engineers' tests, 2,002,758 bytes, past 51 floors)
      await until(() => broker.clientCount() === 1, "a round of senders gone", 10000)
    }
    await until(() => broker.clientCount() === 1, "the senders gone", 10000)
    peak = Math.max(peak, broker.queuedBytes("r1"))
    console.log(`the broker holds ${broker.queuedBytes("r1")} bytes for r1 (at most ${peak})`)
    // (r1 and the 50 senders of a round connected at most. With a floor for every sender, connected
    // or not: 27,959,390 bytes, a frame for each identity)
    assert.ok(peak <= MAX_QUEUED_BYTES + frame.length + 64 + 51 * SENDER_FLOOR_BYTES, `the broker held up to ${peak} bytes for r1`)
    assert.ok(lines.some((l) => l.startsWith("client r1 does not read")), lines.slice(-3).join(" | "))
  } finally {
    robot.s.destroy()
    await broker.close()
  }
})
