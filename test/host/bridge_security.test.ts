// Bridge safety and HTTP API: loopback by default, token on every WebSocket and HTTP client,
// Origin checks, bounded message size, HTTP status per error code.
import assert from "node:assert/strict"
import { test } from "node:test"
import WebSocket from "ws"
import { closeRos, connectRos, rosCall, startFixture } from "./bridge_helpers"
import { startBridge } from "../../packages/host/src/bridge/server"
import { demoMemoryNode } from "../../packages/host/src/demo/demo"
import { serviceTypes, Trigger } from "../../packages/host/src/gen/interfaces"

const ATI = "example_interfaces/srv/AddTwoInts"

test("a non-loopback bind without a token refuses to start", async () => {
  const node = demoMemoryNode()
  await assert.rejects(startBridge({ node, host: "0.0.0.0", port: 0, typeRegistry: serviceTypes }), /refusing to listen on 0\.0\.0\.0 without a token.*--token/)
  // with a token it starts (and is closed right away)
  const b = await startBridge({ node, host: "0.0.0.0", port: 0, token: "s3cret", typeRegistry: serviceTypes })
  await b.close()
})

test("the token is required from WebSocket clients (query or auth op) and HTTP clients", async () => {
  const f = await startFixture({ token: "s3cret" })
  try {
    // wrong token in the query: refused at the upgrade
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${f.bridge.wsUrl}/?token=nope`)
      ws.once("unexpected-response", (_q, res) => resolve(res.statusCode ?? 0))
      ws.once("open", () => reject(new Error("opened with a wrong token")))
    })
    assert.equal(status, 401)
    // right token in the query: roslib works
    const ros = await connectRos(`${f.bridge.wsUrl}/?token=s3cret`)
    assert.deepEqual(await rosCall(ros, "/add_two_ints", ATI, { a: 1, b: 2 }), { sum: 3 })
    await closeRos(ros)
    // no token: roslib's authenticate() (the auth op) opens the connection
    const ros2 = await connectRos(f.bridge.wsUrl)
    ros2.authenticate("s3cret", "", "", "", 0, "", 0)
    assert.deepEqual(await rosCall(ros2, "/add_two_ints", ATI, { a: 2, b: 2 }), { sum: 4 })
    await closeRos(ros2)
    // no token and no auth: the first op gets a status error (no service_response) and the socket is closed
    const raw = new WebSocket(f.bridge.wsUrl)
    const got: any[] = []
    raw.on("message", (d) => got.push(JSON.parse(d.toString())))
    await new Promise((r) => raw.once("open", r))
    const closedWith = new Promise<number>((r) => raw.once("close", (code) => r(code)))
    raw.send(JSON.stringify({ op: "call_service", id: "c1", service: "/add_two_ints", args: {} }))
    assert.equal(await closedWith, 1008)
    assert.equal(got.length, 1)
    assert.deepEqual([got[0].op, got[0].level, got[0].id], ["status", "error", "c1"])
    assert.match(got[0].msg, /authenticate first/)
    // HTTP
    const noTok = await fetch(`${f.bridge.url}/api/services`)
    assert.equal(noTok.status, 401)
    const bad = await fetch(`${f.bridge.url}/api/services`, { headers: { authorization: "Bearer nope" } })
    assert.equal(bad.status, 401)
    const ok = await fetch(`${f.bridge.url}/api/services`, { headers: { authorization: "Bearer s3cret" } })
    assert.equal(ok.status, 200)
  } finally {
    await f.close()
  }
})

test("WebSocket Origin: same-origin and no-origin allowed, others refused unless configured", async () => {
  const f = await startFixture({ allowedOrigins: ["http://tools.example"] })
  const open = (origin?: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(f.bridge.wsUrl, origin ? { origin } : {})
      ws.once("open", () => {
        ws.close()
        resolve(101)
      })
      ws.once("unexpected-response", (_q, res) => resolve(res.statusCode ?? 0))
    })
  try {
    assert.equal(await open(), 101)
    assert.equal(await open(f.bridge.url), 101)
    assert.equal(await open("http://tools.example"), 101)
    assert.equal(await open("http://evil.example"), 403)
    const r = await fetch(`${f.bridge.url}/api/services/add_two_ints`, { method: "POST", headers: { origin: "http://evil.example", "content-type": "application/json" }, body: "{}" })
    assert.equal(r.status, 403)
  } finally {
    await f.close()
  }
})

test("an oversized message is refused and the bridge keeps serving others", async () => {
  const f = await startFixture({ maxMessageBytes: 4096 })
  const ros = await connectRos(f.bridge.wsUrl)
  try {
    const big = new WebSocket(f.bridge.wsUrl)
    await new Promise((r) => big.once("open", r))
    const closed = new Promise<number>((r) => big.once("close", (code) => r(code)))
    big.send(JSON.stringify({ op: "call_service", id: "x", service: "/add_two_ints", args: { pad: "x".repeat(10000) } }))
    assert.equal(await closed, 1009)
    assert.deepEqual(await rosCall(ros, "/add_two_ints", ATI, { a: 20, b: 22 }), { sum: 42 })
    const r = await fetch(`${f.bridge.url}/api/services/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ a: "9".repeat(5000) }) })
    assert.equal(r.status, 413)
    assert.equal((await r.json()).code, "resource_exhausted")
  } finally {
    await closeRos(ros)
    await f.close()
  }
})

