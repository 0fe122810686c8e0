// The Foxglove WebSocket front end (subprotocol `foxglove.websocket.v1`, the protocol Foxglove and
// Lichtblick speak): the robot's services as `advertiseServices` (the `services` capability), calls
// in `cdr` (bytes passed to the robot as they are) or `json`, every failure answered with
// `serviceCallFailure` (`<code>: <message>`, timeouts too: Foxglove clients do not time out), and two
// channels: the pictures of every take_picture (`foxglove.CompressedImage`) and the robot state of
// every get_state (polled while someone subscribes). With a fleet of robots (packages/host/src/client/fleet.ts)
// each robot has its own two channels under its namespace (`/rover1/camera/compressed`), and the
// robots and their presence are in the serverInfo metadata. Calls go through the shared pipeline;
// tokens, origins and the in-flight bound through the guard. The message layouts follow the
// protocol's spec (foxglove/ws-protocol, docs/spec.md). See docs/bridge.md.
//
// Why not the FoxgloveServer class of @foxglove/ws-protocol: it does not answer a call to an
// unknown service id (it emits an error and the caller waits forever), cannot tell connected
// clients about a new sessionId, and has no per-client bound on calls in flight.
import { stringify as ros2msgText } from "@foxglove/rosmsg"
import type { MessageDefinition } from "@foxglove/message-definition"
import type { RawData, WebSocket } from "ws"
import { ServiceError } from "../client/errors"
import { splitRobotName } from "../client/fleet"
import { INT_RANGES } from "../runtime/codec"
import type { ServiceDescriptor } from "../runtime/types"
import type { Guard } from "./guard"
import { parseJson, stringifyJson, toJson } from "./json"
import type { CallPipeline, CallResult } from "./pipeline"
import { MAX_BUFFERED } from "./rosbridge"

export const FOXGLOVE_SUBPROTOCOL = "foxglove.websocket.v1"
/** Foxglove's usual port. */
export const FOXGLOVE_PORT = 8765
export const CAMERA_TOPIC = "/camera/compressed"
export const STATE_CHANNEL_TOPIC = "/robot/state"

const OP_MESSAGE_DATA = 0x01
const OP_SERVICE_CALL_RESPONSE = 0x03
const OP_CLIENT_SERVICE_CALL_REQUEST = 0x02
const STATUS_ERROR = 2
const STATUS_WARNING = 1
/** Fastest state poll (ms between the end of one get_state and the start of the next). */
const STATE_POLL_GAP_MS = 250

export interface FoxgloveOptions {
  pipeline: CallPipeline
  guard: Guard
  defaultTimeoutMs: number
  log: (line: string) => void
  /** The encoding services are advertised in (calls may use either): `cdr` (ros2msg schemas, default) or `json` (JSON Schema). */
  encoding?: "cdr" | "json"
}

interface Conn {
  id: number
  ws: WebSocket
  address: string
  /** subscription id -> channel id */
  subs: Map<number, number>
  calls: Set<AbortController>
}

interface Advertised {
  id: number
  key: string
  name: string
  type: ServiceDescriptor<any, any>
}

/** A channel as advertised (the protocol's fields). */
interface Channel {
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

export class FoxgloveFrontEnd {
  private readonly conns = new Set<Conn>()
  private nextConn = 1
  private sessionId = newSessionId()
  private readonly services = new Map<number, Advertised>()
  private readonly idOfKey = new Map<string, number>()
  private nextServiceId = 1
  private readonly feeds = new Map<number, Feed>()
  /** a robot that leaves and comes back gets its channel ids again */
  private readonly channelIdOfTopic = new Map<string, number>()
  private nextChannelId = 1
  private readonly offs: (() => void)[]
  /** state channels being polled */
  private readonly polling = new Set<number>()
  private metadataText = ""
  private closed = false

