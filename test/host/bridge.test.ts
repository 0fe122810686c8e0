// rosbridge v2 protocol tests: real roslib (npm `roslib` 2.x, with `ws`) against the bridge in
// front of the in-memory demo node (packages/host/src/demo/demo.ts).
import assert from "node:assert/strict"
import { test } from "node:test"
import WebSocket from "ws"
import * as jpeg from "jpeg-js"
import { closeRos, connectRos, inOrder, loadRoslib, rosCall, rosGet, startFixture } from "./bridge_helpers"
import { CALLS_TOPIC, STATE_TOPIC } from "../../packages/host/src/bridge/server"
import { Trigger } from "../../packages/host/src/gen/interfaces"

const ATI = "example_interfaces/srv/AddTwoInts"

test("rosapi discovery answers as rosapi does", async () => {
  const f = await startFixture()
  const ros = await connectRos(f.bridge.wsUrl)
  try {
    const services = await rosGet<string[]>((ok, fail) => ros.getServices(ok, fail))
    for (const s of ["/add_two_ints", "/take_picture", "/fail", "/rosapi/services", "/rosapi/service_type"]) assert.ok(services.includes(s), s)
    assert.equal(await rosGet((ok, fail) => ros.getServiceType("/add_two_ints", ok, fail)), ATI)
    assert.equal(await rosGet((ok, fail) => ros.getServiceType("/nope", ok, fail)), "")
    assert.deepEqual(await rosGet((ok, fail) => ros.getServicesForType(ATI, ok, fail)), ["/add_two_ints"])
    const req = await rosGet<any>((ok, fail) => ros.getServiceRequestDetails(ATI, ok, fail))
    assert.deepEqual(req.typedefs, [
      { type: "example_interfaces/AddTwoInts_Request", fieldnames: ["a", "b"], fieldtypes: ["int64", "int64"], fieldarraylen: [-1, -1], examples: ["0", "0"], constnames: [], constvalues: [] },
    ])
    const res = await rosGet<any>((ok, fail) => ros.getServiceResponseDetails("robot_interfaces/srv/TakePicture", ok, fail))
    assert.deepEqual(res.typedefs.map((t: any) => t.type), ["robot_interfaces/TakePicture_Response", "sensor_msgs/CompressedImage", "std_msgs/Header", "builtin_interfaces/Time"])
    const img = res.typedefs[1]
    assert.deepEqual(img.fieldnames, ["header", "format", "data"])
    assert.deepEqual(img.fieldtypes, ["std_msgs/Header", "string", "uint8"])
    assert.deepEqual(img.fieldarraylen, [-1, -1, 0])
    const treq = await rosGet<any>((ok, fail) => ros.getServiceRequestDetails("robot_interfaces/TakePicture", ok, fail))
    assert.ok(treq.typedefs[0].constnames.includes("RES_QVGA"))
    assert.equal(treq.typedefs[0].constvalues[treq.typedefs[0].constnames.indexOf("RES_QVGA")], "1")
  } finally {
    await closeRos(ros)
    await f.close()
  }
})

test("calls: values, int64 exact both ways, defaults, errors as result:false", async () => {
  const f = await startFixture()
  const ros = await connectRos(f.bridge.wsUrl)
  try {
    assert.deepEqual(await rosCall(ros, "/add_two_ints", ATI, { a: 2, b: 40 }), { sum: 42 })
    // a missing field is its default (0)
    assert.deepEqual(await rosCall(ros, "add_two_ints", ATI, { a: 7 }), { sum: 7 })
    // args as a list, in field order (rosbridge accepts both)
    assert.deepEqual(await rosCall(ros, "/add_two_ints", ATI, [3, 4]), { sum: 7 })
    // int64 beyond 2^53: the raw JSON text carries every digit
    const raw = await rawCall(f.bridge.wsUrl, '{"op":"call_service","id":"big","service":"/add_two_ints","args":{"a":9223372036854775807,"b":-1}}')
    assert.match(raw, /"values":\{"sum":9223372036854775806\}/)
    const raw2 = await rawCall(f.bridge.wsUrl, '{"op":"call_service","id":"b2","service":"/add_two_ints","args":{"a":9007199254740993,"b":0}}')
    assert.match(raw2, /"values":\{"sum":9007199254740993\}/)
    await assert.rejects(rosCall(ros, "/add_two_ints", ATI, { a: 1.5 }), /invalid_argument: .*a/)
    await assert.rejects(rosCall(ros, "/add_two_ints", ATI, { a: 1, c: 2 }), /invalid_argument: .*no field 'c'/)
    await assert.rejects(rosCall(ros, "/nope", ATI, {}), /unimplemented: no service \/nope/)
    await assert.rejects(rosCall(ros, "/fail", "std_srvs/srv/Trigger", {}), /internal: the demo handler always fails/)
    await assert.rejects(rosCall(ros, "/take_picture", "", { resolution: 9 }), /invalid_argument: resolution 9/)
  } finally {
    await closeRos(ros)
    await f.close()
  }
})

