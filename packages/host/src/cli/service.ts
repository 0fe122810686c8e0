// `robot service list|type|find|call` (and `echo`, cli/echo.ts): ros2-style service verbs. By default they go through a
// running bridge (rosbridge v2 at ws://127.0.0.1:9090, rosapi for discovery), so they also work
// against any rosbridge server; with --serial or --devtools they talk to the robot directly with
// the host client, with --mqtt to the robots on an MQTT broker (packages/host/src/cli/mqtt.ts: --robot picks
// one, without it every robot's services are namespaced /rover1/…; `call --robots <glob>` calls
// several). A request is parsed here and checked once, where it is called: by the bridge (asked for
// the YAML rules) or by the call pipeline in this process. Errors print one line: the code and what
// to do; the exit status is 1.
import * as fs from "node:fs"
import * as path from "node:path"
import type { Command } from "commander"
import { ServiceError } from "../client/errors"
import type { FleetGroupApi } from "../calls/group"
import { isRobotOffline } from "../calls/pipeline"
import { YAML_RULES } from "../calls/json"
import { typedefs as makeTypedefs, type Typedef } from "../calls/rosapi"
import { fullTypeName } from "../runtime/names"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { normalizeName, splitRobotName } from "../client/names"
import { type Backend, type ConnOptions, addConnOptions, bridgeFleet, checkConnOptions, withBackend } from "./backends"
import { UsageError, fail, hinted } from "./errors"
import { parseRequest } from "./request"
import { findImage, formatMessage, progressBar } from "./format"

const withRosapi = (all: boolean | undefined) => (s: { name: string }) => all || !s.name.startsWith("/rosapi/")
/** An action's own services (`/fibonacci/_action/send_goal`) are hidden, as `ros2 service list` hides them. */
const withHidden = (all: boolean | undefined) => (s: { name: string }) => all || !(require("./types") as typeof import("./types")).isActionService(s.name)

/** `--out`: the folder must exist and the file be writable, checked before the call is made. */
function checkOutFile(out: string): void {
  const dir = path.dirname(path.resolve(out))
  let st: fs.Stats
  try {
    st = fs.statSync(dir)
  } catch {
    throw new UsageError(`--out: the folder ${dir} does not exist (create it first, or pick another path)`)
  }
  if (!st.isDirectory()) throw new UsageError(`--out: ${dir} is not a folder`)
  try {
    fs.accessSync(dir, fs.constants.W_OK)
  } catch {
    throw new UsageError(`--out: cannot write in ${dir} (permission denied)`)
  }
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`--out: ${out} is a folder; give a file name such as ${path.join(out, "picture.jpg")}`)
}

const TYPE_NAME = /^[A-Za-z][\w]*\/(srv\/)?[A-Za-z][\w]*$/

/** Prints the robots a listing left out (offline, not answering) on stderr. */
function noteSkipped(b: Backend): void {
  for (const s of b.skipped ?? []) console.error(s.why === "offline" ? `robot ${s.robot} is offline: its services are not listed` : `robot ${s.robot}: ${s.why}`)
}

/**
 * The error for a service the backend does not have: `no service <name>`, and when the robots of
 * a fleet have it under their names (`/robot1/add_two_ints`), one of those to use.
 */
async function missing(b: Backend, name: string): Promise<ServiceError> {
  const e = new ServiceError("unimplemented", `no service ${name}`, name)
  const there = await b.list().catch(() => [] as { name: string }[])
  const namespaced = there.map((x) => x.name).filter((x) => splitRobotName(x)?.service === name).sort()
  if (namespaced.length) return hinted(e, `the robots are named first: ${namespaced[0]}${namespaced.length > 1 ? ` (or ${namespaced.length - 1} more: robot service list)` : ""}`)
  return e
}

/** One service by name: the backend's own lookup, or its list (waited for up to `timeoutMs`, a call's own). */
async function findService(b: Backend, name: string, timeoutMs?: number): Promise<{ name: string; type: string } | undefined> {
  if (b.find) return b.find(name)
  return (await b.list(timeoutMs)).find((x) => x.name === name)
}

/** The service has another type than the one given (the bridge's own text, packages/host/src/calls/pipeline.ts, and the CLI's hint). */
const typeMismatch = (n: string, actual: string, given: string) => hinted(new ServiceError("type_mismatch", `${n} is ${actual}, not ${given}`, n), `leave the type out, or give ${actual}`)

/** A type as the CLI shows it: the typedefs of its request and response. */
interface Described {
  request: Typedef[]
  response: Typedef[]
}

