// The Foxglove WebSocket front end (issue 9), driven by the FoxgloveClient of @foxglove/ws-protocol
// (a client this project did not write). CDR requests are written and responses read with
// @foxglove/rosmsg2-serialization from the ros2msg schema the bridge advertises, as Foxglove does.
import assert from "node:assert/strict"
import { test } from "node:test"
import { FoxgloveClient } from "@foxglove/ws-protocol"
import { parse as parseRosmsg } from "@foxglove/rosmsg"
import { MessageReader, MessageWriter } from "@foxglove/rosmsg2-serialization"
import WebSocket from "ws"
import { GetState, Trigger } from "../../packages/host/src/gen/interfaces"
import { startFixture, type Fixture } from "./bridge_helpers"
import { call, connectFoxglove, json, next, text, type Conn } from "./foxglove_helpers"

async function withFoxglove(f: Fixture, url: string, wantServices: number, body: (c: Conn) => Promise<void>) {
  const c = await connectFoxglove(url, wantServices)
  try {
    await body(c)
  } finally {
    c.client.close()
    await f.close()
  }
}

test("Foxglove: serverInfo with services, every robot service advertised with cdr (ros2msg) schemas; add_two_ints in json and cdr", async () => {
  const f = await startFixture()
  await withFoxglove(f, f.bridge.wsUrl, 4, async (c) => {
    assert.ok(c.serverInfo.capabilities.includes("services"))
    assert.deepEqual([...c.serverInfo.supportedEncodings].sort(), ["cdr", "json"])
    assert.equal(typeof c.serverInfo.sessionId, "string")
    assert.deepEqual([...c.services.keys()].sort(), ["/add_two_ints", "/fail", "/set_led", "/take_picture"])
    const ati = c.services.get("/add_two_ints")
    assert.equal(ati.type, "example_interfaces/srv/AddTwoInts")
    assert.deepEqual({ ...ati.request, schema: undefined }, { encoding: "cdr", schemaName: "example_interfaces/srv/AddTwoInts_Request", schemaEncoding: "ros2msg", schema: undefined })
    assert.equal(ati.request.schema.trim(), "int64 a\nint64 b")
    assert.equal(ati.response.schema.trim(), "int64 sum")
    const cam = c.channels.find((ch) => ch.topic === "/camera/compressed")
    assert.equal(cam.schemaName, "foxglove.CompressedImage")

    // json: integers beyond 2^53 stay exact both ways
    const r1 = await call(c, "/add_two_ints", "json", json('{"a": 9007199254740993, "b": 1}'))
    assert.ok(r1.ok, JSON.stringify(r1))
    assert.equal(r1.encoding, "json")
    assert.equal(text(r1.data), '{"sum":9007199254740994}')

    // cdr: written from the advertised schema with Foxglove's CDR writer, read back the same way
    const req = new MessageWriter(parseRosmsg(ati.request.schema, { ros2: true })).writeMessage({ a: 2n ** 62n, b: 5n })
    const r2 = await call(c, "/add_two_ints", "cdr", req)
    assert.ok(r2.ok, JSON.stringify(r2))
    assert.equal(r2.encoding, "cdr")
    assert.deepEqual(new MessageReader(parseRosmsg(ati.response.schema, { ros2: true })).readMessage(r2.data), { sum: 2n ** 62n + 5n })
  })
})