test("a picture: uint8[] as base64, a real JPEG; fragments and cbor decoded by roslib", async () => {
  const f = await startFixture()
  const ros = await connectRos(f.bridge.wsUrl)
  try {
    const v = await rosCall(ros, "/take_picture", "robot_interfaces/srv/TakePicture", { resolution: 1, quality: 70 })
    assert.equal(v.image.format, "jpeg")
    assert.equal(typeof v.image.data, "string")
    const bytes = Buffer.from(v.image.data, "base64")
    const img = jpeg.decode(bytes)
    assert.deepEqual([img.width, img.height, v.width, v.height], [320, 240, 320, 240])

    // fragment_size: roslib reassembles the fragments; count them on a raw socket too
    const frag = await roslibRaw(ros, { op: "call_service", id: "frag1", service: "/take_picture", args: { resolution: 0 }, fragment_size: 1000 })
    assert.equal(frag.result, true)
    assert.ok(jpeg.decode(Buffer.from(frag.values.image.data, "base64")).width === 160)
    const frames = await rawFrames(f.bridge.wsUrl, { op: "call_service", id: "frag2", service: "/take_picture", args: { resolution: 0 }, fragment_size: 1000 })
    assert.ok(frames.length > 2, `${frames.length} fragments`)
    assert.ok(frames.every((m: any, i: number) => m.op === "fragment" && m.num === i && m.total === frames.length && m.id === "frag2"))

    // cbor: a binary message roslib decodes; uint8[] arrives as bytes, int64 as an exact integer
    const c = await roslibRaw(ros, { op: "call_service", id: "cb1", service: "/take_picture", args: { resolution: 0 }, compression: "cbor" })
    assert.equal(c.result, true)
    assert.ok(c.values.image.data instanceof Uint8Array)
    assert.equal(jpeg.decode(Buffer.from(c.values.image.data)).width, 160)
    const c2 = await roslibRaw(ros, { op: "call_service", id: "cb2", service: "/add_two_ints", args: { a: 2 ** 53, b: 1 }, compression: "cbor" })
    assert.equal(BigInt(c2.values.sum), 2n ** 53n + 1n)
  } finally {
    await closeRos(ros)
    await f.close()
  }
})

test("several clients at once, none misrouted", async () => {
  const f = await startFixture()
  const clients = await Promise.all([0, 1, 2, 3].map(() => connectRos(f.bridge.wsUrl)))
  try {
    const results = await Promise.all(
      clients.flatMap((ros, ci) => Array.from({ length: 16 }, (_, i) => rosCall(ros, "/add_two_ints", ATI, { a: ci * 1000, b: i }).then((v) => [ci * 1000 + i, v.sum]))),
    )
    assert.equal(results.length, 64) // 16 per client: the default in-flight bound (32) is not reached
    for (const [want, got] of results) assert.equal(got, want)
  } finally {
    await Promise.all(clients.map(closeRos))
    await f.close()
  }
})

