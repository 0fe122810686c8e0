// The host client's entry point and its Jacdac carrier. `connect({ transport })` gives a RobotNode
// (packages/host/src/client/api.ts): over a Jacdac transport (serial, devtools WebSocket, in-process hub) a
// JacdacNode that finds the device serving the rosServices Jacdac service and carries the record
// frames of protocol v2 (docs/protocol.md) in its `frame` commands and `frame_out` reports; over a
// node transport (`mqttTransport`, packages/host/src/client/mqtt.ts) the node that transport makes. What both
// share (service list, restarts, the call engine, clients) is packages/host/src/client/core.ts. jacdac-ts does
// the Jacdac framing and device discovery; nothing here is sent with the ACK flag.
import { jd, type JD } from "../transport/jacdac"
import { DEFAULT_TIMEOUT_MS } from "./calls"
import { NodeCore, Listeners, hostMaxResponse, type NodeOptions, type NodeTransport, type RecordNode } from "./core"
import { ServiceError } from "./errors"
import { CMD_FRAME, REPORT_FRAME_OUT, ROS_SERVICES_CLASS } from "./records"
import type { RobotTransport } from "../transport/types"

export type { DeviceLimits, NodeStats, RecordNode, NodeOptions } from "./core"

export interface ConnectOptions extends NodeOptions {
  /** A Jacdac transport (serial, websocket, hub), or a node transport such as `mqttTransport(...)`. */
  transport: RobotTransport | NodeTransport
  /** Jacdac only: use only this device id (hex), when several devices serve rosServices. */
  deviceId?: string
  /** How long `connect` waits for the transport itself (ms, default 10000); rejects with `unavailable`. */
  connectTimeoutMs?: number
}

/** The node of a Jacdac transport: a RecordNode with the Jacdac bus and device. */
export interface ServiceNode extends RecordNode {
  /** The jacdac-ts bus (add simulated servers to it; see packages/host/src/sim/rig.ts). */
  readonly bus: JD.JDBus
  /** The device in use, once found. */
  readonly device: JD.JDDevice | undefined
  /** Resolves when a device is attached (`unavailable` after `timeoutMs`, default 10000). */
  waitForDevice(options?: { timeoutMs?: number }): Promise<JD.JDDevice>
  /** Frames dropped before jacdac-ts saw them: from devices past MAX_BUS_DEVICES (see DeviceGate). */
  readonly framesRefused: number
}

/**
 * The most devices a node's jacdac-ts bus tracks at once. jacdac-ts makes a device (JDDevice, its
 * services and registers) for every id a frame names, finds it by a linear search for each packet
 * and sorts the whole list for each new one, and forgets it 3 s after its last packet: a device on
 * the bus sending from a new id in every frame (client_hostile_robot_jacdac "reports from a new
 * device id in every frame ...", 5,000 frames/s) had every node's bus hold thousands of devices:
 * the test process's 3 s wait took 561 s and the VM's calls up to 138,622 ms (unpaced: 5,869 devices,
 * 115 MiB). A real bus has a few devices (the firmware's two, simulated hardware, hosts).
 */
export const MAX_BUS_DEVICES = 64

/** How long a device the gate admitted keeps its place without a frame (ms): jacdac-ts' own (JD_DEVICE_DISCONNECTED_DELAY). */
const DEVICE_GONE_MS = 3000

/**
 * Admits a frame to the bus when its device is known, or when fewer than MAX_BUS_DEVICES devices
 * sent a frame in the last DEVICE_GONE_MS; never evicts a device that keeps sending, so a flood of
 * new ids cannot push out the node's robot (`keep` admits it whatever the count: the id asked for,
 * the device attached, the bus's own servers). O(1) per frame from a known device, O(servers) from
 * another, O(MAX_BUS_DEVICES) per prune (at most one per 100 ms).
 */
export class DeviceGate {
  private readonly seen = new Map<string, number>()
  private prunedAt = 0
  refused = 0
  constructor(private readonly keep: (id: string) => boolean) {}

