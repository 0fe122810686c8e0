// Who may use the bridge, and how much: the origin and token checks of every front end (rosbridge,
// HTTP, Foxglove) and the bound on calls in flight, counted per client address so that opening
// more connections (HTTP keep-alive or not, several WebSockets) does not raise a client's share.
// One address is often several clients (on loopback the dashboard, the CLI and scripts share
// 127.0.0.1), so the address's bound is shared fairly between its connections: past the bound a
// connection still gets a call while it holds less than its fair share (issue 20), and no
// connection holds more than the bound. The connections an address holds open at once are bounded
// too (issue 16: `admit`).
import { timingSafeEqual } from "node:crypto"
import type * as http from "node:http"
import type { Duplex } from "node:stream"
import { AddressCount, foldAddress } from "../net/addresses"

export { isLoopback } from "../net/addresses"

/**
 * TCP connections (HTTP, rosbridge and Foxglove WebSockets) one client address may hold open at
 * once. Every connection costs the bridge memory and, for a WebSocket, the messages it is sent on
 * opening (a Foxglove client is told every channel and service): 3,000 connections opened at once
 * from one address held another client's call for 478 ms, 10,000 for 1.6 s (bridge_abuse
 * "connections without end"). Loopback is one address for the dashboard, the CLI and scripts alike;
 * this is far more than they open.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 256
/**
 * TCP connections open at once from all addresses together: past it every new one is refused as
 * above. 3,000 Foxglove WebSockets from 100 addresses (30 each, under the per-address bound) were
 * all held (bridge_abuse "connections without end from many addresses"). The clients already
 * connected keep their service; new ones wait for the flood to end. A per-address bound set higher
 * (`--max-connections`) raises this one to the same figure.
 */
export const MAX_CONNECTIONS = 1024

export interface GuardOptions {
  token?: string
  /** Origins allowed besides same-origin and no-origin clients (`*` allows any). */
  allowedOrigins?: string[]
  /**
   * Calls one client address may have in flight (and one connection: a WebSocket, or an HTTP
   * connection). Past it the address's connections share it fairly (see {@link Guard.acquire}).
   */
  maxInFlight: number
  /** Connections one client address may hold open at once (default {@link MAX_CONNECTIONS_PER_ADDRESS}). */
  maxConnections?: number
  /** Where a refused address is told, once per time it passes the bound. */
  log?: (line: string) => void
}

/** The outcome of checking a WebSocket upgrade: refuse with a status, or accept (authed or not yet). */
export type UpgradeVerdict = { refuse: number; why: string } | { authed: boolean }

export class Guard {
  readonly token: string | undefined
  readonly maxInFlight: number
  private readonly allowed: Set<string>
  readonly maxConnections: number
  /** per address: calls in flight, and by connection */
  private readonly inFlight = new Map<string, { total: number; conns: Map<object, number> }>()
  /** connections open, per address and in all */
  private readonly open: AddressCount
  private readonly log: (line: string) => void

  constructor(options: GuardOptions) {
    this.token = options.token || undefined
    this.allowed = new Set(options.allowedOrigins ?? [])
    this.maxInFlight = options.maxInFlight
    this.maxConnections = options.maxConnections ?? MAX_CONNECTIONS_PER_ADDRESS
    this.log = options.log ?? (() => {})
    const total = Math.max(MAX_CONNECTIONS, this.maxConnections)
    this.open = new AddressCount(
      this.maxConnections,
      (a) => this.log(a === undefined ? `refused connections: over ${total} at once in all` : `refused connections from ${a}: over ${this.maxConnections} at once`),
      total,
    )
  }

  /**
   * A new TCP connection: counted against its address until it closes, or, when the address holds
   * `maxConnections` already, answered 503 (a JSON error naming the bound) and closed. False when
   * refused: the server must not serve it.
   */
  admit(socket: Duplex & { remoteAddress?: string }): boolean {
    const release = this.open.take(socket.remoteAddress)
    if (typeof release !== "function") {
      const a = foldAddress(socket.remoteAddress)
      const message =
        release === "total"
          ? `too many connections (limit ${this.open.maxTotal} in all); try again later`
          : `too many connections from ${a} (limit ${this.maxConnections}); close some first`
      const body = JSON.stringify({ code: "resource_exhausted", message })
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
      // (what the client sends meanwhile is not read: the socket goes once the answer is out)
      socket.once("finish", () => socket.destroy())
      return false
    }
    socket.once("close", release)
    return true
  }

