// The transport-independent half of a node: what every carrier of the record protocol v2
// (docs/protocol.md) shares. It tracks the device's HELLO and SERVICE list (restarts by bootId),
// dispatches device records to the call engine (packages/host/src/client/calls.ts), packs outgoing records into
// frames, and implements createClient/waitForService/listServices and the listeners of RobotNode
// (packages/host/src/client/api.ts). A subclass carries the frames: JacdacNode (packages/host/src/client/node.ts: the
// rosServices Jacdac service) and MqttNode (packages/host/src/client/mqtt.ts: a robot's MQTT topics).
import type { ServiceDescriptor } from "../runtime/types"
import type { CallOptions, Client, NodeState, RobotNode, ServiceInfo } from "./api"
import { CallEngine, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT_MS, type CallLink, type CallStats } from "./calls"
import { ServiceError } from "./errors"
import { FrameError, JACDAC_PAYLOAD, VersionError, encodeList, encodeName, packRecords, readDeviceFrame, type DeviceRecord, type HelloRecord } from "./records"
import { normalizeName } from "./names"

/**
 * Limits the device announced in its HELLO record: the record's own fields (HelloRecord, generated
 * from protocol/protocol.json, documents each), with its `version` as `protocolVersion`.
 */
export type DeviceLimits = Pick<HelloRecord, "bootId" | "maxRequestBytes" | "maxResponseBytes" | "budget" | "maxInFlight" | "window" | "maxRecord"> & {
  protocolVersion: number
}

/** Counters kept by a node (for tests and the benchmark). */
export interface NodeStats extends CallStats {
  packetsSent: number
  packetsReceived: number
  protocolErrors: number
}

/** A RobotNode that speaks the record protocol itself (every node `connect` returns). */
export interface RecordNode extends RobotNode {
  /** Limits from the device's last HELLO. */
  readonly limits: DeviceLimits | undefined
  readonly stats: NodeStats
  /** The session id the device gave this node (0 while none). */
  readonly session: number
  /** Fires on ERROR records from the device and on device frames this client cannot parse. */
  onProtocolError(listener: (message: string) => void): () => void
  /** Fires for every record the device sends (diagnostics, tests). */
  onDeviceRecord(listener: (record: DeviceRecord) => void): () => void
  /** Sends one raw frame of host records (tests: malformed frames); at most the link's frame size. */
  sendRawFrame(payload: Uint8Array): Promise<void>
  /** The current service list, if known (no waiting). */
  knownServices(): ServiceInfo[] | undefined
}

/** A service list holds at most this many services: a SERVICE record's index is a u8. */
export const MAX_SERVICES = 256
/**
 * The longest type name a device may list (characters; ROS full names such as
 * `example_interfaces/srv/AddTwoInts` are far shorter): a SERVICE record's type runs to the end of
 * a record of up to 64 KiB, and 256 of them held 28.8 MiB for one robot.
 */
export const MAX_TYPE_NAME = 255

/** Options every node takes (the part of `connect`'s options that is not the transport). */
export interface NodeOptions {
  /** Calls in flight per device; more wait in a queue (default: the device's share for one host, maxInFlight - 2, at most 16). */
  window?: number
  /**
   * The largest response this host takes from the device (bytes, default DEFAULT_MAX_RESPONSE_BYTES,
   * 16 MiB), whatever the device announces: a call whose response would be larger fails with
   * `resource_exhausted` naming both bounds. The buffer grows as the bytes arrive.
   */
  maxResponseBytes?: number
}

/** `options.maxResponseBytes` or its default; throws `invalid_argument` for anything but a positive integer. */
export function hostMaxResponse(options: NodeOptions): number {
  const m = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
  if (!Number.isSafeInteger(m) || m < 1) throw new ServiceError("invalid_argument", `maxResponseBytes: ${String(m)} is not a positive whole number of bytes`)
  return m
}

/**
 * How to reach a robot without Jacdac (e.g. `mqttTransport`, packages/host/src/client/mqtt.ts): the
 * link carries record frames itself and makes its own node; `connect` hands it the node options.
 */
export interface NodeTransport<N extends RecordNode = RecordNode> {
  /** Short kind, e.g. `mqtt`. */
  readonly kind: string
  /** Human-readable target, e.g. `robot rover1 at mqtt://127.0.0.1:1883`. */
  readonly description: string
  /** Connects and makes the node; rejects with ServiceError `unavailable` naming the target. */
  connectNode(options: NodeOptions & { connectTimeoutMs?: number }): Promise<N>
}