  constructor(private readonly o: FoxgloveOptions) {
    const p = o.pipeline
    if (!p.fleet) this.addFeeds(undefined)
    this.syncFeeds()
    this.metadataText = JSON.stringify(this.metadata())
    this.offs = [
      p.onChange(({ restarted, robot }) => {
        if (restarted && p.fleet && robot !== undefined) {
          // one robot of a fleet restarted: its services are told again, the session goes on
          this.unadvertiseWhere((s) => splitRobotName(s.name)?.robot === robot)
        } else if (restarted) {
          // a new robot session: clients drop what they knew and learn it again
          this.sessionId = newSessionId()
          this.unadvertiseAll()
          for (const c of this.conns) this.sendJson(c, this.serverInfo())
        }
        this.syncFeeds()
        this.syncServices()
        // a fleet's presence is in the metadata: a robot coming or going is a new serverInfo (same
        // session); a single robot's clients get serverInfo only with a new session, as before
        const meta = JSON.stringify(this.metadata())
        if (p.fleet && meta !== this.metadataText) {
          this.metadataText = meta
          // Foxglove rebuilds its channel types on every serverInfo: the channels follow it again
          // (the same ids and content, which clients take as no change)
          for (const c of this.conns) {
            this.sendJson(c, this.serverInfo())
            this.sendJson(c, { op: "advertise", channels: this.channels })
          }
        }
        this.maybePoll()
      }),
      p.onResult((r) => this.onResult(r)),
    ]
    this.syncServices()
  }

  /** The camera channel, and the state channel when the bridge knows GetState, of one robot. */
  private addFeeds(robot: string | undefined): Channel[] {
    const idOf = (topic: string) => {
      let id = this.channelIdOfTopic.get(topic)
      if (id === undefined) this.channelIdOfTopic.set(topic, (id = this.nextChannelId++))
      return id
    }
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
    const state = this.o.pipeline.registry["robot_interfaces/srv/GetState"]
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
  private syncFeeds() {
    const robots = this.o.pipeline.robotEntries()
    if (!robots) return
    const names = new Set(robots.map((r) => r.name))
    const have = new Set([...this.feeds.values()].map((f) => f.robot))
    const gone = [...this.feeds.values()].filter((f) => f.robot !== undefined && !names.has(f.robot))
    if (gone.length) {
      for (const f of gone) this.feeds.delete(f.channel.id)
      const ids = gone.map((f) => f.channel.id)
      for (const c of this.conns) for (const [sub, ch] of c.subs) if (ids.includes(ch)) c.subs.delete(sub)
      this.broadcast({ op: "unadvertise", channelIds: ids })
    }
    const added = robots.filter((r) => !have.has(r.name)).flatMap((r) => this.addFeeds(r.name))
    if (added.length) this.broadcast({ op: "advertise", channels: added })
  }

  private get channels(): Channel[] {
    return [...this.feeds.values()].map((f) => f.channel)
  }

  get count(): number {
    return this.conns.size
  }

  /** Serves one accepted WebSocket (its subprotocol is foxglove.websocket.v1). */
  accept(ws: WebSocket, address: string): void {
    const c: Conn = { id: this.nextConn++, ws, address, subs: new Map(), calls: new Set() }
    this.conns.add(c)
    ws.on("message", (data, isBinary) => {
      try {
        if (isBinary) this.onBinary(c, toBuffer(data))
        else this.onText(c, data.toString())
      } catch (e) {
        this.status(c, STATUS_ERROR, `bridge error: ${(e as Error).message}`)
      }
    })
    ws.on("error", (e) => this.o.log(`foxglove client ${c.id}: ${e.message}`))
    ws.on("close", () => {
      this.conns.delete(c)
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "the client went away"))
    })
    this.sendJson(c, this.serverInfo())
    this.sendJson(c, { op: "advertise", channels: this.channels })
    if (this.services.size) this.sendJson(c, { op: "advertiseServices", services: [...this.services.values()].map((s) => this.describe(s)) })
  }