/**
 * A service type from the project's own interfaces (no round trip), or else from the backend (a
 * bridge's rosapi typedefs); unknown everywhere: shown as JSON. Only to show values: the request
 * is checked by the far end (cli/backends.ts Backend.call), once.
 */
async function describe(b: Backend, type: string): Promise<Described> {
  const d = (require("./types") as typeof import("./types")).projectCallTypes()[type]
  if (d) return { request: makeTypedefs(d.request.definitions), response: makeTypedefs(d.response.definitions) }
  const [request, response] = b.typedefs ? await Promise.all([b.typedefs(type, "request"), b.typedefs(type, "response")]) : [[], []]
  return { request, response }
}

/**
 * `service call --robots <glob>` on a fleet (through a bridge, or over MQTT): the robots the glob
 * matches and their services, then the group call, which checks the request once by the CLI's
 * rules (packages/host/src/calls/group.ts), and with its rows the request line (when the project
 * defines the type) and one row per robot, in name order (`robot2: offline`, its response, or
 * `<code>: <message>`). Exit status 1 if any robot did not answer.
 */
async function groupCallCommand(f: FleetGroupApi, glob: string, n: string, args: unknown, wantType: string | undefined, timeoutMs: number): Promise<void> {
  const serviceTypes = (require("./types") as typeof import("./types")).projectCallTypes()
  const matched = await f.robots(glob)
  if (!matched.length) {
    const all = await f.robots()
    throw hinted(new ServiceError("unavailable", `no robot matches '${glob}'${f.where}`), all.length ? `robots there: ${all.map((r) => r.name).join(", ")}` : "no robot has appeared yet")
  }
  const type = matched.flatMap((r) => r.services ?? []).find((s) => s.name === n)?.type
  const full = wantType && fullTypeName(wantType, "srv")
  if (full && type && full !== type) throw typeMismatch(n, type, full)
  const rows = await f.groupCall({ service: n, robots: glob, args, rules: YAML_RULES, timeoutMs })
  let resTd: Typedef[] = []
  const d = type ? serviceTypes[type] : undefined
  if (d) {
    resTd = makeTypedefs(d.response.definitions)
    console.log(`requester: making request: ${formatMessage(args, makeTypedefs(d.request.definitions))}\n`)
  }
  let failed = 0
  for (const r of rows) {
    if (r.ok) console.log(`${r.robot}: ${formatMessage(r.values, resTd)}`)
    else {
      failed++
      console.log(`${r.robot}: ${isRobotOffline(r.error) ? "offline" : `${r.error?.code}: ${r.error?.message}`}`)
    }
  }
  if (failed) {
    console.error(`robot service call: ${failed} of ${rows.length} robot(s) did not answer`)
    process.exitCode = 1
  }
}

