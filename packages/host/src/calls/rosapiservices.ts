// The rosapi services ROS web tools use for discovery (`/rosapi/services`, `/rosapi/topics`, ...),
// answered by the bridge itself from the robot's list and the types it knows, in the shape rosapi
// (ROS 2) gives them (calls/rosapi.ts builds the typedefs and definitions), and the topics they list.
import type { ServiceInfo } from "../client/api"
import { ServiceError } from "../client/errors"
import { normalizeName } from "../client/names"
import { actionsOf, type ActionTypes } from "../runtime/action"
import type { ServiceTypes } from "../runtime/types"
import { fullTypeName } from "../runtime/names"
import { SERVICE_EVENT_SUFFIX } from "./callevents"
import { GOAL_STATUS_ARRAY, goalStatusArrayDefinitions, serviceEventDefinitions, shortTypeName, typedefs } from "./rosapi"

/** The rosapi service types (what `/rosapi/service_type` answers for them). */
export const ROSAPI_SERVICES: Record<string, string> = {
  "/rosapi/services": "rosapi_msgs/srv/Services",
  "/rosapi/service_type": "rosapi_msgs/srv/ServiceType",
  "/rosapi/services_for_type": "rosapi_msgs/srv/ServicesForType",
  "/rosapi/service_request_details": "rosapi_msgs/srv/ServiceRequestDetails",
  "/rosapi/service_response_details": "rosapi_msgs/srv/ServiceResponseDetails",
  "/rosapi/message_details": "rosapi_msgs/srv/MessageDetails",
  "/rosapi/get_time": "rosapi_msgs/srv/GetTime",
  "/rosapi/action_servers": "rosapi_msgs/srv/GetActionServers",
  "/rosapi/topics": "rosapi_msgs/srv/Topics",
  "/rosapi/topic_type": "rosapi_msgs/srv/TopicType",
}

/** What the answers are made from (the call pipeline gives it). */
export interface RosapiSource {
  /** The robot's services (calls/servicelist.ts `list`). */
  list(): Promise<ServiceInfo[]>
  readonly registry: ServiceTypes
  readonly actionTypes: ActionTypes
  /** With service introspection on, each service's event topic and `<Name>_Event` type are listed too. */
  readonly introspect: boolean
}

/** The answer of rosapi service `name` (a key of ROSAPI_SERVICES) to `args`; throws ServiceError (invalid_argument, unimplemented). */
export async function answerRosapi(src: RosapiSource, name: string, args: unknown): Promise<unknown> {
  const a = (typeof args === "object" && args !== null && !Array.isArray(args) ? args : {}) as Record<string, unknown>
  const str = (k: string): string => {
    const v = a[k]
    if (typeof v !== "string") throw new ServiceError("invalid_argument", `${name}: '${k}' must be a string`, name)
    return v
  }
  const registry = src.registry
  switch (name) {
    case "/rosapi/services": {
      // each service's type beside its name (an extension, as /rosapi/topics gives `types`): a
      // listing with types is one round trip, not one more per service
      const all = [...(await src.list()).map((s) => ({ name: s.name, type: s.type })), ...Object.entries(ROSAPI_SERVICES).map(([name, type]) => ({ name, type }))]
      all.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
      return { services: all.map((s) => s.name), types: all.map((s) => s.type) }
    }
    case "/rosapi/service_type": {
      const n = normalizeName(str("service"))
      return { type: ROSAPI_SERVICES[n] ?? (await src.list()).find((s) => s.name === n)?.type ?? "" }
    }
    case "/rosapi/services_for_type": {
      const t = fullTypeName(str("type"), "srv")
      return { services: (await src.list()).filter((s) => s.type === t).map((s) => s.name).sort() }
    }
    case "/rosapi/service_request_details":
    case "/rosapi/service_response_details": {
      // an own key only: `constructor` or `toString` would find Object.prototype's
      const full = fullTypeName(str("type"), "srv")
      const t = Object.hasOwn(registry, full) ? registry[full] : undefined
      if (!t) return { typedefs: [] }
      return { typedefs: typedefs((name.endsWith("request_details") ? t.request : t.response).definitions) }
    }
    case "/rosapi/message_details": {
      const want = str("type")
      const sets = Object.values(registry).flatMap((t) => [t.request.definitions, t.response.definitions])
      // the actions' messages too: goal, result, feedback, `<A>_FeedbackMessage`, the status array
      for (const a of Object.values(src.actionTypes)) sets.push(a.goal.definitions, a.result.definitions, a.feedback.definitions, a.feedbackMessage.definitions, goalStatusArrayDefinitions(a))
      // with introspection, each service's `<Name>_Event` (what its _service_event topic carries)
      if (src.introspect) for (const t of Object.values(registry)) sets.push(serviceEventDefinitions(t))
      for (const defs of sets) {
        const d = defs.find((x) => x.name === want || shortTypeName(x.name ?? "") === want)
        if (d) return { typedefs: typedefs([d, ...defs.filter((x) => x !== d)]) }
      }
      return { typedefs: [] }
    }
    case "/rosapi/action_servers":
      return { action_servers: actionsOf(await src.list()).map((a) => a.name).sort() }
    case "/rosapi/topics": {
      const topics = await rosapiTopics(src)
      return { topics: topics.map((t) => t.topic), types: topics.map((t) => t.type) }
    }
    case "/rosapi/topic_type": {
      const n = normalizeName(str("topic"))
      return { type: (await rosapiTopics(src)).find((t) => t.topic === n)?.type ?? "" }
    }
    case "/rosapi/get_time": {
      const ms = Date.now()
      return { time: { sec: Math.floor(ms / 1000), nanosec: (ms % 1000) * 1_000_000 } }
    }
  }
  throw new ServiceError("unimplemented", `${name} is not served`, name)
}

/**
 * The topics the robot's actions have on the bridge (`<action>/_action/feedback`, `<action>/_action/status`),
 * name order, with their types (`<A>_FeedbackMessage`, action_msgs/msg/GoalStatusArray), as rosapi lists topics.
 */
export async function actionTopics(src: Pick<RosapiSource, "list">): Promise<{ topic: string; type: string }[]> {
  const out: { topic: string; type: string }[] = []
  for (const a of actionsOf(await src.list())) {
    out.push({ topic: `${a.name}/_action/feedback`, type: `${a.type}_FeedbackMessage` }, { topic: `${a.name}/_action/status`, type: GOAL_STATUS_ARRAY })
  }
  return out.sort(byTopic)
}

/**
 * The topics rosapi lists: the actions' (`actionTopics`) and, with `introspect`, each service's
 * `<service>/_service_event` (`<type>_Event`), name order.
 */
export async function rosapiTopics(src: RosapiSource): Promise<{ topic: string; type: string }[]> {
  const out = await actionTopics(src)
  if (src.introspect) for (const s of await src.list()) out.push({ topic: `${s.name}${SERVICE_EVENT_SUFFIX}`, type: `${s.type}_Event` })
  return out.sort(byTopic)
}

const byTopic = (x: { topic: string }, y: { topic: string }) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0)
