// The Foxglove WebSocket front end (subprotocol `foxglove.websocket.v1`, the protocol Foxglove and
// Lichtblick speak): the clients and serverInfo (with a fleet, its robots and their presence in the
// metadata), tying the services (services.ts) and the channels (feeds.ts; the actions' status and
// feedback: actions.ts; the services' introspection events: events.ts) together. See docs/bridge.md.
import type { WebSocket } from "ws"
import { ServiceError } from "../../client/errors"
import { splitRobotName } from "../../client/names"
import { Clients, type Conn } from "./clients"
import { Feeds } from "./feeds"
import { ActionFeeds } from "./actions"
import { EventFeeds } from "./events"
import type { GoalTracker } from "../../calls/goals"
import type { Output } from "../output"
import { STATUS_ERROR, STATUS_WARNING, toBuffer } from "./framing"
import { Services, type ServiceOptions } from "./services"

export { FOXGLOVE_SUBPROTOCOL } from "./framing"
export { CAMERA_TOPIC, STATE_CHANNEL_TOPIC, channelTopic } from "./feeds"
export { jsonSchema } from "./schema"

/** Foxglove's usual port. */
export const FOXGLOVE_PORT = 8765

export interface FoxgloveOptions extends ServiceOptions {
  log: (line: string) => void
  /** the bound on what clients that stopped reading hold (shared with the rosbridge front end) */
  output: Output
  /** The goals the bridge follows: their status and feedback feed the action channels. */
  goals: GoalTracker
}

// Why not the FoxgloveServer class of @foxglove/ws-protocol: it does not answer a call to an
// unknown service id (it emits an error and the caller waits forever), cannot tell connected
// clients about a new sessionId, and has no per-client bound on calls in flight.
export class FoxgloveFrontEnd {
  private readonly clients: Clients
  private nextConn = 1
  private sessionId = newSessionId()
  private readonly services: Services
  private readonly feeds: Feeds
  /** the actions' channels and the services' event channels */
  private readonly jsonFeeds: (ActionFeeds | EventFeeds)[]
  private readonly offs: (() => void)[]
  private metadataText = ""

  constructor(private readonly o: FoxgloveOptions) {
    const p = o.pipeline
    this.clients = new Clients(o.output)
    this.services = new Services(o, this.clients)
    this.feeds = new Feeds(p, this.clients, o.log)
    this.feeds.syncFeeds()
    const idOf = (topic: string) => this.feeds.idOf(topic)
    this.jsonFeeds = [new ActionFeeds(p, o.goals, this.clients, idOf), new EventFeeds(p, this.clients, idOf)]
    for (const f of this.jsonFeeds) f.sync()
    this.metadataText = JSON.stringify(this.metadata())
    this.offs = [
      p.onChange(({ restarted, robot }) => {
        if (restarted && p.fleet && robot !== undefined) {
          // one robot of a fleet restarted: its services are told again, the session goes on
          this.services.unadvertiseWhere((s) => splitRobotName(s.name)?.robot === robot)
        } else if (restarted) {
          // a new robot session: clients drop what they knew and learn it again
          this.sessionId = newSessionId()
          this.services.unadvertiseAll()
          for (const c of this.clients.conns) this.clients.sendJson(c, this.serverInfo())
        }
        this.feeds.syncFeeds()
        for (const f of this.jsonFeeds) f.sync()
        this.services.syncServices()
        // a fleet's presence is in the metadata: a robot coming or going is a new serverInfo (same
        // session); a single robot's clients get serverInfo only with a new session, as before
        const meta = JSON.stringify(this.metadata())
        if (p.fleet && meta !== this.metadataText) {
          this.metadataText = meta
          // Foxglove rebuilds its channel types on every serverInfo: the channels follow it again
          // (the same ids and content, which clients take as no change)
          for (const c of this.clients.conns) {
            this.clients.sendJson(c, this.serverInfo())
            this.clients.sendJson(c, { op: "advertise", channels: this.channels() })
          }
        }
        this.feeds.maybePoll()
      }),
      p.onResult((r) => this.feeds.onResult(r)),
    ]
    this.services.syncServices()
  }

  get count(): number {
    return this.clients.conns.size
  }

