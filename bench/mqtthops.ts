// `node --import tsx bench/mqtthops.ts [--json] [--pairs N] [--tail]`: where an MQTT call's round trip goes,
// hop by hop, against a raw frame echo's (docs/benchmarks.md, "Where an MQTT call's time goes").
// Not part of `npm run bench`: it explains `mqtt_rtt_ratio`, it is not a target.
//
// One host calls `AddTwoInts` and echoes a frame in turn, back to back, on the test firmware in the
// VM through the embedded broker. Timestamps: in this process (the client and the broker) every
// socket write and `data` event, and in the VM's process the time from a socket's data to the
// program's next write on it (ROBOT_SIM_TIMING, packages/host/src/sim/sockreads.cjs). Each round
// trip is cut into: the client until its write, to the broker, through the broker, to the VM, the
// VM, back to the broker, through it, to the client, the client until the call resolves. Medians;
// with --tail also the slowest 2 % of each kind's traced round trips, hop by hop (means): which hop
// a slow round trip spent its time in (`mqtt_flood_victim_call_p99_ms` is a tail figure).
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { startBroker } from "../packages/host/src/mqtt/broker"
import { startRig } from "../packages/host/src/sim/rig"
import { connect } from "../packages/host/src/client/node"
import { mqttTransport, type MqttNode } from "../packages/host/src/client/mqtt"
import { online } from "./mqtt"

const HOPS = ["client_send", "to_broker", "broker_in", "to_vm", "vm", "to_broker_back", "broker_out", "to_client", "client_done"] as const

/** one socket event in this process: when, write or read, this end's port, the other end's, bytes */
interface Io {
  t: number
  w: boolean
  local: number
  remote: number
}

const now = () => performance.timeOrigin + performance.now()

