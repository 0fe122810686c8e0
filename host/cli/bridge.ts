// `robot bridge`: serves the robot's services over rosbridge v2 (WebSocket), HTTP and a dashboard.
// The robot is, by choice: a board on a serial port (--serial), a DeviceScript simulator through
// devtools (--devtools), the built-in simulated robot (default), or an in-memory demo device with
// host-side handlers (--memory: no robot at all, for trying the tools; --memory --robots N: a fleet
// of N of them). Each source is one function below returning a Robot. Runs until Ctrl+C.
import type { Command } from "commander"
import type { RobotNode } from "../client/api"
import { startBridge, type Bridge } from "../bridge/server"
import { transportFromOptions, wantsDirectLink } from "./link"

export interface BridgeCommandOptions {
  serial?: string | boolean
  devtools?: string | boolean
  memory?: boolean
  /** --robots <n>: with --memory, a fleet of n demo robots */
  robots?: string
  host?: string
  port?: string
  token?: string
  allowOrigin?: string[]
  maxInFlight?: string
  maxMessageBytes?: string
  /** --foxglove-port */
  foxglovePort?: string
  /** false with --no-foxglove */
  foxglove?: boolean
  /** --foxglove-encoding cdr|json */
  foxgloveEncoding?: string
  /** --wait [seconds] for the simulator lock (the default robot is the simulated one) */
  wait?: string | boolean
}

/** What the bridge serves: one robot, or a fleet of robots (host/client/fleet.ts). */
interface Robot {
  node: RobotNode
  what: string
  close(): Promise<void>
}

async function openRobot(o: BridgeCommandOptions): Promise<Robot> {
  if (o.robots !== undefined && !o.memory) throw new Error("--robots <n> goes with --memory (a fleet of in-memory demo robots)")
  if (o.memory) return openMemory(o)
  if (wantsDirectLink(o)) return await openDirect(o)
  return await openSimulated(o)
}

/** --memory: the in-memory demo device; with --robots N, a fleet of N of them (robot1..robotN). */
function openMemory(o: BridgeCommandOptions): Robot {
  const { demoFleet, demoMemoryNode } = (require("../bridge/demo") as typeof import("../bridge/demo"))
  if (o.robots === undefined) {
    const node = demoMemoryNode()
    return { node, what: "the in-memory demo device (host-side handlers, no robot)", close: () => node.close() }
  }
  const n = intOption("--robots", o.robots, 1, 1, 1000)
  const fleet = demoFleet(n)
  return { node: fleet, what: `${n} in-memory demo robots (robot1${n > 1 ? `..robot${n}` : ""}: host-side handlers, no robot)`, close: () => fleet.close() }
}

/** --serial / --devtools: a board or a DeviceScript simulator, through the host client. */
async function openDirect(o: BridgeCommandOptions): Promise<Robot> {
  const { connect } = (require("../client/node") as typeof import("../client/node"))
  const transport = transportFromOptions(o)
  const node = await connect({ transport })
  return { node, what: `the robot on ${transport.description}`, close: () => node.close() }
}

/** The default: the robot firmware in the DeviceScript VM with simulated hardware. */
async function openSimulated(o: BridgeCommandOptions): Promise<Robot> {
  const { startSimulatedRobot } = (require("../sim/robot") as typeof import("../sim/robot"))
  const { lockWaitMs, probeSimulatorLock, startupProgress } = (require("./sim") as typeof import("./sim"))
  const waitMs = lockWaitMs(o.wait)
  if (waitMs === 0) await probeSimulatorLock()
  const progress = startupProgress()
  const robot = await startSimulatedRobot({ rig: { lockWaitMs: waitMs, onProgress: progress.step } }).finally(() => progress.done())
  if (!robot.node) {
    await robot.close()
    throw new Error("the simulated robot started without a client node")
  }
  return { node: robot.node, what: "the simulated robot (firmware in the DeviceScript VM)", close: () => robot.close() }
}

function foxgloveEncoding(v: string | undefined): "cdr" | "json" {
  if (v === undefined || v === "cdr" || v === "json") return v ?? "cdr"
  throw new Error(`--foxglove-encoding must be cdr or json, got ${v}`)
}

