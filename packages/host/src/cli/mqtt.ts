// `robot service … --mqtt <url>`: the CLI straight to robots on an MQTT broker (docs/mqtt.md), as
// --serial/--devtools go straight to one robot. With `--robot <name>` the verbs see that robot;
// without it they see every robot, its services namespaced (`/rover1/take_picture`); `service
// call --robots <glob>` calls every matching robot in parallel. Credentials: in the URL
// (`mqtt://user:pass@host:1883`) or ROBOT_MQTT_USER / ROBOT_MQTT_PASSWORD. Loaded only when --mqtt
// is given (it loads the `mqtt` package).
import { MqttDirectory } from "../client/mqttdir"
import { robotGlob } from "../client/fleet"
import { splitRobotName } from "../client/names"
import type { MqttNode } from "../client/mqtt"
import { ServiceError } from "../client/errors"
import { CallPipeline, type CallOutcome } from "../calls/pipeline"
import { projectServiceTypes } from "./types"
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
  if (!r) throw new HintedError(new ServiceError("invalid_argument", `${name}: without --robot, name the robot first, e.g. /rover1/add_two_ints`), HINT.noRobot)
  return r
}

async function callVia(pipeline: CallPipeline, service: string, args: unknown, opts: { timeoutMs: number; signal?: AbortSignal; onProgress?: (r: number, t: number) => void }): Promise<unknown> {
  const out = await pipeline.callJson({ service, args, timeoutMs: opts.timeoutMs, signal: opts.signal, onProgress: opts.onProgress }, "base64", { via: "cli", client: "cli" })
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
      p = new CallPipeline(onlineRobot(dir, robot), projectServiceTypes())
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
    close,
  }
}

/** One robot's row of a group call. */
export interface GroupRow {
  robot: string
  /** the response values (JSON-ready), when it answered */
  values?: unknown
  /** why not: `offline`, or the call's error */
  error?: ServiceError
  offline?: boolean
}


/**
 * Calls `service` on every robot whose name matches `glob`, in parallel: one row per robot, sorted
 * by name; an offline robot's row says offline (it is not called). First every online robot lists
 * its services; `beforeCalls(type)` sees the service's type (the first robot's) and may throw to call
 * none. Throws `unavailable` when no robot matches.
 */
export async function groupCall(
  url: string,
  glob: string,
  service: string,
  args: unknown,
  opts: { timeoutMs: number; wantType?: string; beforeCalls?: (type: string | undefined) => void },
): Promise<GroupRow[]> {
  const dir = await openDirectory(url)
  const pipelines: CallPipeline[] = []
  try {
    const re = robotGlob(glob)
    const all = dir.robots()
    const robots = all.filter((r) => re.test(r.name))
    if (!robots.length) {
      const there = all.length ? `robots there: ${all.map((r) => r.name).join(", ")}` : "no robot has announced itself there"
      throw new HintedError(new ServiceError("unavailable", `no robot matches '${glob}' on ${dir.url} (${there})`), HINT.noRobot)
    }
    const listed = await Promise.all(
      robots.map(async (r): Promise<{ row: GroupRow; pipeline?: CallPipeline; type?: string }> => {
        if (!r.online) return { row: { robot: r.name, offline: true, error: new ServiceError("unavailable", `robot ${r.name} offline (${dir.url})`, service) } }
        const p = new CallPipeline(dir.nodeFor(r.name), projectServiceTypes())
        pipelines.push(p)
        try {
          const info = (await p.node.listServices({ timeoutMs: opts.timeoutMs })).find((s) => s.name === service)
          if (!info) return { row: { robot: r.name, error: new ServiceError("unimplemented", `no service ${service} on robot ${r.name}`, service) } }
          if (opts.wantType && info.type !== opts.wantType) {
            return { row: { robot: r.name, error: new ServiceError("type_mismatch", `${service} is ${info.type}, not ${opts.wantType}`, service) } }
          }
          return { row: { robot: r.name }, pipeline: p, type: info.type }
        } catch (e) {
          return { row: { robot: r.name, error: asServiceError(e, service) } }
        }
      }),
    )
    opts.beforeCalls?.(listed.find((l) => l.type)?.type)
    return await Promise.all(
      listed.map(async ({ row, pipeline }) => {
        if (!pipeline) return row
        const out: CallOutcome = await pipeline.callJson({ service, args, timeoutMs: opts.timeoutMs }, "base64", { via: "cli", client: "cli" })
        return out.ok ? { robot: row.robot, values: out.values } : { robot: row.robot, error: out.error ?? new ServiceError("internal", "no answer", service) }
      }),
    )
  } finally {
    for (const p of pipelines) p.close()
    await dir.close()
  }
}

function asServiceError(e: unknown, service: string): ServiceError {
  return e instanceof ServiceError ? e : new ServiceError("internal", (e as Error)?.message ?? String(e), service)
}
