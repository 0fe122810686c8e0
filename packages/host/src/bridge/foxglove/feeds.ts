// The Foxglove channels: the pictures of every take_picture (`foxglove.CompressedImage`) and the robot state
// of every get_state (polled while someone subscribes); with a fleet of robots (packages/host/src/client/fleet.ts)
// each robot has its own two channels under its namespace (`/rover1/camera/compressed`).
import { splitRobotName } from "../../client/names"
import type { ServiceDescriptor } from "../../runtime/types"
import { stringifyJson, toJson } from "../../calls/json"
import type { CallPipeline, CallResult } from "../../calls/pipeline"
import type { Clients, Conn } from "./clients"
import { messageData } from "./framing"
import { COMPRESSED_IMAGE_SCHEMA, jsonSchema } from "./schema"

export const CAMERA_TOPIC = "/camera/compressed"
export const STATE_CHANNEL_TOPIC = "/robot/state"
/** Fastest state poll (ms between the end of one get_state and the start of the next). */
const STATE_POLL_GAP_MS = 250

/** A channel as advertised (the protocol's fields). */
export interface Channel {
  id: number
  topic: string
  encoding: string
  schemaName: string
  schema: string
  schemaEncoding: string
}

/** A channel and what feeds it: the pictures or the state of one robot (`robot` undefined: the only robot). */
interface Feed {
  channel: Channel
  kind: "camera" | "state"
  robot: string | undefined
}

/** `/camera/compressed` of robot `rover1` is `/rover1/camera/compressed`; a single robot's stays as it is. */
export function channelTopic(topic: string, robot: string | undefined): string {
  return robot === undefined ? topic : `/${robot}${topic}`
}

export class Feeds {
  private readonly feeds = new Map<number, Feed>()
  /** a robot that leaves and comes back gets its channel ids again */
  private readonly channelIdOfTopic = new Map<string, number>()
  private nextChannelId = 1
  /** state channels being polled */
  private readonly polling = new Set<number>()
  private closed = false

  constructor(
    private readonly pipeline: CallPipeline,
    private readonly clients: Clients,
    private readonly log: (line: string) => void,
  ) {
    if (!pipeline.fleet) this.addFeeds(undefined)
  }

  /** The camera channel, and the state channel when the bridge knows GetState, of one robot. */
  /** The channel id of `topic`: the same for as long as the bridge runs (the action channels take theirs here too). */
  idOf(topic: string): number {
    let id = this.channelIdOfTopic.get(topic)
    if (id === undefined) this.channelIdOfTopic.set(topic, (id = this.nextChannelId++))
    return id
  }

  private addFeeds(robot: string | undefined): Channel[] {
    const idOf = (topic: string) => this.idOf(topic)
    const added: Feed[] = [
      {
        kind: "camera",
        robot,
        channel: {
          id: idOf(channelTopic(CAMERA_TOPIC, robot)),
          topic: channelTopic(CAMERA_TOPIC, robot),
          encoding: "json",
          schemaName: "foxglove.CompressedImage",
          schemaEncoding: "jsonschema",
          schema: JSON.stringify(COMPRESSED_IMAGE_SCHEMA),
        },
      },
    ]
    const state = this.pipeline.registry["robot_interfaces/srv/GetState"]
    if (state) {
      added.push({
        kind: "state",
        robot,
        channel: {
          id: idOf(channelTopic(STATE_CHANNEL_TOPIC, robot)),
          topic: channelTopic(STATE_CHANNEL_TOPIC, robot),
          encoding: "json",
          schemaName: state.response.fullName,
          schemaEncoding: "jsonschema",
          schema: JSON.stringify(jsonSchema(state.response.definitions)),
        },
      })
    }
    for (const f of added) this.feeds.set(f.channel.id, f)
    return added.map((f) => f.channel)
  }

  /** A fleet: channels for every robot it has (online or not); a robot that left loses its channels. */
  syncFeeds() {
    const robots = this.pipeline.robotEntries()
    if (!robots) return
    const names = new Set(robots.map((r) => r.name))
    const have = new Set([...this.feeds.values()].map((f) => f.robot))
    const gone = [...this.feeds.values()].filter((f) => f.robot !== undefined && !names.has(f.robot))
    if (gone.length) {
      for (const f of gone) this.feeds.delete(f.channel.id)
      const ids = gone.map((f) => f.channel.id)
      for (const c of this.clients.conns) for (const [sub, ch] of c.subs) if (ids.includes(ch)) c.subs.delete(sub)
      this.clients.broadcast({ op: "unadvertise", channelIds: ids })
    }
    const added = robots.filter((r) => !have.has(r.name)).flatMap((r) => this.addFeeds(r.name))
    if (added.length) this.clients.broadcast({ op: "advertise", channels: added })
  }

