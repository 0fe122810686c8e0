// Robots on a broker as one FleetNode (packages/host/src/client/fleet.ts): the directory (packages/host/src/client/mqttdir.ts)
// follows `robots/+/online`; every robot it learns of joins the fleet under its name, and leaves it
// when its presence is cleared (`directoryFleet`). Used by `robot bridge --mqtt` and `robot sim --robots N`.
// Also: the in-memory demo robots over MQTT (`robot bridge --memory --robots N --mqtt`), the
// bridge's and broker's load test without a VM per robot.
import type { FleetNode } from "../client/fleet"
import { MqttDirectory, directoryFleet } from "../client/mqttdir"
import { AddTwoInts, SetBool, TakePicture, Trigger } from "../gen/interfaces"
import { ServiceError } from "../client/errors"
import { demoJpeg } from "../demo/demo"
import { MemoryRobot } from "./memrobot"

export interface MqttFleet {
  readonly fleet: FleetNode
  readonly directory: MqttDirectory
  close(): Promise<void>
}

/** Connects to the broker at `url` and keeps a fleet of its robots. */
export async function openMqttFleet(options: { url: string; username?: string; password?: string; connectTimeoutMs?: number; maxResponseBytes?: number }): Promise<MqttFleet> {
  const directory = await MqttDirectory.connect({ ...options, connectTimeoutMs: options.connectTimeoutMs ?? 5000 })
  const f = directoryFleet(directory)
  return {
    fleet: f.fleet,
    directory,
    async close() {
      await f.close()
      await directory.close()
    },
  }
}

const RESOLUTIONS: [number, number][] = [[160, 120], [320, 240], [640, 480], [800, 600], [1024, 768], [1280, 1024], [1600, 1200]]

/** N in-memory demo robots (robot1..robotN) connected to the broker at `url`, each its own MQTT client. */
export async function startMemoryRobots(url: string, count: number, credentials?: (name: string) => { username: string; password: string }): Promise<MemoryRobot[]> {
  const robots: MemoryRobot[] = []
  try {
    for (let i = 1; i <= count; i++) {
      const name = `robot${i}`
      let frame = 0
      robots.push(
        await MemoryRobot.start({ url, name, ...credentials?.(name) }, (r) => {
          r.addService(AddTwoInts, "/add_two_ints", (req) => ({ sum: BigInt.asIntN(64, req.a + req.b) }))
          r.addService(TakePicture, "/take_picture", (req) => {
            const res = RESOLUTIONS[req.resolution]
            if (!res) throw new ServiceError("invalid_argument", `resolution ${req.resolution} is not one of RES_* (0..6)`)
            const [width, height] = res
            const ms = Date.now()
            return {
              image: { header: { stamp: { sec: Math.floor(ms / 1000) | 0, nanosec: (ms % 1000) * 1e6 }, frame_id: "camera" }, format: "jpeg", data: demoJpeg(width, height, req.quality || 80, frame++) },
              width,
              height,
            }
          })
          r.addService(Trigger, "/fail", () => {
            throw new Error("the demo handler always fails")
          })
          r.addService(SetBool, "/set_led", (req) => ({ success: true, message: `led ${req.data ? "on" : "off"}` }))
        }),
      )
    }
  } catch (e) {
    await Promise.all(robots.map((r) => r.close().catch(() => {})))
    throw e
  }
  return robots
}
