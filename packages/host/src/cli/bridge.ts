// `robot bridge`: serves the robot's services over rosbridge v2 (WebSocket), HTTP and a dashboard.
// The robot is, by choice: a board on a serial port (--serial), a DeviceScript simulator through
// devtools (--devtools), the built-in simulated robot (default), or an in-memory demo device with
// host-side handlers (--memory: no robot at all, for trying the tools; --memory --robots N: a fleet
// of N of them). Each source is one function below returning a Robot. Runs until Ctrl+C. Serving
// the bridge in front of it is ./serve.ts's, which `robot sim` shares.
import type { Command } from "commander"
import * as path from "node:path"
import type { RobotNode } from "../client/api"
import { MAX_CONNECTIONS_PER_ADDRESS } from "../bridge/guard"
import { HOST_RATE_BYTES_PER_S } from "../mqtt/broker"
import { connectLink, wantsDirectLink } from "./link"
import {
  addListenOptions,
  addMaxResponseOption,
  BROKER_FLAGS,
  brokerOptionsGiven,
  intOption,
  listenSettings,
  maxResponseBytes,
  serveBridge,
  startCliBroker,
  type BrokerCommandOptions,
  type CliBridge,
  type ListenCommandOptions,
} from "./serve"

export interface BridgeCommandOptions extends BrokerCommandOptions, ListenCommandOptions {
  serial?: string | boolean
  devtools?: string | boolean
  memory?: boolean
  /** --robots <n>: with --memory, a fleet of n demo robots */
  robots?: string
  /** --wait [seconds] for the simulator lock (the default robot is the simulated one) */
  wait?: string | boolean
  /** --mqtt [url]: robots on a broker (true: the embedded one) */
  mqtt?: string | boolean
  /** --max-response-bytes <n>: the largest response the bridge's client takes from a robot */
  maxResponseBytes?: string
}

/** What the bridge serves: one robot, or a fleet of robots (packages/host/src/client/fleet.ts). */
interface Robot {
  node: RobotNode
  what: string
  close(): Promise<void>
}

async function openRobot(o: BridgeCommandOptions): Promise<Robot> {
  if (o.robots !== undefined && !o.memory) throw new Error("--robots <n> goes with --memory (a fleet of in-memory demo robots)")
  if (o.maxResponseBytes !== undefined && o.memory && o.mqtt === undefined) {
    throw new Error("--max-response-bytes bounds what the bridge takes from a robot; --memory alone has none (with --mqtt its demo robots are reached as robots are)")
  }
  if (brokerOptionsGiven(o) && o.mqtt !== true) throw new Error(`${BROKER_FLAGS} configure the embedded broker: use them with --mqtt and no URL`)
  if (o.mqtt !== undefined) return await openMqtt(o)
  if (o.memory) return openMemory(o)
  if (wantsDirectLink(o)) return await openDirect(o)
  return await openSimulated(o)
}

/** --memory: the in-memory demo device; with --robots N, a fleet of N of them (robot1..robotN). */
function openMemory(o: BridgeCommandOptions): Robot {
  const { demoFleet, demoMemoryNode } = (require("../demo/demo") as typeof import("../demo/demo"))
  if (o.robots === undefined) {
    const node = demoMemoryNode()
    return { node, what: "the in-memory demo device (host-side handlers, no robot)", close: () => node.close() }
  }
  const n = intOption("--robots", o.robots, 1, 1, 1000)
  const fleet = demoFleet(n)
  return { node: fleet, what: `${n} in-memory demo robots (robot1${n > 1 ? `..robot${n}` : ""}: host-side handlers, no robot)`, close: () => fleet.close() }
}

/** --mqtt [url]: every robot on a broker, as a fleet (the embedded broker when no URL is given). */
async function openMqtt(o: BridgeCommandOptions): Promise<Robot> {
  const { openMqttFleet, startMemoryRobots } = (require("../mqtt/fleet") as typeof import("../mqtt/fleet"))
  const closers: (() => Promise<void>)[] = []
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => {})
  }
  try {
    let url: string
    let creds: { username?: string; password?: string } = {}
    let where: string
    let robotCreds: ((name: string) => { username: string; password: string }) | undefined
    if (typeof o.mqtt === "string") {
      url = o.mqtt
      const u = new URL(url)
      creds = u.username
        ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
        : { username: process.env.ROBOT_MQTT_USER || undefined, password: process.env.ROBOT_MQTT_PASSWORD || undefined }
      where = `the broker ${u.protocol}//${u.host}`
    } else {
      const b = await startCliBroker(o)
      closers.push(() => b.broker.close())
      url = b.broker.url
      creds = { username: b.username, password: b.password }
      where = `the embedded broker ${url}`
      const users = b.users
      if (users) {
        robotCreds = (name) => {
          const u = users.find((x) => x.role === "robot" && x.name === name)
          if (!u) throw new Error(`--broker-users has no robot user ${name}`)
          return { username: u.name, password: u.password }
        }
      }
      console.error(`[broker] robots connect with MQTT_URL=${url.replace("127.0.0.1", "<this machine's address>")} (docs/mqtt.md)`)
    }
    if (o.memory) {
      const n = intOption("--robots", o.robots, 1, 1, 5000)
      const robots = await startMemoryRobots(url, n, robotCreds)
      closers.push(async () => {
        await Promise.all(robots.map((r) => r.close()))
      })
      where += `, with ${n} in-memory demo robots (robot1${n > 1 ? `..robot${n}` : ""}) on it`
    }
    const f = await openMqttFleet({ url, ...creds, maxResponseBytes: maxResponseBytes(o) })
    closers.push(() => f.close())
    if (o.memory) await f.directory.waitFor({ count: intOption("--robots", o.robots, 1, 1, 5000), timeoutMs: 20000 }).catch(() => {})
    else await f.directory.settled().catch(() => {})
    return { node: f.fleet, what: `the robots on ${where}`, close: closeAll }
  } catch (e) {
    await closeAll()
    throw e
  }
}

