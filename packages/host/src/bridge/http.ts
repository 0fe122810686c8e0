// The HTTP front end: the dashboard's static files and the JSON API (GET /api/services,
// GET /api/state, POST /api/services/<name>, and for a fleet GET /api/robots and
// POST /api/group/<name>?robots=<glob>; the actions: GET /api/actions, POST /api/actions/<name> to
// start a goal, GET .../goals/<id>/events to follow it as server-sent events, .../result,
// DELETE .../goals/<id> to cancel it). Calls go through the shared pipeline; tokens, origins and
// the in-flight bound through the guard. A call takes its in-flight slot only once its body has
// arrived, and a body must arrive within `bodyTimeoutMs` (408 and the connection closed otherwise):
// a client announcing bodies it never sends holds no slot and no connection for long (issue 20).
// See docs/bridge.md.
import * as fs from "node:fs"
import type * as http from "node:http"
import * as path from "node:path"
import { ServiceError, type ErrorCode } from "../client/errors"
import { groupCall, groupRobots } from "../calls/group"
import { clientAddress, type Guard } from "./guard"
import { namedRules, parseJson, stringifyJson } from "../calls/json"
import { normalizeName, splitRobotName } from "../client/names"
import type { CallPipeline } from "../calls/pipeline"
import { timerMs } from "../client/calls"
import { typedefs } from "../calls/rosapi"
import type { GoalEvent, GoalTracker } from "../calls/goals"
import type { Output } from "./output"

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
const STATIC: Record<string, [string, string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/style.css": ["style.css", "text/css; charset=utf-8"],
  "/favicon.svg": ["favicon.svg", "image/svg+xml"],
  "/favicon.ico": ["favicon.svg", "image/svg+xml"],
}

export interface HttpOptions {
  pipeline: CallPipeline
  guard: Guard
  defaultTimeoutMs: number
  maxBytes: number
  /** Time a request body has to arrive in full, from its headers (ms). */
  bodyTimeoutMs: number
  /** The goals the bridge follows (the action routes). */
  goals: GoalTracker
  /** the bound on what clients that stopped reading hold (shared with the WebSocket front ends) */
  output: Output
  /** connections the guard refused (over its bound per address): nothing parsed from them is served */
  refused?: WeakSet<object>
}