  get channels(): Channel[] {
    return [...this.feeds.values()].map((f) => f.channel)
  }

  has(channelId: number): boolean {
    return this.feeds.has(channelId)
  }

  close(): void {
    this.closed = true
  }

  private subscribers(channelId: number): [Conn, number][] {
    const out: [Conn, number][] = []
    for (const c of this.clients.conns) for (const [sub, ch] of c.subs) if (ch === channelId) out.push([c, sub])
    return out
  }

  private publish(channelId: number, payload: Buffer) {
    const subs = this.subscribers(channelId)
    if (!subs.length) return
    const ts = BigInt(Date.now()) * 1_000_000n
    for (const [c, sub] of subs) this.clients.send(c, messageData(sub, ts, payload))
  }

  /** The channel of `kind` for the robot behind `service` (a fleet's namespace, or the only robot). */
  private feedFor(kind: Feed["kind"], service: string): Feed | undefined {
    const robot = this.pipeline.fleet ? splitRobotName(service)?.robot : undefined
    if (this.pipeline.fleet && robot === undefined) return undefined
    for (const f of this.feeds.values()) if (f.kind === kind && f.robot === robot) return f
    return undefined
  }

  onResult(r: CallResult) {
    if (r.type.fullName === "robot_interfaces/srv/TakePicture" || hasImageField(r.type)) {
      const feed = this.feedFor("camera", r.service)
      if (!feed || !this.subscribers(feed.channel.id).length) return
      const v = r.response() as Record<string, any>
      const img = findImage(v)
      if (!img) return
      const stamp = img.header?.stamp ?? { sec: 0, nanosec: 0 }
      const msg = {
        timestamp: { sec: stamp.sec, nsec: stamp.nanosec },
        frame_id: img.header?.frame_id ?? "",
        format: img.format,
        data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength).toString("base64"),
      }
      this.publish(feed.channel.id, Buffer.from(JSON.stringify(msg), "utf8"))
    } else if (r.type.fullName === "robot_interfaces/srv/GetState") {
      const feed = this.feedFor("state", r.service)
      if (!feed || !this.subscribers(feed.channel.id).length) return
      this.publish(feed.channel.id, Buffer.from(stringifyJson(toJson(r.type.response, r.response())), "utf8"))
    }
  }

  /** Whether the robot behind a feed is there to be asked. */
  private online(robot: string | undefined): boolean {
    const p = this.pipeline
    if (robot === undefined) return p.node.state === "connected"
    return !!p.robotEntries()?.some((r) => r.name === robot && r.online)
  }

  /** While someone subscribes to a state channel, polls its robot's get_state (one at a time, as fast as the link answers). */
  maybePoll() {
    for (const feed of this.feeds.values()) if (feed.kind === "state") this.pollFeed(feed)
  }

  private pollFeed(feed: Feed) {
    const id = feed.channel.id
    if (this.polling.has(id) || this.closed || !this.subscribers(id).length) return
    const p = this.pipeline
    const prefix = feed.robot === undefined ? "" : `/${feed.robot}/`
    const svc = p.services.find((s) => s.type === "robot_interfaces/srv/GetState" && s.name.startsWith(prefix))
    if (!svc || !this.online(feed.robot)) return
    this.polling.add(id)
    const live = () => !this.closed && this.feeds.get(id) === feed && this.subscribers(id).length > 0 && this.online(feed.robot)
    const loop = async () => {
      while (live()) {
        const out = await p.callJson({ service: svc.name, args: {}, timeoutMs: 5000 }, "base64", { via: "foxglove", client: "state channel", quiet: true })
        if (!out.ok) break
        await new Promise((r) => setTimeout(r, STATE_POLL_GAP_MS))
      }
    }
    loop()
      .catch((e) => this.log(`foxglove state poll: ${(e as Error).message}`))
      .finally(() => {
        this.polling.delete(id)
      })
  }
}

function hasImageField(type: ServiceDescriptor<any, any>): boolean {
  return type.response.definitions.some((d) => d.name === "sensor_msgs/msg/CompressedImage")
}

function findImage(v: unknown): { header?: { stamp?: { sec: number; nanosec: number }; frame_id?: string }; format: string; data: Uint8Array } | undefined {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.format === "string" && o.data instanceof Uint8Array) return o as any
  for (const x of Object.values(o)) {
    const f = findImage(x)
    if (f) return f
  }
  return undefined
}
