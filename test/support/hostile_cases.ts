// Attacks of a hostile robot that read the same over every link: each runs against an arena (a
// fake robot beside a well-behaved one called throughout, both reached through the real client) that
// the link's test file makes (MQTT: test/host/client_hostile_robot.test.ts; Jacdac:
// client_hostile_robot_jacdac.test.ts). Attacks whose floods or bounds depend on the link stay in
// those files.
import assert from "node:assert/strict"
import { Trigger } from "../../packages/host/src/gen/interfaces"
import { Upload } from "../../harness/services"
import { CallState, WireStatus, encodeNosession, encodeResult, encodeStatus } from "../../packages/host/src/client/records"
import type { RecordNode } from "../../packages/host/src/client/core"
import { afterGc } from "./memory"
import { rejection } from "./rejection"
import { MiB, servedMeanwhile, triggerResult, type FakeRobotCore } from "./fakerobot"
import { until } from "../host/mqtt_helpers"
import type { callLoop } from "./victim"

/** What a link's test file gives an attack: the fake robot, the client's node of it, the victim loop. */
export interface HostileArena {
  evil: FakeRobotCore
  evilNode: RecordNode
  /** the well-behaved robot called one call after another until `stop()` */
  victim(): ReturnType<typeof callLoop>
  close(): Promise<void>
}

/** Makes an arena; `setup` scripts the fake robot before any host talks to it. */
export type ArenaOf = (setup: (evil: FakeRobotCore) => void) => Promise<HostileArena>

/**
 * A robot that announces 4 GiB responses and sends RESULTs of total 0xfffffff0: each call fails
 * naming the host's bound and the robot's, and the host holds nothing like it for them.
 */
export async function fourGiBResponses(arena: ArenaOf): Promise<void> {
  const a = await arena((evil) => {
    evil.hello.maxResponseBytes = 0xffffffff
    evil.onRecord = (host, r) => {
      if (r.kind === "call" || r.kind === "callx") evil.send(host, encodeResult({ session: r.session, seq: r.seq, status: WireStatus.ok, total: 0xfffffff0, data: new Uint8Array(100) }))
    }
  })
  try {
    const before = afterGc().arrayBuffers
    // what the host holds once it has handled the 8 RESULTs, the calls still open or not
    let results = 0
    const heldAfterResults = new Promise<number>((resolve) =>
      a.evilNode.onDeviceRecord((r) => {
        if (r.kind === "result" && ++results === 8) setImmediate(() => resolve(process.memoryUsage().arrayBuffers - before))
      }),
    )
    const v = a.victim()
    const trigger = a.evilNode.createClient(Trigger, "/trigger")
    const calls = Array.from({ length: 8 }, () => rejection(trigger.call({}, { timeoutMs: 3000 })))
    const held = await heldAfterResults
    const errors = await Promise.all(calls)
    await v.stop()
    for (const e of errors) {
      assert.equal(e.code, "resource_exhausted", e.message)
      assert.match(e.detail, /response of 4294967280 bytes, over this host's bound of 16777216 bytes \(maxResponseBytes; the robot's own: 4294967295\)/)
    }
    assert.ok(held < 16 * MiB, `the host holds ${(held / MiB).toFixed(1)} MiB more after the calls`)
    servedMeanwhile(v)
  } finally {
    await a.close()
  }
}

/**
 * A robot that answers every call with NOSESSION (of its own program) and every OPEN with a new
 * session: the call is sent again in each, one OPEN and one CALL per NOSESSION, until its deadline,
 * whose error names the refusals (before: "no answer within 2000 ms", as if the robot had been silent).
 */
export async function nosessionStorm(arena: ArenaOf): Promise<void> {
  let sessions = 100
  const a = await arena((evil) => {
    evil.onRecord = (host, r) => {
      if (r.kind === "open") evil.session = ++sessions
      if (r.kind === "call" || r.kind === "callx") evil.send(host, encodeNosession({ session: r.session, bootId: evil.hello.bootId }))
    }
  })
  try {
    const v = a.victim()
    const e = await rejection(a.evilNode.createClient(Trigger, "/trigger").call({}, { timeoutMs: 2000 }))
    await v.stop()
    assert.equal(e.code, "deadline_exceeded")
    assert.match(e.detail, /^no answer within 2000 ms: the robot answered NOSESSION \d+ times \(each session it gave was gone when the call came(; the call never ran)?\)$/)
    const told = Number(/NOSESSION (\d+) times/.exec(e.detail)![1])
    const seen = JSON.stringify([...a.evil.seen])
    const opens = a.evil.seen.get("open") ?? 0
    const calls = (a.evil.seen.get("call") ?? 0) + (a.evil.seen.get("callx") ?? 0)
    assert.ok(told > 10 && Math.abs(told - calls) <= 2, `${told} NOSESSIONs told, ${seen}`)
    assert.ok(Math.abs(opens - calls) <= 2, `one OPEN per CALL: ${seen}`)
    servedMeanwhile(v, 10)
  } finally {
    await a.close()
  }
}

/**
 * A robot whose program restarts after it took a call and before it answered: the new program
 * (a new bootId, no HELLO yet) answers the first one's session with NOSESSION. The call fails
 * 'device program restarted' and never runs again (before: the session had answered nothing and was
 * opened just now, so the call went again in a new session of the new program and ran twice); the
 * host reports the restart and asks the new program's list, the new program serves calls, and the
 * well-behaved robot is served throughout.
 */