  admit(frame: Uint8Array): boolean {
    // (a frame names one device, bytes 4-11 of its header; a multicast command names a class)
    if (frame.length < 12 || frame[2] === 255 || frame[3]! & 4) return true
    const id = Buffer.from(frame.buffer, frame.byteOffset + 4, 8).toString("hex")
    const now = performance.now()
    if (this.seen.has(id) || this.keep(id)) {
      this.seen.set(id, now)
      return true
    }
    if (this.seen.size >= MAX_BUS_DEVICES && now - this.prunedAt >= 100) {
      this.prunedAt = now
      for (const [d, at] of this.seen) if (now - at > DEVICE_GONE_MS) this.seen.delete(d)
    }
    if (this.seen.size >= MAX_BUS_DEVICES) {
      this.refused++
      return false
    }
    this.seen.set(id, now)
    return true
  }
}

class JacdacNode extends NodeCore implements ServiceNode {
  device: JD.JDDevice | undefined
  private serviceIndex = -1
  /** the device attached when the transport last went away */
  private lastDeviceId: string | undefined
  private readonly deviceWaiters = new Listeners<[]>()
  // (the device asked for or attached, and the bus's own devices: itself, simulated hardware on rig.bus)
  private readonly gate = new DeviceGate(
    (id) =>
      id === this.options.deviceId?.toLowerCase() ||
      id === this.device?.deviceId ||
      id === this.bus.selfDeviceId ||
      this.bus.serviceProviders().some((p) => p.deviceId === id),
  )

  constructor(
    readonly bus: JD.JDBus,
    transport: JD.Transport,
    private readonly options: ConnectOptions,
  ) {
    super(options)
    // every frame of the transports (and the bus's own) passes here before jacdac-ts makes devices of it
    const processFrame = bus.processFrame.bind(bus)
    bus.processFrame = (frame, sender, skipCrc) => {
      if (this.gate.admit(frame)) processFrame(frame, sender, skipCrc)
    }
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
      this.onPayload(pkt.data)
    })
    transport.on(jd.CONNECTION_STATE, () => {
      if (this.closed) return
      if (transport.disconnected) {
        // (a board unplugged, or one whose USB port goes away when it resets, as an ESP32-S3's
        // does): fail its calls now, and let the device be found again once the port is back
        if (this.device) this.lastDeviceId = this.device.deviceId
        this.drop(`transport ${options.transport.description} disconnected`, true)
        this.setState("disconnected", false)
      } else if (transport.connected && !this.device) {
        // back (jacdac-ts reconnects when the port shows again): the device jacdac-ts still knows,
        // or its next announce, is attached afresh; before, the node stayed "disconnected" and
        // every call timed out (link_loss "the cable pulled during a call ...")
        this.lookAgain()
      }
    })
  }

  protected linkReady(): boolean {
    return this.device !== undefined
  }

  get framesRefused(): number {
    return this.gate.refused
  }

  protected describe(): string {
    return "the device"
  }

  /** No device at all on the bus (not one that is slow to list): a longer timeout would not help. */
  protected override listTimedOut(timeoutMs: number): ServiceError {
    if (this.bus.devices().some((d) => d.deviceId !== this.bus.selfDeviceId)) return super.listTimedOut(timeoutMs)
    const e = new ServiceError("unavailable", `no device on ${this.options.transport.description} within ${timeoutMs} ms`)
    return Object.assign(e, { hint: "no device on the bus: is the firmware running? Start it with `npx devs run`, the VS Code simulator, or a flashed board" })
  }

  private maybeAttach(d: JD.JDDevice) {
    if (this.closed || this.device) return
    if (this.options.deviceId && d.deviceId !== this.options.deviceId.toLowerCase()) return // (jacdac-ts writes ids in lower case)
    const svc = d.services({ serviceClass: ROS_SERVICES_CLASS })[0]
    if (!svc) return
    this.device = d
    this.serviceIndex = svc.serviceIndex
    // the device of before the port went away: a new bootId in its HELLO is a restart
    this.deviceFound(d.deviceId === this.lastDeviceId)
    this.setState("connected", false)
    this.deviceWaiters.emit()
  }

  private detach(why: string) {
    this.drop(why, false)
    // another device may already be there
    if (!this.closed) this.lookAgain()
  }

  /** Forgets the device: its session and calls fail `unavailable` `why` (`keepBootId`: see deviceFound). */
  private drop(why: string, keepBootId: boolean) {
    this.device = undefined
    this.serviceIndex = -1
    this.deviceGone(why, keepBootId)
  }

  /** Connecting: attaches a device the bus knows, if one serves rosServices (else its announce will). */
  private lookAgain() {
    this.setState("connecting", false)
    for (const d of this.bus.devices({ serviceClass: ROS_SERVICES_CLASS })) this.maybeAttach(d)
  }

  protected async sendFrame(payload: Uint8Array): Promise<void> {
    const dev = this.device
    if (!dev) return
    const pkt = jd.Packet.from(CMD_FRAME, payload)
    pkt.serviceIndex = this.serviceIndex
    await pkt.sendCmdAsync(dev) // never with the ACK flag: the server would run it again
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

  protected async closeLink(): Promise<void> {
    await this.bus.stop()
    await this.bus.dispose()
  }
}

