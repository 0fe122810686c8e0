// A set of JSON channels that follows what the robot serves: the actions' status and feedback
// (actions.ts) and the services' introspection events (events.ts). `set` advertises the channels
// that are new, unadvertises those gone (or whose schema changed) and drops their subscriptions;
// `publish` sends a message to whoever subscribes to one channel.
import type { MessageDefinition } from "@foxglove/message-definition"
import { stringifyJson } from "../../calls/json"
import type { Clients, Conn } from "./clients"
import type { Channel } from "./feeds"
import { messageData } from "./framing"
import { jsonSchema } from "./schema"

/** A channel of `topic` in JSON, its schema the first of `defs` (the others: the types it holds). */
export function jsonChannel(id: number, topic: string, defs: readonly MessageDefinition[]): Channel {
  return { id, topic, encoding: "json", schemaName: defs[0]!.name!, schemaEncoding: "jsonschema", schema: JSON.stringify(jsonSchema(defs)) }
}

export class JsonChannels<F extends { channel: Channel }> {
  private readonly feeds = new Map<number, F>()

  constructor(private readonly clients: Clients) {}

  get channels(): Channel[] {
    return [...this.feeds.values()].map((f) => f.channel)
  }

  has(channelId: number): boolean {
    return this.feeds.has(channelId)
  }

  /** the first feed `ok` takes */
  find(ok: (f: F) => boolean): F | undefined {
    for (const f of this.feeds.values()) if (ok(f)) return f
    return undefined
  }

  /** The channels are now those of `want` (by topic). */
  set(want: Map<string, F>): void {
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

  /** Sends `msg` as JSON to every subscriber of `feed`'s channel (nothing when none, or no feed). */
  publish(feed: F | undefined, msg: unknown): void {
    if (!feed) return
    const subs: [Conn, number][] = []
    for (const c of this.clients.conns) for (const [sub, ch] of c.subs) if (ch === feed.channel.id) subs.push([c, sub])
    if (!subs.length) return
    const payload = Buffer.from(stringifyJson(msg), "utf8")
    const ts = BigInt(Date.now()) * 1_000_000n
    for (const [c, sub] of subs) this.clients.send(c, messageData(sub, ts, payload))
  }
}
