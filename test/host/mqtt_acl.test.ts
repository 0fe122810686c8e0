// One host cannot read or touch another host's calls on the broker (issue 16 item 6, issue 20
// "Spoofing on the broker"), and only a robot speaks for itself: the host id is the broker identity
// (docs/mqtt.md "Access control"). Run against the embedded broker (packages/host/src/mqtt/broker.ts: with users,
// and anonymous on loopback) and against Debian's mosquitto started with the config and ACL of
// docs/mqtt.md. Host A (user alice) calls robot r1 (an in-memory robot) the whole time while host B
// (user bob) tries every attack: reading A's SESSION and answers, CANCEL, CALL and a DONE storm on
// A's topic, a forged RESULT on A's answer topic, a retained `offline` and an empty retained
// presence for r1, other host ids from one client, and taking over r1's or A's connection. Each
// attack is checked while A's calls run (every one must succeed), and after it, on the robot's own
// connection (nothing B forged reached it) and at A (no forged answer, no state change).
//
// A negative ("not delivered") is proven by ordering: after its forgeries B publishes a marker on
// its own echo topic; MQTT keeps one client's order, so once the robot has the marker, anything of
// B's it could have got is in. The embedded broker closes a client at its first refused publish
// (aedes' way): there, the barrier is B's connection closing with the refusal reported.
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { test } from "node:test"
import type { MqttClient } from "mqtt"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport, type MqttNode } from "../../packages/host/src/client/mqtt"
import { MqttDirectory } from "../../packages/host/src/client/mqttdir"
import { ServiceError } from "../../packages/host/src/client/errors"
import { PROTOCOL_VERSION, WireStatus, encodeCall, encodeCancel, encodeDone, encodeList, encodeOpen, encodeResult } from "../../packages/host/src/client/records"
import { AddTwoInts, Trigger } from "../../packages/host/src/gen/interfaces"
import type { BrokerUser, Denial } from "../../packages/host/src/mqtt/broker"
import { embeddedBroker, MOSQUITTO, rawClient, robotClient, startMosquitto, startTestRobot, until, waitForState, type TestRobot } from "./mqtt_helpers"

const USERS: BrokerUser[] = [
  { name: "r1", password: "pw-r1", role: "robot" },
  { name: "alice", password: "pw-alice", role: "host" },
  { name: "bob", password: "pw-bob", role: "host" },
  { name: "carol", password: "pw-carol", role: "host" },
]
const cred = (name: string) => ({ username: name, password: USERS.find((u) => u.name === name)!.password })

/** How one broker is reached as each party, and how it says no. */
interface Setup {
  kind: string
  url: string
  /** with users: identities are user names; anonymous: client ids (user names when given) */
  users: boolean
  /** aedes closes a client at its first refused publish; mosquitto drops the message silently */
  closesOnDenial: boolean
  /** refusals so far, as `<identity> <publish|subscribe> <topic>` */
  denials(): string[]
}

let attackerSeq = 0

/** B's identity and a fresh connection as B (anonymous: a client id of its own each time). */
async function connectB(s: Setup, opts: { clientId?: string } = {}): Promise<{ c: MqttClient; id: string }> {
  const mqtt = require("mqtt") as typeof import("mqtt")
  const id = s.users ? "bob" : `bob${++attackerSeq}`
  const c = mqtt.connect(s.url, {
    ...(s.users ? cred("bob") : {}),
    clientId: opts.clientId ?? (s.users ? `bob-${++attackerSeq}` : id),
    reconnectPeriod: 0,
    protocolVersion: 4,
  })
  c.on("error", () => {})
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve())
    c.once("close", () => reject(new Error("B could not connect")))
  })
  return { c, id }
}

/** Connects as B with these options and resolves with the broker's refusal (undefined: accepted). */
async function tryConnectB(s: Setup, opts: { clientId: string; username?: string; password?: string }): Promise<string | undefined> {
  const mqtt = require("mqtt") as typeof import("mqtt")
  const c = mqtt.connect(s.url, { ...opts, reconnectPeriod: 0, protocolVersion: 4 })
  return new Promise((resolve) => {
    c.once("connect", () => {
      c.end(true)
      resolve(undefined)
    })
    c.once("error", (e) => {
      c.end(true)
      resolve(e.message)
    })
  })
}

/** Subscribes; resolves with the granted QoS (128: refused in the SUBACK). */
function subscribe(c: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve) => c.subscribe(topic, { qos: 0 }, (err, granted) => resolve(err ? 128 : (granted?.[0]?.qos ?? 128))))
}

