// `robot service list|type|find|call`: ros2-style service verbs. By default they go through a
// running bridge (rosbridge v2 at ws://127.0.0.1:9090, rosapi for discovery), so they also work
// against any rosbridge server; with --serial or --devtools they talk to the robot directly with
// the host client, with --mqtt to the robots on an MQTT broker (packages/host/src/cli/mqtt.ts: --robot picks
// one, without it every robot's services are namespaced /rover1/…; `call --robots <glob>` calls
// several). Errors print one line: the code and what to do; the exit status is 1.
import * as fs from "node:fs"
import * as path from "node:path"
import type { Command } from "commander"
import YAML from "yaml"
import { ServiceError, type ErrorCode } from "../client/errors"
import { parseJson, stringifyJson } from "../bridge/json"
import { RosbridgeClient } from "../bridge/rosclient"
import { fullServiceTypeName, typedefs as makeTypedefs, type Typedef } from "../bridge/rosapi"
import { transportFromOptions } from "./link"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { normalizeName } from "../client/names"

interface ConnOptions {
  url?: string
  token?: string
  serial?: string | boolean
  devtools?: string | boolean
  mqtt?: string
  robot?: string
}

interface Backend {
  /** Every service with its type. */
  list(): Promise<{ name: string; type: string }[]>
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
  typedefs(type: string, half: "request" | "response"): Promise<Typedef[]>
  call(name: string, args: unknown, opts: { timeoutMs: number; signal?: AbortSignal; onProgress?: (r: number, t: number) => void }): Promise<unknown>
  close(): Promise<void>
}

const HINTS: Record<ErrorCode, string> = {
  unimplemented: "check the name with `robot service list`",
  invalid_argument: "check the request against `robot interface show <type>`",
  type_mismatch: "the robot's firmware and this project's interfaces differ: rebuild one of them",
  deadline_exceeded: "the robot did not answer in time: try a longer --timeout",
  unavailable: "is the robot connected? start the bridge with `robot bridge`, or use --serial/--devtools",
  resource_exhausted: "the request or response is over a limit, or too many calls are in flight",
  internal: "the service's handler failed on the robot",
  cancelled: "the call was cancelled",
}

