// Service introspection (REP-2012, `robot bridge --introspect`, `robot service echo`): the bridge in
// front of the in-memory demo node (no VM). A bare WebSocket subscriber sees REQUEST_SENT then
// RESPONSE_RECEIVED for calls other clients make (rosbridge, roslib, HTTP), with the request, the
// response, a gid per client and a sequence number per client; without --introspect nothing is
// made and the topic is refused; the CLI verb as a process, Ctrl+C included. No fixed sleeps: each
// wait is on a message or a line, with a deadline.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { describe, test } from "node:test"
import { CallPipeline, REQUEST_SENT, RESPONSE_RECEIVED, type ServiceEvent } from "../../packages/host/src/calls/pipeline"
import { demoMemoryNode } from "../../packages/host/src/demo/demo"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"
import { formatEvent } from "../../packages/host/src/cli/echo"
import { closeRos, connectRos, rawClient, rawRosClient, ROOT, rosCall, runRobot, startFixture } from "./bridge_helpers"
import { call as foxCall, connectFoxglove, json, text } from "./foxglove_helpers"

const TOPIC = "/add_two_ints/_service_event"
const EVENT_TYPE = "example_interfaces/srv/AddTwoInts_Event"

/** A bare rosbridge client (bridge_helpers.ts) with `call` and `events`: `k` service events of TOPIC. */
async function eventClient(url: string) {
  const c = await rawClient(url)
  let n = 0
  return {
    ...c,
    /** A call on this connection, answered: the bridge has handled everything sent before it. */
    async call(service: string, args: unknown = {}): Promise<any> {
      const id = `c${n++}`
      c.send({ op: "call_service", id, service, args })
      return c.next((m) => m.op === "service_response" && m.id === id, `answer to ${service}`, 5000)
    },
    events: (k: number) => Promise.all(Array.from({ length: k }, () => c.next((m) => m.op === "publish" && m.topic === TOPIC, "service event", 5000))),
  }
}

