// The in-memory MQTT robot (packages/host/src/mqtt/memrobot.ts) spoken to record by record, as a host with its
// own topics: OPEN -> SESSION, duplicates never run twice, DONE and ack settle, POLL answers from
// `have`, NOSESSION for an unknown session, busy is not remembered, malformed frames get ERROR.
// The exactly-once rule is checked where TCP would never show it: the same CALL sent again.
import assert from "node:assert/strict"
import { test } from "node:test"
import type { MqttClient } from "mqtt"
import { Kind } from "../../packages/host/src/gen/wire"
import { CallState, PROTOCOL_VERSION, WireStatus, encodeCall, encodeCallx, encodeDone, encodeName, encodeList, encodeOpen, parseDeviceFrame, encodePoll, type DeviceRecord } from "../../packages/host/src/client/records"
import { TakePicture, Trigger } from "../../packages/host/src/gen/interfaces"
import { embeddedBroker, rawClient, startTestRobot } from "./mqtt_helpers"

/** A host made of a raw MQTT client: send frames, wait for the records that come back. */
async function rawHost(url: string, robot: string, host: string) {
  const c: MqttClient = await rawClient(url, { clientId: host }) // anonymous: the client id is the host id
  const records: DeviceRecord[] = []
  const waiters: (() => void)[] = []
  c.on("message", (_t, payload) => {
    records.push(...parseDeviceFrame(new Uint8Array(payload)))
    for (const w of waiters.splice(0)) w()
  })
  await c.subscribeAsync(`robots/${robot}/out/${host}`, { qos: 0 })
  const send = (...recs: Uint8Array[]) => c.publishAsync(`robots/${robot}/in/${host}`, Buffer.concat(recs), { qos: 0 })
  /** takes the first record that matches, waiting for it (up to 5 s) */
  const next = async (pred: (r: DeviceRecord) => boolean, what: string): Promise<DeviceRecord> => {
    const end = Date.now() + 5000
    for (;;) {
      const i = records.findIndex(pred)
      if (i >= 0) return records.splice(i, 1)[0]!
      if (Date.now() > end) throw new Error(`no ${what}; got ${JSON.stringify(records.map((r) => r.kind))}`)
      await new Promise<void>((r) => {
        waiters.push(r)
        setTimeout(r, Math.max(1, end - Date.now()))
      })
    }
  }
  return { c, send, next, records }
}

