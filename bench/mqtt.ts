// The MQTT link's figures on the VM's test firmware (its second link, through the embedded broker),
// for bench/run.ts: round trips against the raw frame echo, 256 KiB, and 8 hosts uploading at once.
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { connect } from "../packages/host/src/client/node"
import { mqttTransport, type MqttNode } from "../packages/host/src/client/mqtt"
import type { Rig } from "../packages/host/src/sim/rig"
import { Echo, Upload, echo, pattern, uploadHash } from "../harness/services"
import { pct, sleep, timed } from "./measure"

/** Resolves once `node`'s robot is online (the heap probe restarts the program: it reconnects within seconds). */
export async function online(node: MqttNode, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs
  while (node.online !== true) {
    if (Date.now() > end) throw new Error(`robot ${node.robot} not online on MQTT within ${timeoutMs} ms`)
    await sleep(50)
  }
}

/** Over MQTT to the VM robot `name`: raw echo vs call round trips (idle, one at a time), and 256 KiB. */
export async function mqttFigures(url: string, name: string) {
  const node = (await connect({ transport: mqttTransport({ url, robot: name }) })) as MqttNode
  try {
    await online(node)
    await node.listServices({ timeoutMs: 30000 })
    const add = node.createClient(AddTwoInts, "add_two_ints")
    const ec = node.createClient(Echo, "echo")
    const probe = new Uint8Array(32)
    for (let i = 0; i < 20; i++) {
      await node.echo(probe)
      await add.call({ a: 1n, b: 2n })
    }
    const echoT: number[] = []
    const callT: number[] = []
    for (let i = 0; i < 150; i++) {
      echoT.push(await timed(() => node.echo(probe)))
      callT.push(await timed(() => add.call({ a: BigInt(i), b: 1n })))
    }
    const size = 256 * 1024
    let bytes = 0
    let ms = 0
    for (let i = 0; i < 3; i++) {
      const t = performance.now()
      const r = await ec.call(echo("", { size }), { timeoutMs: 60000 })
      ms += performance.now() - t
      if (r.data.length !== size) throw new Error(`MQTT 256 KiB: got ${r.data.length} bytes`)
      bytes += Echo.response.encode(r).length
    }
    const e50 = pct(echoT, 50)
    const c50 = pct(callT, 50)
    return {
      mqtt_echo_rtt_p50_ms: +e50.toFixed(2),
      mqtt_call_rtt_p50_ms: +c50.toFixed(2),
      mqtt_rtt_ratio: +(c50 / e50).toFixed(3),
      mqtt_bulk_bytes_per_s: Math.round(bytes / (ms / 1000)),
      mqtt_max_record: node.limits?.maxRecord ?? null,
    }
  } finally {
    await node.close()
  }
}

/**
 * `hosts` MQTT hosts (each its own broker connection and host id) upload 16 KiB to the VM robot at
 * the same moment (issue 20): how many complete with the right answer, the time until the last, and
 * restarts of the program meanwhile (a new bootId or a PANIC in the VM's log).
 */
export async function mqttUploadHosts(url: string, name: string, rig: Rig, hosts: number, log: (msg: string) => void) {
  const boot = rig.node.limits?.bootId
  const logFrom = rig.vm.log.length
  const nodes: MqttNode[] = []
  try {
    for (let i = 0; i < hosts; i++) {
      const n = (await connect({ transport: mqttTransport({ url, robot: name }) })) as MqttNode
      nodes.push(n)
      await online(n)
      await n.listServices({ timeoutMs: 30000 })
    }
    const data = nodes.map((_, i) => pattern(16 * 1024 + i))
    const t0 = performance.now()
    const got = await Promise.all(
      nodes.map((n, i) =>
        n
          .createClient(Upload, "upload")
          .call({ data: data[i]! }, { timeoutMs: 60000 })
          .then((r) => r.length === data[i]!.length && r.hash === uploadHash(data[i]!), (e) => (log(`  upload ${i}: ${(e as Error).message}`), false)),
      ),
    )
    const ms = performance.now() - t0
    const panics = rig.vm.log.slice(logFrom).filter((l) => /PANIC/.test(l)).length
    return {
      mqtt_upload_hosts_ok: got.filter((x) => x).length,
      mqtt_upload_hosts_ms: Math.round(ms),
      mqtt_upload_restarts: panics + (rig.node.limits?.bootId !== boot ? 1 : 0),
    }
  } finally {
    for (const n of nodes) await n.close()
  }
}
