// The bridge: one port serving
//   - the rosbridge v2 protocol over WebSocket (call_service -> service_response, fragment,
//     compression "cbor", status, auth, and the rosapi discovery services), so roslibjs and
//     roslibpy clients work unchanged;
//   - an HTTP API: GET /api/services, GET /api/state, POST /api/services/<name>;
//   - the dashboard (host/bridge/web/) at `/`.
// It talks to the robot through a RobotNode (host/client/api.ts) only. See docs/bridge.md.
import { timingSafeEqual } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { WebSocketServer, type WebSocket, type RawData } from "ws"
import type { NodeState, RobotNode, ServiceInfo } from "../client/api"
import { ServiceError, type ErrorCode } from "../client/errors"
import type { ServiceDescriptor } from "../runtime/types"
import { fromJson, parseJson, stringifyJson, toJson, ValueError } from "./json"
import { normalizeName } from "./memory"
import { fullServiceTypeName, ROSAPI_SERVICES, shortTypeName, typedefs, type TypeRegistry } from "./rosapi"

export interface BridgeOptions {
  /** The robot (or an in-memory node). The bridge never closes it. */
  node: RobotNode
  /** Address to listen on (default 127.0.0.1). Anything but loopback needs `token`. */
  host?: string
  /** TCP port (default 9090, the rosbridge port; 0 picks a free one). */
  port?: number
  /** Shared secret every WebSocket and HTTP client must present (default: none, loopback only). */
  token?: string
  /** Origins allowed besides same-origin and no-origin clients (`*` allows any). */
  allowedOrigins?: string[]
  /** Largest WebSocket message or HTTP body accepted, in bytes (default 1 MiB). */
  maxMessageBytes?: number
  /** Calls one client may have in flight (default 32); more are refused with resource_exhausted. */
  maxInFlightPerClient?: number
  /** Service descriptors by full type name (host/gen/interfaces.ts `serviceTypes`). */
  typeRegistry: TypeRegistry
  /** Timeout of a call that names none (ms, default 10000). */
  callTimeoutMs?: number
  /** Where the bridge writes one line per notable event (default: nowhere). */
  log?: (line: string) => void
}

export interface Bridge {
  /** `http://host:port` (the dashboard). */
  readonly url: string
  /** `ws://host:port` (rosbridge). */
  readonly wsUrl: string
  readonly host: string
  readonly port: number
  /** WebSocket clients connected now. */
  clientCount(): number
  /** Closes every client and the listening socket; the node is left open. */
  close(): Promise<void>
}

/** Topics the bridge itself publishes (subscribe with the rosbridge `subscribe` op). */
export const STATE_TOPIC = "/robot_bridge/state"
export const CALLS_TOPIC = "/robot_bridge/calls"

/** HTTP status for each error code. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_argument: 400,
  unimplemented: 404,
  type_mismatch: 409,
  resource_exhausted: 413,
  cancelled: 499,
  internal: 500,
  unavailable: 503,
  deadline_exceeded: 504,
}

const WEB_DIR = path.join(__dirname, "web")
/** Unsent output (bytes) past which a client that stopped reading is disconnected. */
const MAX_BUFFERED = 64 * 1024 * 1024
const STATIC: Record<string, [string, string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/style.css": ["style.css", "text/css; charset=utf-8"],
}

// cbor2 is the CBOR library roslibjs itself decodes with. It is an ES module: Node >= 20.19 loads it
// from CommonJS with require(). Uint8Array becomes a CBOR byte string, bigint an exact integer.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { encode: cborEncode } = require("cbor2") as { encode(v: unknown): Uint8Array }
const cbor = { encode: (v: unknown): Buffer => Buffer.from(cborEncode(v)) }

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1"
}

interface CallRequest {
  service: string
  args: unknown
  timeoutMs: number
  signal: AbortSignal
  onProgress?: (received: number, total: number) => void
}

interface CallOutcome {
  ok: boolean
  values: unknown
  error?: ServiceError
  type?: ServiceDescriptor<any, any>
}

interface Conn {
  id: number
  ws: WebSocket
  authed: boolean
  inFlight: number
  calls: Set<AbortController>
  topics: Set<string>
  statusLevel: "none" | "error" | "warning" | "info"
}

