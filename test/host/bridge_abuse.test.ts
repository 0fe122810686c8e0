// The bridge under abuse (issue 20): one client tries to freeze the bridge or lock the others out,
// and another client's small calls are timed WHILE it does. Each attack was reproduced first:
//   - a robot-name glob of `*` repeated and a `Z` took seconds per robot name (RegExp backtracking);
//   - 40 POSTs announcing a body that never came held every in-flight slot of 127.0.0.1 (every other
//     local client got 429 for as long as the sockets stayed open);
//   - 100 large pictures from one client (the demo robot encoded them in the bridge's event loop)
//     delayed another client's call by 4.6-12 s;
//   - the same in front of a robot behind the host client (over MQTT): the other client's call
//     waited 4.3 s in the node's queue of calls, behind the pictures.
// The victim is a bare rosbridge client (no roslib in the timing) on the same address, 127.0.0.1.
import { test } from "node:test"
import { afterGc } from "../support/memory"
import { callLoop, max } from "../support/victim"
import assert from "node:assert/strict"
import * as net from "node:net"
import { runScript } from "../support/child"
import { actionTypes, AddTwoInts, Fibonacci, serviceTypes, TakePicture, Trigger } from "../../packages/host/src/gen/interfaces"
import { actionWire } from "../../packages/host/src/runtime/action"
import { GoalStatus } from "../../packages/host/src/client/action"
import { ServiceError } from "../../packages/host/src/client/errors"
import { demoFleet, demoMemoryNode } from "../../packages/host/src/demo/demo"
import type { CallOptions } from "../../packages/host/src/client/api"
import { startBridge } from "../../packages/host/src/bridge/server"
import { MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS } from "../../packages/host/src/bridge/guard"
import { MAX_TOPIC_NAME, MAX_TOPICS_PER_CLIENT } from "../../packages/host/src/bridge/rosbridge"
import { MemoryRobot } from "../../packages/host/src/mqtt/memrobot"
import { openMqttFleet } from "../../packages/host/src/mqtt/fleet"
import { rawClient, rawRosClient, startFixture } from "./bridge_helpers"
import { call as foxgloveCall, connectFoxglove, json } from "./foxglove_helpers"
import WebSocket from "ws"
import { embeddedBroker } from "./mqtt_helpers"

/** Calls `service` back to back (2 ms apart) until `stop()`; the latencies and when each ended. */
function victimLoop(client: Awaited<ReturnType<typeof rawRosClient>>, service: string, args: unknown) {
  return callLoop(() => client.call(service, args))
}


// The machine running the tests is shared and loaded: the bounds are 10-50 x what an idle machine
// shows, and still 10-100 x below what the attacks did before the fixes.
const VICTIM_MAX_MS = 400

