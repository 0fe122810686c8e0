// The MQTT transport of the host (docs/mqtt.md): `BrokerLink`, one connection to the broker (the
// `mqtt` package, loaded when a connection is made, not at import) with one host id, shared by the
// nodes of any number of robots (client/mqtt.ts `MqttRobotNode`, one per robot) and told of every
// robot's retained presence (client/mqttdir.ts, the directory). It routes each robot's topics to that
// robot's port, batches the nodes' frames into one corked write per event-loop turn, and reports the
// broker going down and coming back. The host id (`<host>`) is the connection's broker identity: its
// user name, or without one its random client id; the broker's topic rules hold it to its own topics
// (docs/mqtt.md "Access control").
import { randomBytes } from "node:crypto"
import type { IClientOptions, MqttClient } from "mqtt"
import { DEFAULT_TIMEOUT_MS } from "./calls"
import { ServiceError } from "./errors"

/**
 * A host's id, the last level of its topics (`robots/<robot>/in/<host>`): its broker identity, i.e.
 * its MQTT user name, or without one its client id (docs/mqtt.md "Access control").
 */
export const HOST_ID = /^[A-Za-z0-9_-]{1,32}$/

/** Where and as whom to reach the broker. */
export interface BrokerOptions {
  /** `mqtt://host:1883`, `mqtts://host:8883`, `ws://…` (what the `mqtt` package takes). */
  url: string
  /**
   * The host's user name at the broker, which is also its host id (the broker's topic rules name
   * hosts by user name): 1-32 characters of [A-Za-z0-9_-]. Without one the host id is a random
   * client id (`h` + 8 hex digits), for a broker that takes anonymous clients.
   */
  username?: string
  password?: string
  /** Wait for the broker's first answer this long (ms, default 10000). */
  connectTimeoutMs?: number
  /** After the broker connection drops, try again every this many ms (default 1000). */
  reconnectPeriodMs?: number
}

/** The URL as shown in messages: no user name or password. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url)
    u.username = ""
    u.password = ""
    return u.toString().replace(/\/$/, "")
  } catch {
    return url
  }
}

/** A fresh client id: `h` and 8 hex digits (the host id of a host without a user name). */
export function newHostId(): string {
  return "h" + randomBytes(4).toString("hex")
}

/**
 * The host id a connection with these options has: its user name (the broker identity), or
 * `clientId` without one. Throws `invalid_argument` for a user name that cannot be a host id.
 */
export function hostIdFor(username: string | undefined, clientId: string): string {
  if (!username) return clientId
  if (!HOST_ID.test(username)) {
    throw new ServiceError(
      "invalid_argument",
      `MQTT user name '${username}' cannot be a host id: a host's user name names its topics (robots/<robot>/in/<user>), 1-32 characters of A-Z a-z 0-9 _ - (docs/mqtt.md "Access control")`,
    )
  }
  return username
}

/**
 * Turns Nagle's algorithm off on the client's socket (the `mqtt` package leaves it on): small
 * frames otherwise wait for the peer's delayed ACK, tens of ms on a busy link.
 */
export function noDelay(client: MqttClient) {
  const s = client.stream as { setNoDelay?: (on: boolean) => unknown } | undefined
  s?.setNoDelay?.(true)
}

/** What a BrokerLink tells the owner of each robot's topics. */
export interface RobotPort {
  /** a frame on `robots/<robot>/out/<host>` */
  frame(payload: Uint8Array): void
  /** a message on `robots/<robot>/pong/<host>` */
  pong(payload: Uint8Array): void
  /** the retained presence: `online`, `offline`, or `undefined` for a cleared (empty) one */
  presence(online: boolean | undefined): void
  /** the broker connection came up (again) */
  brokerUp(): void
  /** the broker connection dropped */
  brokerDown(why: string): void
}

/**
 * One connection to the broker with one host id, shared by the nodes of any number of robots.
 * `watch` says what to subscribe: one robot's topics, or every robot's (`robots/+/…`). The host id
 * is the broker identity: the user name, or without one the (random) client id.
 */
export class BrokerLink {
  /** the MQTT client id: random, so that it is nobody else's (brokers with users key it by user name) */
  readonly clientId = newHostId()
  readonly hostId: string
  readonly url: string
  /** true while the broker connection is up */
  connected = false
  private readonly client: MqttClient
  private readonly ports = new Map<string, RobotPort>()
  /** told of every presence message (the directory) */
  onPresence: ((robot: string, online: boolean | undefined) => void) | undefined
  onBroker: ((up: boolean, why: string) => void) | undefined
  private lastError = ""
  private closed = false
  private due: (() => void)[] = []
  private batchScheduled = false
  /** when the last message on a robot's `online` topic arrived (performance.now()) */
  lastPresenceAt = 0
  private subacked: (() => void) | undefined
  /** Resolves once the broker acknowledged this connection's subscriptions (the first time). */
  readonly subscribed = new Promise<void>((resolve) => {
    this.subacked = resolve
  })