function defaultUrl(): string {
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
  return {
    async list() {
      const { services } = (await rosapi("/rosapi/services", {})) as { services: string[] }
      return Promise.all(services.map(async (name) => ({ name, type: ((await rosapi("/rosapi/service_type", { service: name })) as { type: string }).type })))
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
    call: (name, args, opts) => client.call(name, args, opts),
    async callUnlisted(name, args, opts) {
      try {
        return await client.call(name, args, opts)
      } catch (e) {
        // this project's bridge says why with an error code; another rosbridge server's own text is
        // not one of them (it comes back as `internal`)
        if (e instanceof ServiceError && e.code === "internal") throw new ServiceError("unimplemented", `no service ${name} (the bridge: ${e.detail})`, name)
        throw e
      }
    },
    async close() {
      client.close()
    },
  }
}

async function directBackend(o: ConnOptions): Promise<Backend> {
  // loaded lazily: only the direct mode needs the host client and its transports
  const { connect } = (require("../client/node") as typeof import("../client/node"))
  const serviceTypes = (require("./types") as typeof import("./types")).projectServiceTypes()
  const { CallPipeline } = (require("../bridge/pipeline") as typeof import("../bridge/pipeline"))
  let transport: ReturnType<typeof transportFromOptions>
  try {
    transport = transportFromOptions(o)
  } catch (e) {
    throw e instanceof ServiceError ? hinted(e, "check the --serial path") : e
  }
  const node = await connect({ transport })
  // the bridge's own call pipeline: the same checks, conversions and errors as through a bridge
  const pipeline = new CallPipeline(node, serviceTypes)
  return {
    async list() {
      return (await node.listServices({ timeoutMs: DEFAULT_TIMEOUT_MS })).map((s: { name: string; type: string }) => ({ name: s.name, type: s.type }))
    },
    async typedefs(type, half) {
      const d = serviceTypes[type]
      return d ? makeTypedefs(d[half].definitions) : []
    },
    async call(name, args, opts) {
      const out = await pipeline.callJson({ service: name, args, timeoutMs: opts.timeoutMs, signal: opts.signal, onProgress: opts.onProgress }, "base64", { via: "cli", client: "cli" })
      if (!out.ok) throw out.error!
      return out.values
    },
    async close() {
      pipeline.close()
      await node.close()
    },
  }
}

async function mqttBackend(o: ConnOptions & { mqtt: string }): Promise<Backend> {
  const { mqttBackend } = require("./mqtt") as typeof import("./mqtt")
  const serviceTypes = (require("./types") as typeof import("./types")).projectServiceTypes()
  const b = await mqttBackend({ mqtt: o.mqtt, robot: o.robot })
  return {
    ...b,
    list: () => b.list(),
    find: (name) => b.find(name),
    call: (name, args, opts) => b.call(name, args, opts),
    async typedefs(type, half) {
      const d = serviceTypes[type]
      return d ? makeTypedefs(d[half].definitions) : []
    },
    close: () => b.close(),
  }
}

/** The connection options that do not go together. */
function checkConnOptions(o: ConnOptions & { robots?: string }): void {
  const direct = [o.serial !== undefined && o.serial !== false && "--serial", o.devtools !== undefined && o.devtools !== false && "--devtools", o.mqtt !== undefined && "--mqtt"].filter(Boolean)
  if (direct.length > 1) throw new UsageError(`${direct.join(" and ")} do not go together: pick one way to reach the robot`)
  if (o.robot !== undefined && o.mqtt === undefined) throw new UsageError("--robot needs --mqtt <url> (robots are named on an MQTT broker)")
  if (o.robots !== undefined && direct.length && o.mqtt === undefined) throw new UsageError(`--robots calls a fleet's robots: through a bridge (no ${direct.join(", ")}) or with --mqtt <url>`)
  if (o.robots !== undefined && o.robot !== undefined) throw new UsageError("--robot and --robots do not go together")
}

async function withBackend<T>(o: ConnOptions, f: (b: Backend) => Promise<T>): Promise<T> {
  checkConnOptions(o)
  const direct = (o.serial !== undefined && o.serial !== false) || (o.devtools !== undefined && o.devtools !== false)
  const b = await (o.mqtt !== undefined ? mqttBackend({ ...o, mqtt: o.mqtt }) : direct ? directBackend(o) : bridgeBackend(o))
  try {
    return await f(b)
  } finally {
    await b.close()
  }
}

/** An error in the command line itself (an option, a file): printed without a hint about the robot. */
class UsageError extends Error {}

/** Errors this CLI raised with a hint of their own (instead of the code's general one). */
const ownHints = new WeakMap<Error, string>()
function hinted<E extends Error>(e: E, hint: string): E {
  ownHints.set(e, hint)
  return e
}

/** Prints `robot service <verb>: <code>: <detail> (hint)` and sets exit status 1. */
function fail(verb: string, e: unknown): void {
  let hint = e instanceof Error ? (ownHints.get(e) ?? (e as { hint?: string }).hint) : undefined
  if (!hint && e instanceof ServiceError && e.code === "unavailable" && /^robot \S+ is offline/.test(e.detail)) hint = "the bridge serves it again when the robot is back; `robot service list` shows the robots online"
  if (e instanceof UsageError) console.error(`robot service ${verb}: ${e.message}`)
  // the bridge's own "no service" messages already say what to do (name one, robot service list)
  else if (e instanceof ServiceError && !hint && e.code === "unimplemented" && /(\(robot service list[^)]*\)|name one \(\S+\))$/.test(e.detail)) console.error(`robot service ${verb}: ${e.message}`)
  else if (e instanceof ServiceError) console.error(`robot service ${verb}: ${e.message} (${hint ?? HINTS[e.code]})`)
  else console.error(`robot service ${verb}: ${(e as Error)?.message ?? String(e)}`)
  process.exitCode = 1
}

