// The host client's facade: `connect({ transport })` gives a RobotNode (host/client/api.ts) that
// finds the device serving the rosServices Jacdac service, lists its services and hands calls to
// the call engine (host/client/calls.ts: sessions, sequence numbers, recovery) over the record
// protocol v2 of docs/protocol.md (codec: host/client/records.ts). jacdac-ts does the Jacdac
// framing and device discovery; nothing here is sent with the ACK flag.
import { jd, type JD } from "../transport/jacdac"
import type { ServiceDescriptor } from "../runtime/types"
import type { CallOptions, Client, NodeState, RobotNode, ServiceInfo } from "./api"
import { CallEngine, DEFAULT_TIMEOUT_MS, type CallLink, type CallStats } from "./calls"
import { ServiceError } from "./errors"
import {
  CMD_FRAME,
  FrameError,
  JACDAC_PAYLOAD,
  REPORT_FRAME_OUT,
  ROS_SERVICES_CLASS,
  VersionError,
  encodeName,
  listRecord,
  packRecords,
  parseDeviceFrame,
  type DeviceRecord,
} from "./records"
import type { RobotTransport } from "../transport/types"

export interface ConnectOptions {
  transport: RobotTransport
  /** Calls in flight per device; more wait in a queue (default: the device's maxInFlight, at most 8). */
  window?: number
  /** Use only this Jacdac device id (hex), when several devices serve rosServices. */
  deviceId?: string
  /** How long `connect` waits for the transport itself (ms, default 10000); rejects with `unavailable`. */
  connectTimeoutMs?: number
}

/** Limits the device announced in its HELLO record. */
export interface DeviceLimits {
  bootId: number
  maxRequestBytes: number
  maxResponseBytes: number
  /** heap bytes the device gives calls (requests, retained answers) */
  budget: number
  maxInFlight: number
  /** request bytes the host may send beyond what the device acknowledged */
  window: number
  protocolVersion: number
}

/** Counters kept by a node (for tests and the benchmark). */
export interface NodeStats extends CallStats {
  packetsSent: number
  packetsReceived: number
  protocolErrors: number
}

/** A RobotNode with the extras the rig, the bridge and the benchmark use. */
export interface ServiceNode extends RobotNode {
  /** The jacdac-ts bus (add simulated servers to it; see host/sim/rig.ts). */
  readonly bus: JD.JDBus
  /** The device in use, once found. */
  readonly device: JD.JDDevice | undefined
  /** Limits from the device's last HELLO. */
  readonly limits: DeviceLimits | undefined
  readonly stats: NodeStats
  /** Fires on ERROR records from the device and on device frames this client cannot parse. */
  onProtocolError(listener: (message: string) => void): () => void
  /** Fires for every record the device sends (diagnostics, tests). */
  onDeviceRecord(listener: (record: DeviceRecord) => void): () => void
  /** Sends one raw `frame` command payload (tests: malformed frames). */
  sendRawFrame(payload: Uint8Array): Promise<void>
  /** Resolves when a device is attached (`unavailable` after `timeoutMs`, default 10000). */
  waitForDevice(options?: { timeoutMs?: number }): Promise<JD.JDDevice>
  /** The session id the device gave this node (0 while none). */
  readonly session: number
}

