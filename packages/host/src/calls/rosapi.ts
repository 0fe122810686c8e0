// What rosapi's answers are made of, in the shape rosapi (ROS 2) gives them: typedefs of message
// definitions, and the definitions the bridge writes itself (an action's status array, a service's
// introspection event) for message_details. Typedef type names drop the `/msg/`-`/srv/` part
// (`std_msgs/Header`), as rosapi's do; service types keep it (`example_interfaces/srv/AddTwoInts`).
// The services that answer with them are calls/rosapiservices.ts.
import type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
import type { ServiceDescriptor } from "../runtime/types"
import type { ActionDescriptor } from "../runtime/action"

export interface Typedef {
  type: string
  fieldnames: string[]
  fieldtypes: string[]
  fieldarraylen: number[]
  examples: string[]
  constnames: string[]
  constvalues: string[]
}

/** `std_msgs/msg/Header` -> `std_msgs/Header` (rosapi's spelling). */
export function shortTypeName(full: string): string {
  const p = full.split("/")
  return p.length === 3 ? `${p[0]}/${p[2]}` : full
}

function fieldType(f: MessageDefinitionField): string {
  if (f.isComplex) return shortTypeName(f.type)
  return f.upperBound !== undefined ? `${f.type}<=${f.upperBound}` : f.type
}

function example(f: MessageDefinitionField): string {
  if (f.isArray) return "[]"
  if (f.isComplex) return "{}"
  if (f.defaultValue !== undefined) return String(f.defaultValue)
  switch (f.type) {
    case "bool":
      return "False"
    case "string":
    case "wstring":
      return ""
    case "float32":
    case "float64":
      return "0.0"
    default:
      return "0"
  }
}

/** Typedefs of a message and every type it uses, the message first (rosapi order). */
export function typedefs(definitions: readonly MessageDefinition[]): Typedef[] {
  const byName = new Map(definitions.map((d) => [d.name ?? "", d]))
  const out: Typedef[] = []
  const seen = new Set<string>()
  const visit = (name: string) => {
    if (seen.has(name)) return
    seen.add(name)
    const d = byName.get(name)
    if (!d) return
    const fields = d.definitions.filter((f) => !f.isConstant)
    const consts = d.definitions.filter((f) => f.isConstant)
    out.push({
      type: shortTypeName(name),
      fieldnames: fields.map((f) => f.name),
      fieldtypes: fields.map(fieldType),
      fieldarraylen: fields.map((f) => (f.isArray ? (f.arrayLength ?? 0) : -1)),
      examples: fields.map(example),
      constnames: consts.map((f) => f.name),
      constvalues: consts.map((f) => f.valueText ?? String(f.value)),
    })
    for (const f of fields) if (f.isComplex) visit(f.type)
  }
  visit(definitions[0]?.name ?? "")
  return out
}

/** The type of an action's status topic (`<action>/_action/status`). */
export const GOAL_STATUS_ARRAY = "action_msgs/msg/GoalStatusArray"

/**
 * action_msgs/msg/GoalStatusArray and the types it uses, built from the action's own UUID and Time
 * definitions (as runtime/action.ts builds CancelGoal), for rosapi's message_details.
 */
export function goalStatusArrayDefinitions(action: ActionDescriptor<any, any, any>): MessageDefinition[] {
  const defs = action.sendGoal.request.definitions.concat(action.sendGoal.response.definitions)
  const uuid = defs.find((d) => d.name === "unique_identifier_msgs/msg/UUID")
  const time = defs.find((d) => d.name === "builtin_interfaces/msg/Time")
  if (!uuid || !time) return []
  const field = (type: string, name: string, isComplex: boolean, isArray = false): MessageDefinitionField => ({ type, name, isComplex, isArray })
  const consts = ["UNKNOWN", "ACCEPTED", "EXECUTING", "CANCELING", "SUCCEEDED", "CANCELED", "ABORTED"].map(
    (n, i): MessageDefinitionField => ({ type: "int8", name: `STATUS_${n}`, isConstant: true, value: i, valueText: String(i) }),
  )
  return [
    { name: GOAL_STATUS_ARRAY, definitions: [field("action_msgs/msg/GoalStatus", "status_list", true, true)] },
    { name: "action_msgs/msg/GoalStatus", definitions: [...consts, field("action_msgs/msg/GoalInfo", "goal_info", true), field("int8", "status", false)] },
    { name: "action_msgs/msg/GoalInfo", definitions: [field(uuid.name!, "goal_id", true), field(time.name!, "stamp", true)] },
    uuid,
    time,
  ]
}

/**
 * The definitions of a service's introspection event, `<pkg>/srv/<Name>_Event` (REP-2012), for
 * rosapi's message_details: the event first, then service_msgs/msg/ServiceEventInfo, its Time, and
 * the request's and response's own. Written here as services/service_msgs/msg/ServiceEventInfo.msg
 * says, so the bridge needs no generated file for it.
 */
export function serviceEventDefinitions(type: ServiceDescriptor<any, any>): MessageDefinition[] {
  const field = (type: string, name: string, isComplex: boolean, more: Partial<MessageDefinitionField> = {}): MessageDefinitionField => ({ type, name, isComplex, isArray: false, ...more })
  const time = "builtin_interfaces/msg/Time"
  const consts = ["REQUEST_SENT", "REQUEST_RECEIVED", "RESPONSE_SENT", "RESPONSE_RECEIVED"].map(
    (n, i): MessageDefinitionField => ({ type: "uint8", name: n, isConstant: true, value: i, valueText: String(i) }),
  )
  const out: MessageDefinition[] = [
    {
      name: `${type.fullName}_Event`,
      definitions: [
        field("service_msgs/msg/ServiceEventInfo", "info", true),
        field(type.request.fullName, "request", true, { isArray: true, arrayUpperBound: 1 }),
        field(type.response.fullName, "response", true, { isArray: true, arrayUpperBound: 1 }),
      ],
    },
    {
      name: "service_msgs/msg/ServiceEventInfo",
      definitions: [...consts, field("uint8", "event_type", false), field(time, "stamp", true), field("char", "client_gid", false, { isArray: true, arrayLength: 16 }), field("int64", "sequence_number", false)],
    },
    { name: time, definitions: [field("int32", "sec", false), field("uint32", "nanosec", false)] },
  ]
  for (const d of [...type.request.definitions, ...type.response.definitions]) if (!out.some((x) => x.name === d.name)) out.push(d)
  return out
}