const withRosapi = (all: boolean | undefined) => (s: { name: string }) => all || !s.name.startsWith("/rosapi/")

// ---- ros2-style printing: example_interfaces.srv.AddTwoInts_Request(a=1, b=2)

function pyName(shortType: string, isService: boolean): string {
  const [pkg, name] = shortType.split("/")
  return `${pkg}.${isService ? "srv" : "msg"}.${name}`
}

function pyValue(v: unknown, type: string, arraylen: number, defs: Map<string, Typedef>): string {
  if (arraylen !== -1) {
    if (typeof v === "string" && type === "uint8") return `<${Buffer.from(v, "base64").length} bytes>`
    if (v instanceof Uint8Array) return `<${v.length} bytes>`
    if (!Array.isArray(v)) return String(v)
    return `[${v.map((x) => pyValue(x, type, -1, defs)).join(", ")}]`
  }
  const nested = defs.get(type)
  if (nested) return pyMessage(v as Record<string, unknown>, nested, defs, false)
  if (typeof v === "boolean") return v ? "True" : "False"
  if (typeof v === "string") return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`
  if ((type === "float32" || type === "float64") && ((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint")) return `${v}.0`
  if (v === null && type.startsWith("float")) return "nan"
  return String(v)
}

function exampleValue(example: string, type: string, arraylen: number): unknown {
  if (arraylen !== -1) return []
  if (type === "bool") return false
  if (type === "string" || type.startsWith("string<=") || type.startsWith("wstring")) return ""
  if (/^(u?int|float|byte|char)/.test(type)) return Number(example) || 0
  return {}
}

function pyMessage(v: Record<string, unknown> | undefined, td: Typedef, defs: Map<string, Typedef>, isService: boolean): string {
  const parts = td.fieldnames.map((f, i) => {
    const type = td.fieldtypes[i]!
    const len = td.fieldarraylen[i]!
    let x = v?.[f]
    if (x === undefined) x = defs.has(type) && len === -1 ? undefined : exampleValue(td.examples[i] ?? "", type, len)
    return `${f}=${pyValue(x, type, len, defs)}`
  })
  return `${pyName(td.type, isService)}(${parts.join(", ")})`
}

function formatMessage(v: unknown, tds: Typedef[]): string {
  const root = tds[0]
  if (!root) return stringifyJson(v)
  return pyMessage(v as Record<string, unknown>, root, new Map(tds.map((t) => [t.type, t])), true)
}

// ---- --out: the picture of a response

function findImage(v: unknown): { format: string; data: Buffer } | undefined {
  if (typeof v !== "object" || v === null) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.format === "string" && (typeof o.data === "string" || o.data instanceof Uint8Array)) {
    return { format: o.format, data: typeof o.data === "string" ? Buffer.from(o.data, "base64") : Buffer.from(o.data as Uint8Array) }
  }
  for (const x of Object.values(o)) {
    const f = findImage(x)
    if (f) return f
  }
  return undefined
}

/**
 * Progress on stderr for calls still running after 200 ms or responses of 16 KiB or more: a bar
 * redrawn in place on a terminal; when stderr is not a terminal (a file, a pipe, CI), one line at
 * the end instead of hundreds of carriage-return updates.
 */
export function progressBar(stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr): { update: (r: number, t: number) => void; done: (interrupted?: boolean) => void } {
  let shown = false
  let last: [number, number] | undefined
  const start = performance.now()
  const kib = (n: number) => (n / 1024).toFixed(1)
  return {
    update(r, t) {
      last = [r, t]
      if (t <= 0 || (!shown && t < 16 * 1024 && performance.now() - start < 200)) return
      shown = true
      if (!stream.isTTY) return
      const w = 30
      const k = Math.min(w, Math.round((r / t) * w))
      stream.write(`\r[${"#".repeat(k)}${" ".repeat(w - k)}] ${Math.floor((100 * r) / t)}% ${kib(r)}/${kib(t)} KiB`)
    },
    done(interrupted = false) {
      if (!shown) return
      if (stream.isTTY) stream.write(interrupted ? " (interrupted)\n" : "\n")
      else if (last) {
        const [r, t] = last
        stream.write(`${interrupted ? "interrupted after" : "received"} ${kib(r)}/${kib(t)} KiB in ${((performance.now() - start) / 1000).toFixed(1)} s\n`)
      }
    },
  }
}

/**
 * Checks a request against the type's typedefs before anything is printed or sent: unknown fields,
 * and integers given as quoted strings (`{a: '2'}`: YAML keeps integers exact, so a quoted one is
 * a mistake, not a way to keep digits). Throws invalid_argument naming the field.
 */
export function checkRequest(args: unknown, tds: Typedef[], path = ""): void {
  const root = tds[0]
  if (!root || typeof args !== "object" || args === null || Array.isArray(args)) return
  const defs = new Map(tds.map((t) => [t.type, t]))
  const walk = (v: Record<string, unknown>, td: Typedef, at: string) => {
    for (const k of Object.keys(v)) {
      const i = td.fieldnames.indexOf(k)
      const here = at ? `${at}.${k}` : k
      if (i < 0) {
        throw new ServiceError("invalid_argument", `${here}: ${td.type} has no field '${k}' (fields: ${td.fieldnames.join(", ") || "none"})`)
      }
      const type = td.fieldtypes[i]!
      const arraylen = td.fieldarraylen[i]!
      const x = v[k]
      const nested = defs.get(type)
      const isInt = /^(u?int(8|16|32|64)|byte|char)$/.test(type)
      const one = (e: unknown, p: string) => {
        if (nested && typeof e === "object" && e !== null && !Array.isArray(e)) walk(e as Record<string, unknown>, nested, p)
        else if (isInt && typeof e === "string" && !(type === "uint8" && arraylen !== -1)) {
          throw new ServiceError("invalid_argument", `${p}: expected an integer (${type}), got the string '${e}'; write it without quotes`)
        }
      }
      if (arraylen !== -1 && Array.isArray(x)) x.forEach((e, j) => one(e, `${here}[${j}]`))
      else one(x, here)
    }
  }
  walk(args as Record<string, unknown>, root, path)
}

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

/** Parses a request given as YAML or JSON (YAML is a superset); integers stay exact. */
export function parseRequest(text: string | undefined): unknown {
  if (text === undefined || text.trim() === "") return {}
  let v: unknown
  try {
    v = YAML.parse(text, { intAsBigInt: true })
  } catch (e) {
    throw new ServiceError("invalid_argument", `the request is not valid YAML/JSON: ${(e as Error).message.split("\n")[0]}`)
  }
  if (v === null || v === undefined) return {}
  if (typeof v !== "object" || Array.isArray(v)) throw new ServiceError("invalid_argument", `the request must be a mapping like "{a: 1, b: 2}", got ${text}`)
  return v
}

function addConnOptions(c: Command): Command {
  return c
    .option("--url <url>", "bridge WebSocket URL (default ws://127.0.0.1:9090, or bridge.host/port in devs.json)")
    .option("--token <token>", "bridge token (default: $ROBOT_BRIDGE_TOKEN)")
    .option("--serial [path]", "talk to a board on a serial port directly, not through a bridge")
    .option("--devtools [url]", "talk to the DeviceScript simulator directly (default ws://127.0.0.1:8081)")
    .option("--mqtt <url>", "talk to the robots on an MQTT broker directly (mqtt://[user:pass@]host:1883; or ROBOT_MQTT_USER/ROBOT_MQTT_PASSWORD)")
    .option("--robot <name>", "with --mqtt: this robot (without it: every robot, services named /<robot>/<service>)")
}

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
  const namespaced = there.map((x) => x.name).filter((x) => x.endsWith(name) && /^\/[^/]+$/.test(x.slice(0, x.length - name.length))).sort()
  if (namespaced.length) return hinted(e, `the robots are named first: ${namespaced[0]}${namespaced.length > 1 ? ` (or ${namespaced.length - 1} more: robot service list)` : ""}`)
  return e
}

/** One service by name: the backend's own lookup, or its list. */
async function findService(b: Backend, name: string): Promise<{ name: string; type: string } | undefined> {
  if (b.find) return b.find(name)
  return (await b.list()).find((x) => x.name === name)
}

/** `service call --robots <glob>`: the request once, then one row per robot; exit status 1 if any robot did not answer. */
async function groupCallCommand(url: string, glob: string, n: string, args: unknown, wantType: string | undefined, timeoutMs: number): Promise<void> {
  const { groupCall } = require("./mqtt") as typeof import("./mqtt")
  const serviceTypes = (require("./types") as typeof import("./types")).projectServiceTypes()
  const full = wantType && fullServiceTypeName(wantType)
  let resTd: Typedef[] = []
  const rows = await groupCall(url, glob, n, args, {
    timeoutMs,
    wantType: full,
    beforeCalls(type) {
      const d = type ? serviceTypes[type] : undefined
      if (!d) return // no robot has the service: the rows say why
      const reqTd = makeTypedefs(d.request.definitions)
      resTd = makeTypedefs(d.response.definitions)
      checkRequest(args, reqTd)
      console.log(`requester: making request: ${formatMessage(args, reqTd)}\n`)
    },
  })
  let failed = 0
  for (const r of rows.sort((a, b) => (a.robot < b.robot ? -1 : 1))) {
    if (r.offline) console.log(`${r.robot}: offline`)
    else if (r.error) console.log(`${r.robot}: ${r.error.message}`)
    else console.log(`${r.robot}: ${formatMessage(r.values, resTd)}`)
    if (r.offline || r.error) failed++
  }
  if (failed) {
    console.error(`robot service call: ${failed} of ${rows.length} robot(s) did not answer`)
    process.exitCode = 1
  }
}

/** The bridge's HTTP API base (`http://host:port`) for its WebSocket URL, and the token header. */
function bridgeHttp(o: ConnOptions): { base: string; headers: Record<string, string> } {
  const u = new URL(o.url ?? defaultUrl())
  u.protocol = u.protocol === "wss:" ? "https:" : "http:"
  const token = o.token ?? process.env.ROBOT_BRIDGE_TOKEN
  return { base: `${u.protocol}//${u.host}`, headers: token ? { authorization: `Bearer ${token}` } : {} }
}

/** A request to the bridge's HTTP API; its error body (`{code, message}`) becomes a ServiceError. */
async function bridgeApi(url: string, init: RequestInit): Promise<any> {
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

/**
 * `service call --robots <glob>` through a bridge that serves a fleet: its robots and their
 * services from `GET /api/robots`, then one `POST /api/group/<service>?robots=<glob>` (docs/bridge.md);
 * printed as the --mqtt group call prints. Exit status 1 if any robot did not answer.
 */
async function bridgeGroupCallCommand(o: ConnOptions, glob: string, n: string, args: unknown, wantType: string | undefined, timeoutMs: number): Promise<void> {
  const serviceTypes = (require("./types") as typeof import("./types")).projectServiceTypes()
  const { base, headers } = bridgeHttp(o)
  const q = encodeURIComponent(glob)
  const listed = (await bridgeApi(`${base}/api/robots?robots=${q}`, { headers })) as { fleet: boolean; robots: { name: string; online: boolean; services: { name: string; type: string }[] }[] }
  if (!listed.fleet) throw hinted(new ServiceError("unimplemented", `the bridge at ${base} serves one robot, not a fleet`), "leave --robots out")
  if (!listed.robots.length) {
    const all = (await bridgeApi(`${base}/api/robots`, { headers })) as { robots: { name: string }[] }
    throw hinted(new ServiceError("unavailable", `no robot matches '${glob}'`), all.robots.length ? `robots there: ${all.robots.map((r) => r.name).join(", ")}` : "no robot has appeared yet")
  }
  const type = listed.robots.flatMap((r) => r.services).find((s) => s.name === n)?.type
  const full = wantType && fullServiceTypeName(wantType)
  if (full && type && full !== type) throw hinted(new ServiceError("type_mismatch", `${n} is ${type}, not ${full}`, n), `leave the type out, or give ${type}`)
  let resTd: Typedef[] = []
  const d = type ? serviceTypes[type] : undefined
  if (d) {
    const reqTd = makeTypedefs(d.request.definitions)
    resTd = makeTypedefs(d.response.definitions)
    checkRequest(args, reqTd)
    console.log(`requester: making request: ${formatMessage(args, reqTd)}\n`)
  }
  const out = (await bridgeApi(`${base}/api/group${n}?robots=${q}&timeout_ms=${timeoutMs}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: stringifyJson(args),
  })) as { results: { robot: string; ok: boolean; values?: unknown; error?: { code: string; message: string } }[] }
  let failed = 0
  for (const r of out.results) {
    if (r.ok) console.log(`${r.robot}: ${formatMessage(r.values, resTd)}`)
    else {
      failed++
      const offline = r.error?.code === "unavailable" && /is offline/.test(r.error.message)
      console.log(`${r.robot}: ${offline ? "offline" : `${r.error?.code}: ${r.error?.message}`}`)
    }
  }
  if (failed) {
    console.error(`robot service call: ${failed} of ${out.results.length} robot(s) did not answer`)
    process.exitCode = 1
  }
}

export function registerService(program: Command): void {
  const service = program.command("service").description("list, inspect and call the robot's services (like `ros2 service`)")

  addConnOptions(service.command("list").description("list the services"))
    .option("-t, --show-types", "show each service's type")
    .option("-a, --all", "include the bridge's /rosapi/* services")
    .action(async (o: ConnOptions & { showTypes?: boolean; all?: boolean }) => {
      try {
        const list = (
          await withBackend(o, async (b) => {
            const l = await b.list()
            noteSkipped(b)
            return l
          })
        )
          .filter(withRosapi(o.all))
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
        const full = fullServiceTypeName(type)
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
          if (o.mqtt === undefined) await bridgeGroupCallCommand(o, o.robots, n, args, wantType, timeoutMs)
          else await groupCallCommand(o.mqtt, o.robots, n, args, wantType, timeoutMs)
          return
        }
        await withBackend(o, async (b) => {
          let s = await findService(b, n)
          if (!s && b.callUnlisted) {
            // not listed: the bridge says why (offline robot, a fleet name without a robot) or, if
            // it appeared meanwhile, answers; the request is checked by the bridge
            const values = await b.callUnlisted(n, args, { timeoutMs })
            s = await findService(b, n)
            const resTd = s ? await b.typedefs(s.type, "response") : []
            console.log(`response:\n${formatMessage(values, resTd)}\n`)
            return
          }
          if (!s) throw await missing(b, n)
          if (wantType) {
            const full = fullServiceTypeName(wantType)
            if (full !== s.type) throw hinted(new ServiceError("type_mismatch", `${n} is ${s.type}, not ${full}`, n), `leave the type out, or give ${s.type}`)
          }
          const [reqTd, resTd] = await Promise.all([b.typedefs(s.type, "request"), b.typedefs(s.type, "response")])
          checkRequest(args, reqTd)
          const bar = progressBar()
          // Ctrl+C while waiting: finish the progress line and say what happened (set before the
          // request line is printed, so a Ctrl+C right after it is caught too)
          const onSigint = () => {
            bar.done(true)
            console.error(`robot service call: cancelled: interrupted (Ctrl+C) before ${n} answered; the robot may still carry the call out`)
            process.exit(130)
          }
          process.once("SIGINT", onSigint)
          console.log(`requester: making request: ${formatMessage(args, reqTd)}\n`)
          let values: unknown
          try {
            values = await b.call(n, args, { timeoutMs, onProgress: bar.update })
          } finally {
            process.off("SIGINT", onSigint)
            bar.done()
          }
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
}