  close(): void {
    this.closed = true
    for (const off of this.offs) off()
    for (const c of this.conns) {
      for (const ac of c.calls) ac.abort(new ServiceError("cancelled", "bridge closing"))
      c.ws.terminate()
    }
    this.conns.clear()
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

  // ---- services

  private describe(s: Advertised) {
    const half = (d: ServiceDescriptor<any, any>["request"]) =>
      this.o.encoding === "json"
        ? { encoding: "json", schemaName: d.fullName, schemaEncoding: "jsonschema", schema: JSON.stringify(jsonSchema(d.definitions)) }
        : { encoding: "cdr", schemaName: d.fullName, schemaEncoding: "ros2msg", schema: ros2msgText(d.definitions as MessageDefinition[]) }
    const request = half(s.type.request)
    const response = half(s.type.response)
    // requestSchema/responseSchema: the older spelling, still read by older clients
    return { id: s.id, name: s.name, type: s.type.fullName, request, response, requestSchema: request.schema, responseSchema: response.schema }
  }

  /** Advertises what the robot lists now and unadvertises what it no longer does. */
  private syncServices() {
    const p = this.o.pipeline
    const want = new Map<string, { name: string; type: ServiceDescriptor<any, any> }>()
    if (p.node.state === "connected") {
      for (const s of p.services) {
        const type = p.registry[s.type]
        if (type) want.set(`${s.name}|${s.type}|${s.hash32}`, { name: s.name, type })
      }
    }
    const gone = [...this.services.values()].filter((s) => !want.has(s.key))
    for (const s of gone) this.services.delete(s.id)
    if (gone.length) this.broadcast({ op: "unadvertiseServices", serviceIds: gone.map((s) => s.id) })
    const have = new Set([...this.services.values()].map((s) => s.key))
    const added: Advertised[] = []
    for (const [key, w] of want) {
      if (have.has(key)) continue
      // ids are reused only for the same name, type and schema, as the protocol allows
      let id = this.idOfKey.get(key)
      if (id === undefined) this.idOfKey.set(key, (id = this.nextServiceId++))
      const s = { id, key, name: w.name, type: w.type }
      this.services.set(id, s)
      added.push(s)
    }
    if (added.length) this.broadcast({ op: "advertiseServices", services: added.map((s) => this.describe(s)) })
  }

  private unadvertiseAll() {
    this.unadvertiseWhere(() => true)
  }

  private unadvertiseWhere(which: (s: Advertised) => boolean) {
    const gone = [...this.services.values()].filter(which)
    if (!gone.length) return
    for (const s of gone) this.services.delete(s.id)
    this.broadcast({ op: "unadvertiseServices", serviceIds: gone.map((s) => s.id) })
  }

  private onBinary(c: Conn, b: Buffer) {
    const op = b[0]
    if (op !== OP_CLIENT_SERVICE_CALL_REQUEST) {
      return this.status(c, STATUS_ERROR, `binary opcode ${op ?? "(empty)"} is not supported: this bridge takes service call requests (0x02) only`)
    }
    if (b.length < 13) return this.status(c, STATUS_ERROR, `service call request of ${b.length} bytes: shorter than its 13-byte header`)
    const serviceId = b.readUInt32LE(1)
    const callId = b.readUInt32LE(5)
    const encLen = b.readUInt32LE(9)
    const fail = (err: ServiceError) => this.sendJson(c, { op: "serviceCallFailure", serviceId, callId, message: err.message })
    if (13 + encLen > b.length) return fail(new ServiceError("invalid_argument", `the encoding name (${encLen} bytes) runs past the end of the request`))
    const encoding = b.toString("utf8", 13, 13 + encLen)
    const payload = new Uint8Array(b.buffer, b.byteOffset + 13 + encLen, b.length - 13 - encLen)
    const s = this.services.get(serviceId)
    if (!s) return fail(new ServiceError("unimplemented", `no service with id ${serviceId} (the robot's services are advertised with advertiseServices)`))
    if (encoding !== "cdr" && encoding !== "json") {
      return fail(new ServiceError("invalid_argument", `encoding '${encoding}' is not supported: use cdr or json`, s.name))
    }
    const release = this.o.guard.acquire(c.address, c)
    if (!release) return fail(new ServiceError("resource_exhausted", this.o.guard.refusal(c.address, c), s.name))
    const ac = new AbortController()
    c.calls.add(ac)
    const caller = { via: "foxglove", client: `foxglove ${c.id}` }
    const timeoutMs = this.o.defaultTimeoutMs
    const reply = (data: Uint8Array) => {
      const head = Buffer.alloc(13 + encLen)
      head[0] = OP_SERVICE_CALL_RESPONSE
      head.writeUInt32LE(serviceId, 1)
      head.writeUInt32LE(callId, 5)
      head.writeUInt32LE(encLen, 9)
      head.write(encoding, 13, "utf8")
      this.send(c, Buffer.concat([head, data]))
    }
    const run = async () => {
      if (encoding === "cdr") {
        const out = await this.o.pipeline.callCdr(s.name, payload, { timeoutMs, signal: ac.signal }, caller)
        return out.ok ? reply(out.bytes) : fail(out.error)
      }
      let args: unknown
      try {
        args = payload.length === 0 ? {} : parseJson(Buffer.from(payload).toString("utf8"))
      } catch (e) {
        return fail(new ServiceError("invalid_argument", `malformed JSON: ${(e as Error).message}`, s.name))
      }
      const out = await this.o.pipeline.callJson({ service: s.name, args, timeoutMs, signal: ac.signal }, "base64", caller)
      if (out.ok) reply(Buffer.from(stringifyJson(out.values), "utf8"))
      else fail(out.error!)
    }
    run()
      .catch((e) => fail(new ServiceError("internal", (e as Error)?.message ?? String(e), s.name)))
      .finally(() => {
        release()
        c.calls.delete(ac)
      })
  }

  private onText(c: Conn, text: string) {
    let m: Record<string, unknown>
    try {
      const v = JSON.parse(text) as unknown
      if (typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as { op?: unknown }).op !== "string") throw new Error("a JSON object with a string 'op'")
      m = v as Record<string, unknown>
    } catch (e) {
      return this.status(c, STATUS_ERROR, `malformed message (expected ${(e as Error).message.startsWith("a JSON") ? (e as Error).message : `JSON: ${(e as Error).message}`})`)
    }
    switch (m.op) {
      case "subscribe": {
        const subs = Array.isArray(m.subscriptions) ? m.subscriptions : []
        for (const x of subs as { id?: unknown; channelId?: unknown }[]) {
          if (typeof x?.id !== "number" || typeof x.channelId !== "number") {
            this.status(c, STATUS_ERROR, "subscribe: each subscription needs a numeric id and channelId")
            continue
          }
          if (!this.feeds.has(x.channelId)) {
            this.status(c, STATUS_ERROR, `subscribe: no channel ${x.channelId}`)
            continue
          }
          if (c.subs.has(x.id)) {
            this.status(c, STATUS_ERROR, `subscribe: subscription id ${x.id} is already in use`)
            continue
          }
          c.subs.set(x.id, x.channelId)
        }
        this.maybePoll()
        return
      }
      case "unsubscribe":
        for (const id of Array.isArray(m.subscriptionIds) ? m.subscriptionIds : []) c.subs.delete(id as number)
        return
      default:
        return this.status(c, STATUS_WARNING, `op '${String(m.op)}' is not supported: this bridge offers the robot's services and the camera and state channels`)
    }
  }