test("memory robot: sessions, exactly once per (session, seq), DONE/ack, POLL, NOSESSION, ERROR", async () => {
  const broker = await embeddedBroker()
  const t = await startTestRobot({ url: broker.url, name: "m1", maxRecord: 1024 })
  const h = await rawHost(broker.url, "m1", "hraw")
  try {
    await h.send(encodeList())
    const hello = await h.next((r) => r.kind === "hello", "HELLO")
    assert.ok(hello.kind === "hello")
    assert.equal(hello.maxRecord, 1024)
    assert.equal(hello.maxRequestBytes, 1024 - 256)
    assert.equal(hello.bootId, t.robot.bootId)
    const services: DeviceRecord[] = []
    for (let i = 0; i < hello.count; i++) services.push(await h.next((r) => r.kind === "service", "SERVICE"))
    const names = services.map((s) => (s.kind === "service" ? s.name : ""))
    const countIndex = names.indexOf("/count")

    await h.send(encodeOpen({ nonce: 77, version: PROTOCOL_VERSION }))
    const ses = await h.next((r) => r.kind === "session", "SESSION")
    assert.ok(ses.kind === "session" && ses.nonce === 77 && ses.session !== 0)
    const session = ses.session
    // the same OPEN again (a resend): the same session, not a second one
    await h.send(encodeOpen({ nonce: 77, version: PROTOCOL_VERSION }))
    const again = await h.next((r) => r.kind === "session", "SESSION")
    assert.ok(again.kind === "session" && again.session === session)
    assert.equal(t.robot.stats.sessionsOpened, 1)

    const count = (seq: number, ack = 0) => encodeCallx({ session, seq, ack, timeoutMs: 5000, listVersion: hello.listVersion, index: countIndex, data: Trigger.request.encode({}) })
    // seq 1 sent three times in one frame and once more later: one run, answered each time
    await h.send(count(1), count(1), count(1))
    const r1 = await h.next((r) => r.kind === "result" && r.seq === 1, "RESULT 1")
    assert.ok(r1.kind === "result" && r1.status === WireStatus.ok)
    await h.send(count(1))
    await h.next((r) => r.kind === "result" && r.seq === 1, "RESULT 1 again")
    assert.equal(t.counted, 1)
    // POLL of an answered call: its answer again; DONE: forgotten, a late duplicate is `gone`
    await h.send(encodePoll({ session, seq: 1, have: 0 }))
    await h.next((r) => r.kind === "result" && r.seq === 1, "RESULT 1 on POLL")
    await h.send(encodeDone({ session, seqs: [1] }))
    await h.send(count(1))
    const gone = await h.next((r) => r.kind === "status" && r.seq === 1, "STATUS 1")
    assert.ok(gone.kind === "status" && gone.state === CallState.gone)
    // seq 2 and 3 run; CALL 4 with ack 3 settles both without DONE
    await h.send(count(2), count(3))
    await h.next((r) => r.kind === "result" && r.seq === 2, "RESULT 2")
    await h.next((r) => r.kind === "result" && r.seq === 3, "RESULT 3")
    await h.send(count(4, 3), count(2))
    await h.next((r) => r.kind === "result" && r.seq === 4, "RESULT 4")
    const g2 = await h.next((r) => r.kind === "status" && r.seq === 2, "STATUS 2")
    assert.ok(g2.kind === "status" && g2.state === CallState.gone)
    assert.equal(t.counted, 4)
    // a POLL for a call never sent: unknown (the host sends it again)
    await h.send(encodePoll({ session, seq: 9, have: 0 }))
    const unk = await h.next((r) => r.kind === "status" && r.seq === 9, "STATUS 9")
    assert.ok(unk.kind === "status" && unk.state === CallState.unknown)

    // a CALL by name with a wrong hash: type_mismatch; an unknown name: unimplemented
    const empty = Trigger.request.encode({})
    const byName = (seq: number, name: string, hash: number) => encodeCall({ session, seq, ack: 4, timeoutMs: 5000, hash32: hash, total: empty.length, name: encodeName(name), data: empty })
    await h.send(byName(5, "/count", 1234), byName(6, "/nope", 1))
    const mism = await h.next((r) => r.kind === "result" && r.seq === 5, "RESULT 5")
    assert.ok(mism.kind === "result" && mism.status === WireStatus.type_mismatch)
    const unimpl = await h.next((r) => r.kind === "result" && r.seq === 6, "RESULT 6")
    assert.ok(unimpl.kind === "result" && unimpl.status === WireStatus.unimplemented)
    // a CALLX of an old list version: stale, and not remembered (the same seq by name runs)
    await h.send(encodeCallx({ session, seq: 7, ack: 6, timeoutMs: 5000, listVersion: hello.listVersion + 1, index: countIndex, data: Trigger.request.encode({}) }))
    const stale = await h.next((r) => r.kind === "result" && r.seq === 7, "RESULT 7")
    assert.ok(stale.kind === "result" && stale.status === WireStatus.stale)
    await h.send(byName(7, "/count", Trigger.hash32))
    const ran7 = await h.next((r) => r.kind === "result" && r.seq === 7, "RESULT 7 by name")
    assert.ok(ran7.kind === "result" && ran7.status === WireStatus.ok)
    assert.equal(t.counted, 5)

    // a response larger than a frame: RESULT then RDATA, and a POLL from `have` resends the rest
    const picIndex = names.indexOf("/take_picture")
    const req = TakePicture.request.encode({ resolution: 0, quality: 0 })
    await h.send(encodeCallx({ session, seq: 8, ack: 7, timeoutMs: 5000, listVersion: hello.listVersion, index: picIndex, data: req }))
    const first = await h.next((r) => r.kind === "result" && r.seq === 8, "RESULT 8")
    assert.ok(first.kind === "result" && first.total > 20000 && first.data.length < 1024)
    let have = first.data.length
    while (have < first.total) {
      const d = await h.next((r) => r.kind === "rdata" && r.seq === 8, "RDATA 8")
      assert.ok(d.kind === "rdata" && d.offset === have)
      have += d.data.length
    }
    await h.send(encodePoll({ session, seq: 8, have: first.total - 10 }))
    const tail = await h.next((r) => r.kind === "rdata" && r.seq === 8, "RDATA 8 from have")
    assert.ok(tail.kind === "rdata" && tail.offset === first.total - 10 && tail.data.length === 10)

    // a session the robot does not know: NOSESSION with its bootId
    await h.send(encodeCallx({ session: (session ^ 1) >>> 0, seq: 1, ack: 0, timeoutMs: 5000, listVersion: hello.listVersion, index: countIndex, data: Trigger.request.encode({}) }))
    const nos = await h.next((r) => r.kind === "nosession", "NOSESSION")
    assert.ok(nos.kind === "nosession" && nos.bootId === t.robot.bootId)
    // garbage: ERROR with the offset; the robot goes on
    await h.send(new Uint8Array([Kind.POLL, 200, 0, 1]))
    const err = await h.next((r) => r.kind === "error", "ERROR")
    assert.ok(err.kind === "error" && /overruns/.test(err.message))
    await h.send(count(20, 8))
    await h.next((r) => r.kind === "result" && r.seq === 20, "RESULT 20")
    assert.equal(t.counted, 6)
    assert.equal(t.robot.stats.runs, 7, "6 counts and 1 picture: duplicates, settled and stale calls never ran")
  } finally {
    await h.c.endAsync()
    await t.robot.close()
    await broker.close()
  }
})
