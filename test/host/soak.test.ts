// The adversarial soak (issue 16): hostile frames from a seeded generator (harness/attack.ts:
// valid, truncated, mutated, replayed and random records from many sessions) for RS_SOAK_MS
// (default 60 s), on both links of one robot program at once: 1,000 frames/s over Jacdac and
// MQTT_RATE/s over MQTT from one MQTT host (through a proxy that cuts the broker's stream to the robot
// into pieces of every size), while 3 well-behaved Jacdac hosts and 2 MQTT hosts call. The invariants are checked
// WHILE it runs: the program never restarts (bootId, the VM's log), every well-behaved call is
// answered within BOUND_MS (busy retries allowed), each counted call runs its handler exactly once;
// afterwards the budget and the free heap are back to their idle figures.
// A failure prints the seed: RS_SOAK_SEED=<seed> replays the same frames.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { ServiceError } from "../../packages/host/src/client/errors"
import type { RecordNode } from "../../packages/host/src/client/core"
import { connect } from "../../packages/host/src/client/node"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import { startBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { attackFrames } from "../../harness/attack"
import { startChunker, type Chunker } from "../support/chunker"
import { heapFree } from "../../harness/heap"
import { Echo, Upload, echo, pattern, uploadHash } from "../../harness/services"
import { testFirmware } from "./services_fixture"

const SEED = Number(process.env.RS_SOAK_SEED ?? 16016)
const SOAK_MS = Number(process.env.RS_SOAK_MS ?? 60000)
const RATE = 1000
/**
 * Both links by default (RS_SOAK_MQTT=0: Jacdac only). The MQTT half ran the robot out of memory
 * 0.2-0.4 s in (PANIC 60004) until each MQTT peer's own heap (about 1.6 KB: PEER_HEAP in
 * packages/device/src/net/mqtt.ts) was charged to the call budget and the peers became 3: the
 * budget's 24 KB then left too little heap for the floods' packets beside the link. 3 MQTT hosts
 * here (2 calling, 1 attacking), one per peer: a host beyond the peers is served only when one is
 * idle (mqtt_device.test.ts "peers are bounded").
 */
const WITH_MQTT = process.env.RS_SOAK_MQTT !== "0"
const MQTT_RATE = WITH_MQTT ? Number(process.env.RS_SOAK_MQTT_RATE ?? 300) : 0
/** the longest a well-behaved call may take during the soak (ms) */
const BOUND_MS = 5000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe(`adversarial soak, Jacdac${WITH_MQTT ? " and MQTT" : ""} (seed ${SEED}; replay with RS_SOAK_SEED=${SEED})`, () => {
  let rig: Rig
  let broker: EmbeddedBroker | undefined
  let chunker: Chunker | undefined
  const mqttHosts: RecordNode[] = []
  before(async () => {
    if (WITH_MQTT) {
      // (no rate per host at the broker: the hostile frames must reach the robot, whose own
      // defences are under test here; the broker's are tested in mqtt_device and mqtt_queues)
      broker = await startBroker({ port: 0, hostRateBytesPerS: 1 << 30 })
      chunker = await startChunker(broker.port, SEED)
    }
    rig = await startRig({ firmware: testFirmware(), echoVm: process.env.RS_ECHO_VM === "1", mqtt: WITH_MQTT ? { url: chunker!.url, name: "soak" } : undefined })
  })
  after(async () => {
    for (const h of mqttHosts) await h.close().catch(() => {})
    await rig?.close()
    await chunker?.close()
    await broker?.close()
  })

  async function mqttHost(): Promise<RecordNode> {
    const n = await connect({ transport: mqttTransport({ url: broker!.url, robot: "soak" }) })
    mqttHosts.push(n)
    const end = Date.now() + 30000
    for (;;) {
      try {
        await n.listServices({ timeoutMs: 5000 })
        return n
      } catch (e) {
        if (Date.now() > end) throw e
      }
    }
  }

  async function stats(n: RecordNode): Promise<number[]> {
    return (await n.createClient(Echo, "echo").call(echo("", { mode: 12 }))).text.split("/").map(Number)
  }

  test(`${SOAK_MS / 1000} s of hostile frames, ${RATE}/s over Jacdac and ${MQTT_RATE}/s over MQTT, while 3 + 2 hosts call`, async () => {
    const boot = rig.node.limits!.bootId
    const jacdacVictims: RecordNode[] = [rig.node, await rig.connect(), await rig.connect()]
    const mqttVictims = WITH_MQTT ? [await mqttHost(), await mqttHost()] : []
    const victims = [...jacdacVictims, ...mqttVictims]
    const attackers: RecordNode[] = [await rig.connect(), await rig.connect()]
    const mqttAttackers = WITH_MQTT ? [await mqttHost()] : []
    for (const n of [...victims, ...attackers, ...mqttAttackers]) {
      await n.listServices()
      await n.createClient(AddTwoInts, "add_two_ints").call({ a: 0n, b: 0n })
    }
    // the idle figure: the call table's budget once the warm-up calls are settled
    const idle = (await stats(rig.node))[0]!
    const listed = (rig.node as unknown as { listed(): { version: number; services: { name: string }[] } }).listed()
    const index: Record<string, number> = {}
    listed.services.forEach((s, i) => (index[s.name] = i))
    const target = { sessions: attackers.map((a) => a.session), listVersion: listed.version, index }
    const gen = attackFrames(SEED, target)
    // over MQTT: the same kinds of frames, up to the link's record size, in the MQTT hosts' sessions
    const mqttTarget = { sessions: mqttAttackers.map((a) => a.session), listVersion: listed.version, index }
    const mqttGen = attackFrames(SEED + 1, mqttTarget, mqttAttackers[0]?.limits?.maxRecord)
    const runs0 = Number((await victims[0]!.createClient(Echo, "echo").call(echo("", { mode: 4 }))).text)

    const violations: string[] = []
    const violate = (msg: string) => {
      if (violations.length < 20) violations.push(`${((performance.now() - t0) / 1000).toFixed(1)} s: ${msg}`)
    }
    const t0 = performance.now()
    let on = true
    const counted: number[] = []
    const rtt: number[] = []
    let calls = 0

    // the attack: frames at RATE/s from the attackers' Jacdac links, MQTT_RATE/s from the MQTT ones
    let sent = 0
    let mqttSent = 0
    const attack = (async () => {
      while (on) {
        const due = Math.floor(((performance.now() - t0) * RATE) / 1000)
        while (sent < due && on) {
          await attackers[sent % attackers.length]!.sendRawFrame(gen.next())
          sent++
        }
        const mdue = Math.floor(((performance.now() - t0) * MQTT_RATE) / 1000)
        while (mqttSent < mdue && on) {
          await mqttAttackers[mqttSent % mqttAttackers.length]!.sendRawFrame(mqttGen.next()).catch(() => {})
          mqttSent++
        }
        await sleep(2)
      }
    })()
    // the attackers' own sessions are sometimes given up (the generator's DONEs and ACKs overflow
    // them): a real call now and then opens a new one, which the generator then uses
    const refresh = (async () => {
      while (on) {
        await sleep(3000)
        for (const a of [...attackers, ...mqttAttackers]) await a.createClient(AddTwoInts, "add_two_ints").call({ a: 1n, b: 1n }, { timeoutMs: 20000 }).catch(() => {})
        target.sessions = attackers.map((a) => a.session)
        mqttTarget.sessions = mqttAttackers.map((a) => a.session)
      }
    })()
    // the watch: the program never restarts, checked every 100 ms
    let logFrom = 0
    const watch = (async () => {
      while (on) {
        const lines = rig.vm.log.slice(logFrom)
        logFrom += lines.length
        for (const l of lines) if (/panic|OutOfMemory|InfiniteLoop|RangeError|Exception/i.test(l)) violate(`VM: ${l}`)
        for (const v of victims) if (v.limits && v.limits.bootId !== boot) violate(`the program restarted (bootId ${v.limits.bootId})`)
        await sleep(100)
      }
    })()
    // the well-behaved hosts
    const work = victims.map(async (v, k) => {
      const ec = v.createClient(Echo, "echo")
      const add = v.createClient(AddTwoInts, "add_two_ints")
      const up = v.createClient(Upload, "upload")
      for (let i = 0; performance.now() - t0 < SOAK_MS; i++) {
        const c0 = performance.now()
        try {
          if (i % 3 === 0) counted.push(Number((await ec.call(echo("", { mode: 4 }), { timeoutMs: BOUND_MS })).text))
          else if (i % 10 === 1 && k === 0) {
            const data = pattern(2000 + i)
            assert.deepEqual(await up.call({ data }, { timeoutMs: BOUND_MS }), { length: data.length, hash: uploadHash(data) })
          } else assert.deepEqual(await add.call({ a: BigInt(i), b: BigInt(k) }, { timeoutMs: BOUND_MS }), { sum: BigInt(i + k) })
          rtt.push(performance.now() - c0)
          calls++
        } catch (e) {
          violate(`host ${k} call ${i}: ${e instanceof ServiceError ? `${e.code}: ${e.message}` : String(e)}`)
          if (violations.length >= 20) break
        }
      }
    })
    await Promise.all(work)
    on = false
    const secs = (performance.now() - t0) / 1000
    await Promise.all([attack, refresh, watch])
    const s = [...rtt].sort((a, b) => a - b)
    const p = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(1)
    console.log(
      `soak seed ${SEED}: ${sent} Jacdac frames in ${secs.toFixed(1)} s (${(sent / secs).toFixed(0)}/s) ${JSON.stringify(gen.stats)}, ` +
        `${mqttSent} MQTT frames (${(mqttSent / secs).toFixed(0)}/s) ${JSON.stringify(mqttGen.stats)}, ${chunker?.pieces ?? 0} pieces to the robot; ` +
        `${calls} well-behaved calls, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms`,
    )
    assert.deepEqual(violations, [], `seed ${SEED} (replay: RS_SOAK_SEED=${SEED})`)
    assert.ok(sent / secs >= RATE * 0.95, `the Jacdac attack reached only ${(sent / secs).toFixed(0)} frames/s`)
    if (WITH_MQTT) assert.ok(mqttSent / secs >= MQTT_RATE * 0.95, `the MQTT attack reached only ${(mqttSent / secs).toFixed(0)} frames/s`)

    // exactly once: each counted call got its own run, and there were no other runs
    const runs1 = Number((await victims[0]!.createClient(Echo, "echo").call(echo("", { mode: 4 }))).text)
    assert.equal(new Set(counted).size, counted.length, `seed ${SEED}: two counted calls saw the same run`)
    assert.equal(runs1 - runs0 - 1, counted.length, `seed ${SEED}: handler runs != counted calls`)

    // the budget back to idle once what the attack left has expired (retention 10 s, lingering
    // handlers terminated after 1 s)
    const tEnd = performance.now()
    let now = await stats(rig.node)
    while (now[0]! > idle) {
      assert.ok(performance.now() - tEnd < 20000, `seed ${SEED}: budget still ${now[0]} bytes used (idle ${idle}), ${now[1]} records 20 s after the soak`)
      await sleep(500)
      now = await stats(rig.node)
    }
    // the free heap once refusals and sessions that never called have expired (10 s): probed now
    // (the program restarts), then on the fresh program with the same hosts
    await sleep(11000)
    const afterSoak = await heapFree(rig, 0)
    for (const v of [...victims, ...attackers, ...mqttAttackers]) {
      for (let k = 0; ; k++) {
        // (the MQTT hosts first hear that the program restarted, then open a new session)
        try {
          await v.createClient(AddTwoInts, "add_two_ints").call({ a: 0n, b: 0n }, { timeoutMs: 20000 })
          break
        } catch (e) {
          if (k > 3) throw e
        }
      }
    }
    const fresh = await heapFree(rig, 0)
    console.log(`soak seed ${SEED}: free heap ${afterSoak} bytes after the soak, ${fresh} on a fresh program`)
    // What may stay is bounded by design: sessions that called are given up only for a new host,
    // never by time, and each keeps at most MAX_RANGES (24) settled-seq ranges, two 8-byte values
    // each, which the attack's scattered seqs fill and the fresh program's sessions do not have
    // (arrays keep their capacity); at most maxSessions (8) on the Jacdac link and 4 per MQTT
    // peer, of which the MQTT attacker uses its own; the probe counts in 256-byte steps. (Kept:
    // 2,304 bytes in one 30 s Jacdac run, 0 to 512 in others; 1,792 with MQTT.)
    const KEPT_MAX = (8 + (WITH_MQTT ? 4 : 0)) * 24 * 2 * 8 + 256
    assert.ok(afterSoak >= fresh - KEPT_MAX, `seed ${SEED}: free heap ${afterSoak} after the soak, ${fresh} idle: more than the ${KEPT_MAX} bytes live sessions may keep`)
  })
})
