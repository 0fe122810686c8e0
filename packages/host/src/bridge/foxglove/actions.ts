// The action channels (issue 19): for every action the robot serves and the bridge knows,
// `<name>/_action/status` (action_msgs/msg/GoalStatusArray) and `<name>/_action/feedback`
// (`<A>_FeedbackMessage`), as ROS 2 publishes them, in JSON. They carry the goals the bridge follows
// (calls/goals.ts: the goals sent or followed through any front end: rosbridge, HTTP, the dashboard): each
// feedback as it comes, and the status list of the action's goals on every status change.
import type { MessageDefinition } from "@foxglove/message-definition"
import type { GoalEvent, GoalTracker, TrackedGoal } from "../../calls/goals"
import type { CallPipeline } from "../../calls/pipeline"
import { stringifyJson } from "../../calls/json"
import { actionsOf, type ActionDescriptor } from "../../runtime/action"
import type { Clients } from "./clients"
import type { Channel } from "./feeds"
import { messageData } from "./framing"
import { jsonSchema } from "./schema"

interface ActionFeed {
  action: string
  kind: "status" | "feedback"
  channel: Channel
}

/** action_msgs/msg/GoalStatusArray and the types it holds, from the action's own UUID and Time definitions. */
function statusArrayDefinitions(type: ActionDescriptor<any, any, any>): MessageDefinition[] {
  const defs = [...type.sendGoal.request.definitions, ...type.sendGoal.response.definitions]
  const uuid = defs.find((d) => d.name === "unique_identifier_msgs/msg/UUID")!
  const time = defs.find((d) => d.name === "builtin_interfaces/msg/Time")!
  const field = (name: string, t: string, isArray = false) => ({ name, type: t, isComplex: true, isArray })
  return [
    { name: "action_msgs/msg/GoalStatusArray", definitions: [field("status_list", "action_msgs/msg/GoalStatus", true)] },
    { name: "action_msgs/msg/GoalStatus", definitions: [field("goal_info", "action_msgs/msg/GoalInfo"), { name: "status", type: "int8", isComplex: false, isArray: false }] },
    { name: "action_msgs/msg/GoalInfo", definitions: [field("goal_id", uuid.name!), field("stamp", time.name!)] },
    uuid,
    time,
  ]
}

export class ActionFeeds {
  private readonly feeds = new Map<number, ActionFeed>()
  private readonly off: () => void

  constructor(
    private readonly pipeline: CallPipeline,
    private readonly goals: GoalTracker,
    private readonly clients: Clients,
    /** the channel id of a topic (Feeds.idOf: one numbering for every channel) */
    private readonly idOf: (topic: string) => number,
  ) {
    this.off = goals.onEvent((g, e) => this.onEvent(g, e))
  }

  get channels(): Channel[] {
    return [...this.feeds.values()].map((f) => f.channel)
  }

  has(channelId: number): boolean {
    return this.feeds.has(channelId)
  }

  /** Channels for the actions the robot lists now (whose types the bridge knows); those gone are unadvertised. */
  sync(): void {
    const p = this.pipeline
    const want = new Map<string, ActionFeed>()
    if (p.node.state === "connected") {
      for (const a of actionsOf(p.services)) {
        const type = this.goals.actions[a.type]
        if (!type) continue
        for (const kind of ["status", "feedback"] as const) {
          const topic = `${a.name}/_action/${kind}`
          const defs = kind === "status" ? statusArrayDefinitions(type) : type.feedbackMessage.definitions
          const channel: Channel = {
            id: this.idOf(topic),
            topic,
            encoding: "json",
            schemaName: defs[0]!.name!,
            schemaEncoding: "jsonschema",
            schema: JSON.stringify(jsonSchema(defs)),
          }
          want.set(topic, { action: a.name, kind, channel })
        }
      }
    }
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

  private feedOf(action: string, kind: ActionFeed["kind"]): ActionFeed | undefined {
    for (const f of this.feeds.values()) if (f.action === action && f.kind === kind) return f
    return undefined
  }

  private publish(feed: ActionFeed | undefined, msg: unknown) {
    if (!feed) return
    const subs: [import("./clients").Conn, number][] = []
    for (const c of this.clients.conns) for (const [sub, ch] of c.subs) if (ch === feed.channel.id) subs.push([c, sub])
    if (!subs.length) return
    const payload = Buffer.from(stringifyJson(msg), "utf8")
    const ts = BigInt(Date.now()) * 1_000_000n
    for (const [c, sub] of subs) this.clients.send(c, messageData(sub, ts, payload))
  }

  private onEvent(g: TrackedGoal, e: GoalEvent) {
    if (e.kind === "feedback") return this.publish(this.feedOf(g.action, "feedback"), { goal_id: { uuid: g.uuid }, feedback: e.feedback })
    // a status change or the end: the status of every goal of the action the bridge holds
    this.publish(this.feedOf(g.action, "status"), this.goals.statusArray(g.action))
  }
}