test("HTTP API: list with definitions, calls, errors with fitting status codes", async () => {
  const f = await startFixture()
  const post = (name: string, body: string, ctype = "application/json") =>
    fetch(`${f.bridge.url}/api/services/${name}`, { method: "POST", headers: { "content-type": ctype }, body })
  try {
    const list = await (await fetch(`${f.bridge.url}/api/services`)).json()
    assert.equal(list.state, "connected")
    const ati = list.services.find((s: any) => s.name === "/add_two_ints")
    assert.equal(ati.type, ATI)
    assert.equal(ati.text, "int64 a\nint64 b\n---\nint64 sum\n")
    assert.deepEqual(ati.request[0].fieldnames, ["a", "b"])
    const r = await post("add_two_ints", '{"a": 9007199254740993, "b": 1}')
    assert.equal(r.status, 200)
    assert.equal(await r.text(), '{"sum":9007199254740994}')
    const pic = await (await post("take_picture", '{"resolution": 0}')).json()
    assert.equal(pic.image.format, "jpeg")
    assert.equal(Buffer.from(pic.image.data, "base64").subarray(0, 2).toString("hex"), "ffd8")
    const cases: [string, string, number, string][] = [
      ["add_two_ints", '{"a": "x"}', 400, "invalid_argument"],
      ["add_two_ints", "{oops", 400, "invalid_argument"],
      ["nope", "{}", 404, "unimplemented"],
      ["fail", "{}", 500, "internal"],
    ]
    for (const [name, body, status, code] of cases) {
      const res = await post(name, body)
      const j = await res.json()
      assert.deepEqual([res.status, j.code], [status, code], `${name} ${body}: ${JSON.stringify(j)}`)
      assert.equal(typeof j.message, "string")
    }
    assert.equal((await post("add_two_ints", "{}", "text/plain")).status, 415)
    f.node.disconnect()
    const down = await post("add_two_ints", "{}")
    assert.deepEqual([down.status, (await down.json()).code], [503, "unavailable"])
    f.node.connectNow()
    const slow = new Promise(() => {})
    f.node.addService(Trigger, "/hang", () => slow)
    const to = await fetch(`${f.bridge.url}/api/services/hang?timeout_ms=50`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
    assert.deepEqual([to.status, (await to.json()).code], [504, "deadline_exceeded"])
  } finally {
    await f.close()
  }
})

test("calls in flight are counted per client address: more HTTP connections or sockets do not raise the bound (issue 9)", async () => {
  const f = await startFixture({ maxInFlightPerClient: 3 })
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let started = 0
  let nowRunning!: () => void
  const three = new Promise<void>((r) => (nowRunning = r))
  f.node.addService(Trigger, "/slow", async () => {
    if (++started === 3) nowRunning()
    await gate
    return { success: true, message: "done" }
  })
  const ros = await connectRos(f.bridge.wsUrl)
  try {
    // three calls from three separate HTTP connections (no keep-alive) take the address's three slots
    const post = (agent: boolean) =>
      fetch(`${f.bridge.url}/api/services/slow`, { method: "POST", headers: { "content-type": "application/json", connection: agent ? "keep-alive" : "close" }, body: "{}" })
    const held = [post(false), post(false), post(false)]
    await three
    // a fourth HTTP connection from the same address is refused ...
    const r = await post(false)
    assert.equal(r.status, 429)
    assert.match((await r.json()).message, /from this client address \(limit 3\)/)
    // ... and so is a call over a WebSocket from that address
    await assert.rejects(rosCall(ros, "/slow", "", {}), /resource_exhausted: .*limit 3/)
    release()
    for (const h of await Promise.all(held)) assert.equal(h.status, 200)
    // the slots are given back: calls go through again
    assert.deepEqual(await rosCall(ros, "/slow", "", {}), { success: true, message: "done" })
  } finally {
    await closeRos(ros)
    await f.close()
  }
})
