// The three ways `robot service` and `robot action` reach the robot: through a bridge (rosbridge
// v2, rosapi for discovery, its HTTP API for a fleet's robots and group calls: `bridgeFleet`),
// directly to a robot over a transport (--serial, --devtools), and over MQTT (--mqtt; its fleet:
// cli/mqtt.ts `mqttFleet`). Each gives actions a RobotNode (`actionNode`): the robot's own node, or
// through a bridge one whose calls are call_service (cli/rosnode.ts), so the action verbs have one
// code path, the action client's.
import type { Command } from "commander"
import { ServiceError, type ErrorCode } from "../client/errors"
import type { RobotNode, RobotStatus } from "../client/api"
import type { FleetGroupApi, GroupRow } from "../calls/group"
import { parseJson, stringifyJson, YAML_RULES } from "../calls/json"
import { listedWithTypes, RosbridgeClient } from "./rosclient"
import type { Typedef } from "../calls/rosapi"
import { fullTypeName } from "../runtime/names"
import { connectLink } from "./link"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { HINTS, UsageError, hinted } from "./errors"

export interface ConnOptions {
  url?: string
  token?: string
  serial?: string | boolean
  devtools?: string | boolean
  mqtt?: string
  robot?: string
}

export interface Backend {
  /** Every service with its type; `timeoutMs`: how long to wait for the list (a call's own --timeout; default DEFAULT_TIMEOUT_MS). */
  list(timeoutMs?: number): Promise<{ name: string; type: string }[]>
  /** One service, when the backend can find it without listing everything. */
  find?(name: string): Promise<{ name: string; type: string } | undefined>
  /** Robots a listing left out and why (MQTT). */
  readonly skipped?: { robot: string; why: string }[]
  /**
   * A name the backend does not list, called anyway so that the bridge says why (a robot of its
   * fleet offline: `unavailable`; a name without a robot: `unimplemented` naming one to use). Resolves
   * with the response when the service is there after all (it just appeared).
   */
  callUnlisted?(name: string, args: unknown, opts: { timeoutMs: number }): Promise<unknown>
  /**
   * The typedefs of a type this project does not define, from the far end (a bridge's rosapi), to
   * show the request and response; without it, or [] from it, they are shown as plain JSON.
   */
  typedefs?(type: string, half: "request" | "response"): Promise<Typedef[]>
  /**
   * `call` with `opts.type` is refused by the far end (`type_mismatch`, hinted with the service's
   * type) when the service has another type: the caller needs no lookup to check a type it was given.
   */
  readonly checksType?: boolean
  /**
   * One call with the request as parsed (YAML/JSON): the far end checks it, once, by the YAML
   * rules (calls/json.ts YAML_RULES): the call pipeline in this process, or the bridge's
   * (`args_rules`), and `onStart` is called once it passed (through another rosbridge server, never:
   * it checks by its own rules). `opts.type`: the type the caller expects (checked when `checksType`).
   */
  call(name: string, args: unknown, opts: { timeoutMs: number; signal?: AbortSignal; onProgress?: (r: number, t: number) => void; onStart?: () => void; type?: string }): Promise<unknown>
  /**
   * The node that serves action `name` (`/fibonacci`, on a fleet `/rover1/fibonacci`) and the
   * action's name on it, for an ActionClient; `server` names who serves it (`robot action info`).
   */
  actionNode(name: string): { node: RobotNode; name: string; server: string }
  close(): Promise<void>
}

/** The bridge's WebSocket URL when --url is not given: devs.json `bridge`, else ws://127.0.0.1:9090. */
export function defaultUrl(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadConfig } = require("../config") as typeof import("../config")
    const { config } = loadConfig()
    return `ws://${config.bridge.host}:${config.bridge.port}`
  } catch {
    return "ws://127.0.0.1:9090"
  }
}

