// Integration: the real firmware (test/firmware/services_fw.ts) in the DeviceScript VM, the real
// host client, through the rig's frame hub. No fixed sleeps: every wait is on an event or a call.
import assert from "node:assert/strict"
import { jd } from "../../packages/host/src/transport/jacdac"
import { after, before, describe, test } from "node:test"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { ServiceError } from "../../packages/host/src/client/errors"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { Kind } from "../../packages/host/src/client/records"
import { Echo, echo, pattern } from "../../harness/services"
import { hostRecords, testFirmware } from "./services_fixture"

async function rejectsWith(p: Promise<unknown>, code: string, detail?: RegExp): Promise<ServiceError> {
  try {
    await p
  } catch (e) {
    assert.ok(e instanceof ServiceError, `expected ServiceError, got ${e}`)
    assert.equal(e.code, code, `code of ${e.message}`)
    if (detail) assert.match(e.detail, detail)
    return e
  }
  assert.fail(`expected ${code}, the call succeeded`)
}

describe("services over the wire (VM)", () => {
  let rig: Rig
  before(async () => {
    rig = await startRig({ firmware: testFirmware() })
  })
  after(async () => {
    await rig?.close()
  })

  test("lists services with type names and hashes", async () => {
    const list = await rig.node.listServices()
    const add = list.find((s) => s.name === "/add_two_ints")
    assert.deepEqual(add, { name: "/add_two_ints", type: "example_interfaces/srv/AddTwoInts", hash32: AddTwoInts.hash32 })
    assert.deepEqual(
      list.find((s) => s.name === "/echo"),
      { name: "/echo", type: "rs_test/srv/Echo", hash32: Echo.hash32 },
    )
    assert.equal(rig.node.limits?.maxResponseBytes, 300000)
    assert.equal(rig.node.limits?.maxRequestBytes, 20480)
  })

  test("settingText gives a setting's value: a .env string without its JSON quotes, spaces trimmed; raw text as stored", async () => {
    // (the rig writes settings as devtools deploys .env values, as JSON: ROBOT_NAME=rover1 is
    // stored as the bytes "rover1", quotes included; a host writing through Jacdac may store raw text)
    await rig.writeSettings({ RS_NAME: "rover1", RS_PAD: " x y ", RS_QUOTE: '"' })
    const svc = rig.bus.services({ serviceClass: jd.SRV_SETTINGS })[0]!
    const raw = new jd.SettingsClient(svc)
    await raw.setValue("RS_RAW", new TextEncoder().encode("plain text"))
    await raw.setValue("RS_NUM", new TextEncoder().encode(" 42 "))
    const ec = rig.node.createClient(Echo, "echo")
    const read = async (key: string) => (await ec.call(echo(key, { mode: 13 }))).text
    assert.equal(await read("RS_NAME"), "rover1")
    assert.equal(await read("RS_PAD"), " x y ", "the spaces inside the quotes are the value's")
    assert.equal(await read("RS_QUOTE"), '"')
    assert.equal(await read("RS_RAW"), "plain text")
    assert.equal(await read("RS_NUM"), "42")
    assert.equal(await read("RS_UNSET"), "")
  })

  test("small calls: AddTwoInts returns the sum, int64 intact", async () => {
    const add = rig.node.createClient(AddTwoInts, "add_two_ints")
    await add.waitForService({ timeoutMs: 5000 })
    assert.deepEqual(await add.call({ a: 2n, b: 3n }), { sum: 5n })
    assert.deepEqual(await add.call({ a: -40n, b: 2n }), { sum: -38n })
    assert.deepEqual(await add.call({ a: 2n ** 40n, b: 1n }), { sum: 2n ** 40n + 1n })
  })

  test("a 100 KiB response arrives complete, with progress", async () => {
    const e = rig.node.createClient(Echo, "echo")
    const size = 100 * 1024
    let last = 0
    let total = 0
    let steps = 0
    const r = await e.call(echo("big", { size }), {
      timeoutMs: 60000,
      onProgress: (got, t) => {
        assert.ok(got > last, "progress only grows")
        last = got
        total = t
        steps++
      },
    })
    assert.equal(r.text, "big")
    assert.equal(r.data.length, size)
    assert.deepEqual(Buffer.from(r.data), Buffer.from(pattern(size)))
    assert.equal(last, total)
    assert.ok(steps > 400, `progress reported per chunk (${steps})`)
  })

  test("a slow handler does not hold up other calls", async () => {
    const ec = rig.node.createClient(Echo, "echo")
    const add = rig.node.createClient(AddTwoInts, "add_two_ints")
    const order: string[] = []
    const slow = ec.call(echo("slow", { delay_ms: 1500 }), { timeoutMs: 20000 }).then(() => order.push("slow"))
    const fast = Promise.all([add.call({ a: 1n, b: 1n }), ec.call(echo("fast"))]).then(() => order.push("fast"))
    await Promise.all([slow, fast])
    assert.deepEqual(order, ["fast", "slow"])
  })

  test("3 clients x 20 concurrent calls: every answer reaches its own caller", async () => {
    const nodes = [rig.node, await rig.connect(), await rig.connect()]
    const calls: Promise<void>[] = []
    for (let n = 0; n < nodes.length; n++) {
      const add = nodes[n]!.createClient(AddTwoInts, "add_two_ints")
      const ec = nodes[n]!.createClient(Echo, "echo")
      for (let i = 0; i < 20; i++) {
        const a = BigInt(n * 1000 + i)
        if (i % 2)
          calls.push(add.call({ a, b: 1000000n }, { timeoutMs: 30000 }).then((r) => assert.equal(r.sum, a + 1000000n)))
        else
          calls.push(
            ec.call(echo(`n${n}-i${i}`, { size: i * 7 }), { timeoutMs: 30000 }).then((r) => {
              assert.equal(r.text, `n${n}-i${i}`)
              assert.equal(r.data.length, i * 7)
            }),
          )
      }
    }
    await Promise.all(calls)
  })

  test("pipelined calls beyond the device's bound are answered busy and retried, none lost", async () => {
    // window 64 > maxInFlight 8: the device must refuse with busy instead of running out of heap
    const n = await rig.connect({ window: 64 })
    const ec = n.createClient(Echo, "echo")
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => ec.call(echo(`p${i}`, { delay_ms: 30 }), { timeoutMs: 60000 })),
    )
    results.forEach((r, i) => assert.equal(r.text, `p${i}`))
    assert.ok(n.stats.busyRetries > 0, "the device said busy at least once")
    assert.deepEqual(await rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 1n }), { sum: 2n })
  })

  test("a handler that throws: internal, with its message; the device keeps serving", async () => {
    const ec = rig.node.createClient(Echo, "echo")
    await rejectsWith(ec.call(echo("the motor is on fire", { mode: 1 })), "internal", /the motor is on fire/)
    await rejectsWith(ec.call(echo("angle out of range", { mode: 2 })), "invalid_argument", /angle out of range/)
    assert.equal((await ec.call(echo("still here"))).text, "still here")
  })

  test("unknown service: unimplemented", async () => {
    const c = rig.node.createClient(AddTwoInts, "no_such_service")
    const e = await rejectsWith(c.call({ a: 1n, b: 2n }), "unimplemented", /no_such_service/)
    assert.equal(e.service, "/no_such_service")
  })

  test("type mismatch: waitForService and call both refuse", async () => {
    const wrong = rig.node.createClient(AddTwoInts, "echo")
    await rejectsWith(wrong.waitForService({ timeoutMs: 5000 }), "type_mismatch", /rs_test\/srv\/Echo/)
    await rejectsWith(wrong.call({ a: 1n, b: 2n }), "type_mismatch", /rs_test\/srv\/Echo/)
  })

  test("timeout: deadline_exceeded, and the device is told to drop the call", async () => {
    // watch what this client sends: the timed-out call's (session, seq) must go out in a CANCEL record
    const calls: string[] = []
    const cancels: string[] = []
    let sawCancel: () => void = () => {}
    const cancelSent = new Promise<void>((r) => (sawCancel = r))
    const n = await rig.connect({
      filter: (frame, dir) => {
        if (dir === "out")
          for (const r of hostRecords(frame)) {
            if (r.kind === Kind.CALL || r.kind === Kind.CALLX) calls.push(`${r.session}/${r.seq}`)
            if (r.kind === Kind.CANCEL) {
              cancels.push(`${r.session}/${r.seq}`)
              sawCancel()
            }
          }
        return true
      },
    })
    const ec = n.createClient(Echo, "echo")
    await ec.waitForService({ timeoutMs: 10000 })
    const t0 = Date.now()
    await rejectsWith(ec.call(echo("slow", { delay_ms: 3000 }), { timeoutMs: 300 }), "deadline_exceeded", /300 ms/)
    assert.ok(Date.now() - t0 < 2000)
    await cancelSent
    assert.equal(calls.length, 1, "one call went out")
    assert.deepEqual(cancels, calls, "its id was cancelled")
    assert.equal((await ec.call(echo("after timeout"))).text, "after timeout")
  })

  test("abort: cancelled, before and during the call", async () => {
    const ec = rig.node.createClient(Echo, "echo")
    const ac = new AbortController()
    ac.abort()
    await rejectsWith(ec.call(echo("x"), { signal: ac.signal }), "cancelled")
    const ac2 = new AbortController()
    // abort once the first response bytes arrive (an event, not a timer)
    const p = ec.call(echo("y", { size: 50000 }), { signal: ac2.signal, timeoutMs: 30000, onProgress: () => ac2.abort() })
    await rejectsWith(p, "cancelled")
    assert.equal((await ec.call(echo("after abort"))).text, "after abort")
  })

  test("over the limits: resource_exhausted with the limit in the message", async () => {
    const ec = rig.node.createClient(Echo, "echo")
    await rejectsWith(ec.call(echo("r", { size: 300001 })), "resource_exhausted", /maxResponseBytes=300000/)
    await rejectsWith(ec.call(echo("x".repeat(21000))), "resource_exhausted", /maxRequestBytes=20480/)
  })

  test("a request that fails to encode on the host: invalid_argument, nothing sent", async () => {
    const add = rig.node.createClient(AddTwoInts, "add_two_ints")
    await rejectsWith(add.call({ a: 2n ** 70n, b: 0n }), "invalid_argument")
  })
})
