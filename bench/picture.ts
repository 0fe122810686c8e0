// take_picture_svga_*, for bench/run.ts: the robot firmware (src/main.ts) with the simulated camera,
// an 800x600 picture over each of its links.
import { connect } from "../packages/host/src/client/node"
import { mqttTransport, type MqttNode } from "../packages/host/src/client/mqtt"
import { TakePicture } from "../packages/host/src/gen/interfaces"
import { startSimulatedRobot } from "../packages/host/src/sim/robot"
import { pct } from "./measure"
import { online } from "./mqtt"

/** An 800x600 picture from the robot firmware (simulated camera), median of 3, over Jacdac and over MQTT. */
export async function pictureFigures(url: string) {
  const robot = await startSimulatedRobot({ rig: { mqtt: { url, name: "svga" } } })
  const mq = (await connect({ transport: mqttTransport({ url, robot: "svga" }) })) as MqttNode
  try {
    await online(mq)
    await mq.listServices({ timeoutMs: 30000 })
    const median = async (c: { call: (r: { resolution: number; quality: number }, o: { timeoutMs: number }) => Promise<{ width: number; image: { data: Uint8Array } }> }) => {
      const t: number[] = []
      let bytes = 0
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now()
        const r = await c.call({ resolution: 3, quality: 80 }, { timeoutMs: 60000 })
        t.push(performance.now() - t0)
        if (r.width !== 800) throw new Error(`take_picture: width ${r.width}`)
        bytes = r.image.data.length
      }
      return { ms: pct(t, 50), bytes }
    }
    const j = await median(robot.node!.createClient(TakePicture, "take_picture"))
    const m = await median(mq.createClient(TakePicture, "take_picture"))
    return {
      take_picture_svga_jacdac_ms: Math.round(j.ms),
      take_picture_svga_mqtt_ms: Math.round(m.ms),
      take_picture_svga_bytes: m.bytes,
    }
  } finally {
    await mq.close()
    await robot.close()
  }
}