/** What reached the robot's own MQTT connection (topic and bytes), in order. */
function tapRobot(t: TestRobot): { topic: string; payload: Buffer }[] {
  const got: { topic: string; payload: Buffer }[] = []
  robotClient(t).on("message", (topic, payload) => got.push({ topic, payload: Buffer.from(payload) }))
  return got
}

/**
 * Host A (alice) against robot r1 while host B (bob) attacks; every check of the module header.
 * `aNode` makes A's node (with its broker identity), `directoryAs` a directory as a third host.
 */
async function attackSuite(s: Setup) {
  const t = await startTestRobot({ url: s.url, name: "r1", ...(s.users ? cred("r1") : {}) })
  const atRobot = tapRobot(t)
  const closers: (() => Promise<unknown>)[] = [() => t.robot.close()]
  try {
    // --- reading: B subscribes to everything it can think of before A opens its session
    const reader = await connectB(s)
    const readerGot: { topic: string; payload: Buffer }[] = []
    reader.c.on("message", (topic, payload) => readerGot.push({ topic, payload: Buffer.from(payload) }))
    const wide = ["robots/#", "robots/r1/out/+", "robots/r1/in/+", "robots/+/out/+", "#"]
    const granted = await Promise.all(wide.map((f) => subscribe(reader.c, f)))
    if (s.closesOnDenial) assert.deepEqual(granted, [128, 128, 128, 128, 128], "the embedded broker refuses each in the SUBACK")
    assert.equal(await subscribe(reader.c, `robots/r1/pong/${reader.id}`), 0, "B may read its own pongs")

    const a = (await connect({ transport: mqttTransport({ url: s.url, robot: "r1", ...(s.users ? cred("alice") : {}) }) })) as MqttNode
    closers.unshift(() => a.close())
    if (s.users) assert.equal(a.hostId, "alice", "A's host id is its user name")
    else assert.match(a.hostId, /^h[0-9a-f]{8}$/, "anonymous: A's host id is its client id")
    const add = a.createClient(AddTwoInts, "/add_two_ints")
    assert.deepEqual(await add.call({ a: 1n, b: 2n }, { timeoutMs: 10000 }), { sum: 3n })
    const session = a.session
    assert.ok(session > 0)
    const opened = t.robot.stats.sessionsOpened
    // B's own echo, after A's SESSION and answer were published: had B got them, they came first
    const mark = Buffer.from("reader-mark")
    reader.c.publish(`robots/r1/echo/${reader.id}`, mark, { qos: 0 })
    await until(() => readerGot.some((m) => m.payload.equals(mark)), "B's pong")
    const foreign = readerGot.filter((m) => m.topic !== `robots/r1/pong/${reader.id}` && m.topic !== "robots/r1/online")
    assert.deepEqual(
      foreign.map((m) => m.topic),
      [],
      "B read nothing but its own pong and r1's presence",
    )
    await reader.c.endAsync()

    // --- A calls the whole time B attacks; every call must succeed
    const aStates: string[] = []
    a.onStateChange((st) => aStates.push(st))
    const aErrors: string[] = []
    a.onProtocolError((m) => aErrors.push(m))
    let stop = false
    let aCalls = 0
    const aFailures: string[] = []
    const loop = (async () => {
      for (let i = 0n; !stop; i++) {
        try {
          const r = await add.call({ a: i, b: 1000n }, { timeoutMs: 10000 })
          if (r.sum !== i + 1000n) aFailures.push(`wrong sum ${r.sum} for ${i}`)
          aCalls++
        } catch (e) {
          aFailures.push(String(e))
        }
        // a steady caller (about 50 calls/s), not a flood: while its /slow call is open, every
        // settled call above it is remembered by the in-memory robot (at most 4,096, then NOSESSION)
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    // a long call of A's (B will try to cancel it and to answer it)
    const slowStarted = t.nextSlow()
    const slow = a.createClient(Trigger, "/slow").call({}, { timeoutMs: 60000 })
    slow.catch(() => {}) // awaited below; a failure before that must not hide the first one
    closers.unshift(async () => {
      stop = true
      await loop
    })
    await slowStarted

    /** B's forgeries on one connection, then the barrier; returns what B published */
    const forge = async (what: string, msgs: { topic: string; payload: Uint8Array; retain?: boolean }[]) => {
      const callsBefore = aCalls
      const b = await connectB(s)
      const marker = Buffer.from(`marker-${what}-${attackerSeq}`)
      for (const m of msgs) b.c.publish(m.topic, Buffer.from(m.payload), { qos: 0, retain: m.retain ?? false })
      b.c.publish(`robots/r1/echo/${b.id}`, marker, { qos: 0 })
      await until(
        () => atRobot.some((m) => m.payload.equals(marker)) || (s.closesOnDenial && !b.c.connected),
        `${what}: the marker at the robot, or B disconnected for its forgery`,
      )
      if (s.closesOnDenial) {
        assert.ok(!atRobot.some((m) => m.payload.equals(marker)), `${what}: the embedded broker closed B at its forgery`)
        assert.ok(s.denials().includes(`${b.id} publish ${msgs[0]!.topic}`), `${what}: refusal reported (${s.denials().join("; ")})`)
      }
      b.c.end(true)
      const forged = msgs.map((m) => Buffer.from(m.payload))
      assert.deepEqual(
        atRobot.filter((m) => forged.some((f) => f.length > 0 && f.equals(m.payload))).map((m) => m.topic),
        [],
        `${what}: nothing B forged reached the robot`,
      )
      // one round trip of A's after the barrier: a forged message to A would have come before it
      assert.deepEqual(await add.call({ a: 7n, b: 7n }, { timeoutMs: 10000 }), { sum: 14n }, what)
      assert.equal(a.session, session, `${what}: A's session is unchanged`)
      assert.deepEqual(aStates, [], `${what}: A's node never changed state`)
      assert.deepEqual(aErrors, [], `${what}: no protocol error at A`)
      await until(() => aCalls > callsBefore, `${what}: a call of A's background caller completed since the attack began`)
      attacks++
    }
    let attacks = 0
    const inA = `robots/r1/in/${a.hostId}`
    const seqs = Array.from({ length: 200 }, (_, i) => i + 1)
    // CANCEL every call A may have running
    await forge(
      "cancel",
      [0, 1].map((k) => ({ topic: inA, payload: Buffer.concat(seqs.slice(k * 100, k * 100 + 100).map((q) => encodeCancel({ session, seq: q }))) })),
    )
    // a CALL in A's session (to /count, which A never calls), an OPEN and a LIST on A's topic
    const count = a.knownServices()!.find((x) => x.name === "/count")!
    const req = Trigger.request.encode({})
    await forge("call", [
      { topic: inA, payload: Buffer.concat([encodeCall({ session, seq: 5000, ack: 0, timeoutMs: 5000, hash32: count.hash32, total: req.length, name: "/count", data: req })]) },
      { topic: inA, payload: Buffer.concat([encodeOpen({ nonce: 0x12345678, version: PROTOCOL_VERSION }), encodeList()]) },
    ])
    // a DONE storm on A's topic
    await forge(
      "done",
      Array.from({ length: 40 }, (_, k) => ({ topic: inA, payload: encodeDone({ session, seqs: seqs.map((q) => q + 1000 * k) }) })),
    )
    // a forged answer to every call A may be waiting for (its /slow among them)
    const forgedAnswer = Trigger.response.encode({ success: false, message: "forged" })
    await forge(
      "result",
      [0, 1].map((k) => ({
        topic: `robots/r1/out/${a.hostId}`,
        payload: Buffer.concat(seqs.slice(k * 100, k * 100 + 100).map((q) => encodeResult({ session, seq: q, status: WireStatus.ok, total: forgedAnswer.length, data: forgedAnswer }))),
      })),
    )
    // r1's presence: a retained offline, then an empty retained message (would remove r1)
    await forge("offline", [{ topic: "robots/r1/online", payload: Buffer.from("offline"), retain: true }])
    await forge("empty presence", [{ topic: "robots/r1/online", payload: Buffer.alloc(0), retain: true }])
    // one client, several host ids (issue 16 item 7): frames under other ids never reach r1
    await forge("other host ids", ["h2", "h3", "h4", "h5"].map((h, i) => ({ topic: `robots/r1/in/${h}`, payload: Buffer.concat([encodeList(), encodeOpen({ nonce: 0x0badf00d + i, version: PROTOCOL_VERSION })]) })))
    // speaking as a robot: a pong of r1's to A; with users, announcing a robot of B's own name
    await forge("as robot", [{ topic: `robots/r1/pong/${a.hostId}`, payload: Buffer.from("forged pong") }])
    if (s.users) await forge("a robot named bob", [{ topic: "robots/bob/online", payload: Buffer.from("online"), retain: true }])

    // taking over r1's or A's connection: refused, or B stays B (its will is not r1's)
    const takeovers = s.users
      ? [{ clientId: "robot-r1", ...cred("bob") }, { clientId: "r1", ...cred("bob") }, { clientId: "alice", ...cred("bob") }]
      : [{ clientId: a.hostId }, { clientId: "robot-r1", username: "r1" }, { clientId: "r1" }, { clientId: "x1", username: a.hostId }]
    for (const o of takeovers) {
      const refused = await tryConnectB(s, o)
      if (!s.users) assert.match(refused ?? "accepted", /Identifier rejected/, `anonymous: identity ${o.username ?? o.clientId} is in use: refused`)
      assert.deepEqual(await add.call({ a: 1n, b: 1n }, { timeoutMs: 10000 }), { sum: 2n })
      assert.ok(t.robot.connected, `r1 still connected after B connected as ${JSON.stringify(o)}`)
      assert.deepEqual(aStates, [], `A's node never changed state (${JSON.stringify(o)})`)
    }

    // the results: A's slow call gets the robot's answer, not B's; nothing of B's ran or cancelled
    t.releaseSlow()
    assert.deepEqual(await slow, { success: true, message: "released" })
    assert.equal(t.slowAborted, 0, "B's CANCEL never reached the handler")
    assert.equal(t.counted, 0, "B's CALL never ran")
    assert.equal(t.robot.stats.sessionsOpened, opened, "no session was opened or lost meanwhile")
    stop = true
    await loop
    assert.deepEqual(aFailures, [], "every call of A's succeeded during the attacks")
    assert.ok(aCalls >= attacks, `A kept calling (${aCalls} calls over ${attacks} attacks)`)
    assert.equal(a.online, true)
    // the retained presence is still r1's own: a host connecting now sees it online
    const dir = await MqttDirectory.connect({ url: s.url, ...(s.users ? cred("carol") : {}) })
    closers.unshift(() => dir.close())
    await dir.waitFor({ names: ["r1"], timeoutMs: 10000 })
    await dir.settled()
    assert.deepEqual(dir.robots(), [{ name: "r1", online: true }])
  } finally {
    for (const f of closers) await f().catch(() => {})
  }
}

/** A and B each work normally: concurrent calls, each its own host id, its own answers only. */
async function bothWork(s: Setup) {
  const t = await startTestRobot({ url: s.url, name: "r1", ...(s.users ? cred("r1") : {}) })
  const atRobot = tapRobot(t)
  const a = (await connect({ transport: mqttTransport({ url: s.url, robot: "r1", ...(s.users ? cred("alice") : {}) }) })) as MqttNode
  const dir = await MqttDirectory.connect({ url: s.url, ...(s.users ? cred("bob") : {}) })
  try {
    const b = dir.nodeFor("r1")
    if (s.users) {
      assert.equal(a.hostId, "alice")
      assert.equal(dir.hostId, "bob")
    }
    assert.notEqual(a.hostId, b.hostId)
    const [ra, rb] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, (_, i) => a.createClient(AddTwoInts, "/add_two_ints").call({ a: BigInt(i), b: 100n }, { timeoutMs: 10000 }))),
      Promise.all(Array.from({ length: 20 }, (_, i) => b.createClient(AddTwoInts, "/add_two_ints").call({ a: BigInt(i), b: 200n }, { timeoutMs: 10000 }))),
    ])
    assert.deepEqual(ra.map((r) => r.sum), Array.from({ length: 20 }, (_, i) => BigInt(i) + 100n))
    assert.deepEqual(rb.map((r) => r.sum), Array.from({ length: 20 }, (_, i) => BigInt(i) + 200n))
    assert.deepEqual(await a.echo(Buffer.from("ping-a"), { timeoutMs: 5000 }), Buffer.from("ping-a"))
    assert.deepEqual(Buffer.from(await b.echo(Buffer.from("ping-b"), { timeoutMs: 5000 })), Buffer.from("ping-b"))
    assert.deepEqual(dir.robots(), [{ name: "r1", online: true }])
    const hosts = new Set(atRobot.map((m) => m.topic.split("/")[3]))
    assert.deepEqual([...hosts].sort(), [a.hostId, b.hostId].sort(), "the robot heard exactly the two host ids")
    assert.deepEqual(s.denials(), [], "nothing refused")
  } finally {
    await a.close()
    await dir.close()
    await t.robot.close()
  }
}