/** The request handler for the bridge's HTTP server. */
export function httpHandler(o: HttpOptions): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { pipeline, guard, maxBytes, bodyTimeoutMs } = o
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
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
    const denied = guard.checkHttp(req)
    if (denied) {
      if (denied.status === 401) res.setHeader("www-authenticate", "Bearer")
      sendJson(res, denied.status, { code: denied.code, message: denied.message })
      return
    }
    if (req.method === "GET" && url.pathname === "/api/services") {
      const list = await pipeline.list()
      sendJson(res, 200, {
        state: pipeline.node.state,
        services: list.map((s) => {
          const t = pipeline.registry[s.type]
          return {
            name: s.name,
            // a fleet's services are namespaced: /rover1/take_picture is robot rover1's
            ...(pipeline.fleet ? { robot: splitRobotName(s.name)?.robot ?? "" } : {}),
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
      sendJson(res, 200, pipeline.stateMessage())
      return
    }
    if (url.pathname === "/api/robots") {
      if (req.method !== "GET") return notAllowed(res, "GET", "list the robots with GET")
      if (!pipeline.fleet) {
        sendJson(res, 200, { fleet: false, robots: [] })
        return
      }
      try {
        sendJson(res, 200, { fleet: true, robots: groupRobots(pipeline, url.searchParams.get("robots") ?? undefined) })
      } catch (e) {
        return sendError(res, e as ServiceError)
      }
      return
    }
    if (url.pathname.startsWith("/api/group/")) {
      if (req.method !== "POST") return notAllowed(res, "POST", "call a service on a group of robots with POST and a JSON body")
      const args = await readJsonRequest(req, res, maxBytes, bodyTimeoutMs)
      if (args === NO_BODY) return
      const service = decodeURIComponent(url.pathname.slice("/api/group".length))
      const robots = url.searchParams.get("robots") ?? "*"
      // ?args_rules=yaml: the body read by the CLI's rules (calls/json.ts YAML_RULES), rosbridge's without
      const rulesName = url.searchParams.get("args_rules")
      const rules = rulesName === null ? undefined : namedRules(rulesName)
      if (rulesName !== null && !rules) return sendError(res, new ServiceError("invalid_argument", `args_rules must be "yaml", got '${rulesName.slice(0, 40)}'`))
      const address = clientAddress(req)
      const tq = Number(url.searchParams.get("timeout_ms"))
      const ac = new AbortController()
      const onClose = () => ac.abort(new ServiceError("cancelled", "the HTTP client went away"))
      res.on("close", onClose)
      try {
        const results = await groupCall(
          pipeline,
          { service, robots, args, rules, timeoutMs: tq > 0 ? tq : o.defaultTimeoutMs, signal: ac.signal },
          "base64",
          { via: "http", client: `${address}:${req.socket.remotePort}`, owner: req.socket },
          { acquire: () => guard.acquire(address, req.socket), message: () => guard.refusal(address, req.socket) },
        )
        sendJson(res, 200, { service: normalizeName(service), robots, results })
      } catch (e) {
        if (!(e instanceof ServiceError)) throw e
        sendError(res, e)
      } finally {
        res.off("close", onClose)
      }
      return
    }
    if (url.pathname === "/api/actions" || url.pathname.startsWith("/api/actions/")) return actionRoute(o, req, res, url)
    if (url.pathname.startsWith("/api/services/")) {
      if (req.method !== "POST") return notAllowed(res, "POST", "call a service with POST and a JSON body")
      if (!isJson(req)) return notJson(res)
      // the body first: a slot is for a call, not for a body that may never come
      const args = await readJsonRequest(req, res, maxBytes, bodyTimeoutMs)
      if (args === NO_BODY) return
      const address = clientAddress(req)
      const release = guard.acquire(address, req.socket)
      if (!release) {
        sendJson(res, 429, { code: "resource_exhausted", message: guard.refusal(address, req.socket) })
        return
      }
      try {
        const service = decodeURIComponent(url.pathname.slice("/api/services".length))
        const tq = Number(url.searchParams.get("timeout_ms"))
        const ac = new AbortController()
        const onClose = () => ac.abort(new ServiceError("cancelled", "the HTTP client went away"))
        res.on("close", onClose)
        // the owner is the connection, not the address: on loopback one address is the dashboard,
        // the CLI and every script, which must not share one turn at the robot (issue 20)
        const out = await pipeline.callJson(
          { service, args, timeoutMs: tq > 0 ? tq : o.defaultTimeoutMs, signal: ac.signal },
          "base64",
          { via: "http", client: `${address}:${req.socket.remotePort}`, owner: req.socket },
        )
        res.off("close", onClose)
        if (out.ok) sendJson(res, 200, out.values)
        else sendError(res, out.error!)
      } finally {
        release()
      }
      return
    }
    sendJson(res, 404, { code: "not_found", message: `no API at ${req.method} ${url.pathname}` })
  }
  // A connection's requests are served one at a time, each in a turn of the event loop of its own:
  // HTTP/1.1 answers a connection's pipelined requests in order anyway, and a burst of them served
  // at once ran as one chain of promises that held the event loop until every answer was made
  // (other clients waited 0.3-1.8 s behind 1,600 of them: bridge_abuse "HTTP connections that stop
  // reading"). Between two requests the connection's bound is checked: one that does not take its
  // answers is dropped before the rest of its requests cost anything.
  const turns = new WeakMap<object, Promise<void>>()
  return (req, res) => {
    const socket = req.socket
    if (o.refused?.has(socket)) return socket.destroy()
    const turn = (turns.get(socket) ?? Promise.resolve())
      .then(() => new Promise<void>((r) => setImmediate(r)))
      .then(async () => {
        if (!o.output.http(req, res)) return
        try {
          await handle(req, res)
        } catch (e) {
          if (!res.headersSent) sendJson(res, 500, { code: "internal", message: (e as Error).message })
          else res.destroy()
        } finally {
          o.output.within(socket)
        }
      })
    turns.set(socket, turn)
  }
}

/** How long GET .../result waits for a goal to end when the request names no `timeout_ms`. */
const RESULT_WAIT_MS = 60000
/** A comment line on an event stream this often, so that idle streams are not taken for dead. */
const SSE_KEEPALIVE_MS = 15000
/** `/<action>/goals/<id>[/events|/result|/cancel]` after /api/actions (the action's name may have a robot's namespace). */
const GOAL_PATH = /^(\/.+?)\/goals(?:\/([^/]+)(\/events|\/result|\/cancel)?)?$/

/** The routes under /api/actions (see docs/bridge.md, "Actions over HTTP"). */
async function actionRoute(o: HttpOptions, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const { pipeline, goals, guard } = o
  const rest = decodeURIComponent(url.pathname.slice("/api/actions".length)).replace(/(.)\/$/, "$1")
  const tq = Number(url.searchParams.get("timeout_ms"))
  const timeoutMs = tq > 0 ? tq : o.defaultTimeoutMs
  const address = clientAddress(req)
  /** a call to the robot on behalf of this connection: one in-flight slot while it runs */
  const withSlot = async (f: () => Promise<void>) => {
    const release = guard.acquire(address, req.socket)
    if (!release) return sendJson(res, 429, { code: "resource_exhausted", message: guard.refusal(address, req.socket) })
    try {
      await f()
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e
      // the bridge's bound on goals is a rate limit, not a size one (413)
      if (e.code === "resource_exhausted" && e.detail === goals.fullMessage) sendJson(res, 429, { code: e.code, message: e.detail })
      else sendError(res, e)
    } finally {
      release()
    }
  }
  if (rest === "" || rest === "/") {
    if (req.method !== "GET") return notAllowed(res, "GET", "list the actions with GET")
    const list = await goals.list()
    sendJson(res, 200, {
      state: pipeline.node.state,
      actions: list.map((a) => ({
        name: a.name,
        ...(pipeline.fleet ? { robot: splitRobotName(a.name)?.robot ?? "" } : {}),
        type: a.type,
        known: !!a.descriptor,
        text: a.descriptor?.text ?? "",
        goal: a.descriptor ? typedefs(a.descriptor.goal.definitions) : [],
        result: a.descriptor ? typedefs(a.descriptor.result.definitions) : [],
        feedback: a.descriptor ? typedefs(a.descriptor.feedback.definitions) : [],
      })),
    })
    return
  }
  const m = GOAL_PATH.exec(rest)
  if (!m) {
    // POST /api/actions/<name>: a new goal
    if (req.method !== "POST") return notAllowed(res, "POST", "send a goal with POST and the goal as a JSON body")
    const goal = await readJsonRequest(req, res, o.maxBytes, o.bodyTimeoutMs)
    if (goal === NO_BODY) return
    return withSlot(async () => {
      const caller = { via: "http", client: `${address}:${req.socket.remotePort}`, owner: req.socket }
      const ac = new AbortController()
      const onClose = () => ac.abort(new ServiceError("cancelled", "the HTTP client went away"))
      res.on("close", onClose)
      const g = await goals.start(rest, goal, { timeoutMs, caller, signal: ac.signal }).finally(() => res.off("close", onClose))
      if (!g) return sendJson(res, 200, { action: normalizeName(rest), accepted: false })
      sendJson(res, 200, { ...g.snapshot(), accepted: true, events: `/api/actions${g.action}/goals/${g.id}/events` })
    })
  }
  const [, action, id, what] = m as unknown as [string, string, string | undefined, string | undefined]
  if (id === undefined) {
    if (req.method !== "GET") return notAllowed(res, "GET", "list the goals the bridge follows with GET")
    sendJson(res, 200, { action: normalizeName(action), goals: goals.goalsOf(action).map((g) => g.snapshot()) })
    return
  }
  const cancel = what === "/cancel" ? req.method === "POST" : what === undefined && req.method === "DELETE"
  if (cancel) {
    req.resume()
    return withSlot(async () => {
      const code = await goals.cancel(action, id, { timeoutMs, caller: { via: "http", client: `${address}:${req.socket.remotePort}`, owner: req.socket } })
      sendJson(res, 200, { action: normalizeName(action), goal_id: id, return_code: code, canceling: code === 0 })
    })
  }
  if (req.method !== "GET") return notAllowed(res, what === "/cancel" ? "POST" : "GET, DELETE", what === "/cancel" ? "cancel a goal with POST" : "read a goal with GET, cancel it with DELETE")
  let g
  try {
    g = await goals.follow(action, id)
  } catch (e) {
    if (!(e instanceof ServiceError)) throw e
    return sendError(res, e)
  }
  if (what === undefined) return sendJson(res, 200, g.snapshot())
  if (what === "/result") {
    const wait = tq > 0 ? timerMs(tq) : RESULT_WAIT_MS
    const end = await new Promise<Extract<GoalEvent, { kind: "result" | "error" }> | undefined>((resolve) => {
      const timer = setTimeout(() => finish(undefined), wait)
      const finish = (e: Extract<GoalEvent, { kind: "result" | "error" }> | undefined) => {
        clearTimeout(timer)
        off()
        res.off("close", gone)
        resolve(e)
      }
      const gone = () => finish(undefined)
      res.on("close", gone)
      const off = g.subscribe((e) => {
        if (e.kind === "result" || e.kind === "error") queueMicrotask(() => finish(e))
      })
    })
    if (res.destroyed) return
    if (!end) return sendJson(res, 504, { code: "deadline_exceeded", message: `goal ${id} is still running after ${wait} ms (status ${g.snapshot().status_name})` })
    if (end.kind === "error") return sendError(res, new ServiceError(end.code as ErrorCode, end.message))
    const { kind: _kind, ...body } = end
    return sendJson(res, 200, { action: g.action, goal_id: g.id, ...body })
  }
  // server-sent events: status and feedback as they come, then the result (or the error), then the end
  // (each write is checked against the connection's bound: a follower that stops reading is dropped
  // instead of the stream piling up in the bridge: 614 MB in 20 s for 4 of them behind fast
  // feedback; bridge_abuse "event streams that stop reading")
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" })
  const write = (text: string) => {
    res.write(text)
    o.output.within(req.socket)
  }
  const keepAlive = setInterval(() => write(": keep-alive\n\n"), SSE_KEEPALIVE_MS)
  let n = 0
  let off = () => {}
  const stop = () => {
    clearInterval(keepAlive)
    off()
  }
  res.on("close", stop)
  off = g.subscribe((e) => {
    const { kind, ...data } = e
    if (res.destroyed) return
    write(`event: ${kind}\nid: ${++n}\ndata: ${stringifyJson(data)}\n\n`)
    if (kind === "result" || kind === "error") {
      queueMicrotask(stop)
      res.end()
    }
  })
}

function sendError(res: http.ServerResponse, e: ServiceError) {
  sendJson(res, HTTP_STATUS[e.code] ?? 500, { code: e.code, message: e.detail })
}

function notAllowed(res: http.ServerResponse, allow: string, message: string) {
  res.setHeader("allow", allow)
  sendJson(res, 405, { code: "method_not_allowed", message })
}

const isJson = (req: http.IncomingMessage) => (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() === "application/json"

function notJson(res: http.ServerResponse) {
  sendJson(res, 415, { code: "invalid_argument", message: "send the request as Content-Type: application/json" })
}

/** Marks a request already answered (wrong type, too big, malformed). */
const NO_BODY = Symbol("answered")

/** The JSON body of a POST (`{}` when empty), or NO_BODY after answering 415, 413, 408 or 400. */
async function readJsonRequest(req: http.IncomingMessage, res: http.ServerResponse, maxBytes: number, timeoutMs: number): Promise<unknown> {
  if (!isJson(req)) {
    notJson(res)
    return NO_BODY
  }
  const body = await readBody(req, maxBytes, timeoutMs)
  // (the connection was dropped meanwhile, e.g. for not reading its answers: no call for it)
  if (req.socket.destroyed) return NO_BODY
  if (body === TOO_BIG) {
    sendJson(res, 413, { code: "resource_exhausted", message: `request body over the limit of ${maxBytes} bytes` })
    req.resume()
    return NO_BODY
  }
  if (body === TOO_SLOW) {
    // the rest of the body may still come: this connection cannot carry another request
    res.setHeader("connection", "close")
    sendJson(res, 408, { code: "deadline_exceeded", message: `the request body did not arrive within ${timeoutMs} ms` })
    res.on("finish", () => req.socket.destroy())
    return NO_BODY
  }
  try {
    return body.trim() === "" ? {} : parseJson(body)
  } catch (e) {
    sendJson(res, 400, { code: "invalid_argument", message: `malformed JSON: ${(e as Error).message}` })
    return NO_BODY
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  // (nobody to write to: the JSON is not made)
  if (res.req.socket.destroyed) return
  const text = stringifyJson(body)
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" })
  res.end(text)
}

const TOO_BIG = Symbol("over the size limit")
const TOO_SLOW = Symbol("not in time")

/**
 * Reads a request body as text: TOO_BIG when it is (or announces) over `limit` bytes, TOO_SLOW
 * when it has not arrived in full within `timeoutMs`. A client that goes away mid-body rejects.
 */
function readBody(req: http.IncomingMessage, limit: number, timeoutMs: number): Promise<string | typeof TOO_BIG | typeof TOO_SLOW> {
  const declared = Number(req.headers["content-length"])
  if (declared > limit) return Promise.resolve(TOO_BIG)
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let n = 0
    const finish = (v: string | typeof TOO_BIG | typeof TOO_SLOW | Error) => {
      clearTimeout(timer)
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
      req.off("close", onClose)
      if (v instanceof Error) reject(v)
      else resolve(v)
    }
    const timer = setTimeout(() => finish(TOO_SLOW), timeoutMs)
    const onData = (b: Buffer) => {
      n += b.length
      if (n > limit) return finish(TOO_BIG)
      parts.push(b)
    }
    const onEnd = () => finish(Buffer.concat(parts).toString("utf8"))
    const onError = (e: Error) => finish(e)
    const onClose = () => {
      if (!req.complete) finish(new Error("the client went away before sending its request body"))
    }
    req.on("data", onData)
    req.on("end", onEnd)
    req.on("error", onError)
    req.on("close", onClose)
  })
}
