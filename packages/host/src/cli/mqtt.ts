// `robot service … --mqtt <url>`: the CLI straight to robots on an MQTT broker (docs/mqtt.md), as
// --serial/--devtools go straight to one robot. With `--robot <name>` the verbs see that robot;
// without it they see every robot, its services namespaced (`/rover1/take_picture`); `service
// call --robots <glob>` calls every matching robot in parallel (`mqttFleet`: the bridge's group call,
// packages/host/src/calls/group.ts, on a fleet of the broker's robots). Credentials: in the URL
// (`mqtt://user:pass@host:1883`) or ROBOT_MQTT_USER / ROBOT_MQTT_PASSWORD. Loaded only when --mqtt
// is given (it loads the `mqtt` package).
import { MqttDirectory, directoryFleet } from "../client/mqttdir"
import type { Fleet, RobotNode } from "../client/api"
import { splitRobotName } from "../client/names"
import type { MqttNode } from "../client/mqtt"
import { ServiceError } from "../client/errors"
import { CallPipeline } from "../calls/pipeline"
import { groupCall, groupRobots, type FleetGroupApi } from "../calls/group"
import { YAML_RULES } from "../calls/json"
import { projectCallTypes } from "./types"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"


export interface MqttCliOptions {
  mqtt: string
  robot?: string
}

/** What the service verbs need (the same shape as the bridge and direct backends). */
export interface MqttBackend {
  list(): Promise<{ name: string; type: string }[]>
  find(name: string): Promise<{ name: string; type: string } | undefined>
  call(name: string, args: unknown, opts: { timeoutMs: number; signal?: AbortSignal; onProgress?: (r: number, t: number) => void }): Promise<unknown>
  /** the robot's own node for an action (`/rover1/fibonacci` without --robot) and the action's name on it */
  actionNode(name: string): { node: RobotNode; name: string; server: string }
  /** robots the listing left out, with why (offline, did not answer) */
  readonly skipped: { robot: string; why: string }[]
  close(): Promise<void>
}

const HINT = {
  broker: "is the broker running and the URL right? `robot bridge` starts one; credentials go in the URL or in ROBOT_MQTT_USER/ROBOT_MQTT_PASSWORD",
  noRobot: "check the name with `robot service list --mqtt <url>`",
  offline: "its last will says it lost the broker: is it powered, on WiFi, and is MQTT_URL right in its settings?",
}

/** An error with the hint the CLI prints after it. */
export class HintedError extends ServiceError {
  constructor(
    e: ServiceError,
    readonly hint: string,
  ) {
    super(e.code, e.detail, e.service)
  }
}

function credentials(url: string): { username?: string; password?: string } {
  try {
    const u = new URL(url)
    if (u.username) return { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) }
  } catch {
    throw new HintedError(new ServiceError("invalid_argument", `--mqtt ${url} is not a URL`), "give mqtt://host:1883 or mqtts://host:8883")
  }
  return { username: process.env.ROBOT_MQTT_USER || undefined, password: process.env.ROBOT_MQTT_PASSWORD || undefined }
}

/** The directory, connected, with the retained presences in. */
export async function openDirectory(url: string): Promise<MqttDirectory> {
  let dir: MqttDirectory
  try {
    dir = await MqttDirectory.connect({ url, ...credentials(url), connectTimeoutMs: 5000 })
  } catch (e) {
    if (e instanceof ServiceError && !(e instanceof HintedError)) throw new HintedError(e, HINT.broker)
    throw e
  }
  await dir.settled()
  return dir
}

/** The robot `name` known to the directory and online, or a clear error (no such robot, offline). */
export function onlineRobot(dir: MqttDirectory, name: string): MqttNode {
  const all = dir.robots()
  const e = all.find((r) => r.name === name)
  if (!e) {
    const there = all.length ? `robots there: ${all.map((r) => r.name).join(", ")}` : "no robot has announced itself there"
    throw new HintedError(new ServiceError("unavailable", `no robot ${name} on ${dir.url} (${there})`), HINT.noRobot)
  }
  if (!e.online) throw new HintedError(new ServiceError("unavailable", `robot ${name} offline (${dir.url})`), HINT.offline)
  return dir.nodeFor(name)
}

/** `/rover1/add_two_ints` -> robot `rover1`, service `/add_two_ints` (client/names.ts), or the error saying how to name one. */
export function robotAndService(name: string): { robot: string; service: string } {
  const r = splitRobotName(name)
  if (!r) throw new HintedError(new ServiceError("invalid_argument", `${name}: without --robot, name the robot first, e.g. /rover1${name.startsWith("/") ? name : "/" + name}`), HINT.noRobot)
  return r
}