/**
 * One connection per user (the broker keys connections by user name): a second connection of
 * alice's replaces A's (the same party, so nothing is given away); A's node reconnects by itself.
 */
async function oneConnectionPerUser(s: Setup) {
  const t = await startTestRobot({ url: s.url, name: "r1", ...cred("r1") })
  const a = (await connect({ transport: mqttTransport({ url: s.url, robot: "r1", reconnectPeriodMs: 300, ...cred("alice") }) })) as MqttNode
  try {
    const add = a.createClient(AddTwoInts, "/add_two_ints")
    assert.deepEqual(await add.call({ a: 1n, b: 2n }, { timeoutMs: 10000 }), { sum: 3n })
    const states: string[] = []
    a.onStateChange((st) => states.push(st))
    const twin = await rawClient(s.url, { ...cred("alice"), clientId: "alice-twin" })
    await until(() => states.includes("disconnected"), "A's connection replaced by alice's second one")
    await until(() => !twin.connected, "the second one replaced in turn when A reconnects")
    await waitForState(a, "connected")
    assert.deepEqual(await add.call({ a: 2n, b: 2n }, { timeoutMs: 10000 }), { sum: 4n })
    assert.ok(t.robot.connected)
    twin.end(true)
  } finally {
    await a.close()
    await t.robot.close()
  }
}