describe("service introspection (robot bridge --introspect)", () => {
  test("a subscriber sees REQUEST_SENT then RESPONSE_RECEIVED of other clients' calls, with gid and sequence numbers", async () => {
    const f = await startFixture({ introspect: true })
    const sub = await eventClient(f.bridge.wsUrl)
    const ros = await connectRos(f.bridge.wsUrl)
    const raw = await rawRosClient(f.bridge.wsUrl)
    try {
      sub.send({ op: "subscribe", id: "s", topic: TOPIC })
      await sub.call("/rosapi/get_time")
      assert.deepEqual(await rosCall(ros, "/add_two_ints", "example_interfaces/srv/AddTwoInts", { a: 2, b: 3 }), { sum: 5 })
      assert.deepEqual(await rosCall(ros, "/add_two_ints", "example_interfaces/srv/AddTwoInts", { a: 10, b: -4 }), { sum: 6 })
      const ev = (await sub.events(4)).map((m) => m.msg)
      assert.deepEqual(
        ev.map((e) => [e.info.event_type, e.info.sequence_number, e.request, e.response]),
        [
          [REQUEST_SENT, 1, [{ a: 2, b: 3 }], []],
          [RESPONSE_RECEIVED, 1, [], [{ sum: 5 }]],
          [REQUEST_SENT, 2, [{ a: 10, b: -4 }], []],
          [RESPONSE_RECEIVED, 2, [], [{ sum: 6 }]],
        ],
      )
      const gid = ev[0].info.client_gid
      assert.equal(gid.length, 16)
      for (const e of ev) assert.deepEqual(e.info.client_gid, gid, "one roslib connection, one gid")
      const now = Date.now() / 1000
      for (const e of ev) assert.ok(Math.abs(e.info.stamp.sec - now) < 10 && e.info.stamp.nanosec >= 0 && e.info.stamp.nanosec < 1e9)

      // another client: its own gid, its own count from 1; and a failed request makes no event
      assert.equal((await raw.call("/add_two_ints", { a: "x" })).result, false)
      assert.equal((await raw.call("/add_two_ints", [1, 1])).result, true)
      const other = (await sub.events(2)).map((m) => m.msg)
      assert.deepEqual(other.map((e) => [e.info.event_type, e.info.sequence_number]), [[0, 1], [3, 1]])
      assert.notDeepEqual(other[0].info.client_gid, gid)

      // HTTP goes through the same pipeline
      const res = await fetch(`${f.bridge.url}/api/services/add_two_ints`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a": 1, "b": 2}' })
      assert.equal(res.status, 200)
      const http = (await sub.events(2)).map((m) => m.msg)
      assert.deepEqual(http.map((e) => [e.info.event_type, e.request, e.response]), [[0, [{ a: 1, b: 2 }], []], [3, [], [{ sum: 3 }]]])

      // rosapi lists the event topics, with their types
      const topics = (await sub.call("/rosapi/topics")).values
      const i = topics.topics.indexOf(TOPIC)
      assert.ok(i >= 0, `rosapi topics: ${topics.topics}`)
      assert.equal(topics.types[i], EVENT_TYPE)
      assert.equal((await sub.call("/rosapi/topic_type", { topic: TOPIC })).values.type, EVENT_TYPE)
      // and the event's definition, for clients that decode topics by rosapi (the root first)
      const tds = (await sub.call("/rosapi/message_details", { type: EVENT_TYPE })).values.typedefs
      assert.deepEqual(tds[0].fieldnames, ["info", "request", "response"])
      assert.deepEqual(tds[0].fieldarraylen, [-1, 0, 0]) // rosapi: 0 for any sequence, bounded too
      const info = tds.find((t: any) => /ServiceEventInfo$/.test(t.type))
      assert.deepEqual(info.fieldnames, ["event_type", "stamp", "client_gid", "sequence_number"])
      assert.deepEqual(info.constnames, ["REQUEST_SENT", "REQUEST_RECEIVED", "RESPONSE_SENT", "RESPONSE_RECEIVED"])

      // a call the robot answers with an error: REQUEST_SENT only (an event's response is a
      // <Name>_Response, which cannot say "failed"); number 2 of this client, whose refused request
      // was never sent
      sub.send({ op: "subscribe", id: "f", topic: "/fail/_service_event" })
      await sub.call("/rosapi/get_time")
      assert.equal((await raw.call("/fail", {})).result, false)
      await sub.call("/rosapi/get_time") // the events of the call, if any, came before this answer
      const failed = sub.got.filter((m) => m.op === "publish" && m.topic === "/fail/_service_event").map((m) => m.msg)
      assert.deepEqual(failed.map((e) => [e.info.event_type, e.info.sequence_number, e.request, e.response]), [[REQUEST_SENT, 2, [{}], []]])
      sub.got.splice(0)
      sub.send({ op: "unsubscribe", id: "f", topic: "/fail/_service_event" })

      // unsubscribed: nothing more
      sub.send({ op: "unsubscribe", id: "s", topic: TOPIC })
      await sub.call("/add_two_ints", { a: 0, b: 0 })
      assert.equal(sub.got.filter((m) => m.op === "publish").length, 0)
    } finally {
      sub.close()
      raw.close()
      await closeRos(ros)
      await f.close()
    }
  })

  test("a service the robot does not have: subscribed with a warning", async () => {
    const f = await startFixture({ introspect: true })
    const sub = await eventClient(f.bridge.wsUrl)
    try {
      sub.send({ op: "set_level", level: "warning" }) // rosbridge sends errors only by default
      await sub.call("/rosapi/services") // the bridge has the robot's list
      sub.send({ op: "subscribe", id: "s", topic: "/nope/_service_event" })
      const st = await sub.next((m) => m.op === "status", "status")
      assert.equal(st.level, "warning")
      assert.match(st.msg, /no service \/nope/)
    } finally {
      sub.close()
      await f.close()
    }
  })

  test("without --introspect: the topic is refused, not listed, and no event is made", async () => {
    const f = await startFixture()
    const sub = await eventClient(f.bridge.wsUrl)
    try {
      sub.send({ op: "subscribe", id: "s", topic: TOPIC })
      const st = await sub.next((m) => m.op === "status", "status")
      assert.equal(st.level, "error")
      assert.match(st.msg, /--introspect/)
      assert.equal((await sub.call("/add_two_ints", { a: 1, b: 1 })).result, true)
      assert.equal(sub.got.filter((m) => m.op === "publish").length, 0)
      assert.ok(!(await sub.call("/rosapi/topics")).values.topics.some((t: string) => t.endsWith("/_service_event")))
      assert.deepEqual((await sub.call("/rosapi/message_details", { type: EVENT_TYPE })).values.typedefs, [])
    } finally {
      sub.close()
      await f.close()
    }

    // the pipeline itself: off, no event reaches even a listener; on, CDR calls (Foxglove's) make them too
    const node = demoMemoryNode()
    const p = new CallPipeline(node, serviceTypes)
    const seen: ServiceEvent[] = []
    p.onServiceEvent((e) => seen.push(e))
    try {
      const caller = { via: "test", client: "t" }
      assert.equal((await p.callJson({ service: "/add_two_ints", args: { a: 1, b: 2 }, timeoutMs: 2000 }, "base64", caller)).ok, true)
      assert.equal(seen.length, 0)
      p.introspect = true
      const AddTwoInts = serviceTypes["example_interfaces/srv/AddTwoInts"]!
      const out = await p.callCdr("/add_two_ints", AddTwoInts.request.encode({ a: 4n, b: 5n }), { timeoutMs: 2000 }, caller)
      assert.equal(out.ok, true)
      assert.deepEqual(seen.map((e) => [e.service, e.type, e.msg.info.event_type, e.msg.request, e.msg.response]), [
        ["/add_two_ints", EVENT_TYPE, 0, [{ a: 4n, b: 5n }], []],
        ["/add_two_ints", EVENT_TYPE, 3, [], [{ sum: 9n }]],
      ])
    } finally {
      p.close()
      await node.close()
    }
  })

  test("Foxglove: a <service>/_service_event channel per service (JSON, the _Event schema) with the events of every front end's calls; none without --introspect", async () => {
    const f = await startFixture({ introspect: true })
    const c = await connectFoxglove(f.bridge.wsUrl, 4)
    const ros = await connectRos(f.bridge.wsUrl)
    try {
      const events = c.channels.filter((ch) => ch.topic.endsWith("/_service_event")).map((ch) => ch.topic).sort()
      assert.deepEqual(events, ["/add_two_ints/_service_event", "/fail/_service_event", "/set_led/_service_event", "/take_picture/_service_event"])
      const ch = c.channels.find((x) => x.topic === TOPIC)
      assert.equal(ch.encoding, "json")
      assert.equal(ch.schemaName, EVENT_TYPE)
      const schema = JSON.parse(ch.schema)
      assert.deepEqual(Object.keys(schema.properties).sort(), ["info", "request", "response"])
      assert.deepEqual(Object.keys(schema.properties.info.properties).sort(), ["client_gid", "event_type", "sequence_number", "stamp"])
      const sub = c.client.subscribe(ch.id)
      const got: any[] = []
      const four = new Promise<void>((resolve) =>
        c.client.on("message", (m: any) => {
          if (m.subscriptionId !== sub) return
          got.push(JSON.parse(text(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength))))
          if (got.length === 4) resolve()
        }),
      )
      // a call through Foxglove itself, then one through rosbridge: each its request and its response
      const r = await foxCall(c, "/add_two_ints", "json", json('{"a": 2, "b": 3}'))
      assert.ok(r.ok)
      assert.deepEqual(await rosCall(ros, "/add_two_ints", "example_interfaces/srv/AddTwoInts", { a: 10, b: -4 }), { sum: 6 })
      await Promise.race([four, new Promise((_, no) => setTimeout(() => no(new Error(`4 events within 5 s: got ${got.length}`)), 5000).unref())])
      assert.deepEqual(
        got.map((e) => [e.info.event_type, e.info.sequence_number, e.request, e.response]),
        [
          [REQUEST_SENT, 1, [{ a: 2, b: 3 }], []],
          [RESPONSE_RECEIVED, 1, [], [{ sum: 5 }]],
          [REQUEST_SENT, 1, [{ a: 10, b: -4 }], []],
          [RESPONSE_RECEIVED, 1, [], [{ sum: 6 }]],
        ],
      )
      assert.notDeepEqual(got[0].info.client_gid, got[2].info.client_gid, "two clients, two gids")
    } finally {
      c.client.close()
      await closeRos(ros)
      await f.close()
    }

    const plain = await startFixture()
    const c2 = await connectFoxglove(plain.bridge.wsUrl, 4)
    try {
      assert.deepEqual(c2.channels.filter((ch) => ch.topic.endsWith("/_service_event")), [])
    } finally {
      c2.client.close()
      await plain.close()
    }
  })

  test("formatEvent prints an event as ros2 service echo does", () => {
    const text = formatEvent({
      info: { event_type: 0, stamp: { sec: 5, nanosec: 7 }, client_gid: [114, 98, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], sequence_number: 1 },
      request: [{ a: 2, b: 3 }],
      response: [],
    })
    assert.equal(
      text,
      ["info:", "  event_type: 0", "  stamp:", "    sec: 5", "    nanosec: 7", "  client_gid: [114, 98, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]", "  sequence_number: 1", "request:", "- a: 2", "  b: 3", "response: []"].join("\n"),
    )
  })
})

