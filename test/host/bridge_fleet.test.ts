// The bridge in front of a fleet (packages/host/src/client/fleet.ts: several robots under ROS namespaces,
// /robot2/add_two_ints): presence in the state topic, GET /api/state, GET /api/robots and the
// Foxglove metadata; group calls (POST /api/group/<service>?robots=<glob>); per-robot Foxglove
// channels; `robot bridge --memory --robots N`. Robots are in-memory demo nodes (packages/host/src/demo/demo.ts);
// tests wait on messages and events, never on fixed sleeps.
import assert from "node:assert/strict"
import { test } from "node:test"
import WebSocket from "ws"
import { demoFleet, demoMemoryNode } from "../../packages/host/src/demo/demo"
import type { MemoryNode } from "../../packages/host/src/demo/memory"
import { startBridge, STATE_TOPIC, CALLS_TOPIC, type Bridge, type BridgeOptions } from "../../packages/host/src/bridge/server"
import type { FleetNode } from "../../packages/host/src/client/fleet"
import { AddTwoInts, GetState, serviceTypes, Trigger } from "../../packages/host/src/gen/interfaces"
import { runningBridge, runRobot } from "./bridge_helpers"
import { call, connectFoxglove, json, next, text } from "./foxglove_helpers"

interface FleetFixture {
  fleet: FleetNode
  bridge: Bridge
  /** robot `name`'s in-memory node */
  node(name: string): MemoryNode
  close(): Promise<void>
}

/** A demo fleet of `count` robots (robot1..) behind a bridge on a free port. Close it in `finally`. */
async function startFleet(count: number, options: Partial<BridgeOptions> = {}): Promise<FleetFixture> {
  const fleet = demoFleet(count)
  await fleet.listServices({ timeoutMs: 2000 })
  const bridge = await startBridge({ node: fleet, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes, ...options })
  return {
    fleet,
    bridge,
    node: (name) => fleet.robot(name) as MemoryNode,
    async close() {
      await bridge.close()
      await fleet.close()
    },
  }
}

/** A raw rosbridge socket with an inbox: `until(pred)` resolves with the first message (old or new) passing `pred`. */
async function rawSocket(url: string) {
  const ws = new WebSocket(url)
  const inbox: any[] = []
  const waiters = new Set<() => void>()
  ws.on("message", (d) => {
    inbox.push(JSON.parse(d.toString()))
    for (const w of [...waiters]) w()
  })
  await new Promise((r) => ws.once("open", r))
  let seen = 0
  return {
    ws,
    inbox,
    send: (m: unknown) => ws.send(JSON.stringify(m)),
    /** The next message after the last one `until` returned that passes `pred`. */
    until(pred: (m: any) => boolean): Promise<any> {
      return new Promise((resolve) => {
        const check = () => {
          while (seen < inbox.length) {
            const m = inbox[seen++]
            if (pred(m)) {
              waiters.delete(check)
              resolve(m)
              return
            }
          }
        }
        waiters.add(check)
        check()
      })
    },
  }
}

const states = (m: any) => m.op === "publish" && m.topic === STATE_TOPIC
const presence = (m: any) => (m.msg.robots as any[]).map((r) => `${r.name}:${r.online ? "on" : "off"}`).join(",")
const api = (b: Bridge, p: string, init?: RequestInit) => fetch(`${b.url}${p}`, init)
const post = (b: Bridge, p: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${b.url}${p}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })

