import { startRig } from "/work/wt/device-mqtt/host/sim/rig"
import { startBroker } from "/work/wt/device-mqtt/host/mqtt/broker"
import { connect } from "/work/wt/device-mqtt/host/client/node"
import { mqttTransport, type MqttNode } from "/work/wt/device-mqtt/host/client/mqtt"
import { Echo, echo } from "/work/wt/device-mqtt/test/host/services_fixture"
async function main() {
  const broker = await startBroker({ port: 0 })
  const rig = await startRig({ firmware: "test/firmware/services_fw.ts", mqtt: { url: broker.url, name: "tp" } })
  const n = (await connect({ transport: mqttTransport({ url: broker.url, robot: "tp" }) })) as MqttNode
  for (let i = 0; i < 100 && n.online !== true; i++) await new Promise((r) => setTimeout(r, 100))
  await n.listServices({ timeoutMs: 30000 })
  const ec = n.createClient(Echo, "echo")
  const size = 256 * 1024
  await ec.call(echo("", { size }), { timeoutMs: 60000 })
  let ms = 0
  for (let i = 0; i < 3; i++) { const t = performance.now(); await ec.call(echo("", { size }), { timeoutMs: 60000 }); ms += performance.now() - t }
  console.log(`RESULT ${process.argv[2]}: 256 KiB over MQTT: ${((3 * size) / (ms / 1000) / 1e6).toFixed(2)} MB/s`)
  await n.close(); await rig.close(); await broker.close()
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