test("bad input gets a status reply and the connection survives", async () => {
  const f = await startFixture()
  const ws = new WebSocket(f.bridge.wsUrl)
  const next = inOrder(ws)
  try {
    await new Promise((r) => ws.once("open", r))
    ws.send("{not json")
    assert.deepEqual([(await next()).op, 0], ["status", 0])
    ws.send(JSON.stringify({ op: "frobnicate", id: "x1" }))
    const s = await next()
    assert.equal(s.level, "error")
    assert.equal(s.id, "x1")
    assert.match(s.msg, /unknown op 'frobnicate'/)
    ws.send(JSON.stringify([1, 2]))
    assert.match((await next()).msg, /JSON object with a string 'op'/)
    ws.send(JSON.stringify({ op: "call_service", id: 5 }))
    assert.match((await next()).msg, /'service' must be/)
    ws.send(JSON.stringify({ op: "publish", topic: "/x", msg: {} }))
    assert.match((await next()).msg, /not supported/)
    ws.send(JSON.stringify({ op: "call_service", id: "ok", service: "/add_two_ints", args: { a: 1, b: 1 } }))
    assert.deepEqual(await next(), { op: "service_response", service: "/add_two_ints", values: { sum: 2 }, result: true, id: "ok" })
    // extension (issue 18): expect_type calls only a service of that type; the answer names the type
    ws.send(JSON.stringify({ op: "call_service", id: "t1", service: "/add_two_ints", args: { a: 1, b: 2 }, expect_type: "example_interfaces/AddTwoInts" }))
    assert.deepEqual(await next(), { op: "service_response", service: "/add_two_ints", values: { sum: 3 }, result: true, id: "t1", type: "example_interfaces/srv/AddTwoInts" })
    ws.send(JSON.stringify({ op: "call_service", id: "t2", service: "/add_two_ints", args: {}, expect_type: "std_srvs/srv/Trigger" }))
    assert.deepEqual(await next(), {
      op: "service_response",
      service: "/add_two_ints",
      values: "type_mismatch: /add_two_ints is example_interfaces/srv/AddTwoInts, not std_srvs/srv/Trigger",
      result: false,
      id: "t2",
      type: "example_interfaces/srv/AddTwoInts",
    })
    ws.send(JSON.stringify({ op: "call_service", id: "t3", service: "/nope", expect_type: "std_srvs/srv/Trigger" }))
    const nope = await next()
    assert.equal(nope.result, false)
    assert.equal(nope.type, undefined)
    ws.send(JSON.stringify({ op: "call_service", id: "t4", service: "/add_two_ints", expect_type: 3 }))
    assert.match((await next()).msg, /'expect_type' must be a service type/)
  } finally {
    ws.close()
    await f.close()
  }
})

test("call_service for the CLI (issue 18): args_rules 'yaml' reads args by the YAML rules; with progress, 0 of 0 once the request passed the checks; /rosapi/services names the types", async () => {
  const f = await startFixture()
  const ws = new WebSocket(f.bridge.wsUrl)
  const next = inOrder(ws)
  const call = (id: string, extra: object) => ws.send(JSON.stringify({ op: "call_service", id, service: "/add_two_ints", ...extra }))
  try {
    await new Promise((r) => ws.once("open", r))
    // rosbridge's rules, for every client that asks for none: an int64 may come as a string of digits
    call("r1", { args: { a: "2", b: 1 } })
    assert.deepEqual(await next(), { op: "service_response", service: "/add_two_ints", values: { sum: 3 }, result: true, id: "r1" })
    // the CLI's: its YAML keeps integers exact, so a quoted one is a mistake; types named as rosapi names them
    call("y1", { args: { a: "2", b: 1 }, args_rules: "yaml" })
    assert.deepEqual(await next(), {
      op: "service_response",
      service: "/add_two_ints",
      values: "invalid_argument: a: expected an integer (int64), got the string '2'; write it without quotes",
      result: false,
      id: "y1",
    })
    call("y2", { args: { a: 1, c: 2 }, args_rules: "yaml" })
    assert.equal((await next()).values, "invalid_argument: c: example_interfaces/AddTwoInts_Request has no field 'c' (fields: a, b)")
    call("y3", { args: { a: 1 }, args_rules: "json5" })
    const bad = await next()
    assert.deepEqual([bad.op, bad.level, bad.id], ["status", "error", "y3"])
    assert.match(bad.msg, /call_service: 'args_rules' must be "yaml"/)
    // progress: a refused request gets none; an accepted one gets 0 of 0 first, once it passed the checks
    call("p1", { args: { c: 1 }, args_rules: "yaml", progress: true })
    const refused = await next()
    assert.deepEqual([refused.op, refused.result], ["service_response", false])
    call("p2", { args: { a: 1, b: 2 }, args_rules: "yaml", progress: true })
    assert.deepEqual(await next(), { op: "service_progress", id: "p2", service: "/add_two_ints", received: 0, total: 0 })
    let m = await next()
    while (m.op === "service_progress") m = await next()
    assert.deepEqual(m, { op: "service_response", service: "/add_two_ints", values: { sum: 3 }, result: true, id: "p2" })
    // each service's type beside its name, as /rosapi/topics gives topics' (one round trip for `robot service list -t`)
    ws.send(JSON.stringify({ op: "call_service", id: "s1", service: "/rosapi/services", args: {} }))
    const listed = (await next()).values
    assert.equal(listed.types.length, listed.services.length)
    assert.equal(listed.types[listed.services.indexOf("/add_two_ints")], ATI)
    assert.equal(listed.types[listed.services.indexOf("/rosapi/services")], "rosapi_msgs/srv/Services")
  } finally {
    ws.close()
    await f.close()
  }
})