test("presence: /robot_bridge/state, GET /api/state and GET /api/robots carry the robots; a robot going offline, restarting, joining and leaving is pushed at once", async () => {
  const f = await startFleet(3)
  const s = await rawSocket(f.bridge.wsUrl)
  try {
    s.send({ op: "subscribe", topic: STATE_TOPIC })
    const first = await s.until(states)
    assert.equal(first.msg.state, "connected")
    assert.equal(presence(first), "robot1:on,robot2:on,robot3:on")
    // each robot's own service names; the top-level list stays namespaced (rosbridge clients use it)
    assert.deepEqual(
      first.msg.robots[1].services.map((x: any) => x.name),
      ["/add_two_ints", "/take_picture", "/fail", "/set_led"],
    )
    assert.deepEqual(first.msg.robots[1].services[0], { name: "/add_two_ints", type: "example_interfaces/srv/AddTwoInts" })
    assert.ok(first.msg.services.some((x: any) => x.name === "/robot2/add_two_ints"))

    f.node("robot1").disconnect()
    const off = await s.until((m) => states(m) && presence(m) === "robot1:off,robot2:on,robot3:on")
    assert.deepEqual(off.msg.robots[0], { name: "robot1", online: false, services: [] })
    assert.equal(off.msg.state, "connected", "the bridge is connected while one robot is")
    await s.until((m) => states(m) && !m.msg.services.some((x: any) => x.name.startsWith("/robot1/")))

    const state = await (await api(f.bridge, "/api/state")).json()
    assert.equal(presence({ msg: state }), "robot1:off,robot2:on,robot3:on")
    const robots = await (await api(f.bridge, "/api/robots")).json()
    assert.equal(robots.fleet, true)
    assert.deepEqual(robots.robots, state.robots)
    const some = await (await api(f.bridge, "/api/robots?robots=robot1,*3")).json()
    assert.deepEqual(some.robots.map((r: any) => r.name), ["robot1", "robot3"])
    const bad = await api(f.bridge, "/api/robots?robots=a/b")
    assert.equal(bad.status, 400)
    assert.equal((await bad.json()).code, "invalid_argument")

    // a restart names the robot; it comes back online with its services
    f.node("robot2").restart()
    const restarted = await s.until((m) => states(m) && m.msg.restarted)
    assert.equal(restarted.msg.robot, "robot2")
    f.node("robot1").connectNow()
    await s.until((m) => states(m) && presence(m) === "robot1:on,robot2:on,robot3:on" && m.msg.robots[0].services.length === 4)

    // robots joining and leaving the fleet
    f.fleet.add("robot4", demoMemoryNode())
    await s.until((m) => states(m) && presence(m).endsWith("robot4:on"))
    await f.fleet.remove("robot3")
    await s.until((m) => states(m) && presence(m) === "robot1:on,robot2:on,robot4:on")
    // a fleet tells one change several ways (robots, services, state): no message is sent twice in a row
    const sent = s.inbox.filter(states).map((m) => JSON.stringify(m.msg))
    for (let i = 1; i < sent.length; i++) assert.notEqual(sent[i], sent[i - 1], `state message ${i} repeats the one before`)
  } finally {
    s.ws.close()
    await f.close()
  }
})

test("a single robot's bridge keeps its messages: no robots field, GET /api/robots says it is no fleet, group calls are refused", async () => {
  const node = demoMemoryNode()
  const bridge = await startBridge({ node, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes })
  try {
    const state = await (await api(bridge, "/api/state")).json()
    assert.deepEqual(Object.keys(state).sort(), ["restarted", "restarting", "services", "state"])
    assert.deepEqual(await (await api(bridge, "/api/robots")).json(), { fleet: false, robots: [] })
    const services = await (await api(bridge, "/api/services")).json()
    assert.ok(!("robot" in services.services[0]))
    const g = await post(bridge, "/api/group/add_two_ints", { a: 1, b: 2 })
    assert.equal(g.status, 404)
    assert.match((await g.json()).message, /one robot, not a fleet/)
  } finally {
    await bridge.close()
    await node.close()
  }
})

