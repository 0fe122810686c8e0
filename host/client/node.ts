// The host client: `connect({ transport })` gives a RobotNode (host/client/api.ts) that finds the
// device serving the rosServices Jacdac service, lists its services, and makes calls with its own
// call ids over the record protocol of docs/protocol.md. jacdac-ts does the Jacdac framing and
// device discovery; nothing here is sent with the ACK flag.
import { randomInt } from "node:crypto"
import { jd, type JD } from "../transport/jacdac"
import type { ServiceDescriptor } from "../runtime/types"
import type { CallOptions, Client, NodeState, RobotNode, ServiceInfo } from "./api"
import { ErrorCodes, ServiceError, errorCodeFromWire, type ErrorCode } from "./errors"
import {
  CALL_HEADER,
  CALLX_HEADER,
  CMD_FRAME,
  CallState,
  DATA_HEADER,
  FrameError,
  Kind,
  MAX_PAYLOAD,
  REPORT_FRAME_OUT,
  ROS_SERVICES_CLASS,
  SMALL_RESPONSE,
  callRecord,
  callxRecord,
  dataRecord,
  encodeName,
  idRecord,
  packRecords,
  parseDeviceFrame,
  pollRecord,
  type DeviceRecord,
} from "./protocol"
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
  maxInFlight: number
  protocolVersion: number
}

/** Counters kept by a node (for tests and the benchmark). */
export interface NodeStats {
  callsStarted: number
  polls: number
  requestResends: number
  busyRetries: number
  packetsSent: number
  packetsReceived: number
  protocolErrors: number
}

const DEFAULT_TIMEOUT_MS = 10000
/** silence (ms) before the first POLL of a call; doubles per unanswered POLL up to POLL_MAX_MS */
const POLL_FIRST_MS = 400
const POLL_RUNNING_MS = 1000
const POLL_MAX_MS = 4000

interface PendingCall {
  id: number
  service: string
  name: Uint8Array
  hash32: number
  request: Uint8Array
  decode: (b: Uint8Array) => unknown
  resolve: (v: unknown) => void
  reject: (e: ServiceError) => void
  onProgress?: (received: number, total: number) => void
  active: boolean
  resTotal: number
  res: Uint8Array | undefined
  got: number
  silence: NodeJS.Timeout | undefined
  pollDelay: number
  lastPollAt: number
  lastPollHave: number
  lastResendAt: number
  /** do not use the compact CALLX (the device said our list is stale) */
  fullCall: boolean
  cleanup: () => void
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

class Node implements ServiceNode {
  state: NodeState = "connecting"
  device: JD.JDDevice | undefined
  limits: DeviceLimits | undefined
  readonly stats: NodeStats = {
    callsStarted: 0,
    polls: 0,
    requestResends: 0,
    busyRetries: 0,
    packetsSent: 0,
    packetsReceived: 0,
    protocolErrors: 0,
  }
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
  private readonly active = new Map<number, PendingCall>()
  private readonly queue: PendingCall[] = []
  private outbox: Uint8Array[] = []
  private flushScheduled = false
  private readonly idBase = randomInt(0, 0xffffffff)
  private idCounter = 0
  private closed = false
  /** when a restart was last handled (HELLO with a new bootId, or jacdac-ts restart event) */
  private restartSeenAt = 0

