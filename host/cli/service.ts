// `robot service list|type|find|call`: ros2-style service verbs. By default they go through a
// running bridge (rosbridge v2 at ws://127.0.0.1:9090, rosapi for discovery), so they also work
// against any rosbridge server; with --serial or --devtools they talk to the robot directly with
// the host client. Errors print one line: the code and what to do; the exit status is 1.
import * as fs from "node:fs"
import type { Command } from "commander"
import YAML from "yaml"
import { ServiceError, type ErrorCode } from "../client/errors"
import { stringifyJson } from "../bridge/json"
import { RosbridgeClient } from "../bridge/rosclient"
import { typedefs as makeTypedefs, type Typedef } from "../bridge/rosapi"
import { transportFromOptions } from "./link"

interface ConnOptions {
  url?: string
  token?: string
  serial?: string | boolean
  devtools?: string | boolean
}

interface Backend {
  /** Every service with its type. */
  list(): Promise<{ name: string; type: string }[]>
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
  const rosapi = (name: string, args: object) => client.call(name, args, { timeoutMs: 10000 })
  return {
    async list() {
      const { services } = (await rosapi("/rosapi/services", {})) as { services: string[] }
      return Promise.all(services.map(async (name) => ({ name, type: ((await rosapi("/rosapi/service_type", { service: name })) as { type: string }).type })))
    },
    async typedefs(type, half) {
      const r = (await rosapi(half === "request" ? "/rosapi/service_request_details" : "/rosapi/service_response_details", { type })) as { typedefs: Typedef[] }
      return r.typedefs
    },
    call: (name, args, opts) => client.call(name, args, opts),
    async close() {
      client.close()
    },
  }
}

