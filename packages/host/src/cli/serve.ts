// What `robot bridge` and `robot sim` share to serve a robot (or a fleet) they have started: where
// the bridge listens (options, devs.json, defaults), starting it with the project's types and
// printing what to try, the embedded broker of their --mqtt/--robots fleets, and the host client's
// own bound on responses. The verbs (./bridge.ts, ./sim.ts) import this, never each other.
import type { Command } from "commander"
import type { RobotNode } from "../client/api"
import { startBridge, type Bridge } from "../bridge/server"
import { MAX_CONNECTIONS_PER_ADDRESS } from "../bridge/guard"
import { HOST_RATE_BYTES_PER_S } from "../mqtt/broker"
import { DEFAULT_MAX_RESPONSE_BYTES } from "../client/calls"

/** The options that say where and how the bridge listens (addListenOptions; `robot bridge` adds the per-client bounds). */
export interface ListenCommandOptions {
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

export function intOption(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
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
export function listenSettings(o: ListenCommandOptions): ListenSettings {
  const { loadConfigIfPresent } = (require("../config") as typeof import("../config"))
  const cfg = loadConfigIfPresent()?.config.bridge ?? { host: "127.0.0.1", port: 9090 }
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