async function bridgeBackend(o: ConnOptions): Promise<Backend> {
  const client = await RosbridgeClient.connect(o.url ?? defaultUrl(), { token: o.token ?? process.env.ROBOT_BRIDGE_TOKEN })
  const rosapi = (name: string, args: object) => client.call(name, args, { timeoutMs: DEFAULT_TIMEOUT_MS })
  let node: RobotNode | undefined
  return {
    async list() {
      const reply = (await rosapi("/rosapi/services", {})) as { services: string[]; types?: unknown }
      return listedWithTypes(reply) ?? Promise.all(reply.services.map(async (name) => ({ name, type: ((await rosapi("/rosapi/service_type", { service: name })) as { type: string }).type })))
    },
    // one round trip, not a listing (a call's discovery: issue 17)
    async find(name) {
      const { type } = (await rosapi("/rosapi/service_type", { service: name })) as { type: string }
      return type ? { name, type } : undefined
    },
    async typedefs(type, half) {
      const r = (await rosapi(half === "request" ? "/rosapi/service_request_details" : "/rosapi/service_response_details", { type })) as { typedefs: Typedef[] }
      return r.typedefs
    },
    // this project's bridge checks the type with the call (call_service's `expect_type`) and names
    // the service's type in its answer; another rosbridge server ignores both
    checksType: true,
    async call(name, args, opts) {
      let actual: string | undefined
      // progress is asked for always: its first message (0 of 0) says the request passed the bridge's check
      let started = false
      const onProgress = (r: number, t: number) => {
        if (!started) opts.onStart?.()
        started = true
        opts.onProgress?.(r, t)
      }
      try {
        return await client.call(name, args, { timeoutMs: opts.timeoutMs, onProgress, expectType: opts.type, onType: (t) => (actual = t), argsRules: "yaml" })
      } catch (e) {
        if (e instanceof ServiceError && e.code === "type_mismatch" && opts.type && actual && actual !== fullTypeName(opts.type, "srv")) throw hinted(e, `leave the type out, or give ${actual}`)
        throw e
      }
    },
    async callUnlisted(name, args, opts) {
      try {
        return await client.call(name, args, { ...opts, argsRules: "yaml" })
      } catch (e) {
        // this project's bridge says why with an error code; another rosbridge server's own text is
        // not one of them (it comes back as `internal`)
        if (e instanceof ServiceError && e.code === "internal") throw new ServiceError("unimplemented", `no service ${name} (the bridge: ${e.detail})`, name)
        throw e
      }
    },
    actionNode(name) {
      node ??= (require("./rosnode") as typeof import("./rosnode")).rosbridgeNode(client, { timeoutMs: DEFAULT_TIMEOUT_MS })
      return { node, name, server: `the bridge at ${client.url}` }
    },
    async close() {
      client.close()
    },
  }
}

async function directBackend(o: ConnOptions): Promise<Backend> {
  // loaded lazily: only the direct mode needs the host client and its transports
  const serviceTypes = (require("./types") as typeof import("./types")).projectCallTypes()
  const { CallPipeline } = (require("../calls/pipeline") as typeof import("../calls/pipeline"))
  const { node } = await connectLink(o)
  // the bridge's own call pipeline: the same checks, conversions and errors as through a bridge
  const pipeline = new CallPipeline(node, serviceTypes)
  return {
    async list(timeoutMs) {
      return (await node.listServices({ timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS })).map((s: { name: string; type: string }) => ({ name: s.name, type: s.type }))
    },
    async call(name, args, opts) {
      const out = await pipeline.callJson({ service: name, args, rules: YAML_RULES, timeoutMs: opts.timeoutMs, signal: opts.signal, onProgress: opts.onProgress, onStart: opts.onStart }, "base64", { via: "cli", client: "cli" })
      if (!out.ok) throw out.error!
      return out.values
    },
    actionNode: (name) => ({ node, name, server: `the robot on ${typeof o.serial === "string" ? o.serial : o.serial ? "the first serial port" : `the devtools link${typeof o.devtools === "string" ? ` ${o.devtools}` : ""}`}` }),
    async close() {
      pipeline.close()
      await node.close()
    },
  }
}

async function mqttBackend(o: ConnOptions & { mqtt: string }): Promise<Backend> {
  const { mqttBackend } = require("./mqtt") as typeof import("./mqtt")
  return mqttBackend({ mqtt: o.mqtt, robot: o.robot })
}

/** The connection options that do not go together. */
export function checkConnOptions(o: ConnOptions & { robots?: string }): void {
  const direct = [o.serial !== undefined && o.serial !== false && "--serial", o.devtools !== undefined && o.devtools !== false && "--devtools", o.mqtt !== undefined && "--mqtt"].filter(Boolean)
  if (direct.length > 1) throw new UsageError(`${direct.join(" and ")} do not go together: pick one way to reach the robot`)
  if (o.robot !== undefined && o.mqtt === undefined) throw new UsageError("--robot needs --mqtt <url> (robots are named on an MQTT broker)")
  if (o.robots !== undefined && direct.length && o.mqtt === undefined) throw new UsageError(`--robots calls a fleet's robots: through a bridge (no ${direct.join(", ")}) or with --mqtt <url>`)
  if (o.robots !== undefined && o.robot !== undefined) throw new UsageError("--robot and --robots do not go together")
}

