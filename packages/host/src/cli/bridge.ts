// `robot bridge`: serves the robot's services over rosbridge v2 (WebSocket), HTTP and a dashboard.
// The robot is, by choice: a board on a serial port (--serial), a DeviceScript simulator through
// devtools (--devtools), the built-in simulated robot (default), or an in-memory demo device with
// host-side handlers (--memory: no robot at all, for trying the tools; --memory --robots N: a fleet
// of N of them). Each source is one function below returning a Robot. Runs until Ctrl+C.
import type { Command } from "commander"
import type { RobotNode } from "../client/api"
import { startBridge, type Bridge } from "../bridge/server"
import { MAX_CONNECTIONS_PER_ADDRESS } from "../bridge/guard"
import { HOST_RATE_BYTES_PER_S } from "../mqtt/broker"
import { DEFAULT_MAX_RESPONSE_BYTES } from "../client/calls"
import { transportFromOptions, wantsDirectLink } from "./link"

export interface BridgeCommandOptions extends BrokerCommandOptions {
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
  maxConnections?: string
  maxMessageBytes?: string
  /** --foxglove-port */
  foxglovePort?: string
  /** false with --no-foxglove */
  foxglove?: boolean
  /** --foxglove-encoding cdr|json */
  foxgloveEncoding?: string
  /** --introspect: publish service events (REP-2012) on `<service>/_service_event` */
  introspect?: boolean
  /** --wait [seconds] for the simulator lock (the default robot is the simulated one) */
  wait?: string | boolean
  /** --mqtt [url]: robots on a broker (true: the embedded one) */
  mqtt?: string | boolean
  /** --max-response-bytes <n>: the largest response the bridge's client takes from a robot */
  maxResponseBytes?: string
}

/** The embedded broker's options, of `robot bridge --mqtt` and `robot sim --robots`. */
export interface BrokerCommandOptions {
  /** --broker-host / --broker-port: where the embedded broker listens */
  brokerHost?: string
  brokerPort?: string
  /** --broker-users <file>: JSON [{name, password, role: "robot" | "host"}] for the embedded broker (robots log in as their names) */
  brokerUsers?: string
  /** --broker-host-rate <bytes/s>: what one host may send one robot through the embedded broker */
  brokerHostRate?: string
}

/** The embedded broker's flags, as the messages that refuse them where there is no embedded broker name them. */
export const BROKER_FLAGS = "--broker-host/--broker-port/--broker-users/--broker-host-rate"