function intOption(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer ${min}-${max}, got ${v}`)
  return n
}

/** A bridge started by the CLI, with what it printed. */
export interface CliBridge {
  close(): Promise<void>
}

/** Where and how the bridge listens, from the options, then devs.json `bridge`, then defaults. */
export interface ListenSettings {
  host: string
  port: number
  token: string | undefined
  allowedOrigins: string[] | undefined
  maxInFlight: number
  maxBytes: number
  /** The Foxglove-only port (undefined: none); `foxglovePortGiven` when the user chose it. */
  foxglovePort: number | undefined
  foxglovePortGiven: boolean
  foxgloveEncoding: "cdr" | "json"
}

/**
 * Resolves the listen settings once, before anything is started, and refuses an unsafe bind
 * (a non-loopback address without a token). devs.json is read when there is one; a wrong value in
 * it is an error naming the key, not a silent default.
 */
export function listenSettings(o: BridgeCommandOptions): ListenSettings {
  const { loadConfigIfPresent } = (require("../config") as typeof import("../config"))
  const cfg = loadConfigIfPresent()?.bridge ?? { host: "127.0.0.1", port: 9090 }
  const host = o.host ?? cfg.host
  const token = o.token ?? process.env.ROBOT_BRIDGE_TOKEN
  const { isLoopback } = (require("../bridge/server") as typeof import("../bridge/server"))
  if (!isLoopback(host) && !token) {
    throw new Error(`refusing to listen on ${host} without a token: pass --token <secret> or set ROBOT_BRIDGE_TOKEN (or listen on 127.0.0.1)`)
  }
  return {
    host,
    port: intOption("--port", o.port, cfg.port, 0, 65535),
    token,
    allowedOrigins: o.allowOrigin,
    maxInFlight: intOption("--max-in-flight", o.maxInFlight, 32, 1, 1000),
    maxBytes: intOption("--max-message-bytes", o.maxMessageBytes, 1024 * 1024, 1024, 256 * 1024 * 1024),
    foxglovePort: o.foxglove === false ? undefined : intOption("--foxglove-port", o.foxglovePort, 8765, 0, 65535),
    foxglovePortGiven: o.foxglovePort !== undefined,
    foxgloveEncoding: foxgloveEncoding(o.foxgloveEncoding),
  }
}

/**
 * Starts the bridge in front of `node` and prints the dashboard address, the rosbridge URL and
 * first commands to try. Used by `robot bridge` and `robot sim`.
 */
export async function serveBridge(node: RobotNode, what: string, listen: ListenSettings): Promise<CliBridge> {
  const { host, port, token } = listen
  const { serviceTypes } = (require("../gen/interfaces") as typeof import("../gen/interfaces"))
  const options = {
    node,
    host,
    port,
    token,
    allowedOrigins: listen.allowedOrigins,
    maxInFlightPerClient: listen.maxInFlight,
    maxMessageBytes: listen.maxBytes,
    typeRegistry: serviceTypes,
    foxglovePort: listen.foxglovePort,
    foxgloveEncoding: listen.foxgloveEncoding,
    log: (line: string) => console.error(`[bridge] ${line}`),
  }
  let bridge: Bridge
  try {
    bridge = await startBridge(options)
  } catch (e) {
    // Foxglove's usual port taken and not asked for by name: the bridge's own port serves Foxglove too
    if (listen.foxglovePortGiven || listen.foxglovePort === undefined || !/--foxglove-port/.test((e as Error).message)) throw e
    console.error(`[bridge] ${(e as Error).message.replace(/: pass --foxglove-port <n>$/, "")}; Foxglove clients can use the bridge's own port`)
    bridge = await startBridge({ ...options, foxglovePort: undefined })
  }
  const q = token ? `/?token=${encodeURIComponent(token)}` : "/"
  const services = await node.listServices({ timeoutMs: 15000 }).catch(() => [])
  const { fleetOf } = (require("../bridge/pipeline") as typeof import("../bridge/pipeline"))
  const fleet = fleetOf(node)
  const out = [
    `Bridge for ${what}`,
    `  dashboard: ${bridge.url}${q}`,
    `  rosbridge: ${bridge.wsUrl}  (roslibjs: new ROSLIB.Ros({ url: "${bridge.wsUrl}" }))`,
    `  HTTP:      ${bridge.url}/api/services${fleet ? `, ${bridge.url}/api/robots` : ""}`,
    `  Foxglove:  ${bridge.foxgloveUrl ? `${bridge.foxgloveUrl}${token ? "/?token=…" : ""} (and ` : "("}${bridge.wsUrl} with the foxglove.websocket.v1 subprotocol)`,
    "",
  ]
  // a fleet: its robots, and the services of the first one (the others' are under their own names)
  const robots = fleet?.robots() ?? []
  const first = robots[0]?.name
  const prefix = first === undefined ? "" : `/${first}`
  const shown = fleet ? services.filter((s) => s.name.startsWith(`${prefix}/`)) : services
  if (fleet) out.push(`Robots: ${robots.map((r) => `${r.name}${r.online ? "" : " (offline)"}`).join(", ") || "none yet"}`, "")
  out.push(fleet ? `Services of ${first ?? "each robot"} (the others' are under their names):` : "Services:")
  const width = Math.max(16, ...shown.map((s) => s.name.length))
  out.push(...shown.map((s) => `  ${s.name.padEnd(width)} ${s.type}`), "", "Try, in another terminal:")
  const url = bridge.port === 9090 && host === "127.0.0.1" ? "" : ` --url ${bridge.wsUrl}`
  const has = (name: string) => shown.some((s) => s.name === `${prefix}${name}`)
  if (has("/add_two_ints")) out.push(`  npx robot service call ${prefix}/add_two_ints "{a: 2, b: 3}"${url}`)
  if (has("/get_state")) out.push(`  npx robot service call ${prefix}/get_state${url}`)
  if (has("/take_picture")) out.push(`  npx robot service call ${prefix}/take_picture "{resolution: 1}" --out picture.jpg${url}`)
  out.push(`  npx robot service list -t${url}`)
  if (fleet && has("/add_two_ints")) {
    const auth = token ? ` -H 'authorization: Bearer <token>'` : ""
    out.push(`  curl -s -X POST -H 'content-type: application/json'${auth} -d '{"a": 2, "b": 3}' '${bridge.url}/api/group/add_two_ints?robots=*'`)
  }
  out.push("", "bridge ready; stop with Ctrl+C")
  console.log(out.join("\n"))
  return { close: () => bridge.close() }
}