  /** No Origin (not a browser, or a same-origin GET), same origin, or an allowed one. */
  originAllowed(req: http.IncomingMessage): boolean {
    const origin = req.headers.origin
    if (origin === undefined) return true
    if (this.allowed.has("*") || this.allowed.has(origin)) return true
    try {
      return new URL(origin).host === req.headers.host
    } catch {
      return false
    }
  }

  /** Constant-time comparison with the token; true when the bridge has none. */
  tokenOk(given: string | undefined | null): boolean {
    if (!this.token) return true
    if (typeof given !== "string") return false
    const a = Buffer.from(given)
    const b = Buffer.from(this.token)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  /** A WebSocket upgrade: origin first, then a `?token=` if given (a wrong one is refused at once). */
  checkUpgrade(req: http.IncomingMessage): UpgradeVerdict {
    if (!this.originAllowed(req)) return { refuse: 403, why: `origin ${req.headers.origin} is not allowed (same-origin and non-browser clients are)` }
    const given = new URL(req.url ?? "/", "http://bridge").searchParams.get("token")
    if (this.token && given !== null && !this.tokenOk(given)) return { refuse: 401, why: "wrong token" }
    return { authed: !this.token || given !== null }
  }

  /** An HTTP API request: undefined when allowed, else the status and error body. */
  checkHttp(req: http.IncomingMessage): { status: number; code: string; message: string } | undefined {
    if (!this.originAllowed(req)) return { status: 403, code: "forbidden", message: `origin ${req.headers.origin} is not allowed` }
    if (this.token) {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")
      if (!this.tokenOk(m?.[1])) return { status: 401, code: "unauthenticated", message: "this bridge needs a token: send Authorization: Bearer <token>" }
    }
    return undefined
  }

  /**
   * Takes one in-flight slot for connection `conn` (any object standing for it: the socket, the
   * WebSocket's state) of client `address`; returns the release function, or undefined when the
   * call must be refused (the caller answers resource_exhausted with {@link refusal}):
   * - the connection already has `maxInFlight` calls running, or
   * - the address has `maxInFlight` calls running and this connection holds at least its fair
   *   share of them: `maxInFlight` / (connections of the address holding calls, this one counted).
   * One connection (or a few) that took the whole bound does not lock out the address's other
   * clients; opening connections raises an address's calls to 2 x `maxInFlight` at most (never
   * more), and once `maxInFlight` connections hold calls a new one's share is 0.
   */
  acquire(address: string, conn: object): (() => void) | undefined {
    let a = this.inFlight.get(address)
    const held = a?.conns.get(conn) ?? 0
    if (held >= this.maxInFlight) return undefined
    if (a && a.total >= this.maxInFlight) {
      const active = a.conns.size + (held === 0 ? 1 : 0)
      if (held >= Math.floor(this.maxInFlight / active) || a.total >= 2 * this.maxInFlight) return undefined
    }
    if (!a) this.inFlight.set(address, (a = { total: 0, conns: new Map() }))
    a.total++
    a.conns.set(conn, held + 1)
    let released = false
    const entry = a
    return () => {
      if (released) return
      released = true
      entry.total--
      const left = (entry.conns.get(conn) ?? 1) - 1
      if (left <= 0) entry.conns.delete(conn)
      else entry.conns.set(conn, left)
      if (entry.total <= 0 && this.inFlight.get(address) === entry) this.inFlight.delete(address)
    }
  }

  /** Calls in flight for `address` now (for tests and logs). */
  inFlightOf(address: string): number {
    return this.inFlight.get(address)?.total ?? 0
  }

  /** Why {@link acquire} refused a call of `conn` from `address` just now. */
  refusal(address: string, conn: object): string {
    const held = this.inFlight.get(address)?.conns.get(conn) ?? 0
    if (held >= this.maxInFlight) return `too many calls in flight on this connection (limit ${this.maxInFlight})`
    return `too many calls in flight from this client address (limit ${this.maxInFlight}); its connections share the limit fairly`
  }
}

/** The client's address, as the limits count it (IPv4-mapped IPv6 folded to IPv4). */
export function clientAddress(req: http.IncomingMessage): string {
  return foldAddress(req.socket.remoteAddress)
}