describe("robot service echo", () => {
  test("prints the events of a call made meanwhile; Ctrl+C ends it with status 0", async () => {
    const f = await startFixture({ introspect: true })
    const p = spawn(process.execPath, [path.join(ROOT, "packages", "host", "bin", "robot.js"), "service", "echo", "add_two_ints", "--url", f.bridge.wsUrl], { cwd: ROOT })
    let stdout = ""
    let stderr = ""
    p.stdout.on("data", (d) => (stdout += d))
    const exited = new Promise<number | null>((resolve) => p.on("close", (code) => resolve(code)))
    const kill = setTimeout(() => p.kill("SIGKILL"), 12000)
    const raw = await rawRosClient(f.bridge.wsUrl)
    try {
      await new Promise<void>((resolve, reject) => {
        p.stderr.on("data", (d) => {
          stderr += d
          if (/echoing \/add_two_ints\/_service_event/.test(stderr)) resolve()
        })
        p.on("close", () => reject(new Error(`echo ended first: ${stderr}`)))
      })
      assert.equal((await raw.call("/add_two_ints", { a: 2, b: 3 })).result, true)
      // both events printed (each ends with ---)
      await new Promise<void>((resolve) => {
        const check = () => ((stdout.match(/^---$/gm) ?? []).length >= 2 ? resolve() : undefined)
        check()
        p.stdout.on("data", check)
      })
      p.kill("SIGINT")
      assert.equal(await exited, 0, stderr)
      const events = stdout.split(/^---\n/m).filter((s) => s.trim())
      assert.equal(events.length, 2, stdout)
      assert.match(events[0]!, /^info:\n  event_type: 0\n  stamp:\n    sec: \d+\n    nanosec: \d+\n  client_gid: \[(\d+, ){15}\d+\]\n  sequence_number: 1\nrequest:\n- a: 2\n  b: 3\nresponse: \[\]\n$/)
      assert.match(events[1]!, /^info:\n  event_type: 3\n[\s\S]*  sequence_number: 1\nrequest: \[\]\nresponse:\n- sum: 5\n$/)
    } finally {
      clearTimeout(kill)
      p.kill("SIGKILL")
      raw.close()
      await f.close()
    }
  })

  test("errors: a bridge without --introspect, a service that does not exist, no bridge", async () => {
    const f = await startFixture()
    const g = await startFixture({ introspect: true })
    try {
      const [off, nope] = await Promise.all([
        runRobot(["service", "echo", "/add_two_ints", "--url", f.bridge.wsUrl], { timeoutMs: 10000 }),
        runRobot(["service", "echo", "/nope", "--url", g.bridge.wsUrl], { timeoutMs: 10000 }),
      ])
      assert.equal(off.code, 1)
      assert.match(off.stderr, /robot service echo: unavailable: the bridge at \S+ does not publish \/add_two_ints\/_service_event \(it was started without --introspect/)
      assert.equal(nope.code, 1)
      assert.match(nope.stderr, /robot service echo: unimplemented: no service \/nope \(robot service list/)
    } finally {
      await f.close()
      await g.close()
    }
    const gone = await runRobot(["service", "echo", "/add_two_ints", "--url", "ws://127.0.0.1:9"], { timeoutMs: 10000 })
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /cannot reach a bridge at ws:\/\/127\.0\.0\.1:9/)
  })
})