export class Listeners<A extends unknown[]> {
  private readonly set = new Set<(...a: A) => void>()
  add(f: (...a: A) => void): () => void {
    this.set.add(f)
    return () => {
      this.set.delete(f)
    }
  }
  get size(): number {
    return this.set.size
  }
  emit(...a: A) {
    for (const f of [...this.set]) {
      try {
        f(...a)
      } catch (e) {
        console.error("listener failed:", e)
      }
    }
  }
}

/**
 * Listeners hear of a node's state changes (restarts included) and of its service list at once, up
 * to NOTIFY_BURST times in a row; past that, at most once per NOTIFY_MS each (the latest state or
 * list, when the wait ends). A robot that claims a restart or a new list in every message would
 * otherwise make every listener (a fleet's, at O(robots) each; the bridge's) work per message; a
 * real robot's changes come far slower and are told as they come.
 */
export const NOTIFY_MS = 200
export const NOTIFY_BURST = 8

/**
 * Runs `fire` at once while it has credit (NOTIFY_BURST, one more per NOTIFY_MS), else once when the
 * next credit comes (however often it was poked meanwhile).
 */
export class Paced {
  private credit = NOTIFY_BURST
  private at = performance.now()
  private timer: NodeJS.Timeout | undefined
  constructor(private readonly fire: () => void) {}
  poke() {
    if (this.timer) return
    const now = performance.now()
    this.credit = Math.min(NOTIFY_BURST, this.credit + (now - this.at) / NOTIFY_MS)
    this.at = now
    if (this.credit >= 1) {
      this.credit--
      this.fire()
    } else this.timer = setTimeout(() => this.run(), (1 - this.credit) * NOTIFY_MS)
  }
  /** runs now if a run is due (close: the last news goes out at once) */
  flush() {
    if (this.timer) this.run()
  }
  /** forgets a run that is due */
  cancel() {
    clearTimeout(this.timer)
    this.timer = undefined
  }
  private run() {
    this.cancel()
    this.credit = 0
    this.at = performance.now()
    this.fire()
  }
}

export abstract class NodeCore implements RecordNode, CallLink {
  state: NodeState = "connecting"
  protected readonly engine: CallEngine
  protected readonly io = { packetsSent: 0, packetsReceived: 0, protocolErrors: 0 }
  protected services: ServiceInfo[] | undefined
  private pendingList: { version: number; entries: (ServiceInfo | undefined)[] } | undefined
  private listVersion = -1
  protected bootId: number | undefined
  private listTimer: NodeJS.Timeout | undefined
  protected readonly stateListeners = new Listeners<[NodeState, { restarted: boolean }]>()
  protected readonly servicesListeners = new Listeners<[ServiceInfo[]]>()
  private readonly errorListeners = new Listeners<[string]>()
  private readonly recordListeners = new Listeners<[DeviceRecord]>()
  private outbox: Uint8Array[] = []
  private flushScheduled = false
  /** (RobotNode.closed; set by close() only) */
  closed = false
  /** when a restart was last handled (HELLO with a new bootId, or the carrier's own restart event) */
  protected restartSeenAt = 0
  /** why the device's last HELLO or list was refused (calls and listServices fail at once with it), until a good HELLO */
  private refused: string | undefined
  /** a restart not told to the state listeners yet */
  private restartUntold = false
  private readonly stateNews = new Paced(() => {
    const restarted = this.restartUntold
    this.restartUntold = false
    this.stateListeners.emit(this.state, { restarted })
  })
  private readonly listNews = new Paced(() => {
    if (this.services) this.servicesListeners.emit(this.services.slice())
  })

  constructor(protected readonly nodeOptions: NodeOptions) {
    this.engine = new CallEngine(this, () => this.window, hostMaxResponse(nodeOptions))
  }

  // ------------------------------------------------------------------ what a carrier provides
  /** True while frames can reach the device (a device attached, a robot online). */
  protected abstract linkReady(): boolean
  /** Sends one frame of records (at most `maxPayload` bytes). */
  protected abstract sendFrame(payload: Uint8Array): Promise<void>
  /** Closes the carrier (after the calls failed). */
  protected abstract closeLink(): Promise<void>
  /** Names the device in messages, e.g. `the device` or `robot rover1 (mqtt://host:1883)`. */
  protected abstract describe(): string
  /** A reason to fail calls at once instead of waiting (the robot is known to be offline). */
  protected failFast(): ServiceError | undefined {
    return undefined
  }

