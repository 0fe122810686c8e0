// A directory of the robots on one MQTT broker (docs/mqtt.md): one broker connection and one host
// id follow `robots/+/online` (retained presence) and carry the frames of every robot; `nodeFor`
// hands out one MqttNode per robot name, all sharing that connection. Its events (a robot added,
// removed, online, offline) let a fleet (named RobotNodes under ROS namespaces) follow the broker:
// `directoryFleet`.
import { MqttRobotNode, type MqttNode, type MqttNodeOptions } from "./mqtt"
import { BrokerLink, type BrokerOptions } from "./mqttlink"
import type { RobotStatus } from "./api"
import { Listeners, hostMaxResponse, type NodeOptions } from "./core"
import { ServiceError } from "./errors"
import { DEFAULT_TIMEOUT_MS } from "./calls"
import { FleetNode } from "./fleet"
import { ROBOT_NAME, checkRobotName } from "./names"

/**
 * What changed: `added` (first presence message for this name), `removed` (its retained presence
 * was cleared with an empty message), `online`, `offline`; `broker` when the broker connection
 * went down or came back (`up`), after which the retained presences arrive again.
 */
export type DirectoryEvent =
  | { type: "added" | "removed" | "online" | "offline"; name: string }
  | { type: "broker"; up: boolean; why: string }

export interface MqttDirectoryOptions extends BrokerOptions, NodeOptions, MqttNodeOptions {}

export class MqttDirectory {
  /** `online`: the retained presence is `online` (false: `offline`, or not known since the broker came back); no `services` */
  private readonly entries = new Map<string, RobotStatus>()
  private readonly nodes = new Map<string, MqttRobotNode>()
  private readonly listeners = new Listeners<[DirectoryEvent]>()
  private closed = false

  private constructor(
    private readonly link: BrokerLink,
    private readonly options: MqttDirectoryOptions,
  ) {
    link.onPresence = (name, online) => this.onPresence(name, online)
    link.onBroker = (up, why) => {
      if (!up) {
        // presence is unknown until the broker sends the retained messages again
        for (const e of this.entries.values()) {
          if (!e.online) continue
          e.online = false
          this.listeners.emit({ type: "offline", name: e.name })
        }
      }
      this.listeners.emit({ type: "broker", up, why })
    }
  }

  /**
   * Connects to the broker and follows every robot's presence. Rejects with ServiceError
   * `unavailable` naming the broker when it refuses or cannot be reached within `connectTimeoutMs`
   * (default 10000). The retained presences arrive just after: wait with `waitFor`.
   */
  static async connect(options: MqttDirectoryOptions): Promise<MqttDirectory> {
    hostMaxResponse(options) // a bad option is said before anything connects
    const link = await BrokerLink.open(options, "all")
    return new MqttDirectory(link, options)
  }

  /** The broker URL without credentials. */
  get url(): string {
    return this.link.url
  }
  /** The host id of this directory's connection (`<host>` in the topics of all its nodes). */
  get hostId(): string {
    return this.link.hostId
  }
  /** True while the broker connection is up. */
  get connected(): boolean {
    return this.link.connected
  }

