// How many WebSocket round trips one `robot service call` makes through a bridge (issue 18: the
// CLI asked /rosapi/service_type, then both typedef requests, then called; four round trips for
// one call). The real `robot` binary talks to the bridge through a counting proxy that records
// every message the CLI sends. Through this project's bridge a call with its type given is one
// call_service; without the type, one /rosapi/service_type first. The bridge checks the request
// (by the CLI's rules, `args_rules: "yaml"`), the CLI does not check it first: each request is
// checked once. `robot service list -t` is one /rosapi/services (the types come with the names).
import assert from "node:assert/strict"
import { test } from "node:test"
import { WebSocket, WebSocketServer } from "ws"
import { serviceTypes, Trigger } from "../../packages/host/src/gen/interfaces"
import { Echo } from "../../harness/services"
import { runRobot, startFixture } from "./bridge_helpers"

/**
 * A WebSocket proxy in front of `target` that keeps every message a client sends (parsed);
 * `rewrite` changes the server's text messages on their way to the client.
 */
async function countingProxy(target: string, rewrite?: (m: any) => any): Promise<{ url: string; sent: any[]; close(): Promise<void> }> {
  const sent: any[] = []
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((r) => wss.once("listening", () => r()))
  wss.on("connection", (client, req) => {
    const upstream = new WebSocket(target + (req.url ?? "/"))
    const queue: [Buffer, boolean][] = []
    upstream.on("open", () => {
      for (const [d, bin] of queue.splice(0)) upstream.send(d, { binary: bin })
    })
    client.on("message", (d: Buffer, bin) => {
      if (!bin) sent.push(JSON.parse(d.toString()))
      if (upstream.readyState === WebSocket.OPEN) upstream.send(d, { binary: bin })
      else queue.push([d, bin])
    })
    upstream.on("message", (d: Buffer, bin) => {
      const out = rewrite && !bin ? Buffer.from(JSON.stringify(rewrite(JSON.parse(d.toString())))) : d
      if (client.readyState === WebSocket.OPEN) client.send(out, { binary: bin })
    })
    client.on("close", () => upstream.close())
    upstream.on("close", () => client.close())
    upstream.on("error", () => client.terminate())
  })
  const { port } = wss.address() as { port: number }
  return {
    url: `ws://127.0.0.1:${port}`,
    sent,
    close: () => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate()
      wss.close(() => r())
    }),
  }
}

const calls = (sent: any[]) => sent.filter((m) => m.op === "call_service").map((m) => m.service)