  // ---- channels

  private subscribers(channelId: number): [Conn, number][] {
    const out: [Conn, number][] = []
    for (const c of this.conns) for (const [sub, ch] of c.subs) if (ch === channelId) out.push([c, sub])
    return out
  }

  private publish(channelId: number, payload: Buffer) {
    const subs = this.subscribers(channelId)
    if (!subs.length) return
    const ts = BigInt(Date.now()) * 1_000_000n
    for (const [c, sub] of subs) {
      const head = Buffer.alloc(13)
      head[0] = OP_MESSAGE_DATA
      head.writeUInt32LE(sub, 1)
      head.writeBigUInt64LE(ts, 5)
      this.send(c, Buffer.concat([head, payload]))
    }
  }

  /** The channel of `kind` for the robot behind `service` (a fleet's namespace, or the only robot). */
  private feedFor(kind: Feed["kind"], service: string): Feed | undefined {
    const robot = this.o.pipeline.fleet ? splitRobotName(service)?.robot : undefined
    if (this.o.pipeline.fleet && robot === undefined) return undefined
    for (const f of this.feeds.values()) if (f.kind === kind && f.robot === robot) return f
    return undefined
  }

  private onResult(r: CallResult) {
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
    const p = this.o.pipeline
    if (robot === undefined) return p.node.state === "connected"
    return !!p.robotEntries()?.some((r) => r.name === robot && r.online)
  }