class Listeners<A extends unknown[]> {
  private readonly set = new Set<(...a: A) => void>()
  add(f: (...a: A) => void): () => void {
    this.set.add(f)
    return () => {
      this.set.delete(f)
    }
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

class Node implements ServiceNode, CallLink {
  state: NodeState = "connecting"
  device: JD.JDDevice | undefined
  readonly maxPayload = JACDAC_PAYLOAD
  private readonly engine: CallEngine
  private readonly io = { packetsSent: 0, packetsReceived: 0, protocolErrors: 0 }
  private serviceIndex = -1
  private services: ServiceInfo[] | undefined
  private pendingList: { version: number; entries: (ServiceInfo | undefined)[] } | undefined
  private listVersion = -1
  private bootId: number | undefined
  private listTimer: NodeJS.Timeout | undefined
  private readonly stateListeners = new Listeners<[NodeState, { restarted: boolean }]>()
  private readonly servicesListeners = new Listeners<[ServiceInfo[]]>()
  private readonly errorListeners = new Listeners<[string]>()
  private readonly deviceWaiters = new Listeners<[]>()
  private readonly recordListeners = new Listeners<[DeviceRecord]>()
  private outbox: Uint8Array[] = []
  private flushScheduled = false
  private closed = false
  /** when a restart was last handled (HELLO with a new bootId, or jacdac-ts restart event) */
  private restartSeenAt = 0

  constructor(
    readonly bus: JD.JDBus,
    private readonly transport: JD.Transport,
    private readonly options: ConnectOptions,
  ) {
    this.engine = new CallEngine(this, () => this.window)
    bus.on(jd.DEVICE_ANNOUNCE, (d: JD.JDDevice) => this.maybeAttach(d))
    bus.on(jd.DEVICE_DISCONNECT, (d: JD.JDDevice) => {
      if (d === this.device) this.detach("device disconnected")
    })
    bus.on(jd.DEVICE_RESTART, (d: JD.JDDevice) => {
      // the new program's HELLO usually comes before jacdac-ts notices the restart from the
      // announce counter: do not fail the calls made since that HELLO a second time
      if (d === this.device && Date.now() - this.restartSeenAt > 3000) this.restarted("device restarted")
    })
    bus.on(jd.PACKET_REPORT, (pkt: JD.Packet) => {
      if (pkt.device !== this.device || pkt.serviceIndex !== this.serviceIndex) return
      if (pkt.serviceCommand !== REPORT_FRAME_OUT) return
      this.io.packetsReceived++
      this.onPayload(pkt.data)
    })
    transport.on(jd.CONNECTION_STATE, () => {
      if (this.closed) return
      if (transport.disconnected) {
        this.engine.deviceLost(`transport ${options.transport.description} disconnected`)
        this.engine.failAll("unavailable", `transport ${options.transport.description} disconnected`)
        this.setState("disconnected", false)
      }
    })
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
      protocolVersion: h.version,
    }
  }

  get window(): number {
    const w = this.options.window ?? Math.min(16, this.engine.limits?.maxInFlight ?? 8)
    return Math.max(1, w)
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
  private maybeAttach(d: JD.JDDevice) {
    if (this.closed || this.device) return
    if (this.options.deviceId && d.deviceId !== this.options.deviceId) return
    const svc = d.services({ serviceClass: ROS_SERVICES_CLASS })[0]
    if (!svc) return
    this.device = d
    this.serviceIndex = svc.serviceIndex
    this.bootId = undefined
    this.listVersion = -1
    this.services = undefined
    this.setState("connected", false)
    this.requestList()
    this.deviceWaiters.emit()
  }

  private detach(why: string) {
    this.device = undefined
    this.serviceIndex = -1
    this.services = undefined
    this.bootId = undefined
    this.outbox = []
    this.engine.deviceLost(why)
    this.engine.failAll("unavailable", why)
    if (!this.closed) {
      this.setState("connecting", false)
      // another device may already be there
      for (const d of this.bus.devices({ serviceClass: ROS_SERVICES_CLASS })) this.maybeAttach(d)
    }
  }

  private restarted(why: string) {
    this.restartSeenAt = Date.now()
    this.engine.deviceLost(why)
    this.bootId = undefined
    this.listVersion = -1
    this.services = undefined
    this.stateListeners.emit(this.state, { restarted: true })
    this.requestList()
  }

  private setState(s: NodeState, restarted: boolean) {
    if (this.state === s && !restarted) return
    this.state = s
    this.stateListeners.emit(s, { restarted })
  }

  private requestList() {
    if (!this.device) return
    this.enqueue([listRecord()])
    // the HELLO or a SERVICE record may be lost: ask again until the list is complete
    clearTimeout(this.listTimer)
    this.listTimer = setTimeout(() => {
      if (!this.closed && this.device && !this.services) this.requestList()
    }, 500)
  }

  // ------------------------------------------------------------------ incoming
  private onPayload(data: Uint8Array) {
    let recs: DeviceRecord[]
    try {
      recs = parseDeviceFrame(data)
    } catch (e) {
      if (e instanceof VersionError) {
        this.protocolError(e.message)
        this.engine.setFatal(new ServiceError("unavailable", e.message))
        return
      }
      this.protocolError(`bad frame from device: ${(e as Error).message}`)
      return
    }
    for (const r of recs) {
      this.recordListeners.emit(r)
      try {
        this.onRecord(r)
      } catch (e) {
        this.protocolError(`record ${r.kind}: ${(e as Error).message}`)
      }
    }
  }

  private protocolError(msg: string) {
    this.io.protocolErrors++
    this.errorListeners.emit(msg)
  }

  private onRecord(r: DeviceRecord) {
    switch (r.kind) {
      case "hello": {
        const restarted = this.bootId !== undefined && r.bootId !== this.bootId
        if (restarted) {
          this.restartSeenAt = Date.now()
          this.services = undefined
          this.listVersion = -1
        }
        this.bootId = r.bootId
        this.engine.deviceHello(r, restarted)
        if (restarted) this.stateListeners.emit(this.state, { restarted: true })
        if (r.listVersion !== this.listVersion || !this.services) {
          this.pendingList = { version: r.listVersion, entries: new Array(r.count).fill(undefined) }
          this.maybeCommitList()
        }
        break
      }
      case "service": {
        const p = this.pendingList
        if (!p || p.version !== r.listVersion || r.index >= p.entries.length) return
        p.entries[r.index] = { name: r.name, type: r.type, hash32: r.hash32 }
        this.maybeCommitList()
        break
      }
      case "error":
        this.protocolError(`device: ${r.message} (at byte ${r.offset})`)
        break
      default:
        this.engine.onRecord(r)
    }
  }

  private maybeCommitList() {
    const p = this.pendingList
    if (!p || p.entries.some((e) => !e)) return
    this.pendingList = undefined
    this.listVersion = p.version
    this.services = p.entries as ServiceInfo[]
    clearTimeout(this.listTimer)
    this.servicesListeners.emit(this.services.slice())
  }

  // ------------------------------------------------------------------ outgoing
  private enqueue(recs: Uint8Array[]) {
    this.outbox.push(...recs)
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      const recs = this.outbox
      this.outbox = []
      if (!recs.length) return
      for (const p of packRecords(recs, this.maxPayload)) void this.sendPayload(p)
    })
  }

