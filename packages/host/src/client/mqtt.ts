// The MQTT node of the record protocol v2 (the topic contract: docs/mqtt.md). One broker
// connection (client/mqttlink.ts `BrokerLink`) carries the frames of one robot (`mqttTransport`)
// or of every robot on the broker (`MqttDirectory`, packages/host/src/client/mqttdir.ts); each
// robot gets an MqttNode, a NodeCore (packages/host/src/client/core.ts) whose frames go to
// `robots/<robot>/in/<host>` and come from `robots/<robot>/out/<host>`, and whose presence is the
// retained `robots/<robot>/online`. A robot that goes `offline` (its will) or a broker connection
// that drops fails every call at once with `unavailable`; while the robot is known to be offline,
// new calls fail at once too; when it is `online` again the node lists its services and opens a new
// session by itself.
import { DEFAULT_TIMEOUT_MS } from "./calls"
import { NodeCore, hostMaxResponse, type NodeOptions, type NodeTransport, type RecordNode } from "./core"
import { ServiceError } from "./errors"
import { JACDAC_PAYLOAD } from "./records"
import { MAX_MQTT_FRAME } from "../gen/wire"
import { checkRobotName } from "./names"
import { BrokerLink, displayUrl, hostIdFor, type BrokerOptions } from "./mqttlink"

/** Frames before the robot's HELLO announced its `maxRecord` (bytes), and the least after it. */
export const MQTT_FIRST_FRAME = JACDAC_PAYLOAD
/**
 * The largest frame a node sends a robot (bytes), whatever its `maxRecord` says (a u16): the
 * protocol's MAX_MQTT_FRAME (protocol/protocol.json), which the embedded broker also passes to a
 * robot at most (broker.ts MAX_ROBOT_MESSAGE: it closes the connection of a host that publishes
 * more, and with it every other robot's calls on that connection). A robot announcing 65,535 did
 * that at its first call of a request over 16 KiB.
 */
export const MQTT_MAX_FRAME = MAX_MQTT_FRAME
/**
 * How long a node holds DONE records (ms) so that the next CALL's `ack` settles those answers
 * instead: every MQTT message costs the broker and the robot a delivery. Sooner when the answers
 * held reach a quarter of the robot's budget (packages/host/src/client/calls.ts).
 */
export const MQTT_DONE_DELAY_MS = 1000

/** Options of the nodes on a broker connection. */
export interface MqttNodeOptions {
  /** DONE held this long for the next CALL's ack to settle instead (ms, default MQTT_DONE_DELAY_MS; 0: at once). */
  doneDelayMs?: number
}

export interface MqttTransportOptions extends BrokerOptions, MqttNodeOptions {
  /** The robot's name (its `ROBOT_NAME` setting). */
  robot: string
}

/** What an MQTT node knows besides RobotNode: its robot, its broker, presence and a raw echo. */
export interface MqttNode extends RecordNode {
  readonly robot: string
  /** The broker URL without credentials (as in error messages). */
  readonly url: string
  /** This connection's host id (`<host>` in the topics). */
  readonly hostId: string
  /** The robot's retained presence: true `online`, false `offline`, undefined never seen (or not since the broker came back). */
  readonly online: boolean | undefined
  /**
   * Publishes `bytes` on `robots/<robot>/echo/<host>` and resolves with the robot's pong (the same
   * bytes) on `robots/<robot>/pong/<host>`: the link's raw floor. Rejects with `unavailable` when
   * the robot is known offline, `deadline_exceeded` after `timeoutMs` (default 10000).
   */
  echo(bytes: Uint8Array, options?: { timeoutMs?: number }): Promise<Uint8Array>
}

/** The node of one robot on a BrokerLink. */
export class MqttRobotNode extends NodeCore implements MqttNode {
  online: boolean | undefined
  readonly doneDelayMs: number
  /** set while the robot is known unreachable: calls fail at once with it */
  private down: string | undefined
  private readonly detach: () => void
  private readonly pongs = new Map<string, (() => void)[]>()

  private readonly link: BrokerLink
  readonly robot: string
  private readonly onClosed: () => Promise<void>

  /**
   * The node of `robot` on `link`. `presence`: what is known of the robot already (a directory's
   * retained presence); `onClosed`: run when the node closes (a single-robot transport closes the
   * broker connection, a directory forgets the node).
   */
  constructor(
    link: BrokerLink,
    robot: string,
    options: NodeOptions & MqttNodeOptions & { presence?: boolean; onClosed?: () => Promise<void> },
  ) {
    super(options)
    this.link = link
    this.robot = robot
    this.onClosed = options.onClosed ?? (async () => {})
    const presence = options.presence
    this.doneDelayMs = options.doneDelayMs ?? MQTT_DONE_DELAY_MS
    this.detach = link.attach(robot, {
      frame: (p) => this.onPayload(p),
      pong: (p) => this.onPong(p),
      presence: (online) => this.onPresence(online),
      brokerUp: () => this.onBrokerUp(),
      brokerDown: (why) => this.onBrokerDown(why),
    })
    if (!link.connected) this.onBrokerDown(`broker ${link.url} unreachable`)
    else if (presence !== undefined) this.onPresence(presence)
  }

  get url(): string {
    return this.link.url
  }
  get hostId(): string {
    return this.link.hostId
  }