function isNodeTransport(t: RobotTransport | NodeTransport): t is NodeTransport {
  return typeof (t as NodeTransport).connectNode === "function"
}

/**
 * Connects to the device behind `transport` and returns the node. Resolves once the transport is
 * up (the device may come later: calls wait for it within their timeout). Rejects with
 * `unavailable` when the transport cannot connect within `connectTimeoutMs` (default 10000).
 * A Jacdac transport gives a ServiceNode; a node transport (`mqttTransport`) gives its own node.
 */
export function connect(options: ConnectOptions & { transport: RobotTransport }): Promise<ServiceNode>
export function connect<N extends RecordNode>(options: ConnectOptions & { transport: NodeTransport<N> }): Promise<N>
export function connect(options: ConnectOptions): Promise<RecordNode>
export async function connect(options: ConnectOptions): Promise<RecordNode> {
  const t = options.transport
  hostMaxResponse(options) // a bad option is said before anything connects
  if (isNodeTransport(t)) return t.connectNode({ window: options.window, maxResponseBytes: options.maxResponseBytes, connectTimeoutMs: options.connectTimeoutMs })
  let transport: JD.Transport
  try {
    transport = await t.create()
  } catch (e) {
    throw new ServiceError("unavailable", (e as Error).message)
  }
  // jacdac-ts's pulse check reconnects by itself when frames stop (disconnect, 500 ms, connect): on a
  // node closed meanwhile, connect threw "attempted to connect to a disposed transport", unhandled
  // (robot_doctor "the board unplugged during the doctor's run ..." closes within that time)
  const connectTransport = transport.connect.bind(transport)
  transport.connect = (background?: boolean) => ((transport as unknown as { disposed: boolean }).disposed ? Promise.resolve() : connectTransport(background))
  const bus = new jd.JDBus([transport], { client: true, disableRoleManager: true })
  // connect again when the port shows again (jacdac-ts's serial transport looks every 2.5 s): a board
  // unplugged and plugged back, or one whose USB port goes away while it resets
  bus.autoConnect = true
  const node = new JacdacNode(bus, transport, options)
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  let reported: string | undefined
  transport.on(jd.ERROR, (e: { exception?: Error }) => (reported = e?.exception?.message ?? reported))
  try {
    await Promise.race([
      bus.connect(),
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    if (!transport.connected) throw new Error(t.whyNotConnected?.(reported) ?? "connection refused")
  } catch (e) {
    clearTimeout(timer)
    await node.close()
    throw new ServiceError("unavailable", `cannot connect to ${t.description}: ${(e as Error).message}`)
  }
  clearTimeout(timer)
  return node
}