  private constructor(
    options: BrokerOptions,
    private readonly watch: { robot: string } | "all",
  ) {
    this.url = displayUrl(options.url)
    this.hostId = hostIdFor(options.username || undefined, this.clientId)
    let mqtt: typeof import("mqtt")
    try {
      mqtt = require("mqtt") as typeof import("mqtt")
    } catch {
      throw new ServiceError("unavailable", "the `mqtt` package is missing: run npm install in the project")
    }
    const opts: IClientOptions = {
      clientId: this.clientId,
      username: options.username || undefined,
      password: options.password,
      clean: true,
      keepalive: 30,
      protocolVersion: 4,
      reconnectPeriod: options.reconnectPeriodMs ?? 1000,
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      // we subscribe on every CONNACK ourselves; frames sent while the broker is away are dropped
      // (the record protocol recovers, and calls fail at once meanwhile)
      resubscribe: false,
      queueQoSZero: false,
      reconnectOnConnackError: true,
      log: () => {}, // the debug logger costs ~2% per message even when off
    }
    this.client = mqtt.connect(options.url, opts)
    this.client.on("connect", () => {
      noDelay(this.client)
      this.connected = true
      this.lastError = ""
      this.subscribe()
      for (const p of [...this.ports.values()]) p.brokerUp()
      this.onBroker?.(true, "")
    })
    this.client.on("error", (e: Error) => {
      this.lastError = e.message
    })
    this.client.on("close", () => {
      if (!this.connected) return
      this.connected = false
      const why = `broker ${this.url} unreachable${this.lastError ? `: ${this.lastError}` : ""}`
      for (const p of [...this.ports.values()]) p.brokerDown(why)
      this.onBroker?.(false, why)
    })
    this.client.on("message", (topic: string, payload: Buffer) => this.onMessage(topic, payload))
  }

  /**
   * Connects; resolves once the broker accepted the connection. Rejects with ServiceError
   * `unavailable` naming the broker (refused, unreachable, bad credentials) within `connectTimeoutMs`.
   */
  static open(options: BrokerOptions, watch: { robot: string } | "all", what = ""): Promise<BrokerLink> {
    let link: BrokerLink
    try {
      link = new BrokerLink(options, watch)
    } catch (e) {
      return Promise.reject(e)
    }
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise<BrokerLink>((resolve, reject) => {
      const c = link.client
      const done = (e?: Error) => {
        clearTimeout(t)
        c.off("connect", onConnect)
        c.off("error", onError)
        if (!e) return resolve(link)
        link.client.end(true)
        link.closed = true
        reject(e)
      }
      const fail = (why: string) => new ServiceError("unavailable", `cannot reach the MQTT broker ${link.url}${what ? ` (${what})` : ""}: ${why}`)
      const onConnect = () => done()
      const onError = (e: Error & { code?: number | string }) => {
        const auth = e.code === 4 || e.code === 5
        done(fail(auth ? `${e.message} (check the user name and password)` : e.message || String(e.code)))
      }
      const t = setTimeout(() => done(fail(`no answer within ${timeoutMs} ms`)), timeoutMs)
      c.on("connect", onConnect)
      c.on("error", onError)
    })
  }

  private subscribe() {
    const h = this.hostId
    const r = this.watch === "all" ? "+" : this.watch.robot
    this.client.subscribe([`robots/${r}/online`, `robots/${r}/out/${h}`, `robots/${r}/pong/${h}`], { qos: 0 }, (err, granted) => {
      const denied = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic)
      if (err || denied.length) this.lastError = `subscription refused: ${err?.message ?? denied.join(", ")}`
      this.subacked?.()
    })
  }

  private onMessage(topic: string, payload: Buffer) {
    // robots/<name>/online | robots/<name>/out/<host> | robots/<name>/pong/<host>
    const parts = topic.split("/")
    if (parts[0] !== "robots" || parts.length < 3) return
    const robot = parts[1]!
    const kind = parts[2]
    if (kind === "online" && parts.length === 3) {
      const s = payload.toString("utf8")
      const online = s === "online" ? true : s === "offline" ? false : payload.length === 0 ? undefined : null
      if (online === null) return // not a presence value: ignored
      this.lastPresenceAt = performance.now()
      this.ports.get(robot)?.presence(online)
      this.onPresence?.(robot, online)
      return
    }
    if (parts.length !== 4 || parts[3] !== this.hostId) return
    const port = this.ports.get(robot)
    if (!port) return
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
    if (kind === "out") port.frame(bytes)
    else if (kind === "pong") port.pong(bytes)
  }

  /** Routes `robot`'s topics to `port` (one port per robot). */
  attach(robot: string, port: RobotPort): () => void {
    this.ports.set(robot, port)
    return () => {
      if (this.ports.get(robot) === port) this.ports.delete(robot)
    }
  }

  /**
   * Runs `flush` in this connection's next batch: one setImmediate runs the flushes of every node
   * on the connection with the socket corked, so their frames go out in one write.
   */
  schedule(flush: () => void) {
    this.due.push(flush)
    if (this.due.length > 1 || this.batchScheduled) return
    this.batchScheduled = true
    setImmediate(() => this.runBatch())
  }

  private runBatch() {
    this.batchScheduled = false
    const due = this.due
    this.due = []
    const stream = this.client.stream as { cork?: () => void; uncork?: () => void } | undefined
    const cork = !!(this.connected && stream?.cork && stream.uncork)
    if (cork) stream!.cork!()
    for (const f of due) {
      try {
        f()
      } catch (e) {
        console.error("mqtt: a node's flush failed:", e)
      }
    }
    if (cork) stream!.uncork!()
  }

  /** Publishes one QoS 0 message (dropped while the broker is away); outside a batch, in the next one. */
  publish(topic: string, payload: Uint8Array) {
    if (!this.connected) return
    this.client.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos: 0 })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.ports.clear()
    this.onPresence = undefined
    this.onBroker = undefined
    await this.client.endAsync(true).catch(() => {})
  }
}