  /**
   * The robot's `maxRecord`, never below MQTT_FIRST_FRAME (the least frame of any link of the
   * protocol, which the largest record the host cannot split, a CALL with a 200-byte name, fits; a
   * robot announcing less made one record too big for a frame fail the whole flush, every call's
   * records with it) nor above MQTT_MAX_FRAME.
   */
  override get maxPayload(): number {
    return Math.min(MQTT_MAX_FRAME, Math.max(this.hello?.maxRecord ?? 0, MQTT_FIRST_FRAME))
  }

  protected linkReady(): boolean {
    return this.link.connected && this.online === true
  }

  protected describe(): string {
    return `robot ${this.robot} (${this.link.url})`
  }

  protected override failFast(): ServiceError | undefined {
    return this.down ? new ServiceError("unavailable", this.down) : undefined
  }

  protected async sendFrame(payload: Uint8Array): Promise<void> {
    this.link.publish(`robots/${this.robot}/in/${this.link.hostId}`, payload)
  }

  protected override schedule(flush: () => void) {
    this.link.schedule(flush)
  }

  private onPresence(online: boolean | undefined) {
    if (this.closed) return
    if (online === true) {
      const was = this.online
      this.online = true
      this.down = undefined
      if (was !== true) {
        this.deviceFound(true)
        this.setState("connected", false)
      } else this.requestList() // announced again (reconnected, perhaps restarted): the HELLO tells
    } else {
      this.online = online
      if (online === false) this.lost(`robot ${this.robot} offline (${this.link.url})`, "disconnected")
      else this.lost(`robot ${this.robot} is no longer announced on ${this.link.url}`, "disconnected")
    }
  }

  private onBrokerUp() {
    if (this.closed) return
    // the robot's presence comes again with the subscription; until then it is not known
    this.down = undefined
    this.online = undefined
    this.setState("connecting", false)
  }

  private onBrokerDown(why: string) {
    if (this.closed) return
    this.online = undefined
    this.lost(`${why} (robot ${this.robot})`, "disconnected")
  }

  /** fails everything at once and refuses new calls until the robot is back */
  private lost(why: string, state: "disconnected") {
    this.down = why
    this.deviceGone(why, true)
    for (const waiters of this.pongs.values()) for (const w of waiters) w()
    this.setState(state, false)
  }

  private onPong(p: Uint8Array) {
    const k = Buffer.from(p).toString("base64")
    const q = this.pongs.get(k)
    const w = q?.shift()
    if (q && !q.length) this.pongs.delete(k)
    w?.()
  }

  echo(bytes: Uint8Array, options: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new ServiceError("unavailable", "node closed"))
    const down = this.failFast()
    if (down) return Promise.reject(down)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const copy = bytes.slice()
    const k = Buffer.from(copy).toString("base64")
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiter = () => {
        clearTimeout(t)
        const e = this.failFast()
        if (e || this.closed) reject(e ?? new ServiceError("unavailable", "node closed"))
        else resolve(copy)
      }
      const t = setTimeout(() => {
        const q = this.pongs.get(k)
        const i = q ? q.indexOf(waiter) : -1
        if (q && i >= 0) q.splice(i, 1)
        if (q && !q.length) this.pongs.delete(k)
        reject(new ServiceError("deadline_exceeded", `no pong from ${this.describe()} within ${timeoutMs} ms`))
      }, timeoutMs)
      const q = this.pongs.get(k)
      if (q) q.push(waiter)
      else this.pongs.set(k, [waiter])
      this.link.publish(`robots/${this.robot}/echo/${this.link.hostId}`, copy)
    })
  }

  protected async closeLink(): Promise<void> {
    this.detach()
    for (const waiters of this.pongs.values()) for (const w of waiters) w()
    this.pongs.clear()
    await this.onClosed()
  }
}

/** A NodeTransport to one robot over MQTT: `connect` resolves to an MqttNode. */
export interface MqttTransport extends NodeTransport<MqttNode> {
  readonly kind: "mqtt"
  readonly robot: string
  readonly url: string
}

/**
 * One robot over an MQTT broker (docs/mqtt.md), for `connect({ transport: mqttTransport(…) })`:
 * its own broker connection with a random host id. `connect` rejects with `unavailable` when the
 * broker refuses or cannot be reached within `connectTimeoutMs`; it does not wait for the robot
 * (calls wait for it within their timeout while it has never been seen). Throws `invalid_argument`
 * for a robot name outside [A-Za-z0-9_-]{1,32}.
 */
export function mqttTransport(options: MqttTransportOptions): MqttTransport {
  checkRobotName(options.robot)
  hostIdFor(options.username || undefined, "h") // a user name that cannot be a host id: said now
  const url = displayUrl(options.url)
  return {
    kind: "mqtt",
    robot: options.robot,
    url,
    description: `robot ${options.robot} at ${url}`,
    async connectNode(nodeOptions) {
      hostMaxResponse(nodeOptions) // a bad option is said before anything connects
      const link = await BrokerLink.open(
        { ...options, connectTimeoutMs: nodeOptions.connectTimeoutMs ?? options.connectTimeoutMs },
        { robot: options.robot },
        `robot ${options.robot}`,
      )
      return new MqttRobotNode(link, options.robot, { ...nodeOptions, doneDelayMs: options.doneDelayMs, onClosed: () => link.close() })
    },
  }
}