/** --serial / --devtools: a board or a DeviceScript simulator, through the host client. */
async function openDirect(o: BridgeCommandOptions): Promise<Robot> {
  const { node, transport } = await connectLink(o, { maxResponseBytes: maxResponseBytes(o) })
  return { node, what: `the robot on ${transport.description}`, close: () => node.close() }
}

/** The default: the robot firmware in the DeviceScript VM with simulated hardware. */
async function openSimulated(o: BridgeCommandOptions): Promise<Robot> {
  const { otherFirmwareNote, startSimulatedRobot } = (require("../sim/robot") as typeof import("../sim/robot"))
  const { lockWaitMs, probeSimulatorLock, startupProgress } = (require("./startup") as typeof import("./startup"))
  const waitMs = lockWaitMs(o.wait)
  if (waitMs === 0) await probeSimulatorLock()
  // the project's firmware (devs.json's firmware.entry), as `robot sim` runs it
  const { loadConfigIfPresent } = (require("../config") as typeof import("../config"))
  const project = loadConfigIfPresent()
  const firmware = project ? path.resolve(project.dir, project.config.firmware.entry) : undefined
  const progress = startupProgress()
  const robot = await startSimulatedRobot({ firmware, rig: { lockWaitMs: waitMs, onProgress: progress.step, maxResponseBytes: maxResponseBytes(o) } }).finally(() => progress.done())
  if (!robot.node) {
    await robot.close()
    throw new Error("the simulated robot started without a client node")
  }
  const entry = firmware ? path.relative(process.cwd(), firmware) : "src/main.ts"
  if (!robot.robotFirmware) console.log(otherFirmwareNote(entry))
  return { node: robot.node, what: `the simulated robot (${entry} in the DeviceScript VM)`, close: () => robot.close() }
}

export async function runBridge(o: BridgeCommandOptions): Promise<void> {
  const listen = listenSettings(o)
  maxResponseBytes(o)
  // a taken port is said before the robot starts
  const { ensurePortFree } = (require("./startup") as typeof import("./startup"))
  await ensurePortFree(listen.host, listen.port)
  const robot = await openRobot(o)
  let bridge: CliBridge
  try {
    bridge = await serveBridge(robot.node, robot.what, listen)
  } catch (e) {
    await robot.close()
    throw e
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once("SIGINT", stop)
    process.once("SIGTERM", stop)
  })
  console.error("stopping the bridge")
  await bridge.close()
  await robot.close()
}

export function registerBridge(program: Command): void {
  const cmd = program
    .command("bridge")
    .description("serve the robot's services over rosbridge v2 (WebSocket), HTTP and a web dashboard")
    .option("--serial [path]", "the robot is a board on this serial port (default: the first Jacdac port)")
    .option("--devtools [url]", "the robot runs in a DeviceScript simulator at this devtools URL (default from devs.json)")
    .option("--memory", "no robot: serve the in-memory demo device (host-side handlers)")
    .option("--robots <n>", "with --memory: a fleet of n demo robots, robot1..robotN, each under its name (/robot1/add_two_ints)")
    .option("--wait [seconds]", "if another `robot sim` or a test suite is using the simulator, wait for it (default 300 s) instead of failing")
    .option("--mqtt [url]", "serve every robot on an MQTT broker as /<robot>/<service>: this broker URL, or without one an embedded broker (docs/mqtt.md)")
    .option("--broker-host <address>", "with --mqtt and no URL: where the embedded broker listens (default 127.0.0.1; others need --broker-users)")
    .option("--broker-port <port>", "with --mqtt and no URL: the embedded broker's port (default 1883)")
    .option("--broker-users <file>", "with --mqtt and no URL: JSON [{name, password, role: robot|host}]: per-robot credentials and topic rules")
    .option("--broker-host-rate <bytes/s>", `with --mqtt and no URL: what one host may send one robot per second; more is dropped (default ${HOST_RATE_BYTES_PER_S}; lower for slow robots)`)
  addListenOptions(cmd)
  cmd
    .option("--allow-origin <origin...>", "browser origins allowed besides the dashboard's own (* for any)")
    .option("--max-in-flight <n>", "calls in flight per client (default 32)")
    .option("--max-connections <n>", `connections open at once per client address (default ${MAX_CONNECTIONS_PER_ADDRESS})`)
    .option("--max-message-bytes <n>", "largest WebSocket message / HTTP body (default 1048576)")
  addMaxResponseOption(cmd).action(async (o: BridgeCommandOptions) => {
    await runBridge(o)
  })
}
