// Who may use the bridge, and how much: the origin and token checks of every front end (rosbridge,
// HTTP, Foxglove) and the bound on calls in flight, counted per client address so that opening
// more connections (HTTP keep-alive or not, several WebSockets) does not raise a client's share.
import { timingSafeEqual } from "node:crypto"
import type * as http from "node:http"

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1"
}

export interface GuardOptions {
  token?: string
  /** Origins allowed besides same-origin and no-origin clients (`*` allows any). */
  allowedOrigins?: string[]
  /** Calls one client address may have in flight. */
  maxInFlight: number
}

/** The outcome of checking a WebSocket upgrade: refuse with a status, or accept (authed or not yet). */
export type UpgradeVerdict = { refuse: number; why: string } | { authed: boolean }

export class Guard {
  readonly token: string | undefined
  readonly maxInFlight: number
  private readonly allowed: Set<string>
  private readonly inFlight = new Map<string, number>()

  constructor(options: GuardOptions) {
    this.token = options.token || undefined
    this.allowed = new Set(options.allowedOrigins ?? [])
    this.maxInFlight = options.maxInFlight
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
   * Takes one in-flight slot for `address`; returns the release function, or undefined when the
   * address already has `maxInFlight` calls running (the caller answers resource_exhausted).
   */
  acquire(address: string): (() => void) | undefined {
    const n = this.inFlight.get(address) ?? 0
    if (n >= this.maxInFlight) return undefined
    this.inFlight.set(address, n + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.inFlight.get(address) ?? 1) - 1
      if (left <= 0) this.inFlight.delete(address)
      else this.inFlight.set(address, left)
    }
  }

  /** Calls in flight for `address` now (for tests and logs). */
  inFlightOf(address: string): number {
    return this.inFlight.get(address) ?? 0
  }

  /** The message of a refused call. */
  limitMessage(): string {
    return `too many calls in flight from this client address (limit ${this.maxInFlight})`
  }
}

/** The client's address, as the limits count it (IPv4-mapped IPv6 folded to IPv4). */
export function clientAddress(req: http.IncomingMessage): string {
  const a = req.socket.remoteAddress ?? "unknown"
  return a.startsWith("::ffff:") ? a.slice(7) : a
}
