// The access rules of docs/mqtt.md, in the embedded broker (packages/host/src/mqtt/broker.ts, aedes) and in a
// real Debian mosquitto started with the config and ACL file of docs/mqtt.md "mosquitto", both on
// free loopback ports: a robot may not publish on or subscribe to another robot's topics; a host
// user works on its own topics; wrong or missing credentials are refused with a clear message.
// (Hosts against each other: mqtt_acl.test.ts.)
// A negative ("not delivered") is proven by a marker sent after it on an allowed topic: MQTT keeps
// one client's order, so had the refused message passed, it would have arrived first.
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { test } from "node:test"
import type { MqttClient } from "mqtt"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import { MqttDirectory } from "../../packages/host/src/client/mqttdir"
import { ServiceError } from "../../packages/host/src/client/errors"
import { AddTwoInts, Trigger } from "../../packages/host/src/gen/interfaces"
import { startBroker, filterWithin, rulesFor, topicMatcher, type BrokerUser, type Denial } from "../../packages/host/src/mqtt/broker"
import { embeddedBroker, MOSQUITTO, rawClient, startMosquitto, startTestRobot, until } from "./mqtt_helpers"

const USERS: BrokerUser[] = [
  { name: "rover1", password: "pw-rover1", role: "robot" },
  { name: "rover2", password: "pw-rover2", role: "robot" },
  { name: "bridge", password: "pw-bridge", role: "host" },
  { name: "watch", password: "pw-watch", role: "host" },
]
const cred = (name: string) => ({ username: name, password: USERS.find((u) => u.name === name)!.password })

/** Messages a client receives, by topic, in order. */
function inbox(c: MqttClient): { topic: string; payload: string; raw: Buffer }[] {
  const got: { topic: string; payload: string; raw: Buffer }[] = []
  c.on("message", (topic, payload) => got.push({ topic, payload: payload.toString(), raw: payload }))
  return got
}

/** Subscribes; resolves with the granted QoS (128: refused in the SUBACK, which the mqtt package reports as an error). */
function subscribe(c: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve) => c.subscribe(topic, { qos: 0 }, (err, granted) => resolve(err ? 128 : (granted?.[0]?.qos ?? 128))))
}

async function refusedConnect(url: string, opts: { username?: string; password?: string }): Promise<ServiceError> {
  try {
    const n = await connect({ transport: mqttTransport({ url, robot: "rover1", ...opts }), connectTimeoutMs: 5000 })
    await n.close()
  } catch (e) {
    assert.ok(e instanceof ServiceError)
    return e
  }
  assert.fail("the broker accepted the connection")
}

/**
 * The rules every broker must keep (embedded and mosquitto). `subackRefuses`: the broker says no in
 * the SUBACK (aedes); mosquitto 2.0 grants a refused MQTT 3.1.1 subscription and delivers nothing.
 * Host `bridge` calls rover1; host `watch` follows every robot's presence; robot rover2 tries
 * rover1's topics and forges rover1's answer to `bridge` and rover1's presence.
 */
async function checkRules(url: string, subackRefuses: boolean) {
  const robot = await startTestRobot({ url, name: "rover1", ...cred("rover1") })
  const node = await connect({ transport: mqttTransport({ url, robot: "rover1", ...cred("bridge") }) })
  const watch = await rawClient(url, cred("watch")) // a host may watch every robot's presence
  const rover2 = await rawClient(url, cred("rover2"))
  try {
    // a host: calls work, under its user name
    assert.equal(node.hostId, "bridge")
    const add = node.createClient(AddTwoInts, "/add_two_ints")
    assert.deepEqual(await add.call({ a: 20n, b: 22n }, { timeoutMs: 5000 }), { sum: 42n })
    assert.equal(await subscribe(watch, "robots/+/online"), 0)
    const seen = inbox(watch)

    // rover2 may not subscribe to rover1's topics (nor to everything), but to its own
    const refused = subackRefuses ? 128 : 0
    assert.equal(await subscribe(rover2, "robots/rover1/in/+"), refused)
    assert.equal(await subscribe(rover2, "robots/#"), refused)
    assert.equal(await subscribe(rover2, "robots/rover2/in/+"), 0)
    const rover2Got = inbox(rover2)
    assert.deepEqual(await add.call({ a: 1n, b: 2n }, { timeoutMs: 5000 }), { sum: 3n }) // frames on robots/rover1/in/bridge
    await watch.publishAsync("robots/rover2/in/watch", "marker-in", { qos: 0 })
    await until(() => rover2Got.some((m) => m.payload === "marker-in"), "the marker on rover2's own topic")
    assert.deepEqual(rover2Got.map((m) => m.topic), ["robots/rover2/in/watch"], "nothing of rover1's reached rover2")

    // rover2 may not publish as rover1 (a forged answer, a forged presence)
    await rover2.publishAsync(`robots/rover1/out/${node.hostId}`, Buffer.from([0xff]), { qos: 0 }).catch(() => {})
    await rover2.publishAsync("robots/rover1/online", "offline", { qos: 0, retain: true }).catch(() => {})
    return { robot, node, watch, rover2, seen, add }
  } catch (e) {
    await node.close()
    await robot.robot.close()
    watch.end(true)
    rover2.end(true)
    throw e
  }
}