export async function runBridge(o: BridgeCommandOptions): Promise<void> {
  const listen = listenSettings(o)
  // a taken port is said before the robot starts
  const { ensurePortFree } = (require("./sim") as typeof import("./sim"))
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

/** The options that say where the bridge listens (`robot bridge` and `robot sim`). */
export function addListenOptions(cmd: Command, prefix = ""): Command {
  return cmd
    .option("--host <address>", `${prefix}address to listen on (default 127.0.0.1; others need --token)`)
    .option("--port <port>", `${prefix}port to listen on (default 9090)`)
    .option("--token <token>", `${prefix}token every client must present (default: $ROBOT_BRIDGE_TOKEN)`)
    .option("--foxglove-port <port>", `${prefix}port serving only the Foxglove WebSocket protocol (default 8765)`)
    .option("--no-foxglove", `${prefix}no Foxglove-only port (the bridge's own port still serves Foxglove clients)`)
    .option("--foxglove-encoding <encoding>", `${prefix}encoding Foxglove advertises services in: cdr (ros2msg schemas, default) or json (JSON Schema)`)
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
  addListenOptions(cmd)
  cmd
    .option("--allow-origin <origin...>", "browser origins allowed besides the dashboard's own (* for any)")
    .option("--max-in-flight <n>", "calls in flight per client (default 32)")
    .option("--max-message-bytes <n>", "largest WebSocket message / HTTP body (default 1048576)")
    .action(async (o: BridgeCommandOptions) => {
      await runBridge(o)
    })
}
