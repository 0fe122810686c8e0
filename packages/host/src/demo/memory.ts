// An in-memory RobotNode (packages/host/src/client/api.ts) whose services are host-side handlers: no device,
// no transport. Requests and responses still go through the descriptors' CDR codecs, so bad values
// fail as they would against a device (`invalid_argument`). Used by the bridge tests and by the
// bridge benchmark ("calls/s the bridge sustains against an in-memory device"); it says nothing
// about the speed of a real robot. demo/ (this node, the demo services and camera of demo.ts) stands
// below the bridge that serves it (`robot bridge --memory`) and the MQTT models that share its
// handlers (mqtt/memrobot.ts, mqtt/fleet.ts).
import type { CallOptions, Client, NodeState, RobotNode, ServiceInfo } from "../client/api"
import { ServiceError } from "../client/errors"
import type { ServiceDescriptor } from "../runtime/types"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { normalizeName } from "../client/names"

/** What a handler gets besides the request. */
export interface HandlerContext {
  /** Aborted when the caller gives up (timeout, abort) or the node restarts/closes. */
  signal: AbortSignal
  service: string
}

export type Handler<Req, Res> = (request: Req, ctx: HandlerContext) => Res | Promise<Res>

interface Entry {
  name: string
  type: ServiceDescriptor<any, any>
  handler: Handler<any, any>
}

/** A RobotNode served from memory; tests drive its state with `disconnect`, `restart`, `connectNow`. */
export class MemoryNode implements RobotNode {
  state: NodeState = "connected"
  closed = false
  private readonly services = new Map<string, Entry>()
  private readonly stateListeners = new Set<(s: NodeState, i: { restarted: boolean }) => void>()
  private readonly servicesListeners = new Set<(s: ServiceInfo[]) => void>()
  private readonly pending = new Set<AbortController>()
  /** Response bytes per onProgress step (a device streams responses in pieces). */
  progressChunk = 4096

  /** Adds (or replaces) a service; listeners of onServicesChanged are told. */
  addService<Req, Res>(type: ServiceDescriptor<Req, Res>, name: string, handler: Handler<Req, Res>): this {
    const n = normalizeName(name)
    this.services.set(n, { name: n, type, handler })
    this.emitServices()
    return this
  }

  removeService(name: string): void {
    if (this.services.delete(normalizeName(name))) this.emitServices()
  }

  /** The node loses its device: pending calls fail with `unavailable`, new calls too. */
  disconnect(): void {
    this.failPending("device disconnected")
    this.setState("disconnected", false)
  }

  /** The device comes back (after `disconnect`). */
  connectNow(restarted = false): void {
    this.setState("connected", restarted)
  }

  /** A device reset: pending calls fail with `unavailable`, then the node is connected again. */
  restart(): void {
    this.failPending("device restarted")
    this.setState("connecting", false)
    this.setState("connected", true)
  }

  onStateChange(listener: (state: NodeState, info: { restarted: boolean }) => void): () => void {
    this.stateListeners.add(listener)
    return () => this.stateListeners.delete(listener)
  }

  onServicesChanged(listener: (services: ServiceInfo[]) => void): () => void {
    this.servicesListeners.add(listener)
    return () => this.servicesListeners.delete(listener)
  }

  async listServices(_options?: { timeoutMs?: number }): Promise<ServiceInfo[]> {
    if (this.state !== "connected") throw new ServiceError("unavailable", "no device (in-memory node is disconnected)")
    return this.infos()
  }

