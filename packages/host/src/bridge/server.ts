// The bridge: one port serving
//   - the rosbridge v2 protocol over WebSocket (packages/host/src/bridge/rosbridge.ts), so roslibjs and
//     roslibpy clients work unchanged;
//   - the Foxglove WebSocket protocol (packages/host/src/bridge/foxglove/) to clients that ask for the
//     `foxglove.websocket.v1` subprotocol, and on a port of its own (Foxglove's usual 8765) if asked;
//   - an HTTP API and the dashboard (packages/host/src/bridge/http.ts, packages/host/src/bridge/web/).
// Every front end calls through one pipeline (packages/host/src/calls/pipeline.ts), sends and follows
// action goals through one tracker (packages/host/src/calls/goals.ts), and is checked by one guard
// (packages/host/src/bridge/guard.ts: origin, token, calls in flight per client address). It talks to the robot
// through a RobotNode (packages/host/src/client/api.ts) only. See docs/bridge.md.
import * as http from "node:http"
import { WebSocketServer } from "ws"
import type { RobotNode } from "../client/api"
import { FOXGLOVE_SUBPROTOCOL, FoxgloveFrontEnd } from "./foxglove"
import { clientAddress, Guard, isLoopback } from "./guard"
import { Output } from "./output"
import { Turns } from "../net/turns"
import { httpHandler } from "./http"
import { CallPipeline } from "../calls/pipeline"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { RosbridgeFrontEnd } from "./rosbridge"
import { GoalTracker } from "../calls/goals"
import { projectActionTypes } from "../calls/projecttypes"
import { withActionServices, type ActionTypes } from "../runtime/action"
import type { ServiceTypes } from "../runtime/types"

/** ms of WebSocket handshakes finished per turn of the event loop (see `handshake` below) */
const HANDSHAKE_MS = 4

export { isLoopback } from "./guard"
export { HTTP_STATUS } from "./http"
export { CALLS_TOPIC, STATE_TOPIC } from "./rosbridge"
export { FOXGLOVE_PORT, FOXGLOVE_SUBPROTOCOL } from "./foxglove"

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
  /**
   * Output a WebSocket client has not taken yet (bytes, default 16 MiB) past which it is
   * disconnected: it stopped reading (packages/host/src/bridge/output.ts).
   */
  maxUnsentBytes?: number
  /** The same for all WebSocket clients together (bytes, default 64 MiB): past it, the client holding the most is disconnected. */
  maxUnsentTotalBytes?: number
  /**
   * Calls one client address may have in flight (default 32), shared fairly by its connections;
   * more are refused with resource_exhausted (packages/host/src/bridge/guard.ts).
   */
  maxInFlightPerClient?: number
  /**
   * Connections (HTTP and WebSocket, on every port of the bridge) one client address may hold open
   * at once (default 256); more are answered 503 and closed (packages/host/src/bridge/guard.ts).
   */
  maxConnectionsPerClient?: number
  /**
   * Time an HTTP request has to arrive in full, headers and body (ms, default 5000); a slower one
   * is answered 408 and its connection closed. It holds no in-flight slot meanwhile.
   */
  bodyTimeoutMs?: number
  /** Service descriptors by full type name (packages/host/src/gen/interfaces.ts `serviceTypes`). */
  typeRegistry: ServiceTypes
  /**
   * Action descriptors by full type name (packages/host/src/gen/interfaces.ts `actionTypes`; default:
   * the built-in ones and the project's `.action` files, calls/projecttypes.ts `projectActionTypes`). Their
   * four services (`<name>/_action/...`) join `typeRegistry`. An action whose type is not here is
   * listed but refused goals (`unimplemented`).
   */
  actionTypes?: ActionTypes
  /** Timeout of a call that names none (ms, default 10000). */
  callTimeoutMs?: number
  /** Where the bridge writes one line per notable event (default: nowhere). */
  log?: (line: string) => void
  /**
   * A second port serving only the Foxglove WebSocket protocol (Foxglove's usual one is 8765; 0
   * picks a free one). Default: none; the bridge's own port serves Foxglove clients either way.
   */
  foxglovePort?: number
  /** Encoding the Foxglove front end advertises services in (`cdr`, default, or `json`); calls may use either. */
  foxgloveEncoding?: "cdr" | "json"
  /**
   * Service introspection (REP-2012): each call the bridge makes publishes REQUEST_SENT and
   * RESPONSE_RECEIVED on `<service>/_service_event` (rosbridge subscribers). Default off: no events.
   */
  introspect?: boolean
}