  /** The largest frame the carrier takes; the device's HELLO may lower (or raise) it. */
  get maxPayload(): number {
    return JACDAC_PAYLOAD
  }

  get stats(): NodeStats {
    return { ...this.engine.stats, ...this.io }
  }

  get limits(): DeviceLimits | undefined {
    const h = this.engine.limits
    if (!h) return undefined
    return {
      bootId: h.bootId,
      maxRequestBytes: h.maxRequestBytes,
      maxResponseBytes: h.maxResponseBytes,
      budget: h.budget,
      maxInFlight: h.maxInFlight,
      window: h.window,
      maxRecord: h.maxRecord,
      protocolVersion: h.version,
    }
  }

  /** The device's last HELLO (subclasses size their frames from it). */
  protected get hello(): HelloRecord | undefined {
    return this.engine.limits
  }

  /**
   * calls this host keeps in flight: by default its share of the device's calls (the device runs at
   * most maxInFlight - 2 for one host and answers the rest busy: sending more only earns busy
   * answers and their backoff, which a bridge client that got the window's free slot then waits in)
   */
  get window(): number {
    const w = this.nodeOptions.window ?? Math.min(16, (this.engine.limits?.maxInFlight ?? 8) - 2)
    return Math.max(1, w)
  }

  /** the current session with the device (0 while none): tests and diagnostics */
  get session(): number {
    return this.engine.session
  }

  // ------------------------------------------------------------------ CallLink
  send(records: Uint8Array[]): void {
    this.enqueue(records)
  }
  listed(): { version: number; services: { name: string; hash32: number }[] } | undefined {
    return this.services ? { version: this.listVersion, services: this.services } : undefined
  }
  refreshList(): void {
    this.services = undefined
    this.requestList()
  }

  // ------------------------------------------------------------------ device tracking
  /**
   * A (new) device is reachable: forget what was known of the last one and ask for its list.
   * `sameDevice`: the same device came back (MQTT presence), so a new bootId in its HELLO is
   * reported as a restart.
   */
  protected deviceFound(sameDevice = false) {
    if (!sameDevice) this.bootId = undefined
    this.listVersion = -1
    this.services = undefined
    this.pendingList = undefined
    this.requestList()
  }

  /** The device is gone: its session and every call fail with `unavailable` `why`. `keepBootId`: see deviceFound. */
  protected deviceGone(why: string, keepBootId = false) {
    this.services = undefined
    this.pendingList = undefined
    if (!keepBootId) this.bootId = undefined
    this.outbox = []
    clearTimeout(this.listTimer)
    this.engine.deviceLost(why)
    this.engine.failAll("unavailable", why)
  }

  /** The device program restarted (the carrier noticed): fail the session's calls, list again. */
  protected restarted(why: string) {
    this.restartSeenAt = Date.now()
    this.engine.deviceLost(why)
    this.bootId = undefined
    this.listVersion = -1
    this.services = undefined
    this.tellState(true)
    this.requestList()
  }

  protected setState(s: NodeState, restarted: boolean) {
    if (this.state === s && !restarted) return
    this.state = s
    this.tellState(restarted)
  }

  /** The state listeners hear of the state (and of a restart) now, or at most NOTIFY_MS later. */
  private tellState(restarted: boolean) {
    if (restarted) this.restartUntold = true
    this.stateNews.poke()
  }

  protected requestList() {
    if (this.closed || !this.linkReady()) return
    this.enqueue([encodeList()])
    // the HELLO or a SERVICE record may be lost: ask again until the list is complete
    clearTimeout(this.listTimer)
    this.listTimer = setTimeout(() => {
      if (!this.closed && this.linkReady() && !this.services) this.requestList()
    }, 500)
  }

  // ------------------------------------------------------------------ incoming
  /** One frame of device records from the carrier. */
  protected onPayload(data: Uint8Array) {
    this.io.packetsReceived++
    let recs: DeviceRecord[]
    let bad: FrameError | undefined
    try {
      ;({ records: recs, error: bad } = readDeviceFrame(data))
    } catch (e) {
      if (e instanceof VersionError) {
        this.protocolError(e.message)
        this.engine.setFatal(new ServiceError("unavailable", e.message))
        return
      }
      this.protocolError(`bad frame from ${this.describe()}: ${(e as Error).message}`)
      return
    }
    // (the records before a bad one are handled: a faulty record does not cost the others)
    if (bad) this.protocolError(`bad frame from ${this.describe()}: ${bad.message}`)
    for (const r of recs) {
      if (this.recordListeners.size) this.recordListeners.emit(r)
      try {
        this.onRecord(r)
      } catch (e) {
        this.protocolError(`record ${r.kind}: ${(e as Error).message}`)
      }
    }
  }