test("Foxglove: every failure answers serviceCallFailure with the code and message, timeouts too", async () => {
  const f = await startFixture({ callTimeoutMs: 300 })
  f.node.addService(Trigger, "/hang", () => new Promise(() => {}))
  await withFoxglove(f, f.bridge.wsUrl, 5, async (c) => {
    const fail = await call(c, "/fail", "json", json("{}"))
    assert.deepEqual(fail, { ok: false, message: "internal: the demo handler always fails" })
    const unknownField = await call(c, "/add_two_ints", "json", json('{"c": 1}'))
    assert.ok(!unknownField.ok && /^invalid_argument: c: .*has no field 'c'/.test(unknownField.message), JSON.stringify(unknownField))
    const badJson = await call(c, "/add_two_ints", "json", json("{a: 1"))
    assert.ok(!badJson.ok && /^invalid_argument: malformed JSON/.test(badJson.message))
    const badCdr = await call(c, "/add_two_ints", "cdr", new Uint8Array([0, 1, 0, 0, 1]))
    assert.ok(!badCdr.ok && /^invalid_argument: the CDR request is not a valid example_interfaces\/srv\/AddTwoInts_Request/.test(badCdr.message), JSON.stringify(badCdr))
    const badEnc = await call(c, "/add_two_ints", "protobuf", new Uint8Array())
    assert.ok(!badEnc.ok && /^invalid_argument: encoding 'protobuf' is not supported/.test(badEnc.message))
    const timeout = await call(c, "/hang", "json", json("{}"))
    assert.ok(!timeout.ok && /^deadline_exceeded: /.test(timeout.message), JSON.stringify(timeout))
    // a service id that was never advertised: a raw request, since FoxgloveClient only sends known ones
    const unknownId = await call(c, "/none", "json", json("{}"), 9999)
    assert.ok(!unknownId.ok && /^unimplemented: no service with id 9999/.test(unknownId.message))
    // the connection still works
    const ok = await call(c, "/add_two_ints", "json", json('{"a": 1, "b": 2}'))
    assert.ok(ok.ok && text(ok.data) === '{"sum":3}')
  })
})

test("Foxglove: a picture on /camera/compressed after take_picture, from any front end", async () => {
  const f = await startFixture()
  await withFoxglove(f, f.bridge.wsUrl, 4, async (c) => {
    const cam = c.channels.find((ch) => ch.topic === "/camera/compressed")
    const sub = c.client.subscribe(cam.id)
    // through Foxglove (json)
    const got = next<any>(c.client, "message", (m) => m.subscriptionId === sub)
    const r = await call(c, "/take_picture", "json", json('{"resolution": 0, "quality": 50}'))
    assert.ok(r.ok)
    const m = JSON.parse(text(new Uint8Array((await got).data.buffer, (await got).data.byteOffset, (await got).data.byteLength)))
    assert.equal(m.format, "jpeg")
    assert.equal(m.frame_id, "camera")
    const jpeg = Buffer.from(m.data, "base64")
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8])
    assert.equal(jpeg.toString("base64"), JSON.parse(text(r.data)).image.data)
    assert.equal(typeof m.timestamp.sec, "number")
    // through the HTTP API: the Foxglove client sees it too
    const got2 = next<any>(c.client, "message", (x) => x.subscriptionId === sub)
    const h = await fetch(`${f.bridge.url}/api/services/take_picture`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"resolution": 1}' })
    assert.equal(h.status, 200)
    const m2 = JSON.parse(Buffer.from((await got2).data.buffer, (await got2).data.byteOffset, (await got2).data.byteLength).toString())
    assert.equal(m2.data, (await h.json()).image.data)
  })
})

test("Foxglove: services follow the robot (list change, disconnect, restart with a new sessionId)", async () => {
  const f = await startFixture()
  await withFoxglove(f, f.bridge.wsUrl, 4, async (c) => {
    const first = c.serverInfo.sessionId
    const added = next<any[]>(c.client, "advertiseServices")
    f.node.addService(Trigger, "/ping", () => ({ success: true, message: "pong" }))
    assert.deepEqual((await added).map((s) => s.name), ["/ping"])
    const removed = next<number[]>(c.client, "unadvertiseServices")
    const pingId = c.services.get("/ping").id
    f.node.removeService("/ping")
    assert.deepEqual(await removed, [pingId])
    // disconnect: everything unadvertised; back: advertised again with the same ids
    const gone = next<number[]>(c.client, "unadvertiseServices")
    const ids = [...c.services.values()].map((s) => s.id).sort()
    f.node.disconnect()
    assert.deepEqual([...(await gone)].sort(), ids)
    const back = next<any[]>(c.client, "advertiseServices")
    f.node.connectNow()
    assert.deepEqual((await back).map((s) => s.id).sort(), ids)
    // restart: a new serverInfo with another sessionId, then the services again
    const info = next<any>(c.client, "serverInfo")
    const again = next<any[]>(c.client, "advertiseServices")
    f.node.restart()
    assert.notEqual((await info).sessionId, first)
    assert.equal((await again).length, 4)
  })
})