  /** Serves one accepted WebSocket (its subprotocol is foxglove.websocket.v1). */
  accept(ws: WebSocket, address: string): void {
    const c: Conn = { id: this.nextConn++, ws, address, subs: new Map(), calls: new Set() }
    this.clients.add(c)
    ws.on("message", (data, isBinary) => {
      try {
        if (isBinary) this.services.onBinary(c, toBuffer(data))
        else this.onText(c, data.toString())
      } catch (e) {
        this.clients.status(c, STATUS_ERROR, `bridge error: ${(e as Error).message}`)
      }
    })
    ws.on("error", (e) => this.o.log(`foxglove client ${c.id}: ${e.message}`))
    ws.on("close", () => {
      this.clients.conns.delete(c)
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "the client went away"))
    })
    this.clients.sendJson(c, this.serverInfo())
    this.clients.sendJson(c, { op: "advertise", channels: this.channels() })
    this.services.advertiseTo(c)
  }

  /** every channel: the camera and state feeds, the actions', and the services' events (--introspect) */
  private channels() {
    return [...this.feeds.channels, ...this.jsonFeeds.flatMap((f) => f.channels)]
  }

  close(): void {
    this.feeds.close()
    for (const f of this.jsonFeeds) f.close()
    for (const off of this.offs) off()
    for (const c of this.clients.conns) {
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "bridge closing"))
      c.ws.terminate()
    }
    this.clients.conns.clear()
  }

  /** serverInfo metadata (string values): the robot state, and a fleet's robots as JSON text. */
  private metadata(): Record<string, string> {
    const m: Record<string, string> = { robot_state: this.o.pipeline.node.state }
    const robots = this.o.pipeline.robotEntries()
    if (robots) m.robots = JSON.stringify(robots)
    return m
  }

  private serverInfo() {
    return {
      op: "serverInfo",
      name: "robot-services bridge",
      capabilities: ["services"],
      supportedEncodings: ["cdr", "json"],
      metadata: this.metadata(),
      sessionId: this.sessionId,
    }
  }

  private onText(c: Conn, text: string) {
    let m: Record<string, unknown>
    try {
      const v = JSON.parse(text) as unknown
      if (typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as { op?: unknown }).op !== "string") throw new Error("a JSON object with a string 'op'")
      m = v as Record<string, unknown>
    } catch (e) {
      return this.clients.status(c, STATUS_ERROR, `malformed message (expected ${(e as Error).message.startsWith("a JSON") ? (e as Error).message : `JSON: ${(e as Error).message}`})`)
    }
    switch (m.op) {
      case "subscribe": {
        const subs = Array.isArray(m.subscriptions) ? m.subscriptions : []
        // one subscription per channel and client: every message of a channel goes to each of its
        // subscriptions, so a client holding 50,000 on one channel had the bridge send each state
        // message 50,000 times and other clients waited behind it (bridge_abuse "subscriptions without end")
        // each kind of refusal is one status naming how many and the first few (a message of 5,000
        // bad entries had 5,000 statuses sent back: bridge_hostile "a Foxglove subscribe with thousands ...")
        let refused = 0
        const taken = new Map<number, number>()
        let malformed = 0
        const unknown: number[] = []
        const inUse: number[] = []
        for (const x of subs as { id?: unknown; channelId?: unknown }[]) {
          if (typeof x?.id !== "number" || typeof x.channelId !== "number") {
            malformed++
            continue
          }
          const ch = x.channelId
          if (!this.feeds.has(ch) && !this.jsonFeeds.some((f) => f.has(ch))) {
            unknown.push(ch)
            continue
          }
          if (c.subs.has(x.id)) {
            inUse.push(x.id)
            continue
          }
          const as = subscriptionOf(c.subs, ch)
          if (as !== undefined) {
            refused++
            taken.set(ch, as)
            continue
          }
          c.subs.set(x.id, x.channelId)
        }
        const some = (xs: unknown[]) => {
          const d = [...new Set(xs)]
          return `${d.slice(0, 5).join(", ")}${d.length > 5 ? ", ..." : ""}`
        }
        const count = (n: number) => `${n} subscription${n === 1 ? "" : "s"}`
        if (malformed) this.clients.status(c, STATUS_ERROR, `subscribe: ${count(malformed)} refused: each subscription needs a numeric id and channelId`)
        if (unknown.length) this.clients.status(c, STATUS_ERROR, `subscribe: ${count(unknown.length)} refused: no such channel (${some(unknown)})`)
        if (inUse.length) this.clients.status(c, STATUS_ERROR, `subscribe: ${count(inUse.length)} refused: subscription id ${some(inUse)} already in use`)
        if (refused) {
          const which = [...taken].map(([ch, as]) => `channel ${ch} is already subscribed as subscription ${as}`).join(", ")
          this.clients.status(c, STATUS_ERROR, `subscribe: ${count(refused)} refused: ${which} (one subscription per channel and client)`)
        }
        this.feeds.maybePoll()
        return
      }
      case "unsubscribe":
        for (const id of Array.isArray(m.subscriptionIds) ? m.subscriptionIds : []) c.subs.delete(id as number)
        return
      default:
        return this.clients.status(c, STATUS_WARNING, `op '${String(m.op)}' is not supported: this bridge offers the robot's services and the camera, state, action and service event channels`)
    }
  }
}

/** The id of the subscription `subs` holds on `channel`, if any. */
function subscriptionOf(subs: Map<number, number>, channel: number): number | undefined {
  for (const [id, ch] of subs) if (ch === channel) return id
  return undefined
}

function newSessionId(): string {
  return `${Date.now()}-${Math.floor(Math.random() * 1e9)}`
}