test("one `robot service call` through a bridge: one call_service with the type, one lookup more without it", async () => {
  const f = await startFixture()
  const proxy = await countingProxy(f.bridge.wsUrl)
  let robotCalls = 0
  f.node.addService(Trigger, "/count", () => ({ success: true, message: String(++robotCalls) }))
  const robot = async (args: string[]) => {
    proxy.sent.length = 0
    const r = await runRobot([...args, "--url", proxy.url], { timeoutMs: 30000 })
    return { ...r, trips: calls(proxy.sent), sent: [...proxy.sent] }
  }
  try {
    const typed = await robot(["service", "call", "/add_two_ints", "example_interfaces/srv/AddTwoInts", "{a: 2, b: 3}"])
    assert.equal(typed.code, 0, typed.stderr)
    assert.equal(typed.stdout, "requester: making request: example_interfaces.srv.AddTwoInts_Request(a=2, b=3)\n\nresponse:\nexample_interfaces.srv.AddTwoInts_Response(sum=5)\n\n")
    assert.deepEqual(typed.trips, ["/add_two_ints"])

    const untyped = await robot(["service", "call", "/add_two_ints", "{a: 2, b: 3}"])
    assert.equal(untyped.code, 0, untyped.stderr)
    assert.equal(untyped.stdout, typed.stdout)
    assert.deepEqual(untyped.trips, ["/rosapi/service_type", "/add_two_ints"])

    // a request the type refuses: the bridge refuses it, by the CLI's rules, and calls nothing; the
    // CLI sent it unchecked (it checked it first, then the bridge again: issue 18), and prints no
    // request line for it
    const refused: [string[], string[]][] = [
      [["std_srvs/srv/Trigger", "{nope: 1}"], ["/count"]],
      [["{nope: 1}"], ["/rosapi/service_type", "/count"]],
    ]
    for (const [args, trips] of refused) {
      const bad = await robot(["service", "call", "/count", ...args])
      assert.equal(bad.code, 1)
      assert.equal(bad.stdout, "")
      assert.match(bad.stderr, /^robot service call: invalid_argument: nope: std_srvs\/Trigger_Request has no field 'nope' \(fields: none\)/)
      assert.deepEqual(bad.trips, trips)
    }
    const quoted = await robot(["service", "call", "/add_two_ints", "{a: '2', b: 1}"])
    assert.equal(quoted.stdout, "")
    assert.match(quoted.stderr, /^robot service call: invalid_argument: a: expected an integer \(int64\), got the string '2'; write it without quotes/)
    assert.deepEqual(quoted.trips, ["/rosapi/service_type", "/add_two_ints"])
    assert.equal(quoted.sent.find((m) => m.op === "call_service" && m.service === "/add_two_ints")?.args_rules, "yaml")
    // a wrong type and a wrong request: the bridge checks the type first
    const badType = await robot(["service", "call", "/count", "example_interfaces/srv/AddTwoInts", "{nope: 1}"])
    assert.match(badType.stderr, /^robot service call: type_mismatch: \/count is std_srvs\/srv\/Trigger, not example_interfaces\/srv\/AddTwoInts \(leave the type out/)
    assert.deepEqual(badType.trips, ["/count"])

    // the wrong type: the bridge refuses the call (one round trip) and the robot is not called
    const wrong = await robot(["service", "call", "/count", "example_interfaces/srv/AddTwoInts", "{}"])
    assert.equal(wrong.stderr, "robot service call: type_mismatch: /count is std_srvs/srv/Trigger, not example_interfaces/srv/AddTwoInts (leave the type out, or give std_srvs/srv/Trigger)\n")
    assert.deepEqual(wrong.trips, ["/count"])
    assert.equal(robotCalls, 0)

    // a service the bridge does not list: the lookup, then the call so that the bridge says why
    const nope = await robot(["service", "call", "/nope"])
    assert.match(nope.stderr, /^robot service call: unimplemented: no service \/nope on the robot/)
    assert.deepEqual(nope.trips, ["/rosapi/service_type", "/nope"])
  } finally {
    await proxy.close()
    await f.close()
  }
})

test("a type the CLI's project does not define: its typedefs from rosapi to show the values; the bridge checks the request", async () => {
  // the bridge knows rs_test/srv/Echo (test/interfaces), the CLI (run at the repository root) does not
  const f = await startFixture({ typeRegistry: { ...serviceTypes, [Echo.fullName]: Echo } })
  f.node.addService(Echo, "/echo", (req) => ({ text: req.text, data: new Uint8Array(req.size) }))
  const proxy = await countingProxy(f.bridge.wsUrl)
  const robot = async (args: string[]) => {
    proxy.sent.length = 0
    const r = await runRobot([...args, "--url", proxy.url], { timeoutMs: 30000 })
    return { ...r, trips: calls(proxy.sent) }
  }
  const details = ["/rosapi/service_request_details", "/rosapi/service_response_details"]
  try {
    const ok = await robot(["service", "call", "/echo", "rs_test/srv/Echo", "{text: hi, size: 3}"])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(ok.stdout, "requester: making request: rs_test.srv.Echo_Request(delay_ms=0, mode=0, size=3, text='hi')\n\nresponse:\nrs_test.srv.Echo_Response(text='hi', data=<3 bytes>)\n\n")
    assert.deepEqual(ok.trips, [...details, "/echo"])
    const untyped = await robot(["service", "call", "/echo", "{text: hi, size: 3}"])
    assert.equal(untyped.stdout, ok.stdout)
    assert.deepEqual(untyped.trips, ["/rosapi/service_type", ...details, "/echo"])

    const unknown = await robot(["service", "call", "/echo", "{nope: 1}"])
    assert.equal(unknown.stdout, "")
    assert.equal(unknown.stderr, "robot service call: invalid_argument: nope: rs_test/Echo_Request has no field 'nope' (fields: delay_ms, mode, size, text) (check the request against `robot interface show <type>`)\n")
    const quoted = await robot(["service", "call", "/echo", "{size: '3'}"])
    assert.equal(quoted.stdout, "")
    assert.match(quoted.stderr, /^robot service call: invalid_argument: size: expected an integer \(uint32\), got the string '3'; write it without quotes/)
    // the typedefs are for the request line and the response; the bridge checks the request
    assert.deepEqual(quoted.trips, ["/rosapi/service_type", ...details, "/echo"])
  } finally {
    await proxy.close()
    await f.close()
  }
})

test("`robot service list -t` through a bridge: one round trip, the types come with the names; a rosbridge server without them: one lookup per service", async () => {
  const f = await startFixture()
  const proxy = await countingProxy(f.bridge.wsUrl)
  // rosbridge_suite's answer: the names only
  const bare = await countingProxy(f.bridge.wsUrl, (m) => {
    if (m.op === "service_response" && m.service === "/rosapi/services") delete m.values.types
    return m
  })
  try {
    const one = await runRobot(["service", "list", "-t", "--url", proxy.url], { timeoutMs: 30000 })
    assert.equal(one.code, 0, one.stderr)
    assert.ok(one.stdout.includes("/add_two_ints [example_interfaces/srv/AddTwoInts]\n"), one.stdout)
    assert.deepEqual(calls(proxy.sent), ["/rosapi/services"])
    const other = await runRobot(["service", "list", "-t", "--url", bare.url], { timeoutMs: 30000 })
    assert.equal(other.code, 0, other.stderr)
    assert.equal(other.stdout, one.stdout)
    const [first, ...rest] = calls(bare.sent)
    assert.equal(first, "/rosapi/services")
    assert.ok(rest.length > 4 && rest.every((t) => t === "/rosapi/service_type"), rest.join(" "))
  } finally {
    await bare.close()
    await proxy.close()
    await f.close()
  }
})