test("Foxglove: robot state on a channel (get_state polled while subscribed), float32 values", async () => {
  const f = await startFixture()
  let polls = 0
  f.node.addService(GetState, "/get_state", () => {
    polls++
    return {
      uptime_ms: 12345678901234n,
      battery_voltage: 7.4,
      battery_percentage: 80,
      left_speed: 0.5,
      right_speed: -0.5,
      drive_remaining_ms: 100,
      pan_angle: 30,
      led_on: true,
      button_pressed: false,
      free_heap: 1000,
      calls_served: polls,
      calls_failed: 0,
      last_error: "",
    }
  })
  await withFoxglove(f, f.bridge.wsUrl, 5, async (c) => {
    const ch = c.channels.find((x) => x.topic === "/robot/state")
    assert.equal(ch.schemaName, "robot_interfaces/srv/GetState_Response")
    assert.equal(JSON.parse(ch.schema).properties.battery_voltage.type[0], "number")
    assert.equal(polls, 0, "nobody subscribed: no polling")
    const sub = c.client.subscribe(ch.id)
    const seen: any[] = []
    await new Promise<void>((resolve) => {
      c.client.on("message", (m) => {
        if (m.subscriptionId !== sub) return
        seen.push(JSON.parse(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString()))
        if (seen.length === 2) resolve()
      })
    })
    assert.equal(seen[0].uptime_ms, 12345678901234)
    assert.equal(seen[0].led_on, true)
    assert.ok(Math.abs(seen[0].battery_voltage - 7.4) < 1e-6)
    assert.ok(seen[1].calls_served > seen[0].calls_served)
  })
})

test("Foxglove: a port of its own (Foxglove's 8765 in the CLI), with the bridge's token and origin rules", async () => {
  const f = await startFixture({ foxglovePort: 0, token: "s3cret" })
  try {
    assert.match(f.bridge.foxgloveUrl ?? "", /^ws:\/\/127\.0\.0\.1:\d+$/)
    const refused = (url: string, protocols: string[], headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, protocols, { headers })
        ws.once("unexpected-response", (_q, res) => resolve(res.statusCode ?? 0))
        ws.once("open", () => reject(new Error(`opened ${url}`)))
      })
    // no token (Foxglove has no auth message): refused; a wrong one too; a foreign Origin too
    assert.equal(await refused(f.bridge.foxgloveUrl!, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]), 401)
    assert.equal(await refused(`${f.bridge.foxgloveUrl}/?token=nope`, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]), 401)
    assert.equal(await refused(`${f.bridge.foxgloveUrl}/?token=s3cret`, [FoxgloveClient.SUPPORTED_SUBPROTOCOL], { origin: "http://evil.example" }), 403)
    // a rosbridge client on the Foxglove port is told what the port is for
    assert.equal(await refused(`${f.bridge.foxgloveUrl}/?token=s3cret`, []), 400)
    const c = await connectFoxglove(`${f.bridge.foxgloveUrl}/?token=s3cret`, 4)
    try {
      const r = await call(c, "/add_two_ints", "json", json('{"a": 40, "b": 2}'))
      assert.ok(r.ok && text(r.data) === '{"sum":42}')
    } finally {
      c.client.close()
    }
  } finally {
    await f.close()
  }
})

test("Foxglove: services advertised in json (JSON Schema) when asked; cdr calls still accepted", async () => {
  const f = await startFixture({ foxgloveEncoding: "json" })
  await withFoxglove(f, f.bridge.wsUrl, 4, async (c) => {
    const pic = c.services.get("/take_picture")
    assert.equal(pic.request.encoding, "json")
    assert.equal(pic.request.schemaEncoding, "jsonschema")
    const schema = JSON.parse(pic.response.schema)
    assert.equal(schema.properties.image.properties.data.contentEncoding, "base64")
    assert.deepEqual(schema.properties.width, { type: "integer", minimum: 0, maximum: 65535 })
    const ati = JSON.parse(c.services.get("/add_two_ints").request.schema)
    assert.equal(ati.additionalProperties, false)
    assert.deepEqual(Object.keys(ati.properties), ["a", "b"])
    const r = await call(c, "/add_two_ints", "json", json('{"a": "-9223372036854775808", "b": 0}'))
    assert.ok(r.ok && text(r.data) === '{"sum":-9223372036854775808}')
  })
})