  constructor(
    readonly bus: JD.JDBus,
    private readonly transport: JD.Transport,
    private readonly options: ConnectOptions,
  ) {
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
      this.stats.packetsReceived++
      this.onPayload(pkt.data)
    })
    transport.on(jd.CONNECTION_STATE, () => {
      if (this.closed) return
      if (transport.disconnected) {
        this.failAll("unavailable", `transport ${options.transport.description} disconnected`)
        this.setState("disconnected", false)
      }
    })
  }

  get window(): number {
    const w = this.options.window ?? Math.min(8, this.limits?.maxInFlight ?? 8)
    return Math.max(1, w)
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
    this.pump()
  }

  private detach(why: string) {
    this.device = undefined
    this.serviceIndex = -1
    this.services = undefined
    this.bootId = undefined
    this.outbox = []
    this.failAll("unavailable", why)
    if (!this.closed) {
      this.setState("connecting", false)
      // another device may already be there
      for (const d of this.bus.devices({ serviceClass: ROS_SERVICES_CLASS })) this.maybeAttach(d)
    }
  }

  private restarted(why: string) {
    this.restartSeenAt = Date.now()
    this.failAll("unavailable", why)
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
    this.enqueue([idRecord(Kind.LIST, randomInt(0, 0xffffffff))])
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
    this.stats.protocolErrors++
    this.errorListeners.emit(msg)
  }

  private onRecord(r: DeviceRecord) {
    switch (r.kind) {
      case "hello": {
        const restarted = this.bootId !== undefined && r.bootId !== this.bootId
        if (restarted) {
          this.restartSeenAt = Date.now()
          this.failAll("unavailable", "device program restarted")
          this.services = undefined
          this.listVersion = -1
        }
        this.bootId = r.bootId
        this.limits = {
          bootId: r.bootId,
          maxRequestBytes: r.maxRequestBytes,
          maxResponseBytes: r.maxResponseBytes,
          maxInFlight: r.maxInFlight,
          protocolVersion: r.version,
        }
        if (restarted) this.stateListeners.emit(this.state, { restarted: true })
        if (r.listVersion !== this.listVersion || !this.services) {
          this.pendingList = { version: r.listVersion, entries: new Array(r.count).fill(undefined) }
          this.maybeCommitList()
        }
        this.pump()
        break
      }
      case "service": {
        const p = this.pendingList
        if (!p || p.version !== r.listVersion || r.index >= p.entries.length) return
        p.entries[r.index] = { name: r.name, type: r.type, hash32: r.hash32 }
        this.maybeCommitList()
        break
      }
      case "result":
      case "rdata":
      case "status": {
        const c = this.active.get(r.callId)
        if (!c) return // another client's call, or one already finished
        this.onCallRecord(c, r)
        break
      }
      case "error":
        this.protocolError(`device: ${r.message} (at byte ${r.offset})`)
        break
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

  private onCallRecord(c: PendingCall, r: DeviceRecord) {
    const prevDelay = c.pollDelay
    c.pollDelay = POLL_FIRST_MS
    if (r.kind === "result") {
      if (r.status !== 0) {
        const msg = Buffer.from(r.data).toString("utf8")
        if (r.status === ErrorCodes.unavailable && msg.startsWith("busy")) {
          this.busy(c)
          return
        }
        if (r.status === ErrorCodes.unavailable && msg.startsWith("stale")) {
          // our copy of the service list is out of date: refresh it, call by name meanwhile
          c.fullCall = true
          this.services = undefined
          this.requestList()
          this.busy(c)
          return
        }
        this.settle(c, new ServiceError(errorCodeFromWire(r.status), msg, c.service))
        return
      }
      if (c.resTotal < 0) {
        c.resTotal = r.total
        c.res = new Uint8Array(r.total)
      }
      this.accept(c, 0, r.data)
    } else if (r.kind === "rdata") {
      if (c.resTotal < 0) {
        this.poll(c, 0, true) // the RESULT was lost
        return
      }
      this.accept(c, r.offset, r.data)
    } else if (r.kind === "status") {
      if (r.state === CallState.unknown) {
        if (c.resTotal >= 0) this.settle(c, new ServiceError("unavailable", "the device no longer knows this call", c.service))
        else this.sendRequest(c, 0, true)
      } else if (r.state === CallState.receiving) {
        this.sendRequest(c, r.offset, true)
      } else if (r.state === CallState.running) {
        // a slow handler: poll less and less often (each answer costs the device a packet)
        c.pollDelay = Math.min(POLL_MAX_MS, Math.max(POLL_RUNNING_MS, prevDelay * 2))
        this.armSilence(c)
      } else {
        this.armSilence(c)
      }
    }
  }

  private accept(c: PendingCall, offset: number, data: Uint8Array) {
    const res = c.res!
    if (offset > c.got) {
      this.poll(c, c.got, true) // gap: go back to the first missing byte
      return
    }
    const end = offset + data.length
    if (end > c.resTotal) {
      this.settle(c, new ServiceError("internal", `response data beyond its length (${end} > ${c.resTotal})`, c.service))
      return
    }
    if (end > c.got) {
      res.set(data.subarray(c.got - offset), c.got)
      c.got = end
      c.onProgress?.(c.got, c.resTotal)
    }
    if (c.got === c.resTotal) {
      let v: unknown
      try {
        v = c.decode(res)
      } catch (e) {
        this.enqueue([idRecord(Kind.DONE, c.id)])
        this.settle(c, new ServiceError("internal", `cannot decode the response: ${(e as Error).message}`, c.service))
        return
      }
      // the device keeps small answers in its ring without a DONE (see SMALL_RESPONSE)
      if (c.resTotal > SMALL_RESPONSE) this.enqueue([idRecord(Kind.DONE, c.id)])
      this.settle(c, undefined, v)
      return
    }
    this.armSilence(c)
  }

  // ------------------------------------------------------------------ calls
  private newId(): number {
    for (;;) {
      const id = (this.idBase + ++this.idCounter) >>> 0
      if (id !== 0 && !this.active.has(id)) return id
    }
  }

  startCall<Res>(service: string, hash32: number, request: Uint8Array, decode: (b: Uint8Array) => Res, options: CallOptions): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (this.closed) {
        reject(new ServiceError("unavailable", "node closed", service))
        return
      }
      let name: Uint8Array
      try {
        name = encodeName(service)
      } catch (e) {
        reject(new ServiceError("invalid_argument", (e as Error).message, service))
        return
      }
      if (this.limits && request.length > this.limits.maxRequestBytes) {
        reject(new ServiceError("resource_exhausted", `request of ${request.length} bytes exceeds maxRequestBytes=${this.limits.maxRequestBytes}`, service))
        return
      }
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
      const c: PendingCall = {
        id: this.newId(),
        service,
        name,
        hash32,
        request,
        decode,
        resolve: resolve as (v: unknown) => void,
        reject,
        onProgress: options.onProgress,
        active: false,
        resTotal: -1,
        res: undefined,
        got: 0,
        silence: undefined,
        pollDelay: POLL_FIRST_MS,
        lastPollAt: 0,
        lastPollHave: -1,
        lastResendAt: 0,
        fullCall: false,
        cleanup: () => {},
      }
      const timer = setTimeout(() => this.abandon(c, "deadline_exceeded", `no answer within ${timeoutMs} ms`), timeoutMs)
      const signal = options.signal
      const onAbort = () => this.abandon(c, "cancelled", "the call was aborted")
      if (signal) {
        if (signal.aborted) {
          clearTimeout(timer)
          reject(new ServiceError("cancelled", "the call was aborted", service))
          return
        }
        signal.addEventListener("abort", onAbort, { once: true })
      }
      c.cleanup = () => {
        clearTimeout(timer)
        clearTimeout(c.silence)
        signal?.removeEventListener("abort", onAbort)
      }
      this.queue.push(c)
      this.pump()
    })
  }

  private pump() {
    if (!this.device || this.closed) return
    while (this.active.size < this.window && this.queue.length) {
      const c = this.queue.shift()!
      c.active = true
      this.active.set(c.id, c)
      this.stats.callsStarted++
      this.sendRequest(c, 0, false)
    }
  }

  /** sends the request from byte `from` (0: the CALL record first) */
  private sendRequest(c: PendingCall, from: number, resend: boolean) {
    const now = Date.now()
    if (resend) {
      if (now - c.lastResendAt < 150) return
      this.stats.requestResends++
    }
    c.lastResendAt = now
    const recs: Uint8Array[] = []
    const req = c.request
    let off = from
    const index = from === 0 && !c.fullCall ? this.compactIndex(c) : -1
    if (index >= 0) {
      recs.push(callxRecord(c.id, this.listVersion, index, req))
      off = req.length
    } else if (from === 0) {
      const n = Math.min(req.length, MAX_PAYLOAD - CALL_HEADER - c.name.length)
      recs.push(callRecord(c.id, c.hash32, req.length, c.name, req.subarray(0, n)))
      off = n
    }
    while (off < req.length) {
      const n = Math.min(req.length - off, MAX_PAYLOAD - DATA_HEADER)
      recs.push(dataRecord(c.id, off, req.subarray(off, off + n)))
      off += n
    }
    this.enqueue(recs)
    this.armSilence(c)
  }

  /** index for a compact CALLX: the request fits one record and the listed hash matches */
  private compactIndex(c: PendingCall): number {
    if (!this.services || c.request.length > MAX_PAYLOAD - CALLX_HEADER) return -1
    const i = this.services.findIndex((s) => s.name === c.service)
    if (i < 0 || i > 255 || this.services[i]!.hash32 !== c.hash32) return -1
    return i
  }

  private poll(c: PendingCall, have: number, onGap: boolean) {
    const now = Date.now()
    // one POLL per missing offset per 300 ms: chunks already on the way must not trigger more
    if (onGap && c.lastPollHave === have && now - c.lastPollAt < 300) return
    c.lastPollAt = now
    c.lastPollHave = have
    this.stats.polls++
    this.enqueue([pollRecord(c.id, have)])
    this.armSilence(c)
  }

  private armSilence(c: PendingCall) {
    clearTimeout(c.silence)
    c.silence = setTimeout(() => {
      if (!c.active || this.active.get(c.id) !== c) return
      const d = c.pollDelay
      c.pollDelay = Math.min(POLL_MAX_MS, d * 2)
      this.poll(c, c.got, false)
    }, c.pollDelay)
  }

  private busy(c: PendingCall) {
    // the device ran nothing: try again (same id) when a slot frees up or after a short pause
    this.stats.busyRetries++
    this.active.delete(c.id)
    c.active = false
    clearTimeout(c.silence)
    c.silence = setTimeout(() => {
      if (c.active || this.closed) return
      this.queue.unshift(c)
      this.pump()
    }, 10 + randomInt(0, 40))
  }

  private abandon(c: PendingCall, code: ErrorCode, msg: string) {
    const i = this.queue.indexOf(c)
    if (i >= 0) this.queue.splice(i, 1)
    if (c.active && this.device) this.enqueue([idRecord(Kind.CANCEL, c.id)])
    this.settle(c, new ServiceError(code, msg, c.service))
  }

  private settle(c: PendingCall, err: ServiceError | undefined, value?: unknown) {
    c.cleanup()
    if (this.active.get(c.id) === c) this.active.delete(c.id)
    c.active = false
    const i = this.queue.indexOf(c)
    if (i >= 0) this.queue.splice(i, 1)
    // later records for this id find nothing; a second settle is a no-op
    const res = c.resolve
    const rej = c.reject
    c.resolve = () => {}
    c.reject = () => {}
    if (err) rej(err)
    else res(value)
    this.pump()
  }

  private failAll(code: ErrorCode, msg: string) {
    const all = [...this.active.values(), ...this.queue]
    this.active.clear()
    this.queue.length = 0
    for (const c of all) this.settle(c, new ServiceError(code, msg, c.service))
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
      for (const p of packRecords(recs)) void this.sendPayload(p)
    })
  }

  private async sendPayload(payload: Uint8Array): Promise<void> {
    const dev = this.device
    if (!dev || this.closed) return
    const pkt = jd.Packet.from(CMD_FRAME, payload)
    pkt.serviceIndex = this.serviceIndex
    this.stats.packetsSent++
    try {
      await pkt.sendCmdAsync(dev) // never with the ACK flag: the server would run it again
    } catch (e) {
      this.protocolError(`send failed: ${(e as Error).message}`)
    }
  }

  async sendRawFrame(payload: Uint8Array): Promise<void> {
    if (payload.length > MAX_PAYLOAD) throw new FrameError(`payload of ${payload.length} bytes (max ${MAX_PAYLOAD})`)
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

  async close(): Promise<void> {
    if (this.closed) return
    this.failAll("unavailable", "node closed")
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