/** The options that pick how to reach the robot, shared by the service and action verbs. */
export function addConnOptions(c: Command): Command {
  return c
    .option("--url <url>", "bridge WebSocket URL (default ws://127.0.0.1:9090, or bridge.host/port in devs.json)")
    .option("--token <token>", "bridge token (default: $ROBOT_BRIDGE_TOKEN)")
    .option("--serial [path]", "talk to a board on a serial port directly, not through a bridge")
    .option("--devtools [url]", "talk to the DeviceScript simulator directly (default: devs.json simulator.devtools, else ws://127.0.0.1:8081)")
    .option("--mqtt <url>", "talk to the robots on an MQTT broker directly (mqtt://[user:pass@]host:1883; or ROBOT_MQTT_USER/ROBOT_MQTT_PASSWORD)")
    .option("--robot <name>", "with --mqtt: this robot (without it: every robot, services named /<robot>/<service>)")
}

export async function withBackend<T>(o: ConnOptions, f: (b: Backend) => Promise<T>): Promise<T> {
  checkConnOptions(o)
  const direct = (o.serial !== undefined && o.serial !== false) || (o.devtools !== undefined && o.devtools !== false)
  const b = await (o.mqtt !== undefined ? mqttBackend({ ...o, mqtt: o.mqtt }) : direct ? directBackend(o) : bridgeBackend(o))
  try {
    return await f(b)
  } finally {
    await b.close()
  }
}

/** The bridge's HTTP API base (`http://host:port`) for its WebSocket URL, and the token header. */
export function bridgeHttp(o: ConnOptions): { base: string; headers: Record<string, string> } {
  const u = new URL(o.url ?? defaultUrl())
  u.protocol = u.protocol === "wss:" ? "https:" : "http:"
  const token = o.token ?? process.env.ROBOT_BRIDGE_TOKEN
  return { base: `${u.protocol}//${u.host}`, headers: token ? { authorization: `Bearer ${token}` } : {} }
}

/**
 * The fleet a bridge serves, through its HTTP API: `GET /api/robots[?robots=<globs>]` and
 * `POST /api/group/<service>?robots=<globs>` (docs/bridge.md "Many robots"), whose rows are
 * packages/host/src/calls/group.ts `groupCall`'s. A bridge that serves one robot: `unimplemented`.
 */
export function bridgeFleet(o: ConnOptions): FleetGroupApi {
  const { base, headers } = bridgeHttp(o)
  return {
    where: "",
    async robots(globs) {
      const listed = (await bridgeApi(`${base}/api/robots${globs === undefined ? "" : `?robots=${encodeURIComponent(globs)}`}`, { headers })) as { fleet: boolean; robots: RobotStatus[] }
      if (!listed.fleet) throw hinted(new ServiceError("unimplemented", `the bridge at ${base} serves one robot, not a fleet`), "leave --robots out")
      return listed.robots
    },
    async groupCall(req) {
      // the bridge checks the request, once, by the CLI's rules when asked (the only rules it can be asked for)
      const q = `robots=${encodeURIComponent(req.robots)}&timeout_ms=${req.timeoutMs}${req.rules === YAML_RULES ? "&args_rules=yaml" : ""}`
      const out = (await bridgeApi(`${base}/api/group${req.service}?${q}`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: stringifyJson(req.args),
      })) as { results: GroupRow[] }
      return out.results
    },
    async close() {},
  }
}

/** A request to the bridge's HTTP API; its error body (`{code, message}`) becomes a ServiceError. */
export async function bridgeApi(url: string, init: RequestInit): Promise<any> {
  let res: Response
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) })
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message
    throw new ServiceError("unavailable", `cannot reach a bridge at ${new URL(url).origin} (${cause})`)
  }
  const text = await res.text()
  let body: any
  try {
    body = parseJson(text)
  } catch {
    throw new ServiceError("internal", `the bridge answered HTTP ${res.status} with no JSON: ${text.slice(0, 200)}`)
  }
  if (res.status === 401) throw new ServiceError("unavailable", `the bridge at ${new URL(url).origin} refused the request: wrong or missing token (--token or ROBOT_BRIDGE_TOKEN)`)
  if (!res.ok) {
    const code = typeof body?.code === "string" && body.code in HINTS ? (body.code as ErrorCode) : "internal"
    throw new ServiceError(code, String(body?.message ?? `HTTP ${res.status}`))
  }
  return body
}