test("calls by name on a fleet: an offline or unknown robot is unavailable at once, a name without a robot is unimplemented with a hint", async () => {
  const f = await startFleet(2)
  try {
    const services = await (await api(f.bridge, "/api/services")).json()
    assert.deepEqual(
      services.services.filter((x: any) => x.name.endsWith("/add_two_ints")).map((x: any) => [x.name, x.robot]),
      [
        ["/robot1/add_two_ints", "robot1"],
        ["/robot2/add_two_ints", "robot2"],
      ],
    )
    f.node("robot1").disconnect()
    const t0 = Date.now()
    const off = await post(f.bridge, "/api/services/robot1/add_two_ints?timeout_ms=60000", { a: 1, b: 2 })
    assert.equal(off.status, 503)
    assert.deepEqual(await off.json(), { code: "unavailable", message: "robot robot1 is offline; try again when it is back" })
    assert.ok(Date.now() - t0 < 5000, "no timeout waited for")
    const unknown = await post(f.bridge, "/api/services/robot9/add_two_ints", {})
    assert.equal(unknown.status, 503)
    assert.match((await unknown.json()).message, /no robot robot9 \(robots: robot1, robot2\)/)
    const bare = await post(f.bridge, "/api/services/add_two_ints", {})
    assert.equal(bare.status, 404)
    assert.match((await bare.json()).message, /several robots, name one \(\/robot1\/add_two_ints\)/)
    const missing = await post(f.bridge, "/api/services/robot2/nope", {})
    assert.equal(missing.status, 404)
    assert.match((await missing.json()).message, /no service \/nope on robot robot2/)
    const ok = await post(f.bridge, "/api/services/robot2/add_two_ints", { a: 40, b: 2 })
    assert.deepEqual(await ok.json(), { sum: 42 })
  } finally {
    await f.close()
  }
})