/**
 * Starts the bridge; resolves once it listens. Throws before listening when `host` is not
 * loopback and no token is given, and when the port is taken (the listen error).
 */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const host = options.host ?? "127.0.0.1"
  const token = options.token || undefined
  if (!isLoopback(host) && !token) {
    throw new Error(
      `refusing to listen on ${host} without a token: anyone who can reach this address could call the robot's services. ` +
        `Pass --token <secret> (or set ROBOT_BRIDGE_TOKEN), or listen on 127.0.0.1.`,
    )
  }
  const node = options.node
  const registry = options.typeRegistry
  const maxBytes = options.maxMessageBytes ?? 1024 * 1024
  const maxInFlight = options.maxInFlightPerClient ?? 32
  const defaultTimeout = options.callTimeoutMs ?? 10000
  const allowed = new Set(options.allowedOrigins ?? [])
  const log = options.log ?? (() => {})

  // ---- the robot's services, cached
  let services: ServiceInfo[] = []
  let haveList = false
  let restarting = false
  const clients = new Map<string, { hash32: number; client: ReturnType<RobotNode["createClient"]> }>()
  // bumped on every pushed change, so an older listServices answer never overwrites a newer push
  let listGen = 0
  const refresh = async (timeoutMs: number): Promise<ServiceInfo[]> => {
    const gen = listGen
    const list = await node.listServices({ timeoutMs })
    if (gen !== listGen) return services
    services = list
    haveList = true
    return list
  }
  const offServices = node.onServicesChanged((list) => {
    listGen++
    services = list
    haveList = true
    clients.clear()
    publish(STATE_TOPIC, stateMessage())
  })
  const offState = node.onStateChange((state, info) => {
    restarting = state === "connecting"
    if (state !== "connected") haveList = false
    if (info.restarted) clients.clear()
    log(`robot ${state}${info.restarted ? " (restarted)" : ""}`)
    publish(STATE_TOPIC, stateMessage(info.restarted))
    if (state === "connected") refresh(5000).catch(() => {})
  })
  if (node.state === "connected") refresh(5000).catch(() => {})

  const stateMessage = (restarted = false) => ({
    state: node.state as NodeState,
    restarted,
    restarting,
    services: services.map((s) => ({ name: s.name, type: s.type })),
  })

  let lastAsked = -Infinity
  const findService = async (name: string): Promise<ServiceInfo | undefined> => {
    let s = services.find((x) => x.name === name)
    if (!s && node.state === "connected" && performance.now() - lastAsked > 1000) {
      lastAsked = performance.now()
      // the list may be stale (first call after a restart): ask once
      try {
        s = (await refresh(2000)).find((x) => x.name === name)
      } catch {
        // fall through: unimplemented or unavailable below
      }
    }
    return s
  }

  // ---- one call, whatever the front end
  const call = async (req: CallRequest, binary: "base64" | "bytes"): Promise<CallOutcome> => {
    const name = normalizeName(req.service)
    try {
      if (name in ROSAPI_SERVICES) return { ok: true, values: await rosapi(name, req.args) }
      const info = await findService(name)
      if (!info) {
        if (node.state !== "connected") throw new ServiceError("unavailable", `the robot is ${node.state}; try again when it is connected`, name)
        throw new ServiceError("unimplemented", `no service ${name} on the robot (robot service list shows what there is)`, name)
      }
      const type = registry[info.type]
      if (!type) throw new ServiceError("unimplemented", `the bridge has no definition of ${info.type} (regenerate host/gen/interfaces.ts with \`robot gen\`)`, name)
      let request: unknown
      try {
        request = fromJson(type.request, positional(type, req.args))
      } catch (e) {
        if (e instanceof ValueError) throw new ServiceError("invalid_argument", e.message, name)
        throw e
      }
      let entry = clients.get(name)
      if (!entry || entry.hash32 !== info.hash32) {
        entry = { hash32: info.hash32, client: node.createClient(type, name) }
        clients.set(name, entry)
      }
      const res = await entry.client.call(request, { timeoutMs: req.timeoutMs, signal: req.signal, onProgress: req.onProgress })
      return { ok: true, values: toJson(type.response, res, binary), type }
    } catch (e) {
      const err = e instanceof ServiceError ? e : new ServiceError("internal", (e as Error)?.message ?? String(e), name)
      return { ok: false, values: err.message, error: err }
    }
  }

  const positional = (type: ServiceDescriptor<any, any>, args: unknown): unknown => {
    if (!Array.isArray(args)) return args ?? {}
    // rosbridge also takes args as a list, in field order
    const fields = (type.request.definitions[0]?.definitions ?? []).filter((f) => !f.isConstant)
    if (args.length > fields.length) throw new ServiceError("invalid_argument", `${args.length} arguments given, ${type.fullName} request has ${fields.length} fields`)
    return Object.fromEntries(args.map((v, i) => [fields[i]!.name, v]))
  }

  const rosapi = async (name: string, args: unknown): Promise<unknown> => {
    const a = (typeof args === "object" && args !== null && !Array.isArray(args) ? args : {}) as Record<string, unknown>
    const str = (k: string): string => {
      const v = a[k]
      if (typeof v !== "string") throw new ServiceError("invalid_argument", `${name}: '${k}' must be a string`, name)
      return v
    }
    const list = async () => {
      if (!haveList && node.state === "connected") await refresh(5000).catch(() => {})
      return services
    }
    switch (name) {
      case "/rosapi/services":
        return { services: [...(await list()).map((s) => s.name), ...Object.keys(ROSAPI_SERVICES)].sort() }
      case "/rosapi/service_type": {
        const n = normalizeName(str("service"))
        return { type: ROSAPI_SERVICES[n] ?? (await list()).find((s) => s.name === n)?.type ?? "" }
      }
      case "/rosapi/services_for_type": {
        const t = fullServiceTypeName(str("type"))
        return { services: (await list()).filter((s) => s.type === t).map((s) => s.name).sort() }
      }
      case "/rosapi/service_request_details":
      case "/rosapi/service_response_details": {
        const t = registry[fullServiceTypeName(str("type"))]
        if (!t) return { typedefs: [] }
        return { typedefs: typedefs((name.endsWith("request_details") ? t.request : t.response).definitions) }
      }
      case "/rosapi/message_details": {
        const want = str("type")
        for (const t of Object.values(registry)) {
          for (const half of [t.request, t.response]) {
            const d = half.definitions.find((x) => x.name === want || shortTypeName(x.name ?? "") === want)
            if (d) return { typedefs: typedefs([d, ...half.definitions.filter((x) => x !== d)]) }
          }
        }
        return { typedefs: [] }
      }
      case "/rosapi/get_time": {
        const ms = Date.now()
        return { time: { sec: Math.floor(ms / 1000), nanosec: (ms % 1000) * 1_000_000 } }
      }
    }
    throw new ServiceError("unimplemented", `${name} is not served`, name)
  }

  // ---- call log and bridge topics
  const conns = new Set<Conn>()
  const publish = (topic: string, msg: unknown) => {
    let text: string | undefined
    for (const c of conns) {
      if (!c.topics.has(topic)) continue
      text ??= stringifyJson({ op: "publish", topic, msg })
      send(c, text)
    }
  }
  const logCall = (via: string, client: string, service: string, type: string | undefined, start: number, out: CallOutcome) => {
    if (service.startsWith("/rosapi/")) return
    const ms = Number((performance.now() - start).toFixed(2))
    if (!out.ok) log(`${via} ${client} ${service}: ${out.error?.message} (${ms} ms)`)
    publish(CALLS_TOPIC, {
      time: Date.now(),
      via,
      client,
      service,
      type: type ?? "",
      ms,
      ok: out.ok,
      code: out.error?.code ?? "",
      message: out.error?.detail ?? "",
    })
  }

  // ---- origin and token checks (WebSocket and HTTP)
  const originAllowed = (req: http.IncomingMessage): boolean => {
    const origin = req.headers.origin
    if (origin === undefined) return true // not a browser, or a same-origin GET
    if (allowed.has("*") || allowed.has(origin)) return true
    try {
      return new URL(origin).host === req.headers.host
    } catch {
      return false
    }
  }
  const tokenOk = (given: string | undefined | null): boolean => {
    if (!token) return true
    if (typeof given !== "string") return false
    const a = Buffer.from(given)
    const b = Buffer.from(token)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  // ---- HTTP
  const server = http.createServer((req, res) => {
    handleHttp(req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { code: "internal", message: (e as Error).message })
      else res.destroy()
    })
  })
  const httpInFlight = new Map<string, number>()
  const sendJson = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = stringifyJson(body)
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" })
    res.end(text)
  }
  const handleHttp = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://bridge")
    const staticFile = STATIC[url.pathname]
    if (req.method === "GET" && staticFile) {
      const [file, type] = staticFile
      const body = await fs.promises.readFile(path.join(WEB_DIR, file))
      res.writeHead(200, {
        "content-type": type,
        "cache-control": "no-store",
        "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:",
        "x-content-type-options": "nosniff",
      })
      res.end(body)
      return
    }
    if (!url.pathname.startsWith("/api/")) {
      sendJson(res, 404, { code: "not_found", message: `nothing at ${url.pathname}; the API is under /api/ and the dashboard at /` })
      return
    }
    if (!originAllowed(req)) {
      sendJson(res, 403, { code: "forbidden", message: `origin ${req.headers.origin} is not allowed` })
      return
    }
    if (token) {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")
      if (!tokenOk(m?.[1])) {
        res.setHeader("www-authenticate", "Bearer")
        sendJson(res, 401, { code: "unauthenticated", message: "this bridge needs a token: send Authorization: Bearer <token>" })
        return
      }
    }
    if (req.method === "GET" && url.pathname === "/api/services") {
      if (!haveList && node.state === "connected") await refresh(5000).catch(() => {})
      sendJson(res, 200, {
        state: node.state,
        services: services.map((s) => {
          const t = registry[s.type]
          return {
            name: s.name,
            type: s.type,
            hash32: s.hash32,
            known: !!t,
            text: t?.text ?? "",
            request: t ? typedefs(t.request.definitions) : [],
            response: t ? typedefs(t.response.definitions) : [],
          }
        }),
      })
      return
    }
    if (req.method === "GET" && url.pathname === "/api/state") {
      sendJson(res, 200, stateMessage())
      return
    }
    if (url.pathname.startsWith("/api/services/")) {
      if (req.method !== "POST") {
        res.setHeader("allow", "POST")
        sendJson(res, 405, { code: "method_not_allowed", message: "call a service with POST and a JSON body" })
        return
      }
      const ctype = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
      if (ctype !== "application/json") {
        sendJson(res, 415, { code: "invalid_argument", message: "send the request as Content-Type: application/json" })
        return
      }
      const key = `${req.socket.remoteAddress}:${req.socket.remotePort}`
      const n = httpInFlight.get(key) ?? 0
      if (n >= maxInFlight) {
        sendJson(res, 429, { code: "resource_exhausted", message: `too many calls in flight on this connection (limit ${maxInFlight})` })
        return
      }
      httpInFlight.set(key, n + 1)
      try {
        const body = await readBody(req, maxBytes)
        if (body === undefined) {
          sendJson(res, 413, { code: "resource_exhausted", message: `request body over the limit of ${maxBytes} bytes` })
          req.resume()
          return
        }
        let args: unknown
        try {
          args = body.trim() === "" ? {} : parseJson(body)
        } catch (e) {
          sendJson(res, 400, { code: "invalid_argument", message: `malformed JSON: ${(e as Error).message}` })
          return
        }
        const service = decodeURIComponent(url.pathname.slice("/api/services".length))
        const tq = Number(url.searchParams.get("timeout_ms"))
        const ac = new AbortController()
        const onClose = () => ac.abort(new ServiceError("cancelled", "the HTTP client went away"))
        res.on("close", onClose)
        const start = performance.now()
        const out = await call({ service, args, timeoutMs: tq > 0 ? tq : defaultTimeout, signal: ac.signal }, "base64")
        res.off("close", onClose)
        logCall("http", key, normalizeName(service), out.type?.fullName, start, out)
        if (out.ok) sendJson(res, 200, out.values)
        else sendJson(res, HTTP_STATUS[out.error!.code] ?? 500, { code: out.error!.code, message: out.error!.detail })
      } finally {
        const left = (httpInFlight.get(key) ?? 1) - 1
        if (left <= 0) httpInFlight.delete(key)
        else httpInFlight.set(key, left)
      }
      return
    }
    sendJson(res, 404, { code: "not_found", message: `no API at ${req.method} ${url.pathname}` })
  }

  // ---- WebSocket (rosbridge v2)
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxBytes })
  let nextConn = 1
  server.on("upgrade", (req, socket, head) => {
    const refuse = (status: number, why: string) => {
      log(`refused a WebSocket client: ${why}`)
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`)
    }
    if (!originAllowed(req)) return refuse(403, `origin ${req.headers.origin} is not allowed (same-origin and non-browser clients are)`)
    const url = new URL(req.url ?? "/", "http://bridge")
    const given = url.searchParams.get("token")
    if (token && given !== null && !tokenOk(given)) return refuse(401, "wrong token")
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, !token || given !== null))
  })

  const send = (c: Conn, data: string | Buffer) => {
    if (c.ws.readyState !== c.ws.OPEN) return
    if (c.ws.bufferedAmount > MAX_BUFFERED) {
      // the client stopped reading: drop it rather than hold its output in memory
      log(`client ${c.id} disconnected: over ${MAX_BUFFERED} bytes unsent`)
      c.ws.terminate()
      return
    }
    c.ws.send(data)
  }
  const status = (c: Conn, level: "error" | "warning" | "info", msg: string, id?: unknown) => {
    const order = { none: 0, error: 1, warning: 2, info: 3 }
    if (order[level] > order[c.statusLevel]) return
    const m: Record<string, unknown> = { op: "status", level, msg }
    if (typeof id === "string" || typeof id === "number") m.id = id
    send(c, stringifyJson(m))
  }

  const accept = (ws: WebSocket, authed: boolean) => {
    const c: Conn = { id: nextConn++, ws, authed, inFlight: 0, calls: new Set(), topics: new Set(), statusLevel: "error" }
    conns.add(c)
    ws.on("message", (data, isBinary) => {
      try {
        onMessage(c, data, isBinary)
      } catch (e) {
        status(c, "error", `bridge error: ${(e as Error).message}`)
      }
    })
    ws.on("error", (e) => log(`client ${c.id}: ${e.message}`))
    ws.on("close", (code) => {
      if (code === 1009) log(`client ${c.id} closed: message over ${maxBytes} bytes`)
      conns.delete(c)
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "the client went away"))
    })
  }

  const onMessage = (c: Conn, data: RawData, isBinary: boolean) => {
    if (isBinary) return status(c, "error", "binary messages are not accepted: send rosbridge JSON text")
    const text = data.toString()
    let msg: unknown
    try {
      msg = parseJson(text)
    } catch (e) {
      return status(c, "error", `malformed JSON: ${(e as Error).message}`)
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg) || typeof (msg as { op?: unknown }).op !== "string") {
      return status(c, "error", "a rosbridge message is a JSON object with a string 'op'")
    }
    const m = msg as Record<string, unknown>
    const op = m.op as string
    if (op === "auth") {
      const given = typeof m.mac === "string" ? m.mac : typeof m.token === "string" ? m.token : undefined
      if (!tokenOk(given)) {
        status(c, "error", "wrong token", m.id)
        c.ws.close(1008, "wrong token")
        return
      }
      c.authed = true
      return
    }
    if (!c.authed) {
      status(c, "error", "authenticate first: connect with ?token=<token> or send {op: 'auth', mac: <token>}", m.id)
      c.ws.close(1008, "not authenticated")
      return
    }
    switch (op) {
      case "call_service":
        return onCall(c, m)
      case "set_level": {
        const level = m.level
        if (level === "none" || level === "error" || level === "warning" || level === "info") c.statusLevel = level
        else status(c, "error", `set_level: level must be none, error, warning or info`, m.id)
        return
      }
      case "subscribe": {
        const topic = m.topic
        if (topic !== STATE_TOPIC && topic !== CALLS_TOPIC) {
          return status(c, "error", `subscribe: this bridge publishes only ${STATE_TOPIC} and ${CALLS_TOPIC} (no ROS topics)`, m.id)
        }
        c.topics.add(topic)
        if (topic === STATE_TOPIC) send(c, stringifyJson({ op: "publish", topic, msg: stateMessage() }))
        return
      }
      case "unsubscribe":
        if (typeof m.topic === "string") c.topics.delete(m.topic)
        return
      case "advertise":
      case "unadvertise":
      case "publish":
      case "advertise_service":
      case "unadvertise_service":
      case "service_response":
      case "send_action_goal":
      case "cancel_action_goal":
        return status(c, "error", `op '${op}' is not supported: this bridge serves the robot's services (call_service) only`, m.id)
      default:
        return status(c, "error", `unknown op '${op}'`, m.id)
    }
  }

  const onCall = (c: Conn, m: Record<string, unknown>) => {
    const id = m.id
    if (typeof m.service !== "string" || m.service === "") return status(c, "error", "call_service: 'service' must be a service name", id)
    const service = normalizeName(m.service)
    const compression = m.compression === undefined ? "none" : m.compression
    if (compression !== "none" && compression !== "cbor" && compression !== "cbor-raw" && compression !== "png") {
      return status(c, "error", `call_service: unknown compression '${String(compression)}'`, id)
    }
    if (compression === "png") status(c, "warning", "call_service: png compression is not supported; answering uncompressed", id)
    const binary = compression === "cbor" || compression === "cbor-raw"
    const frag = typeof m.fragment_size === "number" && m.fragment_size > 0 ? Math.floor(m.fragment_size) : undefined
    const timeoutMs = typeof m.timeout === "number" && m.timeout > 0 ? Math.ceil(m.timeout * 1000) : defaultTimeout
    const reply = (values: unknown, result: boolean) => {
      const out: Record<string, unknown> = { op: "service_response", service, values, result }
      if (id !== undefined) out.id = id
      if (binary) return send(c, cbor.encode(out))
      const text = stringifyJson(out)
      if (frag && text.length > frag) {
        const fid = typeof id === "string" || typeof id === "number" ? id : `service_response:${service}:${c.id}:${Date.now()}`
        const total = Math.ceil(text.length / frag)
        for (let i = 0; i < total; i++) send(c, stringifyJson({ op: "fragment", id: fid, data: text.slice(i * frag, (i + 1) * frag), num: i, total }))
      } else send(c, text)
    }
    if (c.inFlight >= maxInFlight) {
      const err = new ServiceError("resource_exhausted", `too many calls in flight on this connection (limit ${maxInFlight})`, service)
      return reply(err.message, false)
    }
    c.inFlight++
    const ac = new AbortController()
    c.calls.add(ac)
    let lastProgress = 0
    const onProgress =
      m.progress === true
        ? (received: number, total: number) => {
            const now = performance.now()
            if (received < total && now - lastProgress < 50) return
            lastProgress = now
            send(c, stringifyJson({ op: "service_progress", id, service, received, total }))
          }
        : undefined
    const start = performance.now()
    call({ service, args: m.args, timeoutMs, signal: ac.signal, onProgress }, binary ? "bytes" : "base64")
      .then((out) => {
        logCall("ws", `client ${c.id}`, service, out.type?.fullName, start, out)
        reply(out.values, out.ok)
      })
      .catch((e) => status(c, "error", `bridge error: ${(e as Error).message}`, id))
      .finally(() => {
        c.inFlight--
        c.calls.delete(ac)
      })
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new Error(`port ${options.port ?? 9090} on ${host} is in use (another bridge or rosbridge running?): pass --port <n>`))
      else if (e.code === "EADDRNOTAVAIL") reject(new Error(`${host} is not an address of this machine: pass --host <address>`))
      else reject(e)
    })
    server.listen(options.port ?? 9090, host, () => {
      server.removeAllListeners("error")
      resolve()
    })
  })
  server.on("error", (e) => log(`server error: ${e.message}`))
  const addr = server.address()
  const port = typeof addr === "object" && addr ? addr.port : (options.port ?? 9090)
  const shownHost = host.includes(":") ? `[${host}]` : host
  log(`bridge listening on http://${shownHost}:${port} (rosbridge ws://${shownHost}:${port})${token ? " with a token" : ""}`)

  let closed = false
  return {
    url: `http://${shownHost}:${port}`,
    wsUrl: `ws://${shownHost}:${port}`,
    host,
    port,
    clientCount: () => conns.size,
    async close() {
      if (closed) return
      closed = true
      offServices()
      offState()
      for (const c of conns) {
        for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "bridge closing"))
        c.ws.terminate()
      }
      conns.clear()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Reads a request body as text; undefined when it is over `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers["content-length"])
  if (declared > limit) return Promise.resolve(undefined)
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let n = 0
    let over = false
    req.on("data", (b: Buffer) => {
      if (over) return
      n += b.length
      if (n > limit) {
        over = true
        resolve(undefined)
        return
      }
      parts.push(b)
    })
    req.on("end", () => {
      if (!over) resolve(Buffer.concat(parts).toString("utf8"))
    })
    req.on("error", reject)
  })
}
