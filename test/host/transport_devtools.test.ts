// The devtools path end to end: the real `devs devtools` server on 8081, the VM connected to it
// (as the VS Code simulator is), and the client over WebSocket (websocketTransport()).
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { Echo, echo, pattern } from "../../harness/services"
import { testFirmware } from "./services_fixture"

describe("through devs devtools (WebSocket)", () => {
  let rig: Rig
  before(async () => {
    rig = await startRig({ firmware: testFirmware(), devtools: true })
  })
  after(async () => {
    await rig?.close()
  })

  test("lists services and calls them, small and chunked", async () => {
    const names = (await rig.node.listServices()).map((s) => s.name).sort()
    assert.deepEqual(names, ["/add_two_ints", "/echo", "/echo_latest", "/echo_serial", "/upload"])
    assert.deepEqual(await rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 40n, b: 2n }), { sum: 42n })
    const r = await rig.node.createClient(Echo, "echo").call(echo("ws", { size: 3000 }), { timeoutMs: 20000 })
    assert.deepEqual(Buffer.from(r.data), Buffer.from(pattern(3000)))
  })

  test("a second client on the same devtools server gets its own answers", async () => {
    const other = await rig.connect()
    const [a, b] = await Promise.all([
      rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 1n }),
      other.createClient(AddTwoInts, "add_two_ints").call({ a: 100n, b: 1n }),
    ])
    assert.equal(a.sum, 2n)
    assert.equal(b.sum, 101n)
  })
})