test("group calls: POST /api/group/<service>?robots=<glob> answers one row per robot, in parallel; an offline robot's row is unavailable at once, the others answer", async () => {
  const f = await startFleet(3)
  const s = await rawSocket(f.bridge.wsUrl)
  try {
    s.send({ op: "subscribe", topic: CALLS_TOPIC })
    f.node("robot1").disconnect()
    const t0 = Date.now()
    const r = await post(f.bridge, "/api/group/add_two_ints?robots=robot*&timeout_ms=60000", { a: 9007199254740993n.toString(), b: 1 })
    assert.equal(r.status, 200)
    const body = await r.text()
    assert.ok(Date.now() - t0 < 5000, "the offline robot was not waited for")
    // int64 exact in every row
    assert.equal(
      body,
      '{"service":"/add_two_ints","robots":"robot*","results":[' +
        '{"robot":"robot1","ok":false,"error":{"code":"unavailable","message":"robot robot1 is offline; try again when it is back"}},' +
        '{"robot":"robot2","ok":true,"values":{"sum":9007199254740994}},' +
        '{"robot":"robot3","ok":true,"values":{"sum":9007199254740994}}]}',
    )
    // every robot's call is in the call log, namespaced
    const logged = new Set<string>()
    while (logged.size < 3) logged.add((await s.until((m) => m.topic === CALLS_TOPIC)).msg.service)
    assert.deepEqual([...logged].sort(), ["/robot1/add_two_ints", "/robot2/add_two_ints", "/robot3/add_two_ints"])

    // calls run in parallel: robot2 answers only once robot3's call has started, and robot3 never
    // answers (its row times out); each robot's own error is in its row
    let robot3Started!: () => void
    const started = new Promise<void>((res) => (robot3Started = res))
    f.node("robot2").addService(Trigger, "/hang", async () => {
      await started
      return { success: true, message: "robot2" }
    })
    f.node("robot3").addService(Trigger, "/hang", () => {
      robot3Started()
      return new Promise(() => {})
    })
    f.node("robot1").connectNow()
    await f.fleet.listServices({ timeoutMs: 2000 })
    const hang = await (await post(f.bridge, "/api/group/hang?robots=*&timeout_ms=300", {})).json()
    assert.deepEqual(
      hang.results.map((x: any) => [x.robot, x.ok, x.values?.message ?? x.error.code]),
      [
        ["robot1", false, "unimplemented"],
        ["robot2", true, "robot2"],
        ["robot3", false, "deadline_exceeded"],
      ],
    )
    assert.match(hang.results[0].error.message, /no service \/hang on robot robot1/)

    // comma-separated globs, `?` and an exact name; without ?robots= every robot
    const pick = async (q: string) => ((await (await post(f.bridge, `/api/group/add_two_ints${q}`, {})).json()).results as any[]).map((x) => x.robot)
    assert.deepEqual(await pick("?robots=robot3,robot?"), ["robot1", "robot2", "robot3"])
    assert.deepEqual(await pick("?robots=robot2"), ["robot2"])
    assert.deepEqual(await pick(""), ["robot1", "robot2", "robot3"])
    // a bad request fails as a whole, before any call
    const none = await post(f.bridge, "/api/group/add_two_ints?robots=arm*", {})
    assert.equal(none.status, 503)
    assert.deepEqual(await none.json(), { code: "unavailable", message: "no robot matches arm* (robots: robot1, robot2, robot3)" })
    const badGlob = await post(f.bridge, "/api/group/add_two_ints?robots=robot/1", {})
    const set = await (await post(f.bridge, "/api/group/add_two_ints?robots=robot[13]", { a: 1, b: 1 })).json()
    assert.deepEqual(set.results.map((r: any) => r.robot), ["robot1", "robot3"], "a [set] glob")
    assert.equal(badGlob.status, 400)
    // a request the service's type refuses fails as a whole, before any call: checked once, not in
    // each robot's call (issue 18)
    const badArgs = await post(f.bridge, "/api/group/add_two_ints?robots=robot*", { c: 1 })
    assert.equal(badArgs.status, 400)
    assert.deepEqual(await badArgs.json(), { code: "invalid_argument", message: "c: example_interfaces/srv/AddTwoInts_Request has no field 'c' (fields: a, b)" })
    // ?args_rules=yaml: the CLI's rules (a quoted integer is refused; rosapi's type names); without it, rosbridge's
    const yaml = await post(f.bridge, "/api/group/add_two_ints?robots=robot2&args_rules=yaml", { a: "2" })
    assert.equal(yaml.status, 400)
    assert.deepEqual(await yaml.json(), { code: "invalid_argument", message: "a: expected an integer (int64), got the string '2'; write it without quotes" })
    const unknownRules = await post(f.bridge, "/api/group/add_two_ints?robots=robot2&args_rules=json5", {})
    assert.equal(unknownRules.status, 400)
    assert.match((await unknownRules.json()).message, /args_rules must be "yaml"/)
    assert.deepEqual((await (await post(f.bridge, "/api/group/add_two_ints?robots=robot2", { a: "2" })).json()).results, [{ robot: "robot2", ok: true, values: { sum: 2 } }])
  } finally {
    s.ws.close()
    await f.close()
  }
})

