// Group calls: one service called on every robot of a fleet whose name matches a glob, in
// parallel, through the shared pipeline (so each call is checked, logged and fed to the Foxglove
// channels like any other). An offline robot's row says so at once; the others answer. Used by
// the HTTP API (`POST /api/group/<service>?robots=<glob>`, docs/bridge.md).
import { ServiceError, type ErrorCode } from "../client/errors"
import { robotGlob } from "../client/fleet"
import type { Binary } from "../calls/json"
import { normalizeName } from "../client/names"
import type { CallPipeline, Caller } from "../calls/pipeline"

/** One robot's answer: the response values, or the error. */
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
  /** Timeout of each robot's call (ms). */
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * The robots the comma-separated globs name, in name order; throws `invalid_argument` on a bad glob
 * list (packages/host/src/client/fleet.ts `robotGlob`: matched in at most (name + 1) x (glob + 1) steps per name).
 */
export function matchGroup(pipeline: CallPipeline, robots: string): string[] {
  const fleet = pipeline.fleet
  if (!fleet) throw new ServiceError("unimplemented", "this bridge serves one robot, not a fleet: call /api/services/<name>")
  const m = robotGlob(robots)
  return fleet
    .robots()
    .map((r) => r.name)
    .filter((n) => m.test(n))
    .sort()
}

/**
 * Calls `service` on every robot the globs match, in parallel; one row per robot, in name order.
 * `limit` takes one in-flight slot per robot call (a row gets `resource_exhausted` with its message
 * when none is left). Throws ServiceError before any call: `unimplemented` when the node is not a
 * fleet, `invalid_argument` for a bad glob, `unavailable` when no robot matches.
 */
export async function groupCall(
  pipeline: CallPipeline,
  req: GroupRequest,
  binary: Binary,
  caller: Caller,
  limit: { acquire(): (() => void) | undefined; message(): string } = { acquire: () => () => {}, message: () => "" },
): Promise<GroupRow[]> {
  const names = matchGroup(pipeline, req.robots)
  const service = normalizeName(req.service)
  if (service === "/") throw new ServiceError("invalid_argument", "name the service: /api/group/<service>")
  if (names.length === 0) {
    const known = pipeline.fleet!.robots().map((r) => r.name)
    throw new ServiceError("unavailable", `no robot matches ${req.robots}${known.length ? ` (robots: ${known.join(", ")})` : " (no robot has appeared yet)"}`)
  }
  return await Promise.all(
    names.map(async (robot): Promise<GroupRow> => {
      // an offline robot's call fails at once in the pipeline (`unavailable`), not after a timeout
      const release = limit.acquire()
      if (!release) return { robot, ok: false, error: { code: "resource_exhausted", message: limit.message() } }
      try {
        const out = await pipeline.callJson(
          { service: `/${robot}${service}`, args: req.args, timeoutMs: req.timeoutMs, signal: req.signal },
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