/** True when any of the embedded broker's options is given. */
export function brokerOptionsGiven(o: BrokerCommandOptions): boolean {
  return (o.brokerHost ?? o.brokerPort ?? o.brokerUsers ?? o.brokerHostRate) !== undefined
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

/** The broker's users from --broker-users (a JSON file), checked. */
function brokerUsers(file: string | undefined): import("../mqtt/broker").BrokerUser[] | undefined {
  if (file === undefined) return undefined
  const fs = require("node:fs") as typeof import("node:fs")
  let users: unknown
  try {
    users = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    throw new Error(`--broker-users ${file}: ${(e as Error).message}`)
  }
  const ok = (u: any) => u && typeof u.name === "string" && typeof u.password === "string" && (u.role === "robot" || u.role === "host")
  if (!Array.isArray(users) || !users.every(ok)) throw new Error(`--broker-users ${file}: expected [{"name": …, "password": …, "role": "robot" | "host"}, …]`)
  return users as import("../mqtt/broker").BrokerUser[]
}

/**
 * The embedded broker (docs/mqtt.md) for --mqtt without a URL and for `robot sim --robots N`:
 * loopback unless --broker-users gives credentials. Returns it with the bridge's own credentials.
 */
export async function startCliBroker(o: BrokerCommandOptions) {
  const { startBroker } = (require("../mqtt/broker") as typeof import("../mqtt/broker"))
  const users = brokerUsers(o.brokerUsers)
  const host = users?.find((u) => u.role === "host")
  if (users && !host) throw new Error(`--broker-users ${o.brokerUsers}: add a user with role "host" for the bridge`)
  const broker = await startBroker({
    host: o.brokerHost ?? "127.0.0.1",
    port: intOption("--broker-port", o.brokerPort, 1883, 0, 65535),
    hostRateBytesPerS: intOption("--broker-host-rate", o.brokerHostRate, HOST_RATE_BYTES_PER_S, 1024, 1 << 30),
    users,
    log: (line) => console.error(`[broker] ${line}`),
  })
  return { broker, username: host?.name, password: host?.password, users }
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
  const { connect } = (require("../client/node") as typeof import("../client/node"))
  const transport = transportFromOptions(o)
  const node = await connect({ transport, maxResponseBytes: maxResponseBytes(o) })
  return { node, what: `the robot on ${transport.description}`, close: () => node.close() }
}

/** The default: the robot firmware in the DeviceScript VM with simulated hardware. */
async function openSimulated(o: BridgeCommandOptions): Promise<Robot> {
  const { startSimulatedRobot } = (require("../sim/robot") as typeof import("../sim/robot"))
  const { lockWaitMs, probeSimulatorLock, startupProgress } = (require("./startup") as typeof import("./startup"))
  const waitMs = lockWaitMs(o.wait)
  if (waitMs === 0) await probeSimulatorLock()
  const progress = startupProgress()
  const robot = await startSimulatedRobot({ rig: { lockWaitMs: waitMs, onProgress: progress.step, maxResponseBytes: maxResponseBytes(o) } }).finally(() => progress.done())
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

/**
 * --max-response-bytes <n> (`robot bridge`, `robot sim`): the host client's own bound on one response
 * (`connect({ maxResponseBytes })`, DEFAULT_MAX_RESPONSE_BYTES when not given), whatever a robot
 * announces: a call whose answer announces more fails with resource_exhausted naming both bounds
 * (docs/protocol.md "Limits"). Checked before anything starts.
 */
export function maxResponseBytes(o: { maxResponseBytes?: string }): number | undefined {
  return o.maxResponseBytes === undefined ? undefined : intOption("--max-response-bytes", o.maxResponseBytes, 0, 1, 0xffffffff)
}

/** The --max-response-bytes option, as `robot bridge` and `robot sim` give it. */
export function addMaxResponseOption(cmd: Command): Command {
  return cmd.option("--max-response-bytes <n>", `largest response the bridge takes from a robot, in bytes (default ${DEFAULT_MAX_RESPONSE_BYTES}); an answer announcing more fails the call (resource_exhausted)`)
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
  maxConnections: number
  maxBytes: number
  /** The Foxglove-only port (undefined: none); `foxglovePortGiven` when the user chose it. */
  foxglovePort: number | undefined
  foxglovePortGiven: boolean
  foxgloveEncoding: "cdr" | "json"
  /** --introspect (server.ts BridgeOptions.introspect) */
  introspect: boolean
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
    maxConnections: intOption("--max-connections", o.maxConnections, MAX_CONNECTIONS_PER_ADDRESS, 1, 100000),
    maxBytes: intOption("--max-message-bytes", o.maxMessageBytes, 1024 * 1024, 1024, 256 * 1024 * 1024),
    foxglovePort: o.foxglove === false ? undefined : intOption("--foxglove-port", o.foxglovePort, 8765, 0, 65535),
    foxglovePortGiven: o.foxglovePort !== undefined,
    foxgloveEncoding: foxgloveEncoding(o.foxgloveEncoding),
    introspect: o.introspect === true,
  }
}

/**
 * Starts the bridge in front of `node` and prints the dashboard address, the rosbridge URL and
 * first commands to try. Used by `robot bridge` and `robot sim`.
 */
export async function serveBridge(node: RobotNode, what: string, listen: ListenSettings): Promise<CliBridge> {
  const { host, port, token } = listen
  // actions' `_action/` services too: `robot action` through a bridge calls them with call_service
  const types = require("./types") as typeof import("./types")
  const serviceTypes = types.projectCallTypes()
  const options = {
    node,
    host,
    port,
    token,
    allowedOrigins: listen.allowedOrigins,
    maxInFlightPerClient: listen.maxInFlight,
    maxConnectionsPerClient: listen.maxConnections,
    maxMessageBytes: listen.maxBytes,
    typeRegistry: serviceTypes,
    // the project's own .action types too, as its services' (devs.json `interfaces`)
    actionTypes: types.projectActionTypes(),
    foxglovePort: listen.foxglovePort,
    foxgloveEncoding: listen.foxgloveEncoding,
    introspect: listen.introspect,
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
  const { fleetOf } = (require("../client/fleet") as typeof import("../client/fleet"))
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
  const { actionsOf, isActionService } = require("./types") as typeof import("./types")
  const mine = fleet ? services.filter((s) => s.name.startsWith(`${prefix}/`)) : services
  // an action's four services are listed as the action (`robot service list` hides them too)
  const shown = mine.filter((s) => !isActionService(s.name))
  const actions = actionsOf(mine)
  if (fleet) out.push(`Robots: ${robots.map((r) => `${r.name}${r.online ? "" : " (offline)"}`).join(", ") || "none yet"}`, "")
  out.push(fleet ? `Services of ${first ?? "each robot"} (the others' are under their names):` : "Services:")
  const width = Math.max(16, ...shown.map((s) => s.name.length), ...actions.map((a) => a.name.length))
  out.push(...shown.map((s) => `  ${s.name.padEnd(width)} ${s.type}`))
  if (actions.length) out.push(fleet ? `Actions of ${first}:` : "Actions:", ...actions.map((a) => `  ${a.name.padEnd(width)} ${a.type}`))
  out.push("", "Try, in another terminal:")
  const url = bridge.port === 9090 && host === "127.0.0.1" ? "" : ` --url ${bridge.wsUrl}`
  const has = (name: string) => shown.some((s) => s.name === `${prefix}${name}`)
  if (has("/add_two_ints")) out.push(`  npx robot service call ${prefix}/add_two_ints "{a: 2, b: 3}"${url}`)
  if (has("/get_state")) out.push(`  npx robot service call ${prefix}/get_state${url}`)
  if (has("/take_picture")) out.push(`  npx robot service call ${prefix}/take_picture "{resolution: 1}" --out picture.jpg${url}`)
  out.push(`  npx robot service list -t${url}`)
  if (actions.length) out.push(`  npx robot action list -t${url}`)
  if (listen.introspect && has("/add_two_ints")) out.push(`  npx robot service echo ${prefix}/add_two_ints${url}   (then call it)`)
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

/** The options that say where the bridge listens (`robot bridge` and `robot sim`). */
export function addListenOptions(cmd: Command, prefix = ""): Command {
  return cmd
    .option("--host <address>", `${prefix}address to listen on (default 127.0.0.1; others need --token)`)
    .option("--port <port>", `${prefix}port to listen on (default 9090)`)
    .option("--token <token>", `${prefix}token every client must present (default: $ROBOT_BRIDGE_TOKEN)`)
    .option("--foxglove-port <port>", `${prefix}port serving only the Foxglove WebSocket protocol (default 8765)`)
    .option("--no-foxglove", `${prefix}no Foxglove-only port (the bridge's own port still serves Foxglove clients)`)
    .option("--foxglove-encoding <encoding>", `${prefix}encoding Foxglove advertises services in: cdr (ros2msg schemas, default) or json (JSON Schema)`)
    .option("--introspect", `${prefix}service introspection: publish each call's events on <service>/_service_event (robot service echo)`)
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