  /** Every robot seen, sorted by name. */
  robots(): RobotStatus[] {
    return [...this.entries.values()].map((e) => ({ ...e })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** Fires for each change; returns the function that removes the listener. */
  onChange(listener: (event: DirectoryEvent) => void): () => void {
    return this.listeners.add(listener)
  }

  /**
   * The node of robot `name` (made on first use, then the same object until it is closed). A robot
   * not seen yet is fine: its calls wait for it within their timeout. Throws `invalid_argument` for
   * a name outside [A-Za-z0-9_-]{1,32}, `unavailable` once the directory is closed.
   */
  nodeFor(name: string): MqttNode {
    if (this.closed) throw new ServiceError("unavailable", "robot directory closed")
    checkRobotName(name)
    let n = this.nodes.get(name)
    if (!n) {
      const e = this.entries.get(name)
      const node: MqttRobotNode = new MqttRobotNode(this.link, name, {
        window: this.options.window,
        maxResponseBytes: this.options.maxResponseBytes,
        doneDelayMs: this.options.doneDelayMs,
        presence: e?.online,
        onClosed: async () => {
          if (this.nodes.get(name) === node) this.nodes.delete(name)
        },
      })
      n = node
      this.nodes.set(name, n)
    }
    return n
  }

  /**
   * Resolves once the retained presences have most likely all arrived: the broker acknowledged the
   * subscription and no presence message came for `quietMs` (default 150), or after `maxMs`
   * (default 3000). MQTT has no end-of-retained marker; brokers send them right after the SUBACK.
   */
  async settled(options: { quietMs?: number; maxMs?: number } = {}): Promise<void> {
    const quietMs = options.quietMs ?? 150
    const until = performance.now() + (options.maxMs ?? 3000)
    let t: NodeJS.Timeout | undefined
    await Promise.race([this.link.subscribed, new Promise<void>((r) => (t = setTimeout(r, options.maxMs ?? 3000)))])
    clearTimeout(t)
    const since = performance.now()
    for (;;) {
      const now = performance.now()
      const quietFor = now - Math.max(since, this.link.lastPresenceAt)
      if (quietFor >= quietMs || now >= until) return
      await new Promise((r) => setTimeout(r, Math.min(quietMs - quietFor, until - now) + 1))
    }
  }

  /**
   * Resolves once the robots named are online (all of them; with no names, once `count` robots
   * are, default 1); rejects with `deadline_exceeded` after `timeoutMs` (default 10000).
   */
  waitFor(options: { names?: string[]; count?: number; timeoutMs?: number } = {}): Promise<RobotStatus[]> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const ok = () => {
      const online = [...this.entries.values()].filter((e) => e.online)
      if (options.names) return options.names.every((n) => this.entries.get(n)?.online)
      return online.length >= (options.count ?? 1)
    }
    if (ok()) return Promise.resolve(this.robots())
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off()
        const want = options.names ? options.names.join(", ") : `${options.count ?? 1} robot(s)`
        const have = this.robots().filter((e) => e.online).length
        reject(new ServiceError("deadline_exceeded", `waited ${timeoutMs} ms for ${want} to be online on ${this.url} (${have} online)`))
      }, timeoutMs)
      const off = this.onChange(() => {
        if (!ok()) return
        clearTimeout(t)
        off()
        resolve(this.robots())
      })
    })
  }

  private onPresence(name: string, online: boolean | undefined) {
    if (!ROBOT_NAME.test(name)) return
    const e = this.entries.get(name)
    if (online === undefined) {
      if (!e) return
      this.entries.delete(name)
      this.listeners.emit({ type: "removed", name })
      return
    }
    if (!e) {
      this.entries.set(name, { name, online })
      this.listeners.emit({ type: "added", name })
      if (online) this.listeners.emit({ type: "online", name })
      return
    }
    if (e.online === online) return
    e.online = online
    this.listeners.emit({ type: online ? "online" : "offline", name })
  }

  /** Closes every node (their calls fail with `unavailable`) and the broker connection. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.nodes.values()].map((n) => n.close()))
    this.nodes.clear()
    await this.link.close()
  }
}

/**
 * The directory's robots as one FleetNode (client/fleet.ts): every robot the directory learns of
 * joins under its name (`nodeFor`), and leaves when its retained presence is cleared. `close`
 * stops following and closes the fleet (the directory stays open).
 */
export function directoryFleet(directory: MqttDirectory): { fleet: FleetNode; close(): Promise<void> } {
  const fleet = new FleetNode(`the broker ${directory.url}`)
  const join = (name: string) => {
    if (!fleet.robot(name)) fleet.add(name, directory.nodeFor(name))
  }
  const off = directory.onChange((e) => {
    if (e.type === "added") join(e.name)
    else if (e.type === "removed") void fleet.remove(e.name)
  })
  for (const r of directory.robots()) join(r.name)
  return {
    fleet,
    async close() {
      off()
      await fleet.close()
    },
  }
}