test("a hostile robot-name glob answers in milliseconds over 200 robots, and another client's calls are not delayed (issue 20)", { timeout: 120000 }, async () => {
  const fleet = demoFleet(200)
  const bridge = await startBridge({ node: fleet, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes })
  const victim = await rawRosClient(bridge.wsUrl)
  try {
    assert.equal((await victim.call("/robot1/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const v = victimLoop(victim, "/robot1/add_two_ints", { a: 2, b: 3 })
    const hostile = ["*".repeat(63) + "Z", "*a".repeat(32), "*" + "?".repeat(31) + "*Z", "*r*o*b*o*t*1*2*3*4*5*6*7*8*9*0*Z", "*".repeat(40) + "robot" + "*".repeat(18) + "Z"]
    const took: number[] = []
    const timed = async (f: () => Promise<Response>) => {
      const t = performance.now()
      const r = await f()
      took.push(performance.now() - t)
      return r
    }
    const t0 = performance.now()
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => [
        ...hostile.map((g) => timed(() => fetch(`${bridge.url}/api/robots?robots=${encodeURIComponent(g)}`))),
        // several comma-separated globs in one group call
        timed(() =>
          fetch(`${bridge.url}/api/group/add_two_ints?robots=${encodeURIComponent(hostile.join(","))}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{}",
          }),
        ),
      ]).flat(),
    )
    const attackMs = performance.now() - t0
    await v.stop()
    for (const r of answers) {
      const body = await r.json()
      if (r.url.includes("/api/robots")) assert.deepEqual([r.status, body.robots], [200, []], JSON.stringify(body))
      else assert.deepEqual([r.status, body.code], [503, "unavailable"], JSON.stringify(body))
    }
    assert.ok(max(took) < 2000, `the slowest hostile request took ${max(took).toFixed(0)} ms (all ${answers.length} in ${attackMs.toFixed(0)} ms)`)
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0 && v.ends[i]! - v.ms[i]! <= t0 + attackMs)
    assert.deepEqual(v.failures, [])
    assert.ok(max(v.ms) < VICTIM_MAX_MS, `the other client's slowest call took ${max(v.ms).toFixed(1)} ms (${during.length} during the attack)`)
    // a glob that is too long, or too many of them, is refused by name
    const long = await fetch(`${bridge.url}/api/robots?robots=${"*".repeat(65)}`)
    assert.equal(long.status, 400)
    assert.match((await long.json()).message, /1-64/)
    const many = await fetch(`${bridge.url}/api/robots?robots=${Array.from({ length: 9 }, (_, i) => `r${i}`).join(",")}`)
    assert.equal(many.status, 400)
    assert.match((await many.json()).message, /at most 8/)
    // and real globs still match
    const some = await (await fetch(`${bridge.url}/api/robots?robots=robot1?,robot[2-3]`)).json()
    assert.deepEqual(
      some.robots.map((r: { name: string }) => r.name),
      ["robot10", "robot11", "robot12", "robot13", "robot14", "robot15", "robot16", "robot17", "robot18", "robot19", "robot2", "robot3"],
    )
  } finally {
    victim.close()
    await bridge.close()
    await fleet.close()
  }
})

/** A raw HTTP POST that announces a 100-byte body and sends none; resolves its whole answer once the bridge closes it. */
function stalledPost(port: number): { opened: Promise<void>; answer: Promise<{ text: string; closedAt: number }>; isOpen(): boolean } {
  const s = net.connect(port, "127.0.0.1")
  let text = ""
  let open = true
  s.on("data", (d) => (text += d.toString()))
  const opened = new Promise<void>((resolve, reject) => {
    s.once("connect", () => {
      s.write("POST /api/services/add_two_ints HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
      resolve()
    })
    s.once("error", reject)
  })
  const answer = new Promise<{ text: string; closedAt: number }>((resolve) => {
    s.on("error", () => {})
    s.on("close", () => {
      open = false
      resolve({ text, closedAt: performance.now() })
    })
  })
  return { opened, answer, isOpen: () => open }
}

test("stalled request bodies (issue 20): 40 POSTs from 127.0.0.1 that never send their body hold no slot; other clients on 127.0.0.1 are served during the stall; the stalled ones get 408 and are closed", { timeout: 120000 }, async () => {
  const bodyTimeoutMs = 3000
  // the default bound: 32 calls in flight per address, fewer than the 40 stalled POSTs
  const f = await startFixture({ bodyTimeoutMs })
  const victim = await rawRosClient(f.bridge.wsUrl)
  try {
    const stalled = Array.from({ length: 40 }, () => stalledPost(f.bridge.port))
    await Promise.all(stalled.map((s) => s.opened))
    const t0 = performance.now()
    // give the bridge the 40 headers
    await new Promise((r) => setTimeout(r, 200))
    // DURING the stall: HTTP calls (new connections and keep-alive) and WebSocket calls from 127.0.0.1
    const httpMs: number[] = []
    for (let i = 0; i < 10; i++) {
      const t = performance.now()
      const r = await fetch(`${f.bridge.url}/api/services/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"a": ${i}, "b": 1}` })
      httpMs.push(performance.now() - t)
      assert.equal(r.status, 200, await r.clone().text())
      assert.equal((await r.json()).sum, i + 1)
    }
    const wsMs: number[] = []
    for (let i = 0; i < 10; i++) {
      const t = performance.now()
      const r = await victim.call("/add_two_ints", { a: i, b: 2 })
      wsMs.push(performance.now() - t)
      assert.ok(r.result, String(r.values))
      assert.equal(r.values.sum, i + 2)
    }
    const stillStalled = stalled.filter((s) => s.isOpen()).length
    assert.equal(stillStalled, 40, "the victim's calls were made while every stalled POST was still open")
    assert.ok(max(httpMs) < VICTIM_MAX_MS && max(wsMs) < VICTIM_MAX_MS, `victim calls during the stall: HTTP ${max(httpMs).toFixed(1)} ms, WebSocket ${max(wsMs).toFixed(1)} ms at most`)
    // every stalled POST is answered 408 naming the cause, and its connection closed, soon after the timeout
    const answers = await Promise.all(stalled.map((s) => s.answer))
    for (const a of answers) {
      assert.match(a.text, /^HTTP\/1\.1 408 /, a.text)
      assert.match(a.text, /"code":"deadline_exceeded".*did not arrive within 3000 ms/)
      const after = a.closedAt - t0
      assert.ok(after < bodyTimeoutMs + 5000, `a stalled POST was closed ${after.toFixed(0)} ms after it stalled`)
    }
    // headers that never end are closed too (Node's own headers timeout, checked every second)
    const s = net.connect(f.bridge.port, "127.0.0.1")
    s.on("error", () => {})
    let answer = ""
    s.on("data", (d) => (answer += d.toString())) // (read, or the socket never sees its end)
    await new Promise<void>((r) => s.once("connect", () => r()))
    s.write("POST /api/services/add_two_ints HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    const t1 = performance.now()
    await new Promise<void>((r) => s.once("close", () => r()))
    assert.ok(performance.now() - t1 < 2 * bodyTimeoutMs + 5000)
    assert.match(answer, /^HTTP\/1\.1 408 /)
  } finally {
    victim.close()
    await f.close()
  }
})

test("the address's bound is shared fairly (issue 20): one connection holding every slot does not lock out another connection from the same address; many connections still do not raise the bound", { timeout: 60000 }, async () => {
  const f = await startFixture({ maxInFlightPerClient: 4 })
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  f.node.addService(Trigger, "/slow", async () => {
    await gate
    return { success: true, message: "done" }
  })
  const hog = await rawRosClient(f.bridge.wsUrl)
  const other = await rawRosClient(f.bridge.wsUrl)
  try {
    const held = Array.from({ length: 4 }, () => hog.call("/slow", {}))
    // the hog's fifth call is refused: no connection holds more than the bound
    const fifth = await hog.call("/slow", {})
    assert.ok(!fifth.result && /resource_exhausted: too many calls in flight on this connection \(limit 4\)/.test(fifth.values), String(fifth.values))
    // another client on the same address still gets calls through (its fair share: 4 / 2 connections)
    for (let i = 0; i < 5; i++) {
      const r = await other.call("/add_two_ints", { a: i, b: 1 })
      assert.ok(r.result, String(r.values))
    }
    const two = [other.call("/slow", {}), other.call("/slow", {})]
    const third = await other.call("/slow", {})
    assert.ok(!third.result && /from this client address \(limit 4\)/.test(third.values), String(third.values))
    // a third connection's share is 4 / 3 = 1, a fourth's 4 / 4 = 1 ... until the address holds 2 x 4
    const more = await Promise.all(Array.from({ length: 6 }, () => rawRosClient(f.bridge.wsUrl)))
    const outcomes = await Promise.race([
      Promise.all(more.map((c) => Promise.race([c.call("/slow", {}), new Promise<undefined>((r) => setTimeout(r, 500))]))),
      new Promise<never>((_, j) => setTimeout(() => j(new Error("no answer")), 10000)),
    ])
    const refused = outcomes.filter((o) => o && !o.result)
    assert.ok(refused.length >= 4, `${refused.length} of 6 more connections refused once the address held ${4 + 2} calls`)
    assert.ok(f.bridge && refused.every((o) => /from this client address/.test(o!.values)))
    release()
    for (const r of await Promise.all([...held, ...two])) assert.ok(r.result, String(r.values))
    for (const c of more) c.close()
  } finally {
    release()
    hog.close()
    other.close()
    await f.close()
  }
})

test("100 large pictures from one client do not delay another client's small calls (issue 20): the demo camera works off the event loop", { timeout: 180000 }, async () => {
  const f = await startFixture()
  const heavy = await rawRosClient(f.bridge.wsUrl)
  const victim = await rawRosClient(f.bridge.wsUrl)
  try {
    for (let i = 0; i < 20; i++) await victim.call("/add_two_ints", { a: 1, b: i })
    const v = victimLoop(victim, "/add_two_ints", { a: 4, b: 5 })
    const t0 = performance.now()
    // UXGA (1600 x 1200): 150-300 ms of JPEG encoding each
    const pictures = await Promise.all(Array.from({ length: 100 }, () => heavy.call("/take_picture", { resolution: 6, quality: 90 })))
    const t1 = performance.now()
    await v.stop()
    // the victim first: its calls were answered at once, and many of them while pictures were taken
    const during = v.ms.filter((_, i) => v.ends[i]! > t0 && v.ends[i]! < t1)
    assert.deepEqual(v.failures, [])
    assert.ok(during.length >= 20, `${during.length} small calls during ${(t1 - t0).toFixed(0)} ms of pictures`)
    assert.ok(max(during) < VICTIM_MAX_MS, `the other client's slowest call during the pictures took ${max(during).toFixed(1)} ms`)
    const ok = pictures.filter((p) => p.result)
    // the heavy client's own bound (32 on one connection) answers the rest at once; the camera takes
    // one picture at a time, so on a loaded machine the last of the 32 may pass the 10 s call timeout
    const refused = pictures.filter((p) => !p.result && /resource_exhausted: too many calls in flight on this connection/.test(String(p.values)))
    const late = pictures.filter((p) => !p.result && /deadline_exceeded/.test(String(p.values)))
    assert.equal(refused.length, 68)
    assert.equal(ok.length + late.length, 32, pictures.filter((p) => !p.result).map((p) => String(p.values)).join("\n"))
    assert.ok(ok.length >= 10, `${ok.length} pictures taken`)
    assert.equal(ok[0]!.values.width, 1600)
  } finally {
    heavy.close()
    victim.close()
    await f.close()
  }
})

test("100 pictures from one client in front of a robot over MQTT do not hold back other clients' small calls (issue 20): the robot's window of calls is shared between the bridge's clients", { timeout: 120000 }, async () => {
  // Not the demo robot: a robot behind the host client (robot bridge --mqtt), so every call goes
  // through the node's window of calls (16 here), which the bridge's clients share. Its camera
  // takes one picture at a time, 50 ms each, as a camera does: 100 pictures take 5 s or more.
  const broker = await embeddedBroker()
  let camera: Promise<unknown> = Promise.resolve()
  const robot = await MemoryRobot.start({ url: broker.url, name: "cam1" }, (r) => {
    r.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: q.a + q.b }))
    r.addService(TakePicture, "/take_picture", async () => {
      const shot = camera.then(() => new Promise((res) => setTimeout(res, 50)))
      camera = shot
      await shot
      const data = new Uint8Array(30000).fill(0x5a)
      return { image: { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "camera" }, format: "jpeg", data }, width: 320, height: 240 }
    })
  })
  const mqtt = await openMqttFleet({ url: broker.url })
  // the bound per client address (all of them are on 127.0.0.1) raised so that all 100 pictures reach the robot's queue
  const bridge = await startBridge({ node: mqtt.fleet, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes, maxInFlightPerClient: 128 })
  const heavy = await rawRosClient(bridge.wsUrl)
  const victim = await rawRosClient(bridge.wsUrl)
  let fox: Awaited<ReturnType<typeof connectFoxglove>> | undefined
  try {
    const t00 = performance.now()
    while (!(await victim.call("/cam1/add_two_ints", { a: 1, b: 1 })).result) {
      assert.ok(performance.now() - t00 < 10000, "robot cam1 never appeared on the bridge")
      await new Promise((r) => setTimeout(r, 50))
    }
    fox = await connectFoxglove(bridge.wsUrl, 2)
    const foxCall = async () => {
      const r = await foxgloveCall(fox!, "/cam1/add_two_ints", "json", Buffer.from('{"a": 3, "b": 4}'))
      return r.ok ? { result: JSON.parse(Buffer.from(r.data).toString()).sum === 7, values: "" } : { result: false, values: r.message }
    }
    const httpCall = async () => {
      const r = await fetch(`${bridge.url}/api/services/cam1/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a": 5, "b": 6}' })
      const body = await r.text()
      return { result: r.status === 200 && JSON.parse(body).sum === 11, values: `${r.status} ${body}` }
    }
    for (let i = 0; i < 5; i++) for (const f of [foxCall, httpCall]) assert.ok((await f()).result)

    const victims = { rosbridge: victimLoop(victim, "/cam1/add_two_ints", { a: 4, b: 5 }), foxglove: callLoop(foxCall), http: callLoop(httpCall) }
    const t0 = performance.now()
    const answeredAt: number[] = []
    const pictures = await Promise.all(
      Array.from({ length: 100 }, () =>
        heavy.call("/cam1/take_picture", { resolution: 1 }).then((p) => {
          answeredAt.push(performance.now())
          return p
        }),
      ),
    )
    const t1 = performance.now()
    for (const v of Object.values(victims)) await v.stop()
    assert.deepEqual(pictures.filter((p) => !p.result).map((p) => String(p.values)), [])
    // every call answered while client 1 still had pictures to come, and many while it had half of them
    const half = answeredAt.sort((a, b) => a - b)[49]!
    for (const [name, v] of Object.entries(victims)) {
      assert.deepEqual(v.failures, [], name)
      const during = v.ms.filter((_, i) => v.ends[i]! > t0 && v.ends[i]! < t1)
      const early = v.ms.filter((_, i) => v.ends[i]! > t0 && v.ends[i]! < half)
      const first = v.ms[v.ends.findIndex((e) => e > t0)] ?? NaN
      const what = `${name}: ${during.length} calls during ${(t1 - t0).toFixed(0)} ms of pictures (${early.length} before half of them were answered); the first took ${first.toFixed(0)} ms, the slowest ${max(during).toFixed(0)} ms`
      assert.ok(early.length >= 5, what)
      assert.ok(max(during) < VICTIM_MAX_MS, what)
    }
    assert.ok(t1 - t0 > 10 * VICTIM_MAX_MS, `the pictures took ${(t1 - t0).toFixed(0)} ms`)
  } finally {
    fox?.client.close()
    heavy.close()
    victim.close()
    await bridge.close()
    await mqtt.close()
    await robot.close()
    await broker.close()
  }
})

test("every front end names its client as the owner of its calls (issue 20): one owner per rosbridge connection, Foxglove connection and HTTP connection", { timeout: 60000 }, async () => {
  // what the node is asked, per call: the owner the robot's window of calls is shared by
  const node = demoMemoryNode()
  const seen: (object | undefined)[] = []
  const createClient = node.createClient.bind(node)
  node.createClient = ((type, name) => {
    const c = createClient(type, name)
    return {
      ...c,
      call: (req: unknown, o: CallOptions = {}) => {
        seen.push(o.owner)
        return c.call(req as never, o)
      },
    }
  }) as typeof node.createClient
  const f = await startFixture({}, node)
  const ros1 = await rawRosClient(f.bridge.wsUrl)
  const ros2 = await rawRosClient(f.bridge.wsUrl)
  const fox = await connectFoxglove(f.bridge.wsUrl, 1)
  try {
    const owners = async (call: () => Promise<unknown>) => {
      const from = seen.length
      await call()
      await call()
      return seen.slice(from)
    }
    const ok = (r: { result: boolean; values: unknown }) => assert.ok(r.result, String(r.values))
    const r1 = await owners(async () => ok(await ros1.call("/add_two_ints", { a: 1, b: 2 })))
    const r2 = await owners(async () => ok(await ros2.call("/add_two_ints", { a: 1, b: 2 })))
    const fx = await owners(async () => assert.ok((await foxgloveCall(fox, "/add_two_ints", "json", Buffer.from('{"a": 1, "b": 2}'))).ok))
    // `connection: close`: each request on a connection of its own
    const http = await owners(async () => {
      const r = await fetch(`${f.bridge.url}/api/services/add_two_ints`, { method: "POST", headers: { "content-type": "application/json", connection: "close" }, body: '{"a": 1, "b": 2}' })
      assert.equal(r.status, 200, await r.text())
    })
    for (const o of [...r1, ...r2, ...fx, ...http]) assert.equal(typeof o, "object", "a call without an owner")
    assert.ok(r1[0] === r1[1] && r2[0] === r2[1] && fx[0] === fx[1], "one owner per WebSocket connection")
    assert.equal(new Set([r1[0], r2[0], fx[0], http[0], http[1]]).size, 5, "each connection an owner of its own")
  } finally {
    fox.client.close()
    ros1.close()
    ros2.close()
    await f.close()
  }
})

/** The bounds the two "stop reading" tests give the bridge: small, so that the attacks pass them in well under a second. */
const PER_CLIENT = 1024 * 1024
const TOTAL = 4 * 1024 * 1024

/** The demo node with `/big_picture` (a 64 KiB answer at once) behind a bridge with those bounds; `lines` is its log. */
async function bigPictureBridge() {
  const node = demoMemoryNode()
  const jpeg = new Uint8Array(64 * 1024).fill(0x5a)
  node.addService(TakePicture, "/big_picture", () => ({
    image: { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "camera" }, format: "jpeg", data: jpeg },
    width: 1600,
    height: 1200,
  }))
  const lines: string[] = []
  const f = await startFixture({ maxUnsentBytes: PER_CLIENT, maxUnsentTotalBytes: TOTAL, log: (l) => lines.push(l) }, node)
  return { f, lines }
}

test("clients that stop reading (issue 16): 6 rosbridge and 2 Foxglove clients ask for 64 KiB answers and never read them; the bridge holds at most its bound of unsent output in all, drops them, and another client is served during it", { timeout: 120000 }, async () => {
  // the bridge's own sockets (server side), to read what each holds unsent while the attack runs
  const serverSockets = new Set<WebSocket>()
  const send = WebSocket.prototype.send
  WebSocket.prototype.send = function (this: WebSocket, ...args: any[]) {
    if ((this as any)._isServer) serverSockets.add(this)
    return (send as any).apply(this, args)
  } as any
  const { f, lines } = await bigPictureBridge()
  const victim = await rawRosClient(f.bridge.wsUrl)
  const ros = await Promise.all(Array.from({ length: 6 }, () => rawClient(f.bridge.wsUrl)))
  const fox = await Promise.all(Array.from({ length: 2 }, () => connectFoxglove(f.bridge.wsUrl, 1)))
  const unsent = () => [...serverSockets].reduce((n, ws) => n + (ws.readyState === ws.OPEN ? ws.bufferedAmount : 0), 0)
  let peak = 0
  const sampler = setInterval(() => (peak = Math.max(peak, unsent())), 5)
  try {
    assert.equal((await victim.call("/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const v = victimLoop(victim, "/add_two_ints", { a: 2, b: 3 })
    // each attacker stops reading, then asks for 200 answers of 64 KiB (17-38 MiB of JSON), 4 every 5 ms
    // (each answer costs the bridge's event loop 1-5 ms of JSON: larger bursts are a CPU flood, whose
    // turns the victim waits behind, not what this test is about)
    for (const a of ros) (a.ws as any)._socket.pause()
    for (const a of fox) (a.ws as any)._socket.pause()
    const big = fox[0]!.services.get("/big_picture")?.id
    assert.ok(big !== undefined, "the Foxglove front end advertises /big_picture")
    const t0 = performance.now()
    let callId = 1
    const attackers = [
      ...ros.map((a, i) => (k: number) => a.send({ op: "call_service", id: `big${i}.${k}`, service: "/big_picture", args: { resolution: 0, quality: 0 } })),
      ...fox.map((a) => () => a.client.sendServiceCallRequest({ serviceId: big, callId: callId++, encoding: "json", data: json('{"resolution": 0, "quality": 0}') })),
    ]
    for (let k = 0; k < 200; k += 4) {
      for (const attack of attackers) for (let j = 0; j < 4; j++) {
        try {
          attack(k + j)
        } catch {
          // (its socket is gone: the bridge dropped it)
        }
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    // the bridge finishes the answers it was asked for
    const settleEnd = Date.now() + 10000
    while (Date.now() < settleEnd && f.bridge.clientCount() > 1) await new Promise((r) => setTimeout(r, 20))
    const attackMs = performance.now() - t0
    await v.stop()
    clearInterval(sampler)
    peak = Math.max(peak, unsent())
    const dropped = lines.filter((l) => /disconnected: over \d+ bytes unsent/.test(l))
    assert.ok(peak <= TOTAL + PER_CLIENT, `the bridge held ${(peak / 1048576).toFixed(1)} MiB unsent at its peak (bound ${TOTAL / 1048576} MiB in all); log: ${lines.join(" | ").slice(0, 800)}`)
    assert.equal(f.bridge.clientCount(), 1, `only the victim is left connected; log: ${lines.join(" | ").slice(0, 800)}`)
    assert.equal(dropped.length, 8, dropped.join(" | "))
    assert.deepEqual(v.failures, [])
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.ok(during.length >= 10, `the victim made ${during.length} calls during the ${attackMs.toFixed(0)} ms attack`)
    assert.ok(max(v.ms) < VICTIM_MAX_MS, `the other client's slowest call took ${max(v.ms).toFixed(1)} ms (${during.length} during the attack)`)
    assert.equal((await victim.call("/add_two_ints", { a: 5, b: 6 })).values.sum, 11)
  } finally {
    clearInterval(sampler)
    WebSocket.prototype.send = send
    victim.close()
    for (const a of ros) a.close()
    for (const a of fox) a.client.close()
    await f.close()
  }
})

test("HTTP connections that stop reading (issue 16): 4 connections pipeline 400 requests at once for 64 KiB answers each and never read them; the bridge holds at most its bound, drops them, and another client is served during it", { timeout: 120000 }, async () => {
  const { f, lines } = await bigPictureBridge()
  const victim = await rawRosClient(f.bridge.wsUrl)
  // what the process keeps after garbage collection, measured outside the bridge (before the fix the
  // answers queued for these connections stayed: 75-114 MB)
  const body = '{"resolution": 0, "quality": 0}'
  const post = `POST /api/services/big_picture HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  const socks: net.Socket[] = []
  try {
    assert.equal((await victim.call("/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const heap0 = afterGc().heapUsed
    const v = victimLoop(victim, "/add_two_ints", { a: 2, b: 3 })
    const closed: Promise<void>[] = []
    for (let i = 0; i < 4; i++) {
      const s = net.connect(f.bridge.port, "127.0.0.1")
      await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject))
      s.on("error", () => {})
      closed.push(new Promise((resolve) => s.once("close", () => resolve())))
      // it never reads what the bridge answers
      s.pause()
      socks.push(s)
    }
    const t0 = performance.now()
    // 400 pipelined requests per connection at once (about 35 MiB of answers each): the server
    // parses them all from its buffer before any is answered. (Sent a few at a time, Node's server
    // stops reading a connection whose queued answers pass its socket's high-water mark, which
    // bounds that case by itself.)
    for (const s of socks) s.write(post.repeat(400))
    const settleEnd = Date.now() + 10000
    while (Date.now() < settleEnd && lines.filter((l) => /^HTTP client .* disconnected: over/.test(l)).length < 4) await new Promise((r) => setTimeout(r, 20))
    const attackMs = performance.now() - t0
    await v.stop()
    const dropped = lines.filter((l) => /^HTTP client .* disconnected: over \d+ bytes unsent/.test(l))
    assert.equal(dropped.length, 4, `each pipelining connection is dropped; log: ${lines.join(" | ").slice(0, 800)}`)
    // the bridge closed them (a paused socket sees the end only once it reads again)
    for (const s of socks) s.resume()
    await Promise.all(closed)
    const kept = afterGc().heapUsed - heap0
    assert.ok(kept < 16 * 1048576, `the process keeps ${(kept / 1048576).toFixed(1)} MiB more after the attack`)
    assert.ok(f.bridge.unsentBytes() < PER_CLIENT, `${f.bridge.unsentBytes()} bytes still held after the connections were dropped`)
    assert.deepEqual(v.failures, [])
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    // (the attack is one burst: the server parses the 1,600 requests in a few turns of its event loop)
    assert.ok(during.length >= 1, `the victim made ${during.length} calls during the ${attackMs.toFixed(0)} ms attack`)
    assert.ok(max(v.ms) < VICTIM_MAX_MS, `the other client's slowest call took ${max(v.ms).toFixed(1)} ms (${during.length} during the attack)`)
    // and a client that reads is still served over HTTP
    const r = await fetch(`${f.bridge.url}/api/services/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a": 4, "b": 5}' })
    assert.equal((await r.json()).sum, 9)
  } finally {
    for (const s of socks) s.destroy()
    victim.close()
    await f.close()
  }
})

/**
 * An action on the in-memory node whose goals give feedback as fast as they are watched (a new
 * feedback for every watch call, `items` int32s each) until they are cancelled.
 */
function fastFeedbackAction(node: ReturnType<typeof demoMemoryNode>, name: string, items: number) {
  const w = actionWire(Fibonacci)
  const goals = new Map<string, { seq: number; status: number }>()
  const key = (u: Uint8Array) => Buffer.from(u).toString("hex")
  const sequence = Array.from({ length: items }, (_, i) => i * 7919)
  node.addService(w.sendGoal, `${name}/_action/send_goal`, (req) => {
    goals.set(key(req.goal_id.uuid), { seq: 0, status: GoalStatus.executing })
    return { accepted: true, stamp: { sec: 0, nanosec: 0 } }
  })
  node.addService(w.watch, `${name}/_action/watch`, async (req) => {
    const g = goals.get(key(req.goal_id.uuid))
    if (!g) throw new ServiceError("invalid_argument", "no such goal")
    await new Promise((r) => setTimeout(r, 1))
    g.seq = Math.max(g.seq, req.seq) + 1
    return { seq: g.seq, status: g.status, feedback: g.status === GoalStatus.executing ? [{ sequence }] : [] }
  })
  node.addService(w.cancelGoal, `${name}/_action/cancel_goal`, (req) => {
    const g = goals.get(key(req.goal_info.goal_id.uuid))
    if (g) g.status = GoalStatus.canceled
    return { return_code: g ? 0 : 2, goals_canceling: [] }
  })
  node.addService(w.getResult, `${name}/_action/get_result`, (req) => ({ status: goals.get(key(req.goal_id.uuid))?.status ?? GoalStatus.unknown, result: { sequence: [] } }))
}

test("event streams that stop reading (issue 16): 4 HTTP clients follow a goal's server-sent events and never read them; the bridge drops them at its bound, a client that reads keeps its stream, and another client is served during it", { timeout: 120000 }, async () => {
  const node = demoMemoryNode()
  // about 20 KB of JSON per feedback event, one event per watch round trip (about 1 ms)
  fastFeedbackAction(node, "/fast", 2000)
  const lines: string[] = []
  const f = await startFixture({ maxUnsentBytes: PER_CLIENT, maxUnsentTotalBytes: TOTAL, log: (l) => lines.push(l), actionTypes }, node)
  const victim = await rawRosClient(f.bridge.wsUrl)
  const socks: net.Socket[] = []
  const reader = new AbortController()
  try {
    const start = await fetch(`${f.bridge.url}/api/actions/fast`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"order": 5}' })
    const goal = (await start.json()) as { goal_id: string; events: string }
    assert.equal(start.status, 200, JSON.stringify(goal))
    assert.equal((await victim.call("/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const heap0 = afterGc().heapUsed
    const v = victimLoop(victim, "/add_two_ints", { a: 2, b: 3 })
    // a follower that reads: it counts the events it hears
    let heard = 0
    void (async () => {
      const res = await fetch(`${f.bridge.url}${goal.events}`, { signal: reader.signal })
      const dec = new TextDecoder()
      for await (const chunk of res.body as any as AsyncIterable<Uint8Array>) heard += (dec.decode(chunk).match(/^event: feedback$/gm) ?? []).length
    })().catch(() => {})
    const closed: Promise<void>[] = []
    for (let i = 0; i < 4; i++) {
      const s = net.connect(f.bridge.port, "127.0.0.1")
      await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject))
      s.on("error", () => {})
      closed.push(new Promise((resolve) => s.once("close", () => resolve())))
      s.write(`GET ${goal.events} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
      // it never reads the stream
      s.pause()
      socks.push(s)
    }
    const t0 = performance.now()
    // (loopback's socket buffers take some MiB of each stream before the bridge holds any itself)
    const end = Date.now() + 20000
    while (Date.now() < end && lines.filter((l) => /^HTTP client .* disconnected: over/.test(l)).length < 4) await new Promise((r) => setTimeout(r, 20))
    const attackMs = performance.now() - t0
    const heardDuring = heard
    await v.stop()
    const dropped = lines.filter((l) => /^HTTP client .* disconnected: over \d+ bytes unsent/.test(l))
    assert.equal(dropped.length, 4, `each stream that is not read is dropped (after ${attackMs.toFixed(0)} ms); log: ${lines.join(" | ").slice(0, 800)}`)
    for (const s of socks) s.resume()
    await Promise.all(closed)
    const kept = afterGc().heapUsed - heap0
    assert.ok(kept < 16 * 1048576, `the process keeps ${(kept / 1048576).toFixed(1)} MiB more after the attack`)
    assert.ok(f.bridge.unsentBytes() < PER_CLIENT, `${f.bridge.unsentBytes()} bytes still held after the streams were dropped`)
    assert.ok(heardDuring >= 50, `the follower that reads heard ${heardDuring} feedback events during the attack`)
    assert.deepEqual(v.failures, [])
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.ok(during.length >= 10, `the victim made ${during.length} calls during the ${attackMs.toFixed(0)} ms attack`)
    assert.ok(max(v.ms) < VICTIM_MAX_MS, `the other client's slowest call took ${max(v.ms).toFixed(1)} ms`)
  } finally {
    reader.abort()
    for (const s of socks) s.destroy()
    victim.close()
    await f.close()
  }
})

/**
 * A client in a process of its own (its reading costs the test's process nothing): over Foxglove it
 * subscribes `subs` times to the channel of `topic`, over rosbridge to `topics` topics of 200-odd
 * characters; it reads everything, and counts the messages and the refusals of each.
 */
function subscriptionFlood(wsUrl: string, topic: string, subs: number, topics: number) {
  const script = `
    const WebSocket = require("ws")
    const [url, topic, subs, topics] = process.argv.slice(1)
    const n = { got: 0, foxRefusals: [], rosRefused: 0, rosRefusal: "", rosFirstRefusal: undefined }
    const fox = new WebSocket(url, ["foxglove.websocket.v1"])
    fox.on("message", (d, binary) => {
      n.got++
      if (binary) return
      const m = JSON.parse(d.toString())
      if (m.op === "status" && m.level === 2) n.foxRefusals.push(m.message)
      if (m.op !== "advertise") return
      const ch = m.channels.find((c) => c.topic === topic)
      if (!ch) return
      // (in messages of 10,000: one message stays under the bridge's size limit)
      for (let k = 0; k < Number(subs); k += 10000) {
        const subscriptions = Array.from({ length: Math.min(10000, Number(subs) - k) }, (_, i) => ({ id: k + i + 1, channelId: ch.id }))
        fox.send(JSON.stringify({ op: "subscribe", subscriptions }))
      }
      const ros = new WebSocket(url)
      ros.on("message", (d) => {
        n.got++
        const m = JSON.parse(d.toString())
        if (m.op === "status" && m.level === "error") {
          n.rosRefused++
          n.rosRefusal = m.msg
          n.rosFirstRefusal ??= m.msg
        }
      })
      ros.on("open", () => {
        ros.send(JSON.stringify({ op: "subscribe", topic: "/" + "y".repeat(300) + "/_action/status" }))
        for (let i = 0; i < Number(topics); i++) ros.send(JSON.stringify({ op: "subscribe", topic: "/t" + i + "x".repeat(200) + "/_action/status" }))
        ros.send(JSON.stringify({ op: "unsubscribe", topic: "/none" }), () => process.stdout.write("sent\\n"))
      })
    })
    setInterval(() => process.stdout.write(JSON.stringify({ ...n, foxRefusals: n.foxRefusals.length, foxRefusal: n.foxRefusals[0] }) + "\\n"), 200)
  `
  const child = runScript(script, [wsUrl, topic, String(subs), String(topics)])
  const sent = child.line("it sent its subscriptions", (l) => l === "sent").then(() => {})
  const counts = () => {
    const last = child.lines().filter((l) => l.startsWith("{")).pop()
    return (last ? JSON.parse(last) : {}) as { got: number; foxRefusals: number; foxRefusal?: string; rosRefused: number; rosRefusal: string; rosFirstRefusal?: string }
  }
  return { sent, counts, kill: () => child.kill() }
}

test("subscriptions without end (issue 16): one client subscribes 50,000 times to the state channel over Foxglove and to 20,000 rosbridge topics; the bridge refuses past its bounds, sends each message once per channel and client, and another client is served during it", { timeout: 120000 }, async () => {
  const node = demoMemoryNode()
  // a robot state the Foxglove state channel polls (4 times a second) while anyone subscribes
  const getState = serviceTypes["robot_interfaces/srv/GetState"]!
  node.addService(getState, "/get_state", () => getState.response.defaults())
  const f = await startFixture({}, node)
  const victim = await rawRosClient(f.bridge.wsUrl)
  let flood: ReturnType<typeof subscriptionFlood> | undefined
  try {
    assert.equal((await victim.call("/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const heap0 = afterGc().heapUsed
    const v = victimLoop(victim, "/add_two_ints", { a: 2, b: 3 })
    const t0 = performance.now()
    flood = subscriptionFlood(f.bridge.wsUrl, "/robot/state", 50000, 20000)
    await flood.sent
    // the state channel keeps publishing (get_state is polled while anyone subscribes)
    await new Promise((r) => setTimeout(r, 3000))
    const n = flood.counts()
    await v.stop()
    const kept = afterGc().heapUsed - heap0
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.deepEqual(v.failures, [])
    assert.ok(during.length >= 20, `the victim made ${during.length} calls during the attack`)
    // (before the bounds: 513 ms, and a third of the victim's calls, behind 200,000 state messages a second)
    assert.ok(max(during) < VICTIM_MAX_MS, `the other client's slowest call took ${max(during).toFixed(1)} ms (the flooder got ${n.got} messages)`)
    // one subscription per channel and client: the other 49,999 refused, one status per subscribe message
    assert.equal(n.foxRefusals, 5, JSON.stringify(n))
    assert.match(n.foxRefusal ?? "", /^subscribe: \d+ subscriptions? refused: channel \d+ is already subscribed as subscription 1 \(one subscription per channel and client\)$/)
    assert.equal(n.rosFirstRefusal, `subscribe: a topic name of 316 characters (the bridge takes at most ${MAX_TOPIC_NAME})`)
    assert.equal(n.rosRefused, 1 + 20000 - MAX_TOPICS_PER_CLIENT, JSON.stringify(n))
    assert.match(n.rosRefusal, /^subscribe: \/t19999x+\.\.\. refused: this client subscribes to 4096 topics already \(the bridge's bound per connection\); unsubscribe some first$/)
    assert.ok(kept < 16 * 1048576, `the process keeps ${(kept / 1048576).toFixed(1)} MiB more after the subscriptions`)
  } finally {
    flood?.kill()
    victim.close()
    await f.close()
  }
})

/**
 * Opens argv[2] Foxglove WebSockets to argv[1] (from 127.0.0.1, or with argv[3] > 0 from that many
 * addresses 127.0.1.1, 127.0.1.2, ... in turn) and keeps them; prints once each is open or refused:
 * `{ open, refused (503), other, why (the last refusal's body) }`. Run in a process of its own
 * (runScript): its sockets cost the test's process nothing.
 */
const WEBSOCKET_FLOOD = `
  const WebSocket = require("ws")
  const [url, count, addresses] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])]
  const n = { open: 0, refused: 0, other: 0, why: "" }
  let left = count
  for (let i = 0; i < count; i++) {
    const w = new WebSocket(url, ["foxglove.websocket.v1"], addresses > 0 ? { localAddress: "127.0.1." + (1 + (i % addresses)) } : {})
    const done = () => { if (--left === 0) process.stdout.write(JSON.stringify(n) + "\\n") }
    w.on("open", () => { n.open++; done() })
    w.on("unexpected-response", (_req, res) => {
      if (res.statusCode === 503) n.refused++
      else n.other++
      let body = ""
      res.on("data", (d) => (body += d))
      res.on("end", () => { n.why = body; done() })
    })
    w.on("error", () => { n.other++; done() })
  }
`

/**
 * 3,000 Foxglove WebSockets opened at once (WEBSOCKET_FLOOD, from `addresses` addresses, 0: from
 * 127.0.0.1) while a rosbridge client calls: what the flood counted, the connections the bridge
 * held, the victim's calls during it (each checked), and the bridge's log.
 */
async function connectionFlood(addresses: number) {
  const lines: string[] = []
  const f = await startFixture({ log: (l) => lines.push(l) })
  const victim = await rawRosClient(f.bridge.wsUrl)
  const child = runScript(WEBSOCKET_FLOOD, [f.bridge.wsUrl, "3000", String(addresses)])
  try {
    assert.equal((await victim.call("/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const v = victimLoop(victim, "/add_two_ints", { a: 2, b: 3 })
    const t0 = performance.now()
    const out = await child.line("every connection was opened or refused")
    const held = f.bridge.clientCount()
    await v.stop()
    const n = JSON.parse(out) as { open: number; refused: number; other: number; why: string }
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.deepEqual(v.failures, [])
    assert.ok(during.length >= 5, `the victim made ${during.length} calls during the attack`)
    return { n, held, slowest: max(during), lines }
  } finally {
    child.kill()
    victim.close()
    await f.close()
  }
}

test("connections without end (issue 16): one process opens 3,000 Foxglove WebSockets from 127.0.0.1; the bridge keeps at most its bound per address, refuses the rest with 503, and another client is served during it", { timeout: 120000 }, async () => {
  const { n, held, slowest, lines } = await connectionFlood(0)
  // (before the bound: 478 ms with 3,000 connections, 1.6 s with 10,000)
  assert.ok(slowest < VICTIM_MAX_MS, `the other client's slowest call took ${slowest.toFixed(1)} ms (${JSON.stringify(n)})`)
  // the victim's own connection is one of the address's
  assert.deepEqual([n.open, n.refused, n.other], [MAX_CONNECTIONS_PER_ADDRESS - 1, 3000 - MAX_CONNECTIONS_PER_ADDRESS + 1, 0], JSON.stringify(n))
  assert.equal(held, MAX_CONNECTIONS_PER_ADDRESS)
  assert.match(n.why, /^\{"code":"resource_exhausted","message":"too many connections from 127\.0\.0\.1 \(limit 256\)/)
  assert.equal(lines.filter((l) => /^refused connections from 127\.0\.0\.1: over 256 at once/.test(l)).length, 1, lines.join(" | ").slice(0, 600))
})

test("connections without end from many addresses (issue 16): 3,000 Foxglove WebSockets from 100 addresses; the bridge keeps at most MAX_CONNECTIONS in all, refuses the rest with 503, and another client is served during it", { timeout: 120000 }, async () => {
  const { n, held, slowest, lines } = await connectionFlood(100)
  // (before the handshakes took turns (net/turns.ts): 86-464 ms in a quiet run, 416-520 ms in
  // CI's lanes, 571 ms before the bound with all 3,000 held: the bridge finished every handshake
  // read in one turn of its loop, up to 400 ms of them, before the client's next message; after:
  // 28-101 ms)
  assert.ok(slowest < VICTIM_MAX_MS, `the other client's slowest call took ${slowest.toFixed(1)} ms (${JSON.stringify(n)})`)
  // (before the bound: all 3,000 held; 30 from each address is under the per-address bound)
  // the victim's own connection is one of them
  assert.deepEqual([n.open, n.refused, n.other], [MAX_CONNECTIONS - 1, 3000 - MAX_CONNECTIONS + 1, 0], JSON.stringify(n))
  assert.equal(held, MAX_CONNECTIONS)
  assert.match(n.why, new RegExp(`^\\{"code":"resource_exhausted","message":"too many connections \\(limit ${MAX_CONNECTIONS} in all\\)`))
  assert.equal(lines.filter((l) => l.startsWith(`refused connections: over ${MAX_CONNECTIONS} at once in all`)).length, 1, lines.join(" | ").slice(0, 600))
})

test("a burst of messages (issue 16): one client sends 50,000 rosbridge calls of a service that does not exist at once, another 20,000 Foxglove messages; each is answered, and another client is served during it", { timeout: 120000 }, async () => {
  const f = await startFixture()
  const victim = await rawRosClient(f.bridge.wsUrl)
  // (in a process of its own; it reads every answer and says when all have come)
  const script = `
    const WebSocket = require("ws")
    const [url, rosN, foxN] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x))
    const n = { ros: 0, fox: 0 }
    const done = () => n.ros === rosN && n.fox === foxN && process.stdout.write(JSON.stringify(n) + "\\n")
    const ros = new WebSocket(url)
    ros.on("message", (d) => { if (JSON.parse(d.toString()).op === "service_response") n.ros++; done() })
    ros.on("open", () => { for (let i = 0; i < rosN; i++) ros.send(JSON.stringify({ op: "call_service", id: "c" + i, service: "/no_such_service", args: {} })) })
    const fox = new WebSocket(url, ["foxglove.websocket.v1"])
    fox.on("message", (d, binary) => {
      if (binary) return
      const m = JSON.parse(d.toString())
      if (m.op === "serverInfo") for (let i = 0; i < foxN; i++) fox.send(JSON.stringify({ op: "subscribe", subscriptions: [{ id: i, channelId: 1e9 }] }))
      if (m.op === "status") { n.fox++; done() }
    })
  `
  const child = runScript(script, [f.bridge.wsUrl, "50000", "20000"])
  try {
    assert.equal((await victim.call("/add_two_ints", { a: 1, b: 2 })).values.sum, 3)
    const v = victimLoop(victim, "/add_two_ints", { a: 2, b: 3 })
    const t0 = performance.now()
    const out = await child.line("every call and message was answered")
    const attackMs = performance.now() - t0
    await v.stop()
    assert.deepEqual(JSON.parse(out), { ros: 50000, fox: 20000 })
    const during = v.ms.filter((_, i) => v.ends[i]! >= t0)
    assert.deepEqual(v.failures, [])
    assert.ok(during.length >= 20, `the victim made ${during.length} calls during the ${attackMs.toFixed(0)} ms attack`)
    // (before each connection's messages took turns: 414-443 ms, as one read of the flooder's socket
    // was parsed and served in one go)
    assert.ok(max(during) < VICTIM_MAX_MS, `the other client's slowest call took ${max(during).toFixed(1)} ms during the ${attackMs.toFixed(0)} ms attack`)
  } finally {
    child.kill()
    victim.close()
    await f.close()
  }
})