async function callVia(pipeline: CallPipeline, service: string, args: unknown, opts: { timeoutMs: number; signal?: AbortSignal; onProgress?: (r: number, t: number) => void; onStart?: () => void }): Promise<unknown> {
  // the request's one check, by the CLI's rules (cli/backends.ts Backend.call)
  const out = await pipeline.callJson({ service, args, rules: YAML_RULES, timeoutMs: opts.timeoutMs, signal: opts.signal, onProgress: opts.onProgress, onStart: opts.onStart }, "base64", { via: "cli", client: "cli" })
  if (!out.ok) throw out.error!
  return out.values
}

/** The backend of `--mqtt` (with `--robot`: one robot; without: every robot, names namespaced). */
export async function mqttBackend(o: MqttCliOptions): Promise<MqttBackend> {
  const dir = await openDirectory(o.mqtt)
  const pipelines = new Map<string, CallPipeline>()
  const pipelineFor = (robot: string): CallPipeline => {
    let p = pipelines.get(robot)
    if (!p) {
      p = new CallPipeline(onlineRobot(dir, robot), projectCallTypes())
      pipelines.set(robot, p)
    }
    return p
  }
  const skipped: { robot: string; why: string }[] = []
  const servicesOf = async (robot: string) => (await onlineRobot(dir, robot).listServices({ timeoutMs: DEFAULT_TIMEOUT_MS })).map((s) => ({ name: s.name, type: s.type }))
  const close = async () => {
    for (const p of pipelines.values()) p.close()
    await dir.close()
  }
  if (o.robot) {
    const robot = o.robot
    try {
      onlineRobot(dir, robot)
    } catch (e) {
      await close()
      throw e
    }
    return {
      skipped,
      list: () => servicesOf(robot),
      find: async (name) => (await servicesOf(robot)).find((s) => s.name === name),
      call: (name, args, opts) => callVia(pipelineFor(robot), name, args, opts),
      actionNode: (name) => ({ node: onlineRobot(dir, robot), name, server: `robot ${robot} on ${dir.url}` }),
      close,
    }
  }
  return {
    skipped,
    async list() {
      const rows = await Promise.all(
        dir.robots().map(async (r) => {
          if (!r.online) {
            skipped.push({ robot: r.name, why: "offline" })
            return []
          }
          try {
            return (await servicesOf(r.name)).map((s) => ({ name: `/${r.name}${s.name}`, type: s.type }))
          } catch (e) {
            skipped.push({ robot: r.name, why: (e as Error).message })
            return []
          }
        }),
      )
      return rows.flat()
    },
    async find(name) {
      const { robot, service } = robotAndService(name)
      const s = (await servicesOf(robot)).find((x) => x.name === service)
      return s && { name, type: s.type }
    },
    call(name, args, opts) {
      const { robot, service } = robotAndService(name)
      return callVia(pipelineFor(robot), service, args, opts)
    },
    actionNode(name) {
      const { robot, service } = robotAndService(name)
      return { node: onlineRobot(dir, robot), name: service, server: `robot ${robot} on ${dir.url}` }
    },
    close,
  }
}

/**
 * The robots on the broker at `url` as one fleet (client/mqttdir.ts `directoryFleet`) behind a call
 * pipeline, for `service call --robots`: the group call of the bridge's HTTP API
 * (packages/host/src/calls/group.ts), here in the CLI. `robots(globs)` waits up to `listTimeoutMs`
 * for the matching online robots to list their services.
 */
export async function mqttFleet(url: string, listTimeoutMs: number): Promise<FleetGroupApi> {
  const dir = await openDirectory(url)
  const f = directoryFleet(dir)
  const pipeline = new CallPipeline(f.fleet, projectCallTypes())
  return {
    where: ` on ${dir.url}`,
    async robots(globs) {
      if (globs !== undefined) await listed(f.fleet, new Set(f.fleet.matchRobots(globs)), listTimeoutMs)
      return groupRobots(pipeline, globs)
    },
    groupCall: (req) => groupCall(pipeline, req, "base64", { via: "cli", client: "cli" }),
    async close() {
      pipeline.close()
      await f.close()
      await dir.close()
    },
  }
}

/** Resolves once every online robot of `names` has listed its services, or after `timeoutMs`. */
function listed(fleet: Fleet, names: Set<string>, timeoutMs: number): Promise<void> {
  const pending = () => fleet.robots().some((r) => names.has(r.name) && r.online && !r.services)
  if (!pending()) return Promise.resolve()
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, timeoutMs)
    const off = fleet.onRobotsChanged(() => {
      if (!pending()) done()
    })
    function done() {
      clearTimeout(t)
      off()
      resolve()
    }
  })
}