test("group calls follow the HTTP API's rules: token, origin, POST with JSON, body size, calls in flight per client", async () => {
  const f = await startFleet(3, { token: "s3cret", maxInFlightPerClient: 2, maxMessageBytes: 2048 })
  try {
    const auth = { authorization: "Bearer s3cret" }
    assert.equal((await post(f.bridge, "/api/group/add_two_ints", {})).status, 401)
    assert.equal((await post(f.bridge, "/api/group/add_two_ints", {}, { authorization: "Bearer nope" })).status, 401)
    assert.equal((await api(f.bridge, "/api/robots")).status, 401)
    assert.equal((await api(f.bridge, "/api/robots", { headers: auth })).status, 200)
    assert.equal((await post(f.bridge, "/api/group/add_two_ints", {}, { ...auth, origin: "http://evil.example" })).status, 403)
    const get = await api(f.bridge, "/api/group/add_two_ints", { headers: auth })
    assert.equal(get.status, 405)
    assert.equal(get.headers.get("allow"), "POST")
    const form = await fetch(`${f.bridge.url}/api/group/add_two_ints`, { method: "POST", headers: { ...auth, "content-type": "text/plain" }, body: "{}" })
    assert.equal(form.status, 415)
    assert.equal((await post(f.bridge, "/api/group/add_two_ints", { a: "1".repeat(4000) }, auth)).status, 413)
    const malformed = await fetch(`${f.bridge.url}/api/group/add_two_ints`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{a:" })
    assert.equal(malformed.status, 400)

    // each robot's call takes one of the client's in-flight slots: with 2, the third robot's row is refused
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let waiting = 0
    for (const n of ["robot1", "robot2", "robot3"]) {
      f.node(n).addService(Trigger, "/slow", async () => {
        if (++waiting === 2) release()
        await gate
        return { success: true, message: n }
      })
    }
    await f.fleet.listServices({ timeoutMs: 2000 })
    const r = await (await post(f.bridge, "/api/group/slow", {}, auth)).json()
    assert.deepEqual(
      r.results.map((x: any) => (x.ok ? "ok" : x.error.code)),
      ["ok", "ok", "resource_exhausted"],
    )
    assert.match(r.results[2].error.message, /limit 2/)
  } finally {
    await f.close()
  }
})

test("Foxglove with a fleet: namespaced services and per-robot channels (/robot2/camera/compressed, /robot2/robot/state); presence in the serverInfo metadata; services and channels follow the robots", async () => {
  const f = await startFleet(2)
  let polls = 0
  f.node("robot2").addService(GetState, "/get_state", () => ({
    uptime_ms: 2n,
    battery_voltage: 7,
    battery_percentage: 22,
    left_speed: 0,
    right_speed: 0,
    drive_remaining_ms: 0,
    pan_angle: 0,
    led_on: false,
    button_pressed: false,
    free_heap: 1,
    calls_served: ++polls,
    calls_failed: 0,
    last_error: "",
  }))
  const c = await connectFoxglove(f.bridge.wsUrl, 9)
  try {
    const meta = JSON.parse(c.serverInfo.metadata.robots)
    assert.deepEqual(meta.map((r: any) => [r.name, r.online]), [
      ["robot1", true],
      ["robot2", true],
    ])
    assert.equal(c.serverInfo.metadata.robot_state, "connected")
    const topics = c.channels.map((ch) => ch.topic).sort()
    assert.deepEqual(topics, ["/robot1/camera/compressed", "/robot1/robot/state", "/robot2/camera/compressed", "/robot2/robot/state"])
    assert.ok(c.services.has("/robot2/get_state") && c.services.has("/robot1/add_two_ints") && !c.services.has("/robot1/get_state"))
    const sum = await call(c, "/robot2/add_two_ints", "json", json('{"a": 1, "b": 2}'))
    assert.ok(sum.ok && text(sum.data) === '{"sum":3}')

    // pictures go to the calling robot's channel only
    const cam = (robot: string) => c.channels.find((ch) => ch.topic === `/${robot}/camera/compressed`)
    const sub1 = c.client.subscribe(cam("robot1").id)
    const sub2 = c.client.subscribe(cam("robot2").id)
    const got: Record<number, any[]> = { [sub1]: [], [sub2]: [] }
    c.client.on("message", (m) => got[m.subscriptionId]?.push(JSON.parse(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString())))
    const on2 = next(c.client, "message", (m) => m.subscriptionId === sub2)
    const pic2 = await call(c, "/robot2/take_picture", "json", json('{"resolution": 0}'))
    assert.ok(pic2.ok)
    await on2
    // a group call's pictures too
    const on1 = next(c.client, "message", (m) => m.subscriptionId === sub1)
    const h = await post(f.bridge, "/api/group/take_picture?robots=robot1", { resolution: 1 })
    const pic1 = (await h.json()).results[0].values
    await on1
    // one more round trip: a picture published on the wrong channel would have arrived by now
    await call(c, "/robot2/add_two_ints", "json", json("{}"))
    assert.equal(got[sub2]!.length, 1)
    assert.equal(got[sub2]![0].data, JSON.parse(text(pic2.data)).image.data)
    assert.equal(got[sub1]!.length, 1)
    assert.equal(got[sub1]![0].data, pic1.image.data)

    // robot2's state channel: get_state polled while subscribed
    const st = c.channels.find((ch) => ch.topic === "/robot2/robot/state")
    const subS = c.client.subscribe(st.id)
    const s1 = await next(c.client, "message", (m) => m.subscriptionId === subS)
    assert.equal(JSON.parse(Buffer.from(s1.data.buffer, s1.data.byteOffset, s1.data.byteLength).toString()).battery_percentage, 22)
    await next(c.client, "message", (m) => m.subscriptionId === subS)
    c.client.unsubscribe(subS)

    // robot1 goes offline: its services are unadvertised, a serverInfo (same session) says so
    const session = c.serverInfo.sessionId
    const ids1 = [...c.services.values()].filter((s) => s.name.startsWith("/robot1/")).map((s) => s.id).sort()
    const gone = next<number[]>(c.client, "unadvertiseServices")
    const info = next<any>(c.client, "serverInfo")
    // the first `advertise` after that serverInfo (both may arrive in one read: listen synchronously)
    const readvertised = new Promise<any[]>((resolve) => {
      let afterInfo = false
      const onInfo = () => (afterInfo = true)
      const onAdv = (chs: any[]) => {
        if (!afterInfo) return
        c.client.off("serverInfo", onInfo)
        c.client.off("advertise", onAdv)
        resolve(chs)
      }
      c.client.on("serverInfo", onInfo)
      c.client.on("advertise", onAdv)
    })
    f.node("robot1").disconnect()
    assert.deepEqual([...(await gone)].sort(), ids1)
    const off = await info
    assert.equal(off.sessionId, session)
    assert.deepEqual(JSON.parse(off.metadata.robots).map((r: any) => r.online), [false, true])
    // the channels follow the serverInfo again, unchanged (Foxglove rebuilds its types on serverInfo)
    assert.deepEqual(await readvertised, c.channels)
    // back: the same ids
    const back = next<any[]>(c.client, "advertiseServices")
    f.node("robot1").connectNow()
    assert.deepEqual((await back).map((s) => s.id).sort(), ids1)

    // robot2 restarts: its services are told again, the session goes on
    const sessions: string[] = []
    c.client.on("serverInfo", (i) => sessions.push(i.sessionId ?? ""))
    const again = next<any[]>(c.client, "advertiseServices", (l) => l.some((s: any) => s.name.startsWith("/robot2/")))
    f.node("robot2").restart()
    assert.equal((await again).length, 5)
    assert.ok(sessions.every((x) => x === session), sessions.join(" "))

    // a robot joins: its channels and services are advertised; it leaves: both are withdrawn
    const chans = next<any[]>(c.client, "advertise")
    const svcs = next<any[]>(c.client, "advertiseServices", (l) => l.some((s: any) => s.name.startsWith("/robot3/")))
    f.fleet.add("robot3", demoMemoryNode())
    const added = await chans
    assert.deepEqual(added.map((ch) => ch.topic), ["/robot3/camera/compressed", "/robot3/robot/state"])
    assert.equal((await svcs).length, 4)
    const unadv = next<number[]>(c.client, "unadvertise")
    const unsvc = next<number[]>(c.client, "unadvertiseServices")
    await f.fleet.remove("robot3")
    assert.deepEqual([...(await unadv)].sort(), added.map((ch) => ch.id).sort())
    assert.equal((await unsvc).length, 4)
    // it comes back: the same channel ids
    const chans2 = next<any[]>(c.client, "advertise")
    f.fleet.add("robot3", demoMemoryNode())
    assert.deepEqual(await chans2, added)
  } finally {
    c.client.close()
    await f.close()
  }
})

test("regression (fleet service lists): a service a robot adds right after joining is listed, not overwritten by the list asked for when it joined", async () => {
  const fleet = demoFleet(1)
  try {
    const node = fleet.robot("robot1") as MemoryNode
    node.addService(AddTwoInts, "/late", (req) => ({ sum: req.a + req.b }))
    const names = (await fleet.listServices({ timeoutMs: 2000 })).map((s) => s.name)
    // let the list asked for at join time come back
    await new Promise((r) => setImmediate(r))
    assert.ok(fleet.knownServices().some((s) => s.name === "/robot1/late"), names.join(" "))
    assert.ok(fleet.robots()[0]!.services!.some((s) => s.name === "/late"))
  } finally {
    await fleet.close()
  }
})

test("`robot bridge --memory --robots 3` serves a demo fleet: robots listed, group calls work; --robots needs --memory", { timeout: 60000 }, async () => {
  const b = await runningBridge(["bridge", "--memory", "--robots", "3", "--port", "0", "--no-foxglove"])
  const url = b.url
  try {
    const out = b.out()
    assert.match(out, /Bridge for 3 in-memory demo robots/)
    assert.match(out, /Robots: robot1, robot2, robot3/)
    assert.match(out, /robot service call \/robot1\/add_two_ints/)
    assert.match(out, /api\/group\/add_two_ints\?robots=\*/)
    const robots = await (await fetch(`${url}/api/robots`)).json()
    assert.deepEqual(robots.robots.map((r: any) => [r.name, r.online]), [
      ["robot1", true],
      ["robot2", true],
      ["robot3", true],
    ])
    const g = await (await fetch(`${url}/api/group/add_two_ints?robots=*`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a": 2, "b": 3}' })).json()
    assert.deepEqual(g.results.map((x: any) => x.values.sum), [5, 5, 5])
  } finally {
    await b.stop()
  }
  const alone = await runRobot(["bridge", "--robots", "2", "--port", "0"])
  assert.equal(alone.code, 1)
  assert.match(alone.stderr, /--robots <n> goes with --memory/)
  const zero = await runRobot(["bridge", "--memory", "--robots", "0", "--port", "0"])
  assert.equal(zero.code, 1)
  assert.match(zero.stderr, /--robots must be an integer 1-1000, got 0/)
})

test("`robot bridge --max-response-bytes <n>`: the bridge's client takes no response over n bytes from a robot, whatever it announces; the flag is checked before anything starts", { timeout: 60000 }, async () => {
  // The demo robots over MQTT are reached through the host client, as robots are; their pictures
  // are JPEGs of a few KB, their sums 8 bytes.
  const b = await runningBridge(["bridge", "--mqtt", "--broker-port", "0", "--memory", "--robots", "1", "--port", "0", "--no-foxglove", "--max-response-bytes", "600"])
  try {
    const post = async (path: string, body: string) => {
      const r = await fetch(`${b.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body })
      return { status: r.status, body: await r.text() }
    }
    const sum = await post("/api/services/robot1/add_two_ints", '{"a": 2, "b": 3}')
    assert.equal(sum.status, 200, sum.body)
    assert.equal(JSON.parse(sum.body).sum, 5)
    const picture = await post("/api/services/robot1/take_picture", '{"resolution": 1}')
    assert.notEqual(picture.status, 200, picture.body)
    assert.match(picture.body, /resource_exhausted/)
    assert.match(picture.body, /over this host's bound of 600 bytes/)
  } finally {
    await b.stop()
  }
  for (const [args, message] of [
    [["--max-response-bytes", "0"], /--max-response-bytes must be an integer 1-4294967295, got 0/],
    [["--max-response-bytes", "1e3x"], /--max-response-bytes must be an integer 1-4294967295, got 1e3x/],
    [["--memory", "--max-response-bytes", "1000"], /--max-response-bytes bounds what the bridge takes from a robot; --memory alone has none/],
  ] as const) {
    const r = await runRobot(["bridge", "--port", "0", ...args])
    assert.equal(r.code, 1, r.stdout)
    assert.match(r.stderr, message)
    assert.doesNotMatch(r.stdout, /bridge ready/)
  }
})
