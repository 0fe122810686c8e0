// A fleet's robots and group calls, the one implementation every front end uses: the bridge's HTTP
// API (`GET /api/robots`, `POST /api/group/<service>?robots=<glob>`, docs/bridge.md) and the CLI's
// `service call --robots` over MQTT (packages/host/src/cli/mqtt.ts); the CLI through a bridge gets
// the same rows from that HTTP API. One service is called on every robot whose name matches a glob,
// in parallel, through the shared pipeline (so each call is logged and fed to the Foxglove channels
// like any other). The request is checked once per type the robots list for the service, not in
// each robot's call. An offline robot's row says so at once (packages/host/src/calls/servicelist.ts
// `isRobotOffline`), as does a robot whose list lacks the service; the others answer.
import type { RobotStatus } from "../client/api"
import { ServiceError, type ErrorCode } from "../client/errors"
import { normalizeName } from "../client/names"
import type { Binary, JsonRules } from "./json"
import type { CallPipeline, Caller, CheckedRequest } from "./pipeline"

/** One robot's answer: the response values, or the error (the HTTP API's JSON row). */
export interface GroupRow {
  robot: string
  ok: boolean
  values?: unknown
  error?: { code: ErrorCode; message: string }
}

export interface GroupRequest {
  /** The robots' own service name (`/add_two_ints`), without a robot namespace. */
  service: string
  /** Comma-separated robot name globs (`rover*`, `rover1,arm?`); `*` is every robot. */
  robots: string
  /** The request, as for one call (an object, or a list in field order). */
  args: unknown
  /** How `args` is read, as for one call (rosbridge's rules by default). */
  rules?: JsonRules
  /** Timeout of each robot's call (ms). */
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * A fleet's group API as a tool holds it, the CLI's `service call --robots`: the robots a glob list
 * names and one service called on them, asked for and answered (async), with the rows of the
 * bridge's HTTP API (`GET /api/robots`, `POST /api/group/<service>`). Over that HTTP API
 * (packages/host/src/cli/backends.ts `bridgeFleet`), or in this process (`groupRobots` and
 * `groupCall` on a pipeline over a FleetNode: packages/host/src/cli/mqtt.ts `mqttFleet`). Not a
 * `Fleet` (client/api.ts), the live fleet in this process, with presence read at once and change
 * events: a bridge's HTTP API has neither, and group calls need the pipeline above the client.
 */
export interface FleetGroupApi {
  /** Where the robots are, for messages: ` on mqtt://host:1883`, or "" */
  readonly where: string
  /**
   * The robots the globs match (every robot without), in name order; throws as `groupRobots`.
   * With globs, the online ones have listed their services (or did not in time).
   */
  robots(globs?: string): Promise<RobotStatus[]>
  /** As `groupCall`. */
  groupCall(req: GroupRequest): Promise<GroupRow[]>
  close(): Promise<void>
}

/** Takes one in-flight slot per robot call (undefined: none left, `message()` says why). */
export interface GroupLimit {
  acquire(): (() => void) | undefined
  message(): string
}

/**
 * The fleet's robots whose name matches the comma-separated globs (every robot without), in name
 * order, as the bridge shows them (`services` with names and types, empty while not listed).
 * Throws `unimplemented` when the pipeline's node is not a fleet, `invalid_argument` for a bad glob
 * list (packages/host/src/client/fleet.ts `robotGlob`: matched in at most (name + 1) x (glob + 1)
 * steps per name).
 */
export function groupRobots(pipeline: CallPipeline, robots?: string): RobotStatus[] {
  const fleet = pipeline.fleet
  if (!fleet) throw new ServiceError("unimplemented", "this bridge serves one robot, not a fleet: call /api/services/<name>")
  const all = pipeline.robotEntries()!
  if (robots === undefined) return all
  const names = new Set(fleet.matchRobots(robots))
  return all.filter((r) => names.has(r.name))
}

/**
 * Calls `service` on every robot the globs match, in parallel; one row per robot, in name order.
 * `limit` takes one in-flight slot per robot call (a row gets `resource_exhausted` with its message
 * when none is left). A robot that is online and has listed its services without this one gets its
 * `unimplemented` row without a call. The request is checked once per type the matched robots
 * list for the service; a robot whose type refuses it gets that `invalid_argument` row without a
 * call. Throws ServiceError before any call: `unimplemented` when the node is not a fleet,
 * `invalid_argument` for a bad glob, no service name, or a request every listed type refuses,
 * `unavailable` when no robot matches.
 */
export async function groupCall(
  pipeline: CallPipeline,
  req: GroupRequest,
  binary: Binary,
  caller: Caller,
  limit: GroupLimit = { acquire: () => () => {}, message: () => "" },
): Promise<GroupRow[]> {
  const names = groupRobots(pipeline, req.robots).map((r) => r.name)
  const service = normalizeName(req.service)
  if (service === "/") throw new ServiceError("invalid_argument", "name the service: /api/group/<service>")
  const listed = pipeline.fleet!.robots()
  if (names.length === 0) {
    const known = listed.map((r) => r.name)
    throw new ServiceError("unavailable", `no robot matches ${req.robots}${known.length ? ` (robots: ${known.join(", ")})` : " (no robot has appeared yet)"}`)
  }
  // (each robot's listing found once, not by a search of the fleet per question)
  const byName = new Map(listed.map((r) => [r.name, r]))
  const lacks = (robot: string) => {
    const r = byName.get(robot)
    return !!(r?.online && r.services && !r.services.some((s) => s.name === service))
  }
  // the request checked once per type the matched robots list for the service (a robot not listed
  // yet, or of a type the bridge does not define, is checked in its own call)
  const checks = new Map<string, CheckedRequest | ServiceError>()
  const typeOf = (robot: string) => byName.get(robot)?.services?.find((s) => s.name === service)?.type
  for (const robot of names) {
    const t = typeOf(robot)
    if (t === undefined || checks.has(t)) continue
    try {
      const c = pipeline.checkRequest(t, req.args, service, req.rules)
      if (c) checks.set(t, c)
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e
      checks.set(t, e)
    }
  }
  const results = [...checks.values()]
  if (results.length > 0 && results.every((c) => c instanceof ServiceError)) throw results[0]
  return await Promise.all(
    names.map(async (robot): Promise<GroupRow> => {
      if (lacks(robot)) return { robot, ok: false, error: { code: "unimplemented", message: `no service ${service} on robot ${robot}` } }
      const t = typeOf(robot)
      const checked = t === undefined ? undefined : checks.get(t)
      if (checked instanceof ServiceError) return { robot, ok: false, error: { code: checked.code, message: checked.detail } }
      // an offline robot's call fails at once in the pipeline (`unavailable`), not after a timeout
      const release = limit.acquire()
      if (!release) return { robot, ok: false, error: { code: "resource_exhausted", message: limit.message() } }
      try {
        const out = await pipeline.callJson(
          { service: `/${robot}${service}`, args: req.args, rules: req.rules, checked, timeoutMs: req.timeoutMs, signal: req.signal },
          binary,
          caller,
        )
        if (out.ok) return { robot, ok: true, values: out.values }
        return { robot, ok: false, error: { code: out.error!.code, message: out.error!.detail } }
      } finally {
        release()
      }
    }),
  )
}