async function embedded(users: boolean, f: (s: Setup) => Promise<void>) {
  const broker = await embeddedBroker(users ? { users: USERS } : {})
  const denials: Denial[] = []
  broker.onDenied((d) => denials.push(d))
  try {
    await f({
      kind: "embedded",
      url: broker.url,
      users,
      closesOnDenial: true,
      denials: () => denials.map((d) => `${d.identity} ${d.action} ${d.topic}`),
    })
  } finally {
    await broker.close()
  }
}

async function mosquitto(t: { skip(m: string): void }, f: (s: Setup) => Promise<void>) {
  if (!fs.existsSync(MOSQUITTO)) {
    if (process.env.CI) assert.fail(`${MOSQUITTO} is missing (.ci/run installs Debian's mosquitto)`)
    t.skip(`${MOSQUITTO} is not installed (apt-get install mosquitto)`)
    return
  }
  const m = await startMosquitto(USERS)
  try {
    await f({
      kind: "mosquitto",
      url: m.url,
      users: true,
      closesOnDenial: false,
      // mosquitto logs each refused publish: "Denied PUBLISH from bob (d0, q0, r0, m0, 'robots/…', …"
      denials: () =>
        m.log.flatMap((l) => {
          const d = /Denied PUBLISH from (\S+) \(.*?'([^']*)'/.exec(l)
          return d ? [`${d[1]} publish ${d[2]}`] : []
        }),
    })
  } finally {
    await m.close()
  }
}