test("calls in flight per client are bounded", async () => {
  const f = await startFixture({ maxInFlightPerClient: 2 })
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  f.node.addService(Trigger, "/slow", async () => {
    await gate
    return { success: true, message: "done" }
  })
  const ros = await connectRos(f.bridge.wsUrl)
  try {
    const a = rosCall(ros, "/slow", "", {})
    const b = rosCall(ros, "/slow", "", {})
    await assert.rejects(rosCall(ros, "/slow", "", {}), /resource_exhausted: .*limit 2/)
    release()
    assert.deepEqual(await Promise.all([a, b]), [{ success: true, message: "done" }, { success: true, message: "done" }])
  } finally {
    await closeRos(ros)
    await f.close()
  }
})

test("robot state and a call log are published on the bridge topics; a restart fails pending calls", async () => {
  const f = await startFixture()
  const ros = await connectRos(f.bridge.wsUrl)
  f.node.addService(Trigger, "/hang", () => new Promise(() => {}))
  try {
    const R = await loadRoslib()
    const states: any[] = []
    const calls: any[] = []
    const st = new R.Topic({ ros, name: STATE_TOPIC, messageType: "" })
    st.subscribe((m: any) => states.push(m))
    const cl = new R.Topic({ ros, name: CALLS_TOPIC, messageType: "" })
    cl.subscribe((m: any) => calls.push(m))
    await waitFor(() => states.length >= 1)
    assert.equal(states[0].state, "connected")
    await rosCall(ros, "/add_two_ints", ATI, { a: 1, b: 1 })
    await assert.rejects(rosCall(ros, "/fail", "", {}), /internal/)
    await waitFor(() => calls.length >= 2)
    assert.equal(calls[0].service, "/add_two_ints")
    assert.equal(calls[0].ok, true)
    assert.equal(typeof calls[0].ms, "number")
    assert.deepEqual([calls[1].ok, calls[1].code], [false, "internal"])
    const pending = rosCall(ros, "/hang", "", {})
    await waitFor(() => f.node["pending"].size === 1)
    f.node.restart()
    await assert.rejects(pending, /unavailable: device restarted/)
    await waitFor(() => states.some((s) => s.restarted))
    f.node.disconnect()
    await waitFor(() => states.at(-1).state === "disconnected")
    await assert.rejects(rosCall(ros, "/add_two_ints", ATI, {}), /unavailable/)
    f.node.connectNow()
    await waitFor(() => states.at(-1).state === "connected")
    assert.deepEqual(await rosCall(ros, "/add_two_ints", ATI, { a: 5 }), { sum: 5 })
  } finally {
    await closeRos(ros)
    await f.close()
  }
})

/** Sends one raw message through roslib's connection and resolves with the message roslib decodes for its id. */
function roslibRaw(ros: any, msg: { id: string } & Record<string, unknown>): Promise<any> {
  return new Promise((resolve) => {
    ros.once(msg.id, resolve)
    ros.callOnConnection(msg)
  })
}

async function rawCall(url: string, text: string): Promise<string> {
  const ws = new WebSocket(url)
  await new Promise((r) => ws.once("open", r))
  const got = new Promise<string>((r) => ws.once("message", (d) => r(d.toString())))
  ws.send(text)
  const out = await got
  ws.close()
  return out
}

async function rawFrames(url: string, msg: object): Promise<any[]> {
  const ws = new WebSocket(url)
  await new Promise((r) => ws.once("open", r))
  const frames: any[] = []
  const done = new Promise<void>((r) =>
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString())
      frames.push(m)
      if (m.op !== "fragment" || m.num === m.total - 1) r()
    }),
  )
  ws.send(JSON.stringify(msg))
  await done
  ws.close()
  return frames
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 5))
  }
}
