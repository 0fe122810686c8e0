// Hostile requests to the bridge found in a red-team pass (issue 20): names that are keys of every
// JavaScript object, and timeouts too long for a timer. Each test failed before its fix.
import assert from "node:assert/strict"
import { test } from "node:test"
import WebSocket from "ws"
import { startFixture } from "./bridge_helpers"
import { rawRosClient } from "../../harness/rosbridge"
import { demoMemoryNode } from "../../packages/host/src/demo/demo"
import { Trigger } from "../../packages/host/src/gen/interfaces"

test("rosapi type lookups with names every object has (constructor, toString, __proto__) answer as for an unknown type, not 'internal: Cannot read properties of undefined'", async () => {
  const f = await startFixture()
  const c = await rawRosClient(f.bridge.wsUrl)
  try {
    for (const type of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      for (const service of ["/rosapi/service_request_details", "/rosapi/service_response_details"]) {
        const r = await c.call(service, { type })
        assert.deepEqual([r.result, r.values], [true, { typedefs: [] }], `${service} ${type}: ${JSON.stringify(r.values)}`)
      }
      const m = await c.call("/rosapi/message_details", { type })
      assert.deepEqual([m.result, m.values], [true, { typedefs: [] }], `message_details ${type}`)
    }
    // the known types still answer
    const ok = await c.call("/rosapi/service_request_details", { type: "example_interfaces/srv/AddTwoInts" })
    assert.equal(ok.values.typedefs[0].type, "example_interfaces/AddTwoInts_Request")
  } finally {
    c.close()
    await f.close()
  }
})

test("a timeout longer than a timer can hold (rosbridge timeout 3e6 s, HTTP ?timeout_ms=1e12) waits for the answer instead of failing at once with deadline_exceeded", async () => {
  const node = demoMemoryNode()
  node.addService(Trigger, "/slow", async () => {
    await new Promise((r) => setTimeout(r, 40))
    return { success: true, message: "done" }
  })
  const f = await startFixture({}, node)
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.name)
  process.on("warning", onWarning)
  try {
    for (const timeout of [3e6, 1e300]) {
      const out = await callWithTimeout(f.bridge.wsUrl, "/slow", timeout)
      assert.deepEqual([out.result, out.values], [true, { success: true, message: "done" }], `timeout ${timeout} s: ${JSON.stringify(out.values)}`)
    }
    for (const ms of ["1e12", "99999999999999999999"]) {
      const res = await fetch(`${f.bridge.url}/api/services/slow?timeout_ms=${ms}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })
      assert.equal(res.status, 200, `timeout_ms=${ms}: ${await res.clone().text()}`)
      assert.deepEqual(await res.json(), { success: true, message: "done" })
    }
    assert.ok(!warnings.includes("TimeoutOverflowWarning"), "a timer was set beyond 2^31-1 ms")
  } finally {
    process.off("warning", onWarning)
    await f.close()
  }
})

/** One call_service with rosbridge's `timeout` (seconds) on a connection of its own. */
async function callWithTimeout(url: string, service: string, timeout: number): Promise<any> {
  const ws = new WebSocket(url)
  await new Promise((r) => ws.once("open", r))
  try {
    return await new Promise((resolve) => {
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString())
        if (m.op === "service_response") resolve(m)
      })
      ws.send(JSON.stringify({ op: "call_service", id: "t", service, args: {}, timeout }))
    })
  } finally {
    ws.close()
  }
}

test("a Foxglove subscribe with thousands of bad entries (unknown channels, malformed, ids in use) is answered with one status per kind of refusal, not one per entry", async () => {
  const f = await startFixture()
  const ws = new WebSocket(f.bridge.wsUrl, ["foxglove.websocket.v1"])
  const statuses: { level: number; message: string }[] = []
  let channels: number[] = []
  ws.on("message", (d, binary) => {
    if (binary) return
    const m = JSON.parse(d.toString())
    if (m.op === "status") statuses.push({ level: m.level, message: m.message })
    if (m.op === "advertise") channels = channels.concat(m.channels.map((c: { id: number }) => c.id))
  })
  try {
    await new Promise<void>((ok, fail) => ws.once("open", () => ok()).once("error", fail))
    const until = async (what: string, cond: () => boolean) => {
      const end = Date.now() + 5000
      while (!cond()) {
        assert.ok(Date.now() < end, `timed out waiting for ${what}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    await until("the advertised channels", () => channels.length > 0)
    const unknown = Math.max(...channels) + 1
    const subscriptions: unknown[] = [{ id: 1, channelId: channels[0] }]
    for (let i = 0; i < 5000; i++) subscriptions.push({ id: 100 + i, channelId: unknown + i })
    for (let i = 0; i < 50; i++) subscriptions.push({ id: "x", channelId: null })
    for (let i = 0; i < 50; i++) subscriptions.push({ id: 1, channelId: channels[0] })
    ws.send(JSON.stringify({ op: "subscribe", subscriptions }))
    // a marker: an op the bridge answers with a warning, after the subscribe's answers
    ws.send(JSON.stringify({ op: "marker" }))
    await until("the marker's warning", () => statuses.some((s) => /op 'marker'/.test(s.message)))
    const errors = statuses.filter((s) => s.level === 2).map((s) => s.message)
    assert.ok(errors.length <= 3, `${errors.length} status messages for one subscribe: ${errors.slice(0, 3).join(" | ")} ...`)
    assert.ok(errors.some((e) => /5000 subscriptions? .*no such channel/.test(e)), errors.join(" | "))
    assert.ok(errors.some((e) => /50 subscriptions? .*numeric id and channelId/.test(e)), errors.join(" | "))
    assert.ok(errors.some((e) => /50 subscriptions? .*id 1 .*in use/.test(e)), errors.join(" | "))
  } finally {
    ws.close()
    await f.close()
  }
})