test("embedded broker with users: host B cannot read or touch host A's calls; A keeps calling meanwhile", async () => {
  await embedded(true, attackSuite)
})

test("embedded broker with users: A and B each work, each under its own user name", async () => {
  await embedded(true, bothWork)
})

test("embedded broker, anonymous on loopback: host id = client id, a taken identity is refused, B cannot touch A", async () => {
  await embedded(false, attackSuite)
})

test("embedded broker, anonymous on loopback: A and B each work", async () => {
  await embedded(false, bothWork)
})

test("mosquitto with the config and ACL of docs/mqtt.md: host B cannot read or touch host A's calls; A keeps calling meanwhile", async (t) => {
  await mosquitto(t, async (s) => {
    await attackSuite(s)
    const denied = s.denials()
    for (const topic of ["robots/r1/in/alice", "robots/r1/out/alice", "robots/r1/online", "robots/r1/in/h2", "robots/r1/pong/alice", "robots/bob/online"]) {
      assert.ok(denied.includes(`bob publish ${topic}`), `mosquitto refused bob's publish on ${topic} (${denied.join("; ")})`)
    }
  })
})

test("mosquitto with the config and ACL of docs/mqtt.md: A and B each work, each under its own user name", async (t) => {
  await mosquitto(t, bothWork)
})

test("one connection per user: a second connection of a host user replaces the first (embedded broker and mosquitto)", async (t) => {
  await embedded(true, oneConnectionPerUser)
  await mosquitto(t, oneConnectionPerUser)
})

test("a host's user name that cannot be a host id is refused before connecting", async () => {
  for (const username of ["a/b", "a+b", "#", "x".repeat(33), "a b"]) {
    assert.throws(
      () => mqttTransport({ url: "mqtt://127.0.0.1:1", robot: "r1", username, password: "pw" }),
      (e: ServiceError) => e.code === "invalid_argument" && /cannot be a host id/.test(e.message) && e.message.includes(username),
    )
    await assert.rejects(MqttDirectory.connect({ url: "mqtt://127.0.0.1:1", username, password: "pw" }), (e: ServiceError) => e.code === "invalid_argument")
  }
})