async function directBackend(o: ConnOptions): Promise<Backend> {
  // loaded lazily: only the direct mode needs the host client and its transports
  const { connect } = (require("../client/node") as typeof import("../client/node"))
  const { serviceTypes } = (require("../gen/interfaces") as typeof import("../gen/interfaces"))
  const { CallPipeline } = (require("../bridge/pipeline") as typeof import("../bridge/pipeline"))
  const transport = transportFromOptions(o)
  const node = await connect({ transport })
  // the bridge's own call pipeline: the same checks, conversions and errors as through a bridge
  const pipeline = new CallPipeline(node, serviceTypes)
  return {
    async list() {
      return (await node.listServices({ timeoutMs: 10000 })).map((s: { name: string; type: string }) => ({ name: s.name, type: s.type }))
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

async function withBackend<T>(o: ConnOptions, f: (b: Backend) => Promise<T>): Promise<T> {
  const direct = (o.serial !== undefined && o.serial !== false) || (o.devtools !== undefined && o.devtools !== false)
  const b = await (direct ? directBackend(o) : bridgeBackend(o))
  try {
    return await f(b)
  } finally {
    await b.close()
  }
}

/** Prints `robot service <verb>: <code>: <detail> (hint)` and sets exit status 1. */
function fail(verb: string, e: unknown): void {
  if (e instanceof ServiceError) console.error(`robot service ${verb}: ${e.message} (${HINTS[e.code]})`)
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

/** A progress bar on stderr, for calls still running after 200 ms or responses of 16 KiB or more. */
function progressBar(): { update: (r: number, t: number) => void; done: () => void } {
  let shown = false
  const start = performance.now()
  return {
    update(r, t) {
      if (t <= 0 || (!shown && t < 16 * 1024 && performance.now() - start < 200)) return
      const w = 30
      const k = Math.min(w, Math.round((r / t) * w))
      process.stderr.write(`\r[${"#".repeat(k)}${" ".repeat(w - k)}] ${Math.floor((100 * r) / t)}% ${(r / 1024).toFixed(1)}/${(t / 1024).toFixed(1)} KiB`)
      shown = true
    },
    done() {
      if (shown) process.stderr.write("\n")
    },
  }
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
}

export function registerService(program: Command): void {
  const service = program.command("service").description("list, inspect and call the robot's services (like `ros2 service`)")

  addConnOptions(service.command("list").description("list the services"))
    .option("-t, --show-types", "show each service's type")
    .option("-a, --all", "include the bridge's /rosapi/* services")
    .action(async (o: ConnOptions & { showTypes?: boolean; all?: boolean }) => {
      try {
        const list = (await withBackend(o, (b) => b.list())).filter(withRosapi(o.all)).sort((a, b) => (a.name < b.name ? -1 : 1))
        for (const s of list) console.log(o.showTypes ? `${s.name} [${s.type}]` : s.name)
      } catch (e) {
        fail("list", e)
      }
    })

  addConnOptions(service.command("type").argument("<name>", "service name, e.g. /add_two_ints").description("print a service's type"))
    .action(async (name: string, o: ConnOptions) => {
      try {
        const n = name.startsWith("/") ? name : `/${name}`
        const s = (await withBackend(o, (b) => b.list())).find((x) => x.name === n)
        if (!s) throw new ServiceError("unimplemented", `no service ${n}`, n)
        console.log(s.type)
      } catch (e) {
        fail("type", e)
      }
    })

  addConnOptions(service.command("find").argument("<type>", "service type, e.g. example_interfaces/srv/AddTwoInts").description("list the services of a type"))
    .action(async (type: string, o: ConnOptions) => {
      try {
        const p = type.split("/")
        const full = p.length === 2 ? `${p[0]}/srv/${p[1]}` : type
        const list = (await withBackend(o, (b) => b.list())).filter((s) => s.type === full).map((s) => s.name).sort()
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
    .option("--timeout <ms>", "give up after this many milliseconds", "10000")
    .option("--out <file>", "write the picture (CompressedImage data) of the response to this file")
    .action(async (name: string, a1: string | undefined, a2: string | undefined, o: ConnOptions & { timeout: string; out?: string }) => {
      try {
        const n = name.startsWith("/") ? name : `/${name}`
        let wantType: string | undefined
        let text = a1
        if (a1 !== undefined && TYPE_NAME.test(a1.trim())) {
          wantType = a1.trim()
          text = a2
        } else if (a2 !== undefined) throw new ServiceError("invalid_argument", `'${a1}' is not a service type; usage: robot service call <name> [type] [values]`)
        const timeoutMs = Number(o.timeout)
        if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ServiceError("invalid_argument", `--timeout must be a positive number of milliseconds, got ${o.timeout}`)
        const args = parseRequest(text)
        await withBackend(o, async (b) => {
          const s = (await b.list()).find((x) => x.name === n)
          if (!s) throw new ServiceError("unimplemented", `no service ${n}`, n)
          if (wantType) {
            const p = wantType.split("/")
            const full = p.length === 2 ? `${p[0]}/srv/${p[1]}` : wantType
            if (full !== s.type) throw new ServiceError("type_mismatch", `${n} is ${s.type}, not ${full}`, n)
          }
          const [reqTd, resTd] = await Promise.all([b.typedefs(s.type, "request"), b.typedefs(s.type, "response")])
          console.log(`requester: making request: ${formatMessage(args, reqTd)}\n`)
          const bar = progressBar()
          let values: unknown
          try {
            values = await b.call(n, args, { timeoutMs, onProgress: bar.update })
          } finally {
            bar.done()
          }
          console.log(`response:\n${formatMessage(values, resTd)}\n`)
          if (o.out) {
            const img = findImage(values)
            if (!img) throw new ServiceError("invalid_argument", `--out: the response of ${n} holds no picture (no field with format and data)`)
            fs.writeFileSync(o.out, img.data)
            console.error(`wrote ${img.data.length} bytes (${img.format}) to ${o.out}`)
          }
        })
      } catch (e) {
        fail("call", e)
      }
    })
}
