// The implementations of the device side that the conformance suite (conformance.test.ts) runs
// against, each behind the same factory: it starts the device once (one VM, one broker) and hands
// out connected host nodes (the real host client: `connect` over Jacdac or MQTT), through which
// the cases call services and send raw frames. Every implementation serves the test firmware's
// services (test/firmware/services_fw.ts): /add_two_ints, /echo (its modes), /upload.
//   jacdac   the test firmware in the DeviceScript VM, hosts on the Jacdac bus (packages/host/src/sim/rig.ts)
//   mqtt     the same firmware, hosts over MQTT (its MQTT link to the embedded broker, loopback mode)
//   memrobot the in-memory MQTT robot of the fleet benchmark (packages/host/src/mqtt/memrobot.ts) with the test
//            firmware's handlers written in TypeScript (memFirmware below)
// What an implementation does not model is in `NOT_MODELLED` (./gaps.ts) and the table of
// test/conformance/README.md (checked to agree by conformance.test.ts).
import { connect } from "../../packages/host/src/client/node"
import type { RecordNode } from "../../packages/host/src/client/core"
import { mqttTransport } from "../../packages/host/src/client/mqtt"
import { ServiceError } from "../../packages/host/src/client/errors"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { startBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { MemoryRobot } from "../../packages/host/src/mqtt/memrobot"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { Echo, Upload, type EchoRequest, type EchoResponse } from "../../harness/services"
import { testFirmware } from "../host/services_fixture"
import type { Impl } from "./gaps"

export type { Impl } from "./gaps"

/** A running device under test. */
export interface Dut {
  readonly impl: Impl
  /** A new host: connected, service list loaded, session opened (one call made). Closed by `close()` if not before. */
  host(): Promise<RecordNode>
  /** Diagnostics for a failed case (the VM's last log lines). */
  log(): string
  close(): Promise<void>
}

const READY_MS = 60000

/** A host node ready for raw frames: its session is open (a first call made). */
async function ready(n: RecordNode): Promise<RecordNode> {
  // (a device that restarted, e.g. after a known defect, is waited for: calls fail fast while it is offline)
  const end = Date.now() + READY_MS
  for (;;) {
    try {
      await n.listServices({ timeoutMs: READY_MS })
      await n.createClient(AddTwoInts, "add_two_ints").call({ a: 0n, b: 0n }, { timeoutMs: 20000 })
      break
    } catch (e) {
      if (Date.now() > end) throw e
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  if (!n.session) throw new Error("the host has no session after a call")
  return n
}

function tracker() {
  const nodes = new Set<RecordNode>()
  return {
    add(n: RecordNode) {
      nodes.add(n)
      const close = n.close.bind(n)
      n.close = async () => {
        nodes.delete(n)
        await close()
      }
      return n
    },
    async closeAll() {
      for (const n of [...nodes]) await n.close().catch(() => {})
    },
  }
}

/** The test firmware in the VM; hosts on its Jacdac bus. */
async function jacdacDut(): Promise<Dut> {
  const rig = await startRig({ firmware: testFirmware(), echoVm: process.env.RS_ECHO_VM === "1", readyTimeoutMs: READY_MS })
  const nodes = tracker()
  return {
    impl: "jacdac",
    host: async () => ready(nodes.add(await rig.connect())),
    log: () => rig.vm.log.slice(-30).join("\n"),
    async close() {
      await nodes.closeAll()
      await rig.close()
    },
  }
}

/**
 * The test firmware in the VM; hosts over MQTT, through the embedded broker without users
 * (loopback: each client may use `robots/#`), the firmware's MQTT link set up by the rig.
 */
async function mqttDut(): Promise<Dut> {
  const broker = await startBroker({ host: "127.0.0.1", port: 0 })
  let rig: Rig
  try {
    rig = await startRig({ firmware: testFirmware(), echoVm: process.env.RS_ECHO_VM === "1", readyTimeoutMs: READY_MS, mqtt: { url: broker.url, name: "conf1" } })
  } catch (e) {
    await broker.close()
    throw e
  }
  const nodes = tracker()
  return {
    impl: "mqtt",
    host: async () => ready(nodes.add(await connect({ transport: mqttTransport({ url: broker.url, robot: "conf1" }), connectTimeoutMs: 10000 }))),
    log: () => rig.vm.log.slice(-30).join("\n"),
    async close() {
      await nodes.closeAll()
      await rig.close()
      await broker.close()
    },
  }
}

/** Limits of the test firmware (configureServices in test/firmware/services_fw.ts) the memory robot takes too. */
export const FIRMWARE_LIMITS = { maxInFlight: 10, maxRequestBytes: 20480, defaultTimeoutMs: 2000 }

/**
 * The test firmware's services as memory-robot handlers (the modes the suite uses; see
 * test/firmware/services_fw.ts): 0 answer text, 1 throw Error(text), 2 invalid_argument(text),
 * 4 count runs, 7 never return, 9 sleep delay_ms unless cancelled, 10 "<runs of 9>/<completed>".
 */
export function memFirmware(robot: MemoryRobot) {
  let runs = 0
  let started9 = 0
  let completed = 0
  const text = (t: string): EchoResponse => ({ text: t, data: new Uint8Array(0) })
  const echo = async (q: EchoRequest, ctx: { signal: AbortSignal }): Promise<EchoResponse> => {
    if (q.mode === 9) {
      started9++
      const full = await new Promise<boolean>((resolve) => {
        if (ctx.signal.aborted) return resolve(false)
        const t = setTimeout(() => resolve(true), q.delay_ms)
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t)
          resolve(false)
        })
      })
      if (full) completed++
      return text(full ? "completed" : "cancelled: " + String((ctx.signal.reason as Error)?.message ?? ctx.signal.reason))
    }
    if (q.mode === 10) return text(started9 + "/" + completed)
    if (q.delay_ms > 0) await new Promise((r) => setTimeout(r, q.delay_ms))
    if (q.mode === 1) throw new Error(q.text)
    if (q.mode === 2) throw new ServiceError("invalid_argument", q.text)
    if (q.mode === 4 && q.text === "") return text(String(++runs))
    if (q.mode === 7) return new Promise<EchoResponse>(() => {})
    const data = new Uint8Array(q.size)
    for (let i = 0; i < q.size; i++) data[i] = (i * 31 + 7) & 255
    return { text: q.text, data }
  }
  robot.addService(AddTwoInts, "/add_two_ints", (q) => ({ sum: BigInt.asIntN(64, q.a + q.b) }))
  robot.addService(Echo, "/echo", echo)
  robot.addService(Upload, "/upload", (q) => {
    let h = 0
    for (let i = 0; i < q.data.length; i += 61) h = (h * 31 + q.data[i]!) & 0xffff
    return { length: q.data.length, hash: h }
  })
}

/** The in-memory MQTT robot with the test firmware's services and limits. */
async function memrobotDut(): Promise<Dut> {
  const broker: EmbeddedBroker = await startBroker({ host: "127.0.0.1", port: 0 })
  let robot: MemoryRobot
  try {
    robot = await MemoryRobot.start({ url: broker.url, name: "mem1", maxRecord: 1024, ...FIRMWARE_LIMITS }, memFirmware)
  } catch (e) {
    await broker.close()
    throw e
  }
  const nodes = tracker()
  return {
    impl: "memrobot",
    host: async () => ready(nodes.add(await connect({ transport: mqttTransport({ url: broker.url, robot: "mem1" }), connectTimeoutMs: 10000 }))),
    log: () => JSON.stringify(robot.stats),
    async close() {
      await nodes.closeAll()
      await robot.close()
      await broker.close()
    },
  }
}

export const FACTORIES: Record<Impl, () => Promise<Dut>> = {
  jacdac: jacdacDut,
  mqtt: mqttDut,
  memrobot: memrobotDut,
}