test("embedded broker: refuses to listen beyond loopback without users, a taken port, bad users", async () => {
  await assert.rejects(startBroker({ host: "0.0.0.0", port: 0 }), /refusing to run an MQTT broker on 0\.0\.0\.0 without users/)
  const b = await embeddedBroker()
  try {
    await assert.rejects(startBroker({ port: b.port }), new RegExp(`port ${b.port} on 127\\.0\\.0\\.1 is in use \\(another MQTT broker, e\\.g\\. mosquitto, running\\?\\)`))
  } finally {
    await b.close()
  }
  await assert.rejects(startBroker({ port: 0, users: [{ name: "bad/name", password: "x", role: "robot" }] }), /a robot's user name is its name/)
  await assert.rejects(startBroker({ port: 0, users: [{ name: "r", password: "", role: "robot" }] }), /empty password/)
  await assert.rejects(startBroker({ port: 0, users: [{ name: "ops+1", password: "x", role: "host" }] }), /MQTT user 'ops\+1': a host's user name is its host id/)
  // with users it may listen on every address
  const open = await startBroker({ host: "0.0.0.0", port: 0, users: USERS })
  await open.close()
})

test("embedded broker: per-robot credentials and topic rules", async () => {
  const broker = await embeddedBroker({ users: USERS })
  const denials: Denial[] = []
  broker.onDenied((d) => denials.push(d))
  try {
    const bad = await refusedConnect(broker.url, { username: "bridge", password: "wrong" })
    assert.equal(bad.code, "unavailable")
    assert.match(bad.message, new RegExp(`cannot reach the MQTT broker mqtt://127\\.0\\.0\\.1:${broker.port} \\(robot rover1\\): .*Bad username or password \\(check the user name and password\\)`))
    assert.match((await refusedConnect(broker.url, {})).message, /Not authorized/)
    await assert.rejects(startTestRobot({ url: broker.url, name: "rover1", password: "wrong" }), /memory robot rover1: cannot connect to mqtt:\/\/127\.0\.0\.1:\d+: .*Bad username or password/)

    const r = await checkRules(broker.url, true)
    try {
      // aedes closes a client that publishes outside its rules: rover2 is gone, rover1 untouched
      await until(() => !r.rover2.connected, "rover2 disconnected for its forged publish")
      assert.deepEqual(
        denials.map((d) => `${d.identity} ${d.action} ${d.topic}`),
        ["rover2 subscribe robots/rover1/in/+", "rover2 subscribe robots/#", `rover2 publish robots/rover1/out/${r.node.hostId}`],
      )
      assert.deepEqual(r.seen.filter((m) => m.payload === "offline"), [])
      assert.equal(r.node.stats.protocolErrors, 0)
      assert.equal(r.node.online, true)
      r.watch.end(true)
      const dir = await MqttDirectory.connect({ url: broker.url, ...cred("watch") })
      await dir.settled()
      assert.deepEqual(
        dir.robots().filter((x) => x.name === "rover1"),
        [{ name: "rover1", online: true }],
      )
      await dir.close()
      assert.deepEqual(await r.add.call({ a: 1n, b: 1n }, { timeoutMs: 5000 }), { sum: 2n })
      // a host may not publish outside its topics, nor as a robot of its own name
      for (const topic of ["elsewhere/x", "robots/watch/online", "robots/rover1/in/bridge"]) {
        const other = await rawClient(broker.url, cred("watch"))
        await other.publishAsync(topic, "x", { qos: 0 }).catch(() => {})
        await until(() => denials.some((d) => d.topic === topic && d.identity === "watch"), `the denial of ${topic}`)
        other.end(true)
      }
      assert.ok(filterWithin("robots/a/in/h1", "robots/a/in/+") && !filterWithin("robots/a/in/#", "robots/a/in/+"))
      // the publish check (filters split once) agrees with filterWithin on topic names
      const filters = ["robots/+/in/h1", "robots/r1/out/+", "robots/r1/online", "robots/#", "#", "robots/+/+/x"]
      const topics = ["robots/r1/in/h1", "robots//in/h1", "robots/r1/in/h1/x", "robots/r1/out/", "robots/r1/online", "robots/r1", "robots", "robots/a/b/x", "x/r1/in/h1"]
      for (const f of filters) for (const t of topics) assert.equal(topicMatcher([f])(t), filterWithin(t, f), `${t} against ${f}`)
      assert.deepEqual(rulesFor({ kind: "host", id: "h1" }), {
        publish: ["robots/+/in/h1", "robots/+/echo/h1"],
        subscribe: ["robots/+/out/h1", "robots/+/pong/h1", "robots/+/online"],
      })
    } finally {
      await r.node.close()
      await r.robot.robot.close()
      r.watch.end(true)
      r.rover2.end(true)
    }
  } finally {
    await broker.close()
  }
})

test("mosquitto with the config and ACL of docs/mqtt.md keeps the same rules", async (t) => {
  if (!fs.existsSync(MOSQUITTO)) {
    if (process.env.CI) assert.fail(`${MOSQUITTO} is missing (.ci/run installs Debian's mosquitto)`)
    t.skip(`${MOSQUITTO} is not installed (apt-get install mosquitto)`)
    return
  }
  const m = await startMosquitto(USERS)
  try {
    assert.match((await refusedConnect(m.url, {})).message, /cannot reach the MQTT broker .*Not authorized/)
    assert.match((await refusedConnect(m.url, { username: "bridge", password: "nope" })).message, /Not authorized|Bad username or password/)
    const r = await checkRules(m.url, false)
    try {
      // mosquitto drops the forged messages and keeps the connection: a marker from rover2 on its
      // own topic arrives, the forged presence before it never did; the node's next answer comes
      // after where the forged one would have
      await r.rover2.publishAsync("robots/rover2/online", "marker-out", { qos: 0 })
      await until(() => r.seen.some((x) => x.payload === "marker-out"), "rover2's marker")
      assert.ok(r.rover2.connected)
      assert.deepEqual(r.seen.filter((x) => x.topic === "robots/rover1/online" && x.payload === "offline"), [], "rover2's forged presence was dropped")
      assert.deepEqual(await r.add.call({ a: 1n, b: 1n }, { timeoutMs: 5000 }), { sum: 2n })
      assert.equal(r.node.stats.protocolErrors, 0, "rover2's forged answer was dropped")
      assert.equal(r.node.online, true)
      r.watch.end(true)
      const dir = await MqttDirectory.connect({ url: m.url, ...cred("watch") })
      const presence: boolean[] = []
      dir.onChange((e) => e.type === "offline" && e.name === "rover1" && presence.push(false))
      await dir.waitFor({ names: ["rover1"] })
      assert.equal(dir.robots().find((x) => x.name === "rover1")?.online, true, "the retained presence is rover1's own")
      // the robot's will is allowed: dropped without DISCONNECT, it is announced offline
      const offline = until(() => presence.length > 0, "rover1's will")
      await r.robot.robot.disconnect()
      await offline
      await dir.close()
    } finally {
      await r.node.close()
      await r.robot.robot.close()
      r.watch.end(true)
      r.rover2.end(true)
    }
  } finally {
    await m.close()
  }
})

test("mosquitto killed (SIGKILL) and started again on its port: robot and host reconnect, calls work", async (t) => {
  if (!fs.existsSync(MOSQUITTO)) {
    if (process.env.CI) assert.fail(`${MOSQUITTO} is missing (.ci/run installs Debian's mosquitto)`)
    t.skip(`${MOSQUITTO} is not installed`)
    return
  }
  let m = await startMosquitto(USERS)
  const robot = await startTestRobot({ url: m.url, name: "rover1", ...cred("rover1") })
  const node = await connect({ transport: mqttTransport({ url: m.url, robot: "rover1", reconnectPeriodMs: 200, ...cred("bridge") }) })
  try {
    const add = node.createClient(AddTwoInts, "/add_two_ints")
    assert.deepEqual(await add.call({ a: 1n, b: 1n }, { timeoutMs: 5000 }), { sum: 2n })
    const started = robot.nextSlow()
    const pending = node.createClient(Trigger, "/slow").call({}, { timeoutMs: 30000 }).catch((e: ServiceError) => e)
    await started
    const down = new Promise<void>((resolve) => node.onStateChange((s) => s === "disconnected" && resolve()))
    await m.kill()
    await down
    const e = await pending
    assert.ok(e instanceof ServiceError && e.code === "unavailable", String(e))
    assert.match(e.message, new RegExp(`broker mqtt://127\\.0\\.0\\.1:${m.port} unreachable`))
    const port = m.port
    await m.close()
    m = await startMosquitto(USERS, port)
    await until(() => node.state === "connected", "the node connected again", 30000)
    assert.deepEqual(await add.call({ a: 2n, b: 3n }, { timeoutMs: 5000 }), { sum: 5n })
  } finally {
    await node.close()
    await robot.robot.close()
    await m.close()
  }
})
