// A set of JSON channels that follows what the robot serves: the actions' status and feedback
// (actions.ts) and the services' introspection events (events.ts). A subclass says which channels
// it wants now (`wanted`) and publishes to them from a listener it sets as `off`; `sync` advertises
// the channels that are new, unadvertises those gone (or whose schema changed) and drops their
// subscriptions; `publish` sends a message to whoever subscribes to one channel.
import type { MessageDefinition } from "@foxglove/message-definition"
import { stringifyJson } from "../../calls/json"
import type { Clients, Conn } from "./clients"
import type { Channel } from "./feeds"
import { messageData } from "./framing"
import { jsonSchema } from "./schema"

export abstract class JsonChannels<F extends { channel: Channel }> {
  private readonly feeds = new Map<number, F>()
  /** stops the listener that feeds the channels (the subclass sets it) */
  protected off: () => void = () => {}

  constructor(
    private readonly clients: Clients,
    /** the channel id of a topic (Feeds.idOf: one numbering for every channel) */
    private readonly idOf: (topic: string) => number,
  ) {}

  /** the channels wanted now, by topic */
  protected abstract wanted(): Map<string, F>

  get channels(): Channel[] {
    return [...this.feeds.values()].map((f) => f.channel)
  }

  has(channelId: number): boolean {
    return this.feeds.has(channelId)
  }

  /** The channels are now those `wanted` returns. */
  sync(): void {
    const want = this.wanted()
    const gone = [...this.feeds.values()].filter((f) => want.get(f.channel.topic)?.channel.schema !== f.channel.schema)
    if (gone.length) {
      const ids = gone.map((f) => f.channel.id)
      for (const id of ids) this.feeds.delete(id)
      for (const c of this.clients.conns) for (const [sub, ch] of c.subs) if (ids.includes(ch)) c.subs.delete(sub)
      this.clients.broadcast({ op: "unadvertise", channelIds: ids })
    }
    const added = [...want.values()].filter((f) => !this.feeds.has(f.channel.id))
    for (const f of added) this.feeds.set(f.channel.id, f)
    if (added.length) this.clients.broadcast({ op: "advertise", channels: added.map((f) => f.channel) })
  }

  close(): void {
    this.off()
  }

  /** A channel of `topic` in JSON, its schema the first of `defs` (the others: the types it holds). */
  protected channel(topic: string, defs: readonly MessageDefinition[]): Channel {
    return { id: this.idOf(topic), topic, encoding: "json", schemaName: defs[0]!.name!, schemaEncoding: "jsonschema", schema: JSON.stringify(jsonSchema(defs)) }
  }

  /** the first feed `ok` takes */
  protected find(ok: (f: F) => boolean): F | undefined {
    for (const f of this.feeds.values()) if (ok(f)) return f
    return undefined
  }

  /** Sends `msg` as JSON to every subscriber of `feed`'s channel (nothing when none, or no feed). */
  protected publish(feed: F | undefined, msg: unknown): void {
    if (!feed) return
    const subs: [Conn, number][] = []
    for (const c of this.clients.conns) for (const [sub, ch] of c.subs) if (ch === feed.channel.id) subs.push([c, sub])
    if (!subs.length) return
    const payload = Buffer.from(stringifyJson(msg), "utf8")
    const ts = BigInt(Date.now()) * 1_000_000n
    for (const [c, sub] of subs) this.clients.send(c, messageData(sub, ts, payload))
  }
}