  protected protocolError(msg: string) {
    this.io.protocolErrors++
    this.errorListeners.emit(msg)
  }

  private onRecord(r: DeviceRecord) {
    switch (r.kind) {
      case "hello": {
        if (r.count > MAX_SERVICES) {
          this.refuse(`${this.describe()} announced ${r.count} services in its HELLO; a list holds at most ${MAX_SERVICES} (a SERVICE record's index is a u8)`)
          break
        }
        this.refused = undefined
        const restarted = this.bootId !== undefined && r.bootId !== this.bootId
        if (restarted) {
          this.restartSeenAt = Date.now()
          this.services = undefined
          this.listVersion = -1
        }
        this.bootId = r.bootId
        this.engine.deviceHello(r, restarted)
        if (restarted) this.tellState(true)
        if (r.listVersion !== this.listVersion || !this.services) {
          this.pendingList = { version: r.listVersion, entries: new Array(r.count).fill(undefined) }
          this.maybeCommitList()
        }
        break
      }
      case "service": {
        const p = this.pendingList
        if (!p || p.version !== r.listVersion || r.index >= p.entries.length) return
        // (a name without its slash would read as another robot's in a fleet: /rover1 + 2/x = /rover12/x)
        if (!r.name.startsWith("/")) return this.refuse(`${this.describe()} listed ${JSON.stringify(r.name.slice(0, 64))}, a service name without its leading /`)
        if (r.type.length > MAX_TYPE_NAME) return this.refuse(`${this.describe()} listed ${r.name} with a type name of ${r.type.length} characters (at most ${MAX_TYPE_NAME})`)
        p.entries[r.index] = { name: r.name, type: r.type, hash32: r.hash32 }
        this.maybeCommitList()
        break
      }
      case "error":
        this.protocolError(`${this.describe()}: ${r.message} (at byte ${r.offset})`)
        break
      case "session":
      case "nosession":
        // (both name the program's bootId: a new one is a restart, told before its HELLO comes,
        // which may be lost or late; the session's calls fail and the new program's list is asked)
        if (this.bootId !== undefined && r.bootId !== this.bootId) this.restarted("device program restarted")
        else this.engine.onRecord(r)
        break
      default:
        this.engine.onRecord(r)
    }
  }

  /**
   * A HELLO or a list entry that cannot be right: told once (a storm of them costs no more), the
   * device's calls fail and new ones fail at once with `why` until a good HELLO comes (LIST is asked
   * again meanwhile).
   */
  private refuse(why: string) {
    if (this.refused === why) return
    this.refused = why
    this.protocolError(why)
    this.services = undefined
    this.pendingList = undefined
    this.engine.deviceLost(why)
    this.engine.failAll("unavailable", why)
    // (a listServices waiting fails now, not at its timeout)
    this.tellState(false)
  }

  /** A reason to fail calls and lists at once: the carrier's (failFast), or a refused HELLO. */
  private refusal(): ServiceError | undefined {
    if (this.closed) return new ServiceError("unavailable", "node closed")
    return this.failFast() ?? (this.refused ? new ServiceError("unavailable", this.refused) : undefined)
  }

  private maybeCommitList() {
    const p = this.pendingList
    if (!p || p.entries.some((e) => !e)) return
    this.pendingList = undefined
    this.listVersion = p.version
    this.services = p.entries as ServiceInfo[]
    clearTimeout(this.listTimer)
    this.listNews.poke()
  }

  // ------------------------------------------------------------------ outgoing
  private enqueue(recs: Uint8Array[]) {
    for (const r of recs) this.outbox.push(r)
    if (this.flushScheduled) return
    this.flushScheduled = true
    this.schedule(() => {
      this.flushScheduled = false
      const recs = this.outbox
      this.outbox = []
      if (!recs.length || this.closed || !this.linkReady()) return
      for (const p of packRecords(recs, this.maxPayload)) void this.send1(p)
    })
  }

  /** Runs `flush` once the current turn's records are in (default: setImmediate). */
  protected schedule(flush: () => void) {
    setImmediate(flush)
  }

  private async send1(payload: Uint8Array): Promise<void> {
    this.io.packetsSent++
    try {
      await this.sendFrame(payload)
    } catch (e) {
      this.protocolError(`send failed: ${(e as Error).message}`)
    }
  }

