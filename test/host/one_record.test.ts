// A firmware whose service types all fit one record carries no multi-frame paths (issue 18;
// packages/device/src/rpc/multiframe.ts): one AddTwoInts over Jacdac (test/firmware/one_record_fw.ts,
// as bench:size's least firmware), booted in the VM. Its image has none of multiframe.ts's
// functions; its calls are answered in one RESULT; a request that does not come whole in its CALL
// still gets the protocol's refusal (resource_exhausted, remembered for a POLL), DATA never makes
// a call, and the program neither restarts nor stops answering.
import assert from "node:assert/strict"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { after, before, describe, test } from "node:test"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { CallState, WireStatus, encodeCall, encodeData, encodeName, encodePoll, packRecords, type DeviceRecord } from "../../packages/host/src/client/records"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { ROOT, buildFirmware } from "../../packages/host/src/sim/vm"
import { findInterfaceFiles, loadSources } from "../../packages/host/src/idl/load"
import { emitDevice } from "../../packages/host/src/codegen/device"


const FIRMWARE = "test/firmware/one_record_fw.ts"

/** test/firmware/one_record_gen/interfaces.ts: the device code of AddTwoInts alone */
function writeInterfaces(): void {
  const file = "example_interfaces/srv/AddTwoInts.srv"
  const sources = findInterfaceFiles([join(ROOT, "services")]).filter((f) => f.file === file)
  const out = join(ROOT, "test/firmware/one_record_gen/interfaces.ts")
  mkdirSync(join(ROOT, "test/firmware/one_record_gen"), { recursive: true })
  writeFileSync(out, emitDevice(loadSources(sources), { sources: [`services/${file}`], outFile: out }))
}

describe("a firmware of one-record service types (no multi-frame paths)", () => {
  let rig: Rig
  let boot: number
  before(async () => {
    writeInterfaces()
    rig = await startRig({ firmware: buildFirmware(FIRMWARE), echoVm: process.env.RS_ECHO_VM === "1" })
    boot = rig.node.limits!.bootId
    await rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 0n, b: 0n })
  })
  after(async () => {
    await rig?.close()
  })

  /** the records the device sends until `done` says enough (or 5 s) */
  function watch(done: (r: DeviceRecord) => boolean): Promise<DeviceRecord> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off()
        reject(new Error("no such record within 5 s"))
      }, 5000)
      const off = rig.node.onDeviceRecord((r) => {
        if (done(r)) {
          clearTimeout(t)
          off()
          resolve(r)
        }
      })
    })
  }

  async function healthy(what: string) {
    const r = await rig.node.createClient(AddTwoInts, "add_two_ints").call({ a: 40n, b: 2n }, { timeoutMs: 5000 })
    assert.deepEqual(r, { sum: 42n }, what)
    assert.equal(rig.node.limits?.bootId, boot, `${what}: the program restarted`)
    assert.equal(rig.vm.log.filter((l) => /panic|OutOfMemory|InfiniteLoop|exception/i.test(l)).length, 0, rig.vm.log.slice(-20).join("\n"))
  }

  test("the image has none of the multi-frame paths", () => {
    const dbg = JSON.parse(readFileSync(join(buildFirmware(FIRMWARE).dir, "bytecode-dbg.json"), "utf8")) as { sources: { path: string; length: number }[]; functions: { name: string; location?: number[] }[] }
    const starts: [number, string][] = []
    let off = 0
    for (const s of dbg.sources) {
      starts.push([off, s.path])
      off += s.length
    }
    const fileOf = (pos: number) => starts.filter(([o]) => pos >= o).pop()?.[1] ?? "?"
    const multi = dbg.functions.filter((f) => /rpc\/multiframe\.ts$/.test(fileOf(f.location?.[0] ?? -1))).map((f) => f.name)
    assert.deepEqual(multi, [])
    assert.ok(!dbg.functions.some((f) => f.name === "read" && /cdr\/cdr\.ts$/.test(fileOf(f.location?.[0] ?? -1))), "Segments.read is not in the image")
  })

  test("calls are answered, many at once", async () => {
    const add = rig.node.createClient(AddTwoInts, "add_two_ints")
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => add.call({ a: BigInt(i), b: -(2n ** 52n) })))
    rs.forEach((r, i) => assert.deepEqual(r, { sum: BigInt(i) - 2n ** 52n }))
    await healthy("after 12 calls")
  })

  test("a request that does not come whole in its CALL is refused resource_exhausted, and the refusal is kept for a POLL", async () => {
    const n = rig.node
    const name = encodeName("add_two_ints")
    const req = AddTwoInts.request.encode({ a: 1n, b: 2n })
    for (const [seq, total, data] of [
      [1000, req.length, req.subarray(0, 8)],
      [1001, 16000, new Uint8Array(0)],
      [1002, 1 << 20, req],
    ] as const) {
      const seen: string[] = []
      const offLog = n.onDeviceRecord((r) => void seen.push(JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v))))
      const refused = watch((r) => r.kind === "result" && r.session === n.session && r.seq === seq).catch((e) => {
        throw new Error(`${e.message} (seq ${seq}): ${seen.join(" ")}\n${rig.vm.log.slice(-15).join("\n")}`)
      })
      await n.sendRawFrame(encodeCall({ session: n.session, seq, ack: 0, timeoutMs: 5000, hash32: AddTwoInts.hash32, total, name, data }))
      const r = (await refused) as Extract<DeviceRecord, { kind: "result" }> & { data: Uint8Array }
      offLog()
      assert.equal(r.status, WireStatus.resource_exhausted)
      assert.match(Buffer.from(r.data).toString(), total > 20480 ? /exceeds maxRequestBytes/ : /not whole in its CALL: no DATA records here/)
      // the rest of the request: no call is made of it, and the refusal stays the answer
      await n.sendRawFrame(encodeData({ session: n.session, seq, offset: data.length, data: new Uint8Array(8) }))
      const again = watch((x) => x.kind === "result" && x.session === n.session && x.seq === seq)
      await n.sendRawFrame(encodePoll({ session: n.session, seq, have: 0 }))
      assert.equal(((await again) as Extract<DeviceRecord, { kind: "result" }>).status, WireStatus.resource_exhausted)
    }
    await healthy("after the refusals")
  })

  test("DATA for a call the device never saw is answered STATUS(unknown); a flood of it changes nothing", async () => {
    const n = rig.node
    const unknown = watch((r) => r.kind === "status" && r.session === n.session && r.seq === 5000)
    await n.sendRawFrame(encodeData({ session: n.session, seq: 5000, offset: 0, data: new Uint8Array(16) }))
    assert.equal(((await unknown) as Extract<DeviceRecord, { kind: "status" }>).state, CallState.unknown)
    const recs = Array.from({ length: 60 }, (_, i) => encodeData({ session: n.session, seq: 6000 + i, offset: i * 200, data: new Uint8Array(200) }))
    for (const p of packRecords(recs)) await n.sendRawFrame(p)
    await healthy("after a DATA flood")
  })
})