  createClient<Req, Res>(type: ServiceDescriptor<Req, Res>, serviceName: string): Client<Req, Res> {
    const name = normalizeName(serviceName)
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const node = this
    return {
      serviceName: name,
      type,
      async waitForService(options = {}) {
        const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const e = node.state === "connected" ? node.services.get(name) : undefined
          if (e) {
            if (e.type.hash32 !== type.hash32) throw mismatch(name, e.type, type)
            return
          }
          if (Date.now() >= deadline) throw new ServiceError("deadline_exceeded", `${name} did not appear within ${timeoutMs} ms`, name)
          await new Promise((r) => setTimeout(r, Math.min(20, Math.max(1, deadline - Date.now()))))
        }
      },
      call: (request: Req, options: CallOptions = {}) => node.call(name, type, request, options),
    }
  }

  async close(): Promise<void> {
    this.closed = true
    this.failPending("node closed")
    this.setState("disconnected", false)
  }

  private async call<Req, Res>(name: string, type: ServiceDescriptor<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    if (this.state !== "connected") throw new ServiceError("unavailable", "no device (in-memory node is disconnected)", name)
    const e = this.services.get(name)
    if (!e) throw new ServiceError("unimplemented", `no service ${name} on the device`, name)
    if (e.type.hash32 !== type.hash32) throw mismatch(name, e.type, type)
    let wire: Uint8Array
    try {
      wire = type.request.encode(request)
    } catch (err) {
      throw new ServiceError("invalid_argument", (err as Error).message, name)
    }
    const ac = new AbortController()
    this.pending.add(ac)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    try {
      const stop = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          ac.abort(new ServiceError("deadline_exceeded", `no response within ${timeoutMs} ms`, name))
        }, timeoutMs)
        ac.signal.addEventListener("abort", () => {
          const r: unknown = ac.signal.reason
          reject(r instanceof ServiceError ? r : new ServiceError("cancelled", "call cancelled", name))
        })
        if (options.signal) {
          if (options.signal.aborted) ac.abort(new ServiceError("cancelled", "call cancelled by the caller", name))
          onAbort = () => ac.abort(new ServiceError("cancelled", "call cancelled by the caller", name))
          options.signal.addEventListener("abort", onAbort)
        }
      })
      stop.catch(() => {})
      const run = async (): Promise<Uint8Array> => {
        const req = e.type.request.decode(wire)
        let res: unknown
        try {
          res = await e.handler(req, { signal: ac.signal, service: name })
        } catch (err) {
          if (err instanceof ServiceError) throw err
          throw new ServiceError("internal", (err as Error)?.message ?? String(err), name)
        }
        try {
          return e.type.response.encode(res)
        } catch (err) {
          throw new ServiceError("internal", `handler returned a bad response: ${(err as Error).message}`, name)
        }
      }
      const bytes = await Promise.race([run(), stop])
      if (options.onProgress) {
        for (let got = Math.min(this.progressChunk, bytes.length); ; got = Math.min(got + this.progressChunk, bytes.length)) {
          options.onProgress(got, bytes.length)
          if (got >= bytes.length) break
        }
      }
      return type.response.decode(bytes)
    } finally {
      clearTimeout(timer)
      if (onAbort) options.signal?.removeEventListener("abort", onAbort)
      this.pending.delete(ac)
    }
  }

  private failPending(why: string) {
    for (const ac of [...this.pending]) ac.abort(new ServiceError("unavailable", why))
    this.pending.clear()
  }

  private infos(): ServiceInfo[] {
    return [...this.services.values()].map((e) => ({ name: e.name, type: e.type.fullName, hash32: e.type.hash32 }))
  }

  private setState(s: NodeState, restarted: boolean) {
    if (s === this.state && !restarted) return
    this.state = s
    for (const l of [...this.stateListeners]) l(s, { restarted })
  }

  private emitServices() {
    const list = this.infos()
    for (const l of [...this.servicesListeners]) l(list)
  }
}

function mismatch(name: string, have: ServiceDescriptor<any, any>, want: ServiceDescriptor<any, any>): ServiceError {
  return new ServiceError(
    "type_mismatch",
    `${name} is ${have.fullName} (hash ${hex(have.hash32)}), the caller expects ${want.fullName} (hash ${hex(want.hash32)})`,
    name,
  )
}

const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0")
