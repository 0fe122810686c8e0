// Host-side action descriptors: what host/gen/interfaces.ts exports per `.action` file.
import type { MessageDefinition } from "@foxglove/message-definition"
import { messageDescriptor, serviceDescriptor } from "./codec"
import type { MessageDescriptor, ServiceDescriptor, ServiceTypes } from "./types"

/** unique_identifier_msgs/msg/UUID on the host: a goal's id, 16 bytes. */
export interface GoalId {
  uuid: Uint8Array
}

/** `<A>_SendGoal_Request` */
export interface SendGoalRequest<G> {
  goal_id: GoalId
  goal: G
}
/** `<A>_SendGoal_Response` (`stamp` is builtin_interfaces/msg/Time) */
export interface SendGoalResponse {
  accepted: boolean
  stamp: { sec: number; nanosec: number }
}
/** `<A>_GetResult_Request` */
export interface GetResultRequest {
  goal_id: GoalId
}
/** `<A>_GetResult_Response` (`status`: action_msgs/msg/GoalStatus `STATUS_*`) */
export interface GetResultResponse<R> {
  status: number
  result: R
}
/** `<A>_FeedbackMessage` */
export interface FeedbackMessage<F> {
  goal_id: GoalId
  feedback: F
}

/**
 * An action type with its three messages and the types ROS 2 derives from it, each with its ROS
 * name (`example_interfaces/action/Fibonacci_SendGoal`) and CDR codec.
 */
export interface ActionDescriptor<G, R, F> {
  /** e.g. `example_interfaces/action/Fibonacci` */
  readonly fullName: string
  /** sha256 (hex) over the goal, result and feedback definitions (docs/interfaces.md) */
  readonly hash: string
  /** first 4 bytes of `hash` */
  readonly hash32: number
  /** the `.action` text, as `ros2 interface show` prints it */
  readonly text: string
  readonly goal: MessageDescriptor<G>
  readonly result: MessageDescriptor<R>
  readonly feedback: MessageDescriptor<F>
  readonly sendGoal: ServiceDescriptor<SendGoalRequest<G>, SendGoalResponse>
  readonly getResult: ServiceDescriptor<GetResultRequest, GetResultResponse<R>>
  readonly feedbackMessage: MessageDescriptor<FeedbackMessage<F>>
}

/** Action descriptors by full type name (gen/interfaces.ts `actionTypes`, calls/projecttypes.ts `projectActionTypes`). */
export type ActionTypes = { readonly [fullName: string]: ActionDescriptor<any, any, any> }

type MessageOf<D> = D extends MessageDescriptor<infer T> ? T : never

/**
 * Makes an ActionDescriptor from generated descriptors. The parts keep their own generated types
 * (with their constants), so `Fibonacci.goal` is `typeof Fibonacci_Goal`.
 */
export function actionDescriptor<
  G extends MessageDescriptor<any>,
  R extends MessageDescriptor<any>,
  F extends MessageDescriptor<any>,
  SG extends ServiceDescriptor<SendGoalRequest<MessageOf<G>>, SendGoalResponse>,
  GR extends ServiceDescriptor<GetResultRequest, GetResultResponse<MessageOf<R>>>,
  FM extends MessageDescriptor<FeedbackMessage<MessageOf<F>>>,
>(
  fullName: string,
  hash: string,
  hash32: number,
  text: string,
  parts: { goal: G; result: R; feedback: F; sendGoal: SG; getResult: GR; feedbackMessage: FM },
): ActionDescriptor<MessageOf<G>, MessageOf<R>, MessageOf<F>> & { readonly goal: G; readonly result: R; readonly feedback: F; readonly sendGoal: SG; readonly getResult: GR; readonly feedbackMessage: FM } {
  return Object.freeze({ fullName, hash, hash32, text, ...parts })
}

/** hash32 of action_msgs/srv/CancelGoal (the device library has the same constant; test/host/action_wire.test.ts checks both) */
export const CANCEL_GOAL_HASH32 = 1709760447
/** `<A>_Watch`'s hash32: the action's hash32 xor this ("watc"), as on the device (packages/device/src/lib/actiontype.ts) */
export const WATCH_SALT = 0x77617463

/** action_msgs/msg/GoalInfo */
export interface GoalInfo {
  goal_id: GoalId
  stamp: { sec: number; nanosec: number }
}
/** action_msgs/srv/CancelGoal request */
export interface CancelGoalRequest {
  goal_info: GoalInfo
}
/** action_msgs/srv/CancelGoal response (`return_code`: 0 accepted, 1 rejected, 2 unknown goal id, 3 goal terminated) */
export interface CancelGoalResponse {
  return_code: number
  goals_canceling: GoalInfo[]
}
/** `<A>_Watch` request: the goal and the seq the host already has (0: none) */
export interface WatchRequest {
  goal_id: GoalId
  seq: number
}
/** `<A>_Watch` response: the goal's seq, status (GoalStatus `STATUS_*`) and its last feedback when that is newer than the seq asked past (else empty) */
export interface WatchResponse<F> {
  seq: number
  status: number
  feedback: F[]
}

/** The services an action is served as on the robot (packages/device/src/lib/actions.ts): `<name>/_action/<part>`. */
export const ACTION_PARTS = ["send_goal", "cancel_goal", "get_result", "watch"] as const

/** The four services of one action type, as the device serves them. */
export interface ActionWire<G, R, F> {
  sendGoal: ServiceDescriptor<SendGoalRequest<G>, SendGoalResponse>
  cancelGoal: ServiceDescriptor<CancelGoalRequest, CancelGoalResponse>
  getResult: ServiceDescriptor<GetResultRequest, GetResultResponse<R>>
  watch: ServiceDescriptor<WatchRequest, WatchResponse<F>>
}