  private async sendPayload(payload: Uint8Array): Promise<void> {
    const dev = this.device
    if (!dev || this.closed) return
    const pkt = jd.Packet.from(CMD_FRAME, payload)
    pkt.serviceIndex = this.serviceIndex
    this.io.packetsSent++
    try {
      await pkt.sendCmdAsync(dev) // never with the ACK flag: the server would run it again
    } catch (e) {
      this.protocolError(`send failed: ${(e as Error).message}`)
    }
  }

  async sendRawFrame(payload: Uint8Array): Promise<void> {
    if (payload.length > JACDAC_PAYLOAD) throw new FrameError(`payload of ${payload.length} bytes (max ${JACDAC_PAYLOAD})`)
    await this.sendPayload(payload)
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

  /** the current session with the device (0 while none): tests and diagnostics */
  get session(): number {
    return this.engine.session
  }

  waitForDevice(options: { timeoutMs?: number } = {}): Promise<JD.JDDevice> {
    if (this.device) return Promise.resolve(this.device)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off()
        reject(new ServiceError("unavailable", `no device serving rosServices on ${this.options.transport.description} within ${timeoutMs} ms`))
      }, timeoutMs)
      const off = this.deviceWaiters.add(() => {
        clearTimeout(t)
        off()
        resolve(this.device!)
      })
    })
  }

  listServices(options: { timeoutMs?: number } = {}): Promise<ServiceInfo[]> {
    if (this.services) return Promise.resolve(this.services.slice())
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off()
        reject(new ServiceError("deadline_exceeded", `the device did not list its services within ${timeoutMs} ms`))
      }, timeoutMs)
      const off = this.servicesListeners.add((s) => {
        clearTimeout(t)
        off()
        resolve(s)
      })
      if (this.device) this.requestList()
    })
  }

  /** the current list, if known */
  knownServices(): ServiceInfo[] | undefined {
    return this.services?.slice()
  }

  createClient<Req, Res>(type: ServiceDescriptor<Req, Res>, serviceName: string): Client<Req, Res> {
    const name = serviceName.startsWith("/") ? serviceName : "/" + serviceName
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

  startCall<Res>(service: string, hash32: number, request: Uint8Array, decode: (b: Uint8Array) => Res, options: CallOptions): Promise<Res> {
    let name: Uint8Array
    try {
      name = encodeName(service)
    } catch (e) {
      return Promise.reject(new ServiceError("invalid_argument", (e as Error).message, service))
    }
    return this.engine.start(service, name, hash32, request, decode, options)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.engine.close()
    this.closed = true
    clearTimeout(this.listTimer)
    this.setState("disconnected", false)
    try {
      await this.bus.stop()
      await this.bus.dispose()
    } catch {
      // closing anyway
    }
  }
}

/**
 * Connects to the device behind `transport` and returns the node. Resolves once the transport is
 * up (the device may come later: calls wait for it within their timeout). Rejects with
 * `unavailable` when the transport cannot connect within `connectTimeoutMs` (default 10000).
 */
export async function connect(options: ConnectOptions): Promise<ServiceNode> {
  let transport: JD.Transport
  try {
    transport = await options.transport.create()
  } catch (e) {
    throw new ServiceError("unavailable", (e as Error).message)
  }
  const bus = new jd.JDBus([transport], { client: true, disableRoleManager: true })
  const node = new Node(bus, transport, options)
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      bus.connect(),
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    if (!transport.connected) throw new Error("connection refused")
  } catch (e) {
    clearTimeout(timer)
    await node.close()
    throw new ServiceError("unavailable", `cannot connect to ${options.transport.description}: ${(e as Error).message}`)
  }
  clearTimeout(timer)
  return node
}