export function registerService(program: Command): void {
  const service = program.command("service").description("list, inspect, call and echo the robot's services (like `ros2 service`)")

  addConnOptions(service.command("list").description("list the services"))
    .option("-t, --show-types", "show each service's type")
    .option("-a, --all", "include the bridge's /rosapi/* services")
    .option("--include-hidden-services", "include the services actions are made of (<action>/_action/send_goal, ...)")
    .action(async (o: ConnOptions & { showTypes?: boolean; all?: boolean; includeHiddenServices?: boolean }) => {
      try {
        const list = (
          await withBackend(o, async (b) => {
            const l = await b.list()
            noteSkipped(b)
            return l
          })
        )
          .filter(withRosapi(o.all))
          .filter(withHidden(o.includeHiddenServices))
          .sort((a, b) => (a.name < b.name ? -1 : 1))
        for (const s of list) console.log(o.showTypes ? `${s.name} [${s.type}]` : s.name)
      } catch (e) {
        fail("list", e)
      }
    })

  addConnOptions(service.command("type").argument("<name>", "service name, e.g. /add_two_ints").description("print a service's type"))
    .action(async (name: string, o: ConnOptions) => {
      try {
        const n = normalizeName(name)
        await withBackend(o, async (b) => {
          const s = await findService(b, n)
          if (!s) throw await missing(b, n)
          console.log(s.type)
        })
      } catch (e) {
        fail("type", e)
      }
    })

  addConnOptions(service.command("find").argument("<type>", "service type, e.g. example_interfaces/srv/AddTwoInts").description("list the services of a type"))
    .action(async (type: string, o: ConnOptions) => {
      try {
        const full = fullTypeName(type, "srv")
        const all = await withBackend(o, async (b) => {
          const l = await b.list()
          noteSkipped(b)
          return l
        })
        const list = all.filter((s) => s.type === full).map((s) => s.name).sort()
        if (!list.length) {
          const types = [...new Set(all.filter(withRosapi(false)).map((s) => s.type))].sort()
          throw hinted(
            new ServiceError("unimplemented", `no service of type ${full} on the robot`),
            types.length ? `its types: ${types.join(", ")}` : "the robot lists no services",
          )
        }
        for (const n of list) console.log(n)
      } catch (e) {
        fail("find", e)
      }
    })

  addConnOptions(
    service
      .command("call")
      .argument("<name>", "service name, e.g. /add_two_ints")
      .argument("[type_or_values]", "the service type (optional, as in ros2), or the request")
      .argument("[values]", "the request as YAML or JSON, e.g. \"{a: 1, b: 2}\"")
      .description("call a service and print the response (like `ros2 service call`)"),
  )
    .option("--timeout <ms>", "give up after this many milliseconds", String(DEFAULT_TIMEOUT_MS))
    .option("--out <file>", "write the picture (CompressedImage data) of the response to this file")
    .option("--robots <glob>", "call every robot of a fleet whose name matches (rover*, r?), in parallel, through the bridge or with --mqtt; one row per robot")
    .action(async (name: string, a1: string | undefined, a2: string | undefined, o: ConnOptions & { timeout: string; out?: string; robots?: string }) => {
      try {
        const n = normalizeName(name)
        let wantType: string | undefined
        let text = a1
        if (a1 !== undefined && TYPE_NAME.test(a1.trim())) {
          wantType = a1.trim()
          text = a2
        } else if (a2 !== undefined) throw new UsageError(`'${a1}' is not a service type; usage: robot service call <name> [type] [values]`)
        const timeoutMs = Number(o.timeout)
        if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, got ${o.timeout}`)
        if (o.out) checkOutFile(o.out)
        const args = parseRequest(text)
        if (o.robots !== undefined) {
          checkConnOptions(o)
          if (o.out) throw new UsageError("--out takes one robot's picture: use --robot, not --robots")
          const f = o.mqtt === undefined ? bridgeFleet(o) : await (require("./mqtt") as typeof import("./mqtt")).mqttFleet(o.mqtt, timeoutMs)
          try {
            await groupCallCommand(f, o.robots, n, args, wantType, timeoutMs)
          } finally {
            await f.close()
          }
          return
        }
        await withBackend(o, async (b) => {
          const full = wantType === undefined ? undefined : fullTypeName(wantType, "srv")
          let type: string
          if (full !== undefined && b.checksType) {
            // the backend checks the type with the call itself: no lookup first
            type = full
          } else {
            let s = await findService(b, n, timeoutMs)
            if (!s && b.callUnlisted) {
              // not listed: the bridge says why (offline robot, a fleet name without a robot) or, if
              // it appeared meanwhile, answers; the request is checked by the bridge
              const values = await b.callUnlisted(n, args, { timeoutMs })
              s = await findService(b, n)
              const resTd = s ? (await describe(b, s.type)).response : []
              console.log(`response:\n${formatMessage(values, resTd)}\n`)
              return
            }
            if (!s) throw await missing(b, n)
            if (full !== undefined && full !== s.type) throw typeMismatch(n, s.type, full)
            type = s.type
          }
          const { request: reqTd, response: resTd } = await describe(b, type)
          const bar = progressBar()
          // Ctrl+C while waiting: finish the progress line and say what happened (set before the
          // request line is printed, so a Ctrl+C right after it is caught too)
          const onSigint = () => {
            bar.done(true)
            console.error(`robot service call: cancelled: interrupted (Ctrl+C) before ${n} answered; the robot may still carry the call out`)
            process.exit(130)
          }
          process.once("SIGINT", onSigint)
          // the request line once the far end has checked the request (its one check: a request it
          // refuses gets no request line), or with the answer from a rosbridge server that does not say
          let shown = false
          const showRequest = () => {
            if (!shown) console.log(`requester: making request: ${formatMessage(args, reqTd)}\n`)
            shown = true
          }
          let values: unknown
          try {
            values = await b.call(n, args, { timeoutMs, onProgress: bar.update, onStart: showRequest, type })
          } finally {
            process.off("SIGINT", onSigint)
            bar.done()
          }
          showRequest()
          console.log(`response:\n${formatMessage(values, resTd)}\n`)
          if (o.out) {
            const img = findImage(values)
            if (!img) throw new UsageError(`--out: the response of ${n} holds no picture (no field with format and data)`)
            fs.writeFileSync(o.out, img.data)
            console.error(`wrote ${img.data.length} bytes (${img.format}) to ${o.out}`)
          }
        })
      } catch (e) {
        fail("call", e)
      }
    })

  // echo follows a topic of the bridge, not a backend: it has its own file and options
  ;(require("./echo") as typeof import("./echo")).registerEcho(service)
}
