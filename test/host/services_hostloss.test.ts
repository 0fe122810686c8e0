// A host that vanishes mid-call (its process killed, its cable pulled) must not hold the device's
// memory or slots: the device releases what it held for that host within its retention time, and
// the other hosts never stop being served. Real firmware in the VM, real clients; the lost host is
// a client whose link is cut both ways in the middle of an upload and a download.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { Echo, Upload, echo, pattern, uploadHash } from "../../harness/services"
import { testFirmware } from "./services_fixture"

describe("a host lost mid-call (VM)", () => {
  let rig: Rig
  before(async () => {
    rig = await startRig({ firmware: testFirmware(), echoVm: process.env.RS_ECHO_VM === "1" })
  })
  after(async () => {
    await rig?.close()
  })

  test("its upload and download are released; another host then gets the whole budget, and was served meanwhile", async () => {
    const boot = rig.node.limits!.bootId
    let cut = false
    const lost = await rig.connect({ filter: () => !cut })
    await lost.listServices({ timeoutMs: 20000 })
    // the lost host: a 16 KiB upload (it holds 512 + 16,392 of the 24,576-byte budget)
    // and a 64 KiB download, both cut off part-way. (The device streams the download to the end
    // although nobody listens: responses are not paced by the host's acknowledgements.)
    const upData = pattern(16384)
    let uploadProgress = 0
    const offRec = lost.onDeviceRecord((r) => {
      if (r.kind === "status" && r.state === 1) uploadProgress = Math.max(uploadProgress, r.offset)
    })
    const up = lost.createClient(Upload, "upload").call({ data: upData }, { timeoutMs: 60000 }).catch((e) => e)
    const down = lost.createClient(Echo, "echo").call(echo("", { size: 64 * 1024 }), { timeoutMs: 60000 }).catch((e) => e)
    const t0 = Date.now()
    while (uploadProgress < 2000 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20))
    assert.ok(uploadProgress >= 2000, `the upload never got going (device holds ${uploadProgress} bytes)`)
    cut = true
    const cutAt = Date.now()

    // the other host is served while the lost host's calls are still held
    const other = rig.node
    const add = other.createClient(AddTwoInts, "add_two_ints")
    for (let i = 0; i < 5; i++) {
      const t = Date.now()
      assert.deepEqual(await add.call({ a: BigInt(i), b: 1n }, { timeoutMs: 5000 }), { sum: BigInt(i + 1) })
      assert.ok(Date.now() - t < 2000, `a small call took ${Date.now() - t} ms beside the lost host's calls`)
    }

    // another 16 KiB upload does not fit beside the first (two need more than the budget less the
    // small calls' reserve): it runs only once the lost host's upload buffer (released
    // retentionMs = 10 s after its last byte) and its download are gone
    const data = pattern(16380)
    const r = await other.createClient(Upload, "upload").call({ data }, { timeoutMs: 45000 })
    assert.deepEqual(r, { length: data.length, hash: uploadHash(data) })
    const releasedMs = Date.now() - cutAt
    console.log(`the budget came back ${releasedMs} ms after the host was lost`)
    assert.ok(releasedMs < 25000, `released after ${releasedMs} ms`)
    assert.equal(other.limits?.bootId, boot, "the program restarted")
    assert.equal(rig.vm.log.filter((l) => /panic|OutOfMemory|InfiniteLoop/i.test(l)).length, 0, rig.vm.log.slice(-20).join("\n"))
    offRec()
    await lost.close()
    const results = await Promise.all([up, down])
    for (const e of results) assert.ok(e instanceof Error, "the lost host's calls failed on its side")
  })
})
