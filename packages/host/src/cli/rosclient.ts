// A small rosbridge v2 client (Node, `ws`) for the CLI: call_service with exact int64 in both
// directions, failures as ServiceError (the code is the prefix of rosbridge's failure text), and
// the bridge's opt-in `service_progress` messages for long calls. Works against any rosbridge
// server for plain calls; progress needs this project's bridge.
import WebSocket from "ws"
import { ErrorCodes, ServiceError, type ErrorCode } from "../client/errors"
import { parseJson, stringifyJson } from "../calls/json"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"

export interface RosbridgeCallOptions {
  /** Give up after this many ms (`deadline_exceeded`); also sent to the bridge as `timeout` (s). */
  timeoutMs?: number
  onProgress?: (received: number, total: number) => void
  /**
   * This project's bridge calls only a service of this type (`expect_type`, else `type_mismatch`)
   * and names the service's type in its answer (`onType`); another rosbridge server ignores it.
   */
  expectType?: string
  onType?: (type: string) => void
  /**
   * This project's bridge reads `args` by these rules (`args_rules`: `yaml`, calls/json.ts
   * YAML_RULES); another rosbridge server ignores it and reads them by its own.
   */
  argsRules?: "yaml"
}

/**
 * The services of a /rosapi/services answer with their types when the bridge gave them (this
 * project's gives `types`, in the order of `services`: one round trip for a listing); undefined
 * from another rosbridge server, which names them only (then one /rosapi/service_type each).
 */
export function listedWithTypes(reply: { services: string[]; types?: unknown }): { name: string; type: string }[] | undefined {
  const { services, types } = reply
  return Array.isArray(types) && types.length === services.length ? services.map((name, i) => ({ name, type: String(types[i]) })) : undefined
}

/** Turns rosbridge's failure text (`values` of a failed service_response) into a ServiceError. */
export function errorFromFailure(service: string, text: unknown): ServiceError {
  const s = typeof text === "string" ? text : stringifyJson(text)
  const m = /^([a-z_]+): ([\s\S]*)$/.exec(s)
  if (m && m[1]! in ErrorCodes) return new ServiceError(m[1] as ErrorCode, m[2]!, service)
  return new ServiceError("internal", s, service)
}

export class RosbridgeClient {
  private nextId = 1
  private readonly pending = new Map<string, { resolve: (m: any) => void; reject: (e: ServiceError) => void; progress?: (r: number, t: number) => void }>()
  private readonly subs = new Map<string, { topic: string; onMessage: (msg: any) => void; onError: (e: ServiceError) => void }>()
  private constructor(
    private readonly ws: WebSocket,
    readonly url: string,
  ) {
    ws.on("message", (data) => {
      let m: any
      try {
        m = parseJson(data.toString())
      } catch {
        return
      }
      if (m?.op === "publish" && typeof m.topic === "string") {
        for (const s of this.subs.values()) if (s.topic === m.topic) s.onMessage(m.msg)
        return
      }
      const sub = typeof m?.id === "string" ? this.subs.get(m.id) : undefined
      if (sub && m.op === "status" && m.level === "error") return sub.onError(new ServiceError("invalid_argument", String(m.msg)))
      const p = typeof m?.id === "string" ? this.pending.get(m.id) : undefined
      if (!p) return
      if (m.op === "service_progress") p.progress?.(Number(m.received), Number(m.total))
      else if (m.op === "service_response") {
        this.pending.delete(m.id)
        p.resolve(m)
      } else if (m.op === "status" && m.level === "error") {
        this.pending.delete(m.id)
        p.reject(new ServiceError("invalid_argument", String(m.msg)))
      }
    })
    ws.on("close", (code, reason) => {
      const why = code === 1008 ? `the bridge refused this client: ${reason.toString() || "policy"}` : "the bridge closed the connection"
      for (const p of this.pending.values()) p.reject(new ServiceError("unavailable", why))
      this.pending.clear()
      for (const s of this.subs.values()) s.onError(new ServiceError("unavailable", why))
      this.subs.clear()
    })
  }

  /** Connects; rejects with `unavailable` (naming the URL) when nothing answers in `timeoutMs`. */
  static connect(url: string, options: { token?: string; timeoutMs?: number } = {}): Promise<RosbridgeClient> {
    const u = new URL(url)
    if (options.token) u.searchParams.set("token", options.token)
    const ws = new WebSocket(u.toString(), { maxPayload: 256 * 1024 * 1024 })
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        ws.terminate()
        reject(new ServiceError("unavailable", `no answer from the bridge at ${url} within ${options.timeoutMs ?? 5000} ms`))
      }, options.timeoutMs ?? 5000)
      ws.once("open", () => {
        clearTimeout(t)
        resolve(new RosbridgeClient(ws, url))
      })
      ws.once("unexpected-response", (_req, res) => {
        clearTimeout(t)
        const what = res.statusCode === 401 ? "wrong or missing token (--token or ROBOT_BRIDGE_TOKEN)" : `HTTP ${res.statusCode}`
        reject(new ServiceError("unavailable", `the bridge at ${url} refused the connection: ${what}`))
      })
      ws.once("error", (e: Error & { code?: string }) => {
        clearTimeout(t)
        reject(new ServiceError("unavailable", `cannot reach a bridge at ${url} (${e.code ?? e.message})`))
      })
    })
  }

  /** One call_service; resolves with `values`, rejects with ServiceError. */
  call(service: string, args: unknown, options: RosbridgeCallOptions = {}): Promise<any> {
    const id = `robot-cli:${this.nextId++}`
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id)
        reject(new ServiceError("deadline_exceeded", `no response within ${timeoutMs} ms`, service))
      }, timeoutMs + 1000)
      this.pending.set(id, {
        resolve: (m) => {
          clearTimeout(t)
          if (typeof m.type === "string") options.onType?.(m.type)
          if (m.result) resolve(m.values)
          else reject(errorFromFailure(service, m.values))
        },
        reject: (e) => {
          clearTimeout(t)
          reject(e)
        },
        progress: options.onProgress,
      })
      const msg: Record<string, unknown> = { op: "call_service", id, service, args, timeout: timeoutMs / 1000 }
      if (options.onProgress) msg.progress = true
      if (options.expectType !== undefined) msg.expect_type = options.expectType
      if (options.argsRules !== undefined) msg.args_rules = options.argsRules
      this.ws.send(stringifyJson(msg))
    })
  }

  /**
   * rosbridge `subscribe`: `onMessage` gets each published message of `topic`; `onError` the
   * bridge's error status for this subscription (a topic it does not publish) or the connection's
   * end (`unavailable`), after which nothing more comes. Returns the unsubscribe.
   */
  subscribe(topic: string, onMessage: (msg: any) => void, onError: (e: ServiceError) => void): () => void {
    const id = `robot-cli:${this.nextId++}`
    this.subs.set(id, { topic, onMessage, onError })
    this.ws.send(stringifyJson({ op: "subscribe", id, topic }))
    return () => {
      if (!this.subs.delete(id)) return
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(stringifyJson({ op: "unsubscribe", id, topic }))
    }
  }

  close(): void {
    this.ws.close()
  }
}