export interface Bridge {
  /** `http://host:port` (the dashboard). */
  readonly url: string
  /** `ws://host:port` (rosbridge). */
  readonly wsUrl: string
  readonly host: string
  readonly port: number
  /** `ws://host:port` of the Foxglove-only port, when one was asked for. */
  readonly foxgloveUrl?: string
  /** WebSocket clients connected now (rosbridge and Foxglove). */
  clientCount(): number
  /** Output the clients (WebSocket and HTTP) have not taken yet, in bytes (packages/host/src/bridge/output.ts). */
  unsentBytes(): number
  /** Closes every client and the listening socket; the node is left open. */
  close(): Promise<void>
}

/**
 * Starts the bridge; resolves once it listens. Throws before listening when `host` is not
 * loopback and no token is given, and when a port is taken (naming it).
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
  const maxBytes = options.maxMessageBytes ?? 1024 * 1024
  const defaultTimeoutMs = options.callTimeoutMs ?? DEFAULT_TIMEOUT_MS
  const log = options.log ?? (() => {})
  const guard = new Guard({ token, allowedOrigins: options.allowedOrigins, maxInFlight: options.maxInFlightPerClient ?? 32, maxConnections: options.maxConnectionsPerClient, log })
  const actionTypes = options.actionTypes ?? projectActionTypes()
  const pipeline = new CallPipeline(options.node, withActionServices(options.typeRegistry, actionTypes), log, actionTypes)
  pipeline.introspect = options.introspect === true
  // one tracker for every front end: a goal sent through one is seen by all, with one watch loop
  const goals = new GoalTracker(pipeline, actionTypes)
  const output = new Output({ maxUnsentBytes: options.maxUnsentBytes, maxUnsentTotalBytes: options.maxUnsentTotalBytes, log })
  const rosbridge = new RosbridgeFrontEnd({ pipeline, goals, guard, output, defaultTimeoutMs, maxBytes, log })
  const foxglove = new FoxgloveFrontEnd({ pipeline, guard, output, defaultTimeoutMs, log, encoding: options.foxgloveEncoding, goals })

  // (allowSynchronousEvents false: ws hands over one message of a connection per turn of the event
  // loop, so a client sending a burst of messages takes turns with the others instead of holding the
  // loop until its burst is parsed and served; its socket stops being read while they wait)
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxBytes, allowSynchronousEvents: false })
  const foxWss = new WebSocketServer({
    noServer: true,
    maxPayload: maxBytes,
    allowSynchronousEvents: false,
    handleProtocols: (protocols) => (protocols.has(FOXGLOVE_SUBPROTOCOL) ? FOXGLOVE_SUBPROTOCOL : false),
  })
  const wantsFoxglove = (req: http.IncomingMessage) =>
    (req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim())
      .includes(FOXGLOVE_SUBPROTOCOL)
  // Connections are counted per address on every port together (guard.admit); a refused one has
  // its 503 from the guard, and a request parsed from it before it closes is not served.
  const refused = new WeakSet<object>()
  const admitting = (s: http.Server) => s.prependListener("connection", (socket: import("node:net").Socket) => guard.admit(socket) || refused.add(socket))
  const onUpgrade = (foxgloveOnly: boolean) => (req: http.IncomingMessage, socket: import("node:stream").Duplex, head: Buffer) => {
    if (refused.has(socket)) return socket.destroy()
    handshake(socket, () => {
      const refuse = (status: number, why: string) => {
        log(`refused a WebSocket client: ${why}`)
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`)
      }
      const verdict = guard.checkUpgrade(req)
      if ("refuse" in verdict) return refuse(verdict.refuse, verdict.why)
      const address = clientAddress(req)
      if (foxgloveOnly || wantsFoxglove(req)) {
        if (!wantsFoxglove(req)) return refuse(400, `this port serves the Foxglove WebSocket protocol only: ask for the ${FOXGLOVE_SUBPROTOCOL} subprotocol`)
        // the Foxglove protocol has no auth message: the token comes with the URL
        if (!verdict.authed) return refuse(401, "this bridge needs a token: connect with ?token=<token>")
        return foxWss.handleUpgrade(req, socket, head, (ws) => foxglove.accept(ws, address))
      }
      wss.handleUpgrade(req, socket, head, (ws) => rosbridge.accept(ws, address, verdict.authed))
    })
  }
  // A handshake (its checks, the headers read, the answer, the protocol's first messages) is done
  // in a later turn, at most HANDSHAKE_MS of them a turn (net/turns.ts): a storm of handshakes no
  // longer holds the messages of the clients already connected. What it writes goes out in one
  // write (corked until the next tick).
  const handshakes = new Turns(HANDSHAKE_MS, (e) => log(`a WebSocket handshake failed: ${e instanceof Error ? e.message : String(e)}`))
  const handshake = (socket: import("node:stream").Duplex, finish: () => void) => {
    // (the HTTP server took its error listener off the socket when it handed it over; this one
    // stays, for a refused client's too)
    socket.on("error", () => socket.destroy())
    handshakes.add(() => {
      if (socket.destroyed) return
      socket.cork()
      try {
        finish()
      } finally {
        process.nextTick(() => socket.uncork())
      }
    })
  }

  const bodyTimeoutMs = options.bodyTimeoutMs ?? 5000
  // Node's own request timers as a backstop for requests the handler never reads (headers that
  // never end, a body nobody asks for); checked every second rather than every 30 s
  const server = http.createServer(
    { headersTimeout: bodyTimeoutMs, requestTimeout: 2 * bodyTimeoutMs, connectionsCheckingInterval: Math.min(1000, bodyTimeoutMs) },
    httpHandler({ pipeline, guard, defaultTimeoutMs, maxBytes, bodyTimeoutMs, goals, output, refused }),
  )
  admitting(server)
  server.on("upgrade", onUpgrade(false))
  const servers = [server]
  const port = await listen(server, host, options.port ?? 9090, "another bridge or rosbridge running?")
  let foxPort: number | undefined
  if (options.foxglovePort !== undefined) {
    const fox = http.createServer((_req, res) => {
      res.writeHead(426, { "content-type": "text/plain; charset=utf-8", upgrade: "websocket" })
      res.end(`this port serves the Foxglove WebSocket protocol (${FOXGLOVE_SUBPROTOCOL}); the dashboard is on port ${port}\n`)
    })
    admitting(fox)
    fox.on("upgrade", onUpgrade(true))
    try {
      foxPort = await listen(fox, host, options.foxglovePort, "another Foxglove bridge running?", "--foxglove-port")
    } catch (e) {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      throw e
    }
    servers.push(fox)
  }
  for (const s of servers) s.on("error", (e) => log(`server error: ${e.message}`))

  const shownHost = host.includes(":") ? `[${host}]` : host
  log(
    `bridge listening on http://${shownHost}:${port} (rosbridge and Foxglove ws://${shownHost}:${port})` +
      (foxPort !== undefined ? `, Foxglove also on ws://${shownHost}:${foxPort}` : "") +
      (token ? " with a token" : ""),
  )

  let closed = false
  return {
    url: `http://${shownHost}:${port}`,
    wsUrl: `ws://${shownHost}:${port}`,
    foxgloveUrl: foxPort !== undefined ? `ws://${shownHost}:${foxPort}` : undefined,
    host,
    port,
    clientCount: () => rosbridge.count + foxglove.count,
    unsentBytes: () => output.unsent(),
    async close() {
      if (closed) return
      closed = true
      rosbridge.close()
      foxglove.close()
      goals.close()
      pipeline.close()
      wss.close()
      foxWss.close()
      await Promise.all(
        servers.map((s) => {
          s.closeAllConnections()
          return new Promise<void>((resolve) => s.close(() => resolve()))
        }),
      )
    },
  }
}

/** Listens on host:port; the port actually bound (port 0 picks one). Rejects naming the problem. */
function listen(server: http.Server, host: string, port: number, hint: string, option = "--port"): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new Error(`port ${port} on ${host} is in use (${hint}): pass ${option} <n>`))
      else if (e.code === "EADDRNOTAVAIL") reject(new Error(`${host} is not an address of this machine: pass --host <address>`))
      else reject(e)
    })
    server.listen(port, host, () => {
      server.removeAllListeners("error")
      const addr = server.address()
      resolve(typeof addr === "object" && addr ? addr.port : port)
    })
  })
}
