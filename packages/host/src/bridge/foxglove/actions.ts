// The action channels (issue 19): for every action the robot serves and the bridge knows,
// `<name>/_action/status` (action_msgs/msg/GoalStatusArray) and `<name>/_action/feedback`
// (`<A>_FeedbackMessage`), as ROS 2 publishes them, in JSON. They carry the goals the bridge follows
// (calls/goals.ts: the goals sent or followed through any front end: rosbridge, HTTP, the dashboard): each
// feedback as it comes, and the status list of the action's goals on every status change.
import type { MessageDefinition } from "@foxglove/message-definition"
import type { GoalEvent, GoalTracker, TrackedGoal } from "../../calls/goals"
import type { CallPipeline } from "../../calls/pipeline"
import { actionsOf, type ActionDescriptor } from "../../runtime/action"
import type { Clients } from "./clients"
import type { Channel } from "./feeds"
import { JsonChannels } from "./jsonchannels"

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

export class ActionFeeds extends JsonChannels<ActionFeed> {
  constructor(
    private readonly pipeline: CallPipeline,
    private readonly goals: GoalTracker,
    clients: Clients,
    idOf: (topic: string) => number,
  ) {
    super(clients, idOf)
    this.off = goals.onEvent((g, e) => this.onEvent(g, e))
  }

  /** the actions the robot lists now (whose types the bridge knows): a status and a feedback channel each */
  protected wanted(): Map<string, ActionFeed> {
    const p = this.pipeline
    const want = new Map<string, ActionFeed>()
    if (p.node.state !== "connected") return want
    for (const a of actionsOf(p.services)) {
      const type = this.goals.actions[a.type]
      if (!type) continue
      for (const kind of ["status", "feedback"] as const) {
        const topic = `${a.name}/_action/${kind}`
        want.set(topic, { action: a.name, kind, channel: this.channel(topic, kind === "status" ? statusArrayDefinitions(type) : type.feedbackMessage.definitions) })
      }
    }
    return want
  }

  private onEvent(g: TrackedGoal, e: GoalEvent) {
    // feedback as it comes; on a status change or the end, the status of every goal of the action the bridge holds
    const kind = e.kind === "feedback" ? "feedback" : "status"
    const feed = this.find((f) => f.action === g.action && f.kind === kind)
    this.publish(feed, e.kind === "feedback" ? { goal_id: { uuid: g.uuid }, feedback: e.feedback } : this.goals.statusArray(g.action))
  }
}