  async sendRawFrame(payload: Uint8Array): Promise<void> {
    if (payload.length > this.maxPayload) throw new FrameError(`payload of ${payload.length} bytes (max ${this.maxPayload})`)
    if (this.closed || !this.linkReady()) return
    await this.send1(payload)
  }

  // ------------------------------------------------------------------ public API
  onStateChange(listener: (state: NodeState, info: { restarted: boolean }) => void): () => void {
    return this.stateListeners.add(listener)
  }
  onServicesChanged(listener: (services: ServiceInfo[]) => void): () => void {
    return this.servicesListeners.add(listener)
  }
  onDeviceRecord(listener: (record: DeviceRecord) => void): () => void {
    return this.recordListeners.add(listener)
  }
  onProtocolError(listener: (message: string) => void): () => void {
    return this.errorListeners.add(listener)
  }

  listServices(options: { timeoutMs?: number } = {}): Promise<ServiceInfo[]> {
    if (this.services) return Promise.resolve(this.services.slice())
    const down = this.refusal()
    if (down) return Promise.reject(down)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        offList()
        offState()
        reject(this.listTimedOut(timeoutMs))
      }, timeoutMs)
      const offList = this.servicesListeners.add((s) => {
        clearTimeout(t)
        offList()
        offState()
        resolve(s)
      })
      // the device became known to be unreachable meanwhile: fail now, not at the timeout
      const offState = this.stateListeners.add(() => {
        const e = this.refusal()
        if (!e) return
        clearTimeout(t)
        offList()
        offState()
        reject(e)
      })
      this.requestList()
    })
  }

  /** Why listServices gave up after `timeoutMs` (a link that can tell "no device at all" says so). */
  protected listTimedOut(timeoutMs: number): ServiceError {
    return new ServiceError("deadline_exceeded", `${this.describe()} did not list its services within ${timeoutMs} ms`)
  }

  /** the current list, if known */
  knownServices(): ServiceInfo[] | undefined {
    return this.services?.slice()
  }

  createClient<Req, Res>(type: ServiceDescriptor<Req, Res>, serviceName: string): Client<Req, Res> {
    const name = normalizeName(serviceName)
    const node = this
    return {
      serviceName: name,
      type,
      waitForService(options: { timeoutMs?: number } = {}): Promise<void> {
        const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
        return new Promise<void>((resolve, reject) => {
          let done = false
          const check = (list: ServiceInfo[] | undefined): void => {
            if (done || !list) return
            const s = list.find((x) => x.name === name)
            if (!s) return
            done = true
            clearTimeout(t)
            off()
            if (s.hash32 !== type.hash32)
              reject(
                new ServiceError(
                  "type_mismatch",
                  `${name} is ${s.type} (hash32 ${s.hash32}); this client expects ${type.fullName} (hash32 ${type.hash32})`,
                  name,
                ),
              )
            else resolve()
          }
          const t = setTimeout(() => {
            if (done) return
            done = true
            off()
            reject(new ServiceError("deadline_exceeded", `service ${name} not available within ${timeoutMs} ms`, name))
          }, timeoutMs)
          const off = node.onServicesChanged(check)
          check(node.knownServices())
        })
      },
      async call(request: Req, options: CallOptions = {}): Promise<Res> {
        let bytes: Uint8Array
        try {
          bytes = type.request.encode(request)
        } catch (e) {
          throw new ServiceError("invalid_argument", `request: ${(e as Error).message}`, name)
        }
        return node.startCall(name, type.hash32, bytes, (b) => type.response.decode(b), options)
      },
    }
  }

  /** One call of `service` with an encoded request; rejects only with ServiceError. */
  startCall<Res>(service: string, hash32: number, request: Uint8Array, decode: (b: Uint8Array) => Res, options: CallOptions): Promise<Res> {
    let name: Uint8Array
    try {
      name = encodeName(service)
    } catch (e) {
      return Promise.reject(new ServiceError("invalid_argument", (e as Error).message, service))
    }
    const down = this.closed ? undefined : this.refusal()
    if (down) return Promise.reject(new ServiceError(down.code, down.detail, service))
    return this.engine.start(service, name, hash32, request, decode, options)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.engine.close()
    this.closed = true
    clearTimeout(this.listTimer)
    this.listNews.cancel()
    this.setState("disconnected", false)
    this.stateNews.flush()
    try {
      await this.closeLink()
    } catch {
      // closing anyway
    }
  }
}