  /** While someone subscribes to a state channel, polls its robot's get_state (one at a time, as fast as the link answers). */
  private maybePoll() {
    for (const feed of this.feeds.values()) if (feed.kind === "state") this.pollFeed(feed)
  }

  private pollFeed(feed: Feed) {
    const id = feed.channel.id
    if (this.polling.has(id) || this.closed || !this.subscribers(id).length) return
    const p = this.o.pipeline
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
      .catch((e) => this.o.log(`foxglove state poll: ${(e as Error).message}`))
      .finally(() => {
        this.polling.delete(id)
      })
  }

  // ---- sending

  private send(c: Conn, data: string | Buffer) {
    if (c.ws.readyState !== c.ws.OPEN) return
    if (c.ws.bufferedAmount > MAX_BUFFERED) {
      this.o.log(`foxglove client ${c.id} disconnected: over ${MAX_BUFFERED} bytes unsent`)
      c.ws.terminate()
      return
    }
    c.ws.send(data)
  }

  private sendJson(c: Conn, msg: unknown) {
    this.send(c, JSON.stringify(msg))
  }

  private broadcast(msg: unknown) {
    const text = JSON.stringify(msg)
    for (const c of this.conns) this.send(c, text)
  }

  private status(c: Conn, level: number, message: string) {
    this.sendJson(c, { op: "status", level, message })
  }
}

function newSessionId(): string {
  return `${Date.now()}-${Math.floor(Math.random() * 1e9)}`
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data as ArrayBuffer)
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

/** foxglove.CompressedImage as JSON Schema (the fields of Foxglove's schema of that name). */
const COMPRESSED_IMAGE_SCHEMA = {
  title: "foxglove.CompressedImage",
  type: "object",
  properties: {
    timestamp: { type: "object", properties: { sec: { type: "integer", minimum: 0 }, nsec: { type: "integer", minimum: 0, maximum: 999999999 } } },
    frame_id: { type: "string" },
    data: { type: "string", contentEncoding: "base64" },
    format: { type: "string" },
  },
}


/**
 * A JSON Schema for the first definition in `defs` (nested types inlined), matching what the
 * bridge's JSON rules accept: uint8[] as base64, int64 as an integer or a string of digits.
 */
export function jsonSchema(defs: readonly MessageDefinition[], name = defs[0]?.name ?? ""): Record<string, unknown> {
  const def = defs.find((d) => d.name === name)
  if (!def) throw new Error(`no definition of ${name}`)
  const properties: Record<string, unknown> = {}
  for (const f of def.definitions) {
    if (f.isConstant) continue
    const scalar = (): Record<string, unknown> => {
      if (f.isComplex) return jsonSchema(defs, f.type)
      const r = INT_RANGES[f.type]
      if (r) return { type: "integer", minimum: r[0], maximum: r[1] }
      switch (f.type) {
        case "bool":
          return { type: "boolean" }
        case "int64":
        case "uint64":
          return { anyOf: [{ type: "integer" }, { type: "string", pattern: f.type === "int64" ? "^-?[0-9]+$" : "^[0-9]+$" }], description: f.type }
        case "float32":
        case "float64":
          return { type: ["number", "null"] }
        default:
          return f.upperBound !== undefined ? { type: "string", maxLength: f.upperBound } : { type: "string" }
      }
    }
    if (f.isArray && !f.isComplex && (f.type === "uint8" || f.type === "byte")) {
      properties[f.name] = { type: "string", contentEncoding: "base64" }
    } else if (f.isArray) {
      const a: Record<string, unknown> = { type: "array", items: scalar() }
      if (f.arrayLength !== undefined) Object.assign(a, { minItems: f.arrayLength, maxItems: f.arrayLength })
      if (f.arrayUpperBound !== undefined) a.maxItems = f.arrayUpperBound
      properties[f.name] = a
    } else properties[f.name] = scalar()
  }
  return { title: def.name, type: "object", properties, additionalProperties: false }
}