export async function restartBeforeAnswer(arena: ArenaOf): Promise<void> {
  const a = await arena(() => {})
  try {
    let runs = 0
    const lists = () => a.evil.seen.get("list") ?? 0
    a.evil.onRecord = (host, r) => {
      // the first program runs the call (and dies before answering); the second knows no session of the first
      if (r.kind === "call" || r.kind === "callx") {
        runs++
        if (a.evil.hello.bootId === 0x1234) {
          a.evil.hello.bootId = 0x5678
          a.evil.session = 78
          return
        }
        a.evil.send(host, triggerResult(r.session, r.seq, `run ${runs}`))
      }
      if ((r.kind === "poll" || r.kind === "data" || r.kind === "done") && r.session === 77) a.evil.send(host, encodeNosession({ session: 77, bootId: a.evil.hello.bootId }))
    }
    await a.evilNode.listServices({ timeoutMs: 5000 })
    const listsBefore = lists()
    const restarted = new Promise<void>((resolve) => a.evilNode.onStateChange((_s, i) => i.restarted && resolve()))
    const v = a.victim()
    const trigger = a.evilNode.createClient(Trigger, "/trigger")
    const e = await rejection(trigger.call({}, { timeoutMs: 5000 }).then((r) => assert.fail(`the call succeeded: ${r.message}`)))
    assert.equal(e.code, "unavailable", e.message)
    assert.match(e.detail, /device program restarted/)
    await restarted
    await until(() => lists() > listsBefore, "the host asking the new program's list", 5000)
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(runs, 1, `the call ran ${runs} times`)
    assert.equal((await trigger.call({}, { timeoutMs: 5000 })).message, "run 2")
    await v.stop()
    servedMeanwhile(v, 3)
  } finally {
    await a.close()
  }
}

/**
 * A robot that, once an upload starts, sends every 5 ms 100 STATUS records (receiving and gap in
 * turn, at offsets all over the request), and over MQTT as many for every record the host sends: what the
 * host resends is bounded in time, the call fails at its deadline, the well-behaved robot is served.
 * (Before, over MQTT: 52,500 STATUS records in 2 s had the host resend 20,993 times and send 86,464
 * frames, the good robot was called twice, one call took 2.3 s. Now one resend per 50 ms, and at once
 * only when the robot holds all of the last one sent, which moves on by half a window at least.)
 * `link.frameBytes` is what one frame of an upload carries on the link, `link.maxFrames` the most
 * frames the host may send the robot in the 2 s; `link.everyRecord`: a burst for every record the
 * host sends too (MQTT: a few 16 KiB frames; on Jacdac's 944-byte ones the bursts alone would fill
 * the simulated bus, which is not what this test is about).
 */
export async function statusGap(arena: ArenaOf, link: { frameBytes: number; maxFrames: number; everyRecord: boolean }): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const a = await arena((evil) => {
    evil.services = ["/upload"]
    evil.types.set("/upload", Upload)
    Object.assign(evil.hello, { maxRequestBytes: 65536, window: 65535 })
    let k = 0
    const burst = (host: string, session: number, seq: number) =>
      evil.send(host, ...Array.from({ length: 100 }, () => encodeStatus({ session, seq, state: k % 2 ? CallState.gap : CallState.receiving, offset: (k++ * 7919) % 60000 })))
    evil.onRecord = (host, r) => {
      if (r.kind !== "call" && r.kind !== "data") return
      if (timer && !link.everyRecord) return
      burst(host, r.session, r.seq)
      timer ??= setInterval(() => burst(host, r.session, r.seq), 5)
    }
  })
  try {
    const v = a.victim()
    const e = await rejection(a.evilNode.createClient(Upload, "/upload").call({ data: new Uint8Array(60000) }, { timeoutMs: 2000 }))
    clearInterval(timer)
    assert.equal(e.code, "deadline_exceeded")
    await v.stop()
    const { requestResends, packetsSent } = a.evilNode.stats
    assert.ok(requestResends <= 2000 / 50 + 60000 / link.frameBytes + 10, `${requestResends} resends`)
    assert.ok(packetsSent <= link.maxFrames, `${packetsSent} frames sent the robot`)
    servedMeanwhile(v, 10)
  } finally {
    clearInterval(timer)
    await a.close()
  }
}

/**
 * The check of the malformed-records attack, whose frames each link's test file sends within its own
 * frame size (RDATA overlapping, far past the end, for calls never made and other sessions, STATUS of
 * unknown states, records cut short, of unknown kinds, overrunning their frame): /trigger still gets
 * its whole response `message`, /past_end (RDATA past the response's end) fails `pastEnd`, each
 * malformed record is reported as `errors` says, in order, the gap was asked for with a POLL, and the
 * well-behaved robot was served meanwhile. Closes the arena.
 */
export async function checkMalformedRecords(a: HostileArena, expect: { message: string; pastEnd: string; errors: RegExp[] }): Promise<void> {
  try {
    const errors: string[] = []
    a.evilNode.onProtocolError((m) => errors.push(m))
    const v = a.victim()
    const res = await a.evilNode.createClient(Trigger, "/trigger").call({}, { timeoutMs: 5000 })
    assert.equal(res.message, expect.message)
    const past = await rejection(a.evilNode.createClient(Trigger, "/past_end").call({}, { timeoutMs: 5000 }))
    assert.equal(past.code, "internal")
    assert.equal(past.detail, expect.pastEnd)
    await v.stop()
    assert.equal(errors.length, expect.errors.length, errors.join("\n"))
    expect.errors.forEach((re, i) => assert.match(errors[i]!, re))
    assert.ok(a.evil.seen.get("poll")! >= 1, "the gap was asked for")
    servedMeanwhile(v)
  } finally {
    await a.close()
  }
}