/** Records this process's socket writes and reads while `on`. */
function traceSockets() {
  const ios: Io[] = []
  let on = false
  const P = net.Socket.prototype
  const write = P.write
  const emit = P.emit
  P.write = function (this: net.Socket, ...args: unknown[]) {
    if (on) ios.push({ t: now(), w: true, local: this.localPort ?? 0, remote: this.remotePort ?? 0 })
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  } as typeof P.write
  P.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]) {
    if (on && event === "data") ios.push({ t: now(), w: false, local: this.localPort ?? 0, remote: this.remotePort ?? 0 })
    return (emit as (this: net.Socket, ...a: unknown[]) => boolean).call(this, event, ...args)
  } as typeof P.emit
  return {
    ios,
    start: () => (on = true),
    stop() {
      on = false
      P.write = write
      P.emit = emit
    },
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

/** One round trip's hops (ms), or undefined when an event is missing from the traces. */
function hops(start: number, end: number, ios: Io[], vm: { t: number; ms: number }[], brokerPort: number): number[] | undefined {
  const win = ios.filter((e) => e.t >= start && e.t <= end + 0.3)
  const first = <T>(xs: T[], f: (x: T) => boolean) => xs.find(f)
  const send = first(win, (e) => e.w && e.remote === brokerPort)
  if (!send) return
  const client = send.local
  const brokerIn = first(win, (e) => !e.w && e.local === brokerPort && e.remote === client && e.t >= send.t)
  if (!brokerIn) return
  const toVm = first(win, (e) => e.w && e.local === brokerPort && e.remote !== client && e.t >= brokerIn.t)
  if (!toVm) return
  const vmPort = toVm.remote
  const vmWrite = first(vm, (v) => v.t >= toVm.t && v.t <= end)
  if (!vmWrite) return
  const back = first(win, (e) => !e.w && e.local === brokerPort && e.remote === vmPort && e.t >= vmWrite.t)
  if (!back) return
  const out = first(win, (e) => e.w && e.local === brokerPort && e.remote === client && e.t >= back.t)
  if (!out) return
  const got = first(win, (e) => !e.w && e.local === client && e.t >= out.t)
  if (!got) return
  const vmData = vmWrite.t - vmWrite.ms
  return [send.t - start, brokerIn.t - send.t, toVm.t - brokerIn.t, vmData - toVm.t, vmWrite.ms, back.t - vmWrite.t, out.t - back.t, got.t - out.t, end - got.t]
}

async function main() {
  const json = process.argv.includes("--json")
  const i = process.argv.indexOf("--pairs")
  const pairs = i > 0 ? Number(process.argv[i + 1]) : 300
  const dir = mkdtempSync(join(tmpdir(), "mqtthops-"))
  const timing = join(dir, "vm.txt")
  process.env.ROBOT_SIM_TIMING = timing
  const trace = traceSockets()
  const broker = await startBroker({ port: 0 })
  const brokerPort = Number(new URL(broker.url).port)
  const rig = await startRig({ firmware: "test/firmware/services_fw.ts", mqtt: { url: broker.url, name: "bench" } })
  const rounds: { kind: "echo" | "call"; start: number; end: number }[] = []
  try {
    const node = (await connect({ transport: mqttTransport({ url: broker.url, robot: "bench" }) })) as MqttNode
    try {
      await online(node)
      await node.listServices({ timeoutMs: 30000 })
      const add = node.createClient(AddTwoInts, "add_two_ints")
      const probe = new Uint8Array(32)
      for (let k = 0; k < 50; k++) {
        await node.echo(probe)
        await add.call({ a: 1n, b: 2n })
      }
      trace.start()
      for (let k = 0; k < pairs; k++) {
        let start = now()
        await node.echo(probe)
        rounds.push({ kind: "echo", start, end: now() })
        start = now()
        await add.call({ a: BigInt(k), b: 1n })
        rounds.push({ kind: "call", start, end: now() })
      }
    } finally {
      trace.stop()
      await node.close()
    }
  } finally {
    await rig.close()
    await broker.close()
  }
  const vm = readFileSync(timing, "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split(" ").map(Number))
    .map(([t, ms]) => ({ t: t!, ms: ms! }))
  rmSync(dir, { recursive: true, force: true })
  const out: Record<string, number> = {}
  for (const kind of ["echo", "call"] as const) {
    const cut = rounds.filter((r) => r.kind === kind).map((r) => ({ r, h: hops(r.start, r.end, trace.ios, vm, brokerPort) }))
    const ok = cut.filter((c) => c.h)
    out[`${kind}_rounds_traced`] = ok.length
    out[`${kind}_rtt_p50_ms`] = +median(cut.map((c) => c.r.end - c.r.start)).toFixed(3)
    HOPS.forEach((h, j) => (out[`${kind}_${h}_ms`] = +median(ok.map((c) => c.h![j]!)).toFixed(3)))
    // the slowest 2 %: their round trip and each hop's mean
    const slow = [...ok].sort((a, b) => b.r.end - b.r.start - (a.r.end - a.r.start)).slice(0, Math.max(1, Math.ceil(ok.length * 0.02)))
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    out[`${kind}_tail_rounds`] = slow.length
    out[`${kind}_tail_rtt_ms`] = +mean(slow.map((c) => c.r.end - c.r.start)).toFixed(3)
    HOPS.forEach((h, j) => (out[`${kind}_tail_${h}_ms`] = +mean(slow.map((c) => c.h![j]!)).toFixed(3)))
  }
  if (json) console.log(JSON.stringify(out))
  else {
    console.log(`${"hop (median ms)".padEnd(18)}${"echo".padStart(8)}${"call".padStart(8)}${"diff".padStart(8)}`)
    for (const h of HOPS) {
      const e = out[`echo_${h}_ms`]!
      const c = out[`call_${h}_ms`]!
      console.log(`${h.padEnd(18)}${e.toFixed(3).padStart(8)}${c.toFixed(3).padStart(8)}${(c - e).toFixed(3).padStart(8)}`)
    }
    console.log(`${"round trip p50".padEnd(18)}${out.echo_rtt_p50_ms!.toFixed(3).padStart(8)}${out.call_rtt_p50_ms!.toFixed(3).padStart(8)}  (ratio ${(out.call_rtt_p50_ms! / out.echo_rtt_p50_ms!).toFixed(3)}; traced ${out.echo_rounds_traced}/${pairs} echoes, ${out.call_rounds_traced}/${pairs} calls)`)
    if (process.argv.includes("--tail")) {
      console.log(`\nthe slowest 2 % (${out.echo_tail_rounds} echoes, ${out.call_tail_rounds} calls), mean ms per hop:`)
      console.log(`${"hop".padEnd(18)}${"echo".padStart(8)}${"call".padStart(8)}`)
      for (const h of HOPS) console.log(`${h.padEnd(18)}${out[`echo_tail_${h}_ms`]!.toFixed(3).padStart(8)}${out[`call_tail_${h}_ms`]!.toFixed(3).padStart(8)}`)
      console.log(`${"round trip".padEnd(18)}${out.echo_tail_rtt_ms!.toFixed(3).padStart(8)}${out.call_tail_rtt_ms!.toFixed(3).padStart(8)}`)
    }
  }
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