const CANCEL_TEXT = "GoalInfo goal_info\n---\nint8 ERROR_NONE=0\nint8 ERROR_REJECTED=1\nint8 ERROR_UNKNOWN_GOAL_ID=2\nint8 ERROR_GOAL_TERMINATED=3\nint8 return_code\nGoalInfo[] goals_canceling\n"

const wires = new WeakMap<object, ActionWire<any, any, any>>()

/**
 * The four services of `action` on the robot: its generated send_goal and get_result, CancelGoal
 * (built here from the action's own UUID and Time definitions, so a project need not generate
 * action_msgs), and the runtime's `<A>_Watch`. Made once per action descriptor.
 */
export function actionWire<G, R, F>(action: ActionDescriptor<G, R, F>): ActionWire<G, R, F> {
  const known = wires.get(action)
  if (known) return known
  const defs = [...action.sendGoal.request.definitions, ...action.sendGoal.response.definitions]
  const def = (name: string): MessageDefinition => {
    const d = defs.find((x) => x.name === name)
    if (!d) throw new Error(`${action.fullName}: no definition of ${name} among its derived types`)
    return d
  }
  const uuid = def("unique_identifier_msgs/msg/UUID")
  const time = def("builtin_interfaces/msg/Time")
  const info: MessageDefinition = {
    name: "action_msgs/msg/GoalInfo",
    definitions: [
      { type: uuid.name!, name: "goal_id", isComplex: true, isArray: false },
      { type: time.name!, name: "stamp", isComplex: true, isArray: false },
    ],
  }
  const cancelReq: MessageDefinition = {
    name: "action_msgs/srv/CancelGoal_Request",
    definitions: [{ type: info.name!, name: "goal_info", isComplex: true, isArray: false }],
  }
  const cancelRes: MessageDefinition = {
    name: "action_msgs/srv/CancelGoal_Response",
    definitions: [
      { type: "int8", name: "return_code", isComplex: false, isArray: false },
      { type: info.name!, name: "goals_canceling", isComplex: true, isArray: true },
    ],
  }
  const hex32 = (n: number) => n.toString(16).padStart(8, "0")
  const cancelGoal = serviceDescriptor(
    "action_msgs/srv/CancelGoal",
    hex32(CANCEL_GOAL_HASH32),
    CANCEL_GOAL_HASH32,
    CANCEL_TEXT,
    messageDescriptor<CancelGoalRequest>(cancelReq.name!, "", [cancelReq, info, uuid, time]),
    messageDescriptor<CancelGoalResponse>(cancelRes.name!, "", [cancelRes, info, uuid, time]),
  )
  const wt = action.fullName + "_Watch"
  const fb = action.feedback.definitions
  const watchReq: MessageDefinition = {
    name: wt + "_Request",
    definitions: [
      { type: uuid.name!, name: "goal_id", isComplex: true, isArray: false },
      { type: "uint32", name: "seq", isComplex: false, isArray: false },
    ],
  }
  const watchRes: MessageDefinition = {
    name: wt + "_Response",
    definitions: [
      { type: "uint32", name: "seq", isComplex: false, isArray: false },
      { type: "int8", name: "status", isComplex: false, isArray: false },
      { type: fb[0]!.name!, name: "feedback", isComplex: true, isArray: true, arrayUpperBound: 1 },
    ],
  }
  const watchHash = (action.hash32 ^ WATCH_SALT) >>> 0
  const watch = serviceDescriptor(
    wt,
    hex32(watchHash),
    watchHash,
    `unique_identifier_msgs/UUID goal_id\nuint32 seq\n---\nuint32 seq\nint8 status\n${action.feedback.fullName}[<=1] feedback\n`,
    messageDescriptor<WatchRequest>(watchReq.name!, "", [watchReq, uuid]),
    messageDescriptor<WatchResponse<F>>(watchRes.name!, "", [watchRes, ...fb]),
  )
  const wire: ActionWire<G, R, F> = { sendGoal: action.sendGoal, cancelGoal, getResult: action.getResult, watch }
  wires.set(action, wire)
  return wire
}

/**
 * `services` and the four services each of `actions` is served as ({@link actionWire}: send_goal,
 * cancel_goal, get_result, watch), by type name, so that an action's `_action/` services can be
 * called and checked like any other. A name in `services` wins over an action's part of that name.
 */
export function withActionServices(services: ServiceTypes, actions: ActionTypes): ServiceTypes {
  const wire: Record<string, ServiceDescriptor<any, any>> = {}
  for (const a of Object.values(actions)) for (const s of Object.values(actionWire(a))) wire[s.fullName] = s
  return { ...wire, ...services }
}

/** `/fibonacci/_action/send_goal` -> `/fibonacci`: the service parts of an action (packages/device/src/lib/actions.ts) */
const ACTION_SERVICE = /^(.*)\/_action\/(send_goal|cancel_goal|get_result|watch)$/

/** Whether a service is one of an action's own (hidden from `service list`, as ROS 2 hides them). */
export function isActionService(name: string): boolean {
  return ACTION_SERVICE.test(name)
}

/**
 * The actions among a robot's services: each `<name>/_action/send_goal` of type `<A>_SendGoal`
 * gives action `<name>` of type `<A>`, in the order listed.
 */
export function actionsOf(services: readonly { name: string; type: string }[]): { name: string; type: string }[] {
  const out: { name: string; type: string }[] = []
  for (const s of services) {
    const m = ACTION_SERVICE.exec(s.name)
    if (m && m[2] === "send_goal" && s.type.endsWith("_SendGoal")) out.push({ name: m[1]!, type: s.type.slice(0, -"_SendGoal".length) })
  }
  return out
}
