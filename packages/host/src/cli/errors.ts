// How `robot service` and `robot action` fail: one line on stderr, the error code and what to do (the code's general
// hint or the CLI's own), and exit status 1.
import { ServiceError, type ErrorCode } from "../client/errors"
import { isRobotOffline } from "../calls/pipeline"

export const HINTS: Record<ErrorCode, string> = {
  unimplemented: "check the name with `robot service list`",
  invalid_argument: "check the request against `robot interface show <type>`",
  type_mismatch: "the robot's firmware and this project's interfaces differ: rebuild one of them",
  deadline_exceeded: "the robot did not answer in time: try a longer --timeout",
  unavailable: "is the robot connected? start the bridge with `robot bridge`, or use --serial/--devtools",
  resource_exhausted: "the request or response is over a limit, or too many calls are in flight",
  internal: "the service's handler failed on the robot",
  cancelled: "the call was cancelled",
}

/** An error in the command line itself (an option, a file): printed without a hint about the robot. */
export class UsageError extends Error {}

/** Errors this CLI raised with a hint of their own (instead of the code's general one). */
const ownHints = new WeakMap<Error, string>()
export function hinted<E extends Error>(e: E, hint: string): E {
  ownHints.set(e, hint)
  return e
}

/** The hint this CLI gave `e` (hinted), if any. */
export function ownHint(e: unknown): string | undefined {
  return e instanceof Error ? ownHints.get(e) : undefined
}

/** Prints `robot <command> <verb>: <code>: <detail> (hint)` and sets exit status 1. */
export function fail(verb: string, e: unknown, command: "service" | "action" = "service"): void {
  let hint = ownHint(e) ?? (e instanceof Error ? (e as { hint?: string }).hint : undefined)
  if (!hint && e instanceof ServiceError && isRobotOffline({ code: e.code, message: e.detail })) hint = "the bridge serves it again when the robot is back; `robot service list` shows the robots online"
  const who = `robot ${command} ${verb}`
  if (e instanceof UsageError) console.error(`${who}: ${e.message}`)
  // the bridge's own "no service" messages already say what to do (name one, robot service list)
  else if (e instanceof ServiceError && !hint && e.code === "unimplemented" && /(\(robot service list[^)]*\)|name one \(\S+\))$/.test(e.detail)) console.error(`${who}: ${e.message}`)
  else if (e instanceof ServiceError) console.error(`${who}: ${e.message} (${hint ?? HINTS[e.code]})`)
  else console.error(`${who}: ${(e as Error)?.message ?? String(e)}`)
  process.exitCode = 1
}
