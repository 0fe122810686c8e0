import { startRig } from "./host/sim/rig"
import { startBroker } from "./host/mqtt/broker"
import { connect } from "./host/client/node"
import { mqttTransport, type MqttNode } from "./host/client/mqtt"
import { Echo, echo } from "./test/host/services_fixture"
import { AddTwoInts } from "./host/gen/interfaces"
import mqtt from "mqtt"
import { callRecord, encodeName, openRecord, packRecords, parseDeviceFrame } from "./host/client/records"
const mode = process.argv[2] ?? "both"
async function main() {
  const broker = await startBroker({ port: 0 })
  const rig = await startRig({ firmware: "test/firmware/services_fw.ts", mqtt: { url: broker.url, name: "lp" } })
  const n = (await connect({ transport: mqttTransport({ url: broker.url, robot: "lp" }) })) as MqttNode
  for (let i = 0; i < 100 && n.online !== true; i++) await new Promise((r) => setTimeout(r, 100))
  await n.listServices({ timeoutMs: 30000 })
  const ec = n.createClient(Echo, "echo")
  // the idler
  const c = await mqtt.connectAsync(broker.url, { clientId: "idler", reconnectPeriod: 0 })
  let session = 0
  const nonce = 12345
  c.on("message", (_t, p) => { for (const r of parseDeviceFrame(p)) if (r.kind === "session" && r.nonce === nonce) session = r.session })
  await c.subscribeAsync("robots/lp/out/idler")
  await c.publishAsync("robots/lp/in/idler", Buffer.from(packRecords([openRecord(nonce)], 236)[0]!))
  while (!session) await new Promise((r) => setTimeout(r, 20))
  ;(c.stream as any).pause()
  let seq = 0
  const req = Echo.request.encode(echo("", { size: 256 * 1024 }))
  const end = Date.now() + 8000
  let ok = 0, bad = 0
  while (Date.now() < end) {
    if (mode !== "idler") ec.call(echo("", { size: 256 * 1024 }), { timeoutMs: 60000 }).then(() => ok++, () => bad++)
    if (mode !== "reader") await c.publishAsync("robots/lp/in/idler", Buffer.from(packRecords([callRecord({ session, seq: ++seq, ack: 0, timeoutMs: 20000 }, Echo.hash32, req.length, encodeName("/echo"), req)], 3072)[0]!))
    await new Promise((r) => setTimeout(r, 250))
  }
  const from = rig.vm.log.length
  rig.node.createClient(Echo, "echo").call(echo("probe", { mode: 5 }), { timeoutMs: 60000 }).catch(() => {})
  await rig.vm.waitForLog(/PANIC/, 60000)
  const lines = rig.vm.log.slice(from)
  const cc = lines.map((l) => /heap-probe (\d+)/.exec(l)).filter(Boolean).map((m: any) => +m[1])
  console.log(`RESULT ${mode}: free under load ${Math.max(...cc) * 256} (ok ${ok} bad ${bad}); first panic lines: ${rig.vm.log.filter(l=>/PANIC|Exception/.test(l)).slice(0,2).join(" | ")}`)
  await n.close(); await rig.close(); await broker.close()
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
