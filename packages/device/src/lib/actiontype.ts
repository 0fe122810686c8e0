// The types ROS 2 derives from every action, built on the device from the action's own codecs.
//
// Their layout is the same for every action (host/idl/action.ts, rosidl's `Action`):
//   <A>_SendGoal_Request   {unique_identifier_msgs/UUID goal_id, <A>_Goal goal}
//   <A>_SendGoal_Response  {bool accepted, builtin_interfaces/Time stamp}
//   <A>_GetResult_Request  {UUID goal_id}
//   <A>_GetResult_Response {int8 status, <A>_Result result}
//   <A>_FeedbackMessage    {UUID goal_id, <A>_Feedback feedback}
// so their codecs are written once here instead of generated per action: a robot with three actions
// carries this code once (about 0.6 KB of bytecode, field tables read by the generated file's
// interpreter) rather than five generated codecs per action.
// test/host/agreement.test.ts checks their bytes against the host's for every action type.
// Everything here stays inside the DeviceScript language subset.
import { MessageCodec, ServiceType, serviceType } from "../cdr/cdr"
import { Bytes } from "../cdr/types"

/** unique_identifier_msgs/msg/UUID as generated: a goal's id, 16 bytes. */
export interface ActionGoalId {
    uuid: Bytes
}

/** builtin_interfaces/msg/Time as generated: when a goal was accepted. */
export interface ActionStamp {
    sec: number
    nanosec: number
}

/**
 * `ms` milliseconds (e.g. `ds.millis()`, the uptime) as a builtin_interfaces/Time stamp. Without `%`:
 * DeviceScript's `%` wraps an integer outside int32 first, so `t % 1000` went negative after 2^31 ms
 * of uptime (24.8 days) and the uint32 nanosec was refused (test/device/stamp.test.ts).
 */
export function stampOf(ms: number): ActionStamp {
    const sec = Math.floor(ms / 1000)
    return { sec, nanosec: (Math.floor(ms) - sec * 1000) * 1000000 }
}

/**
 * Descriptor of one action type (generated from a `.action` file as a function that makes it on
 * first call: `Fibonacci()`), with the types ROS 2 derives from the action, whose codecs are built
 * here. The derived messages' interfaces are generated too (`Fibonacci_SendGoal_Request`, ...)
 * and match the shapes written here.
 */
export interface ActionType<G, R, F> {
    /** full ROS name, e.g. `example_interfaces/action/Fibonacci` */
    name: string
    /** first 4 bytes of the sha256 of the goal, result and feedback definitions, as an unsigned number */
    hash: number
    goal: MessageCodec<G>
    result: MessageCodec<R>
    feedback: MessageCodec<F>
    /** `<A>_SendGoal`: {goal_id, goal} -> {accepted, stamp} */
    sendGoal: ServiceType<{ goal_id: ActionGoalId; goal: G }, { accepted: boolean; stamp: ActionStamp }>
    /** `<A>_GetResult`: {goal_id} -> {status (action_msgs/msg/GoalStatus STATUS_*), result} */
    getResult: ServiceType<{ goal_id: ActionGoalId }, { status: number; result: R }>
    /** `<A>_FeedbackMessage`: {goal_id, feedback} */
    feedbackMessage: MessageCodec<{ goal_id: ActionGoalId; feedback: F }>
    /** action_msgs/srv/CancelGoal, the same for every action */
    cancelGoal: ServiceType<{ goal_info: ActionGoalInfo }, { return_code: number; goals_canceling: ActionGoalInfo[] }>
    /**
     * `<A>_Watch`, this runtime's own (not a ROS type): {goal_id, uint32 seq} -> {uint32 seq, int8
     * status, <A>_Feedback[<=1] feedback}, answered once the goal's seq passed the one asked for
     * (lib/actions.ts; docs/actions.md). Its hash is the action's hash32 xor WATCH_SALT.
     */
    watch: ServiceType<{ goal_id: ActionGoalId; seq: number }, ActionWatch<F>>
}

/** action_msgs/msg/GoalInfo as generated */
export interface ActionGoalInfo {
    goal_id: ActionGoalId
    stamp: ActionStamp
}

/** What `<A>_Watch` answers: the goal's seq (bumped on each status change and feedback), status, and the last feedback when it is newer than the seq asked past (else empty) */
export interface ActionWatch<F> {
    seq: number
    status: number
    feedback: F[]
}

/** hash32 of action_msgs/srv/CancelGoal (services/action_msgs/srv/CancelGoal.srv; test/host/action_wire.test.ts checks it) */
export const CANCEL_GOAL_HASH = 1709760447
/** `<A>_Watch`'s hash32 is the action's hash32 xor this ("watc") */
export const WATCH_SALT = 0x77617463

/**
 * The field-table codec maker of the generated file (its `__rec`: `table` is each field's kind
 * character and name, separated by spaces; `args` the arguments of the fields that take one, in
 * order: a message's codec (`m`), a sequence's element codec, length and bound (`M`); host/codegen/device.ts).
 */
export type RecordCodec = (name: string, table: string, args?: any[]) => MessageCodec<any>

/**
 * An ActionType (generated code calls this, once per action, from the function that names it:
 * `Fibonacci()`). `hashes` are the generated hash32 of the action, of its send_goal and of its
 * get_result service (one array: the compiler allows at most 8 arguments); `uuid` and `time` are
 * the generated codecs of unique_identifier_msgs/msg/UUID and builtin_interfaces/msg/Time; `rec`
 * is the generated file's field-table codec maker, which the derived types are made with (kinds b
 * bool, c int8, I uint32, m a message, M a sequence of messages).
 * Allocates the five derived codecs and two service types.
 */
export function actionType<G, R, F>(
    name: string,
    hashes: number[],
    goal: MessageCodec<G>,
    result: MessageCodec<R>,
    feedback: MessageCodec<F>,
    uuid: MessageCodec<ActionGoalId>,
    time: MessageCodec<ActionStamp>,
    rec: RecordCodec
): ActionType<G, R, F> {
    const sg = name + "_SendGoal"
    const gr = name + "_GetResult"
    const cg = "action_msgs/srv/CancelGoal"
    const wt = name + "_Watch"
    const info = rec("action_msgs/msg/GoalInfo", "mgoal_id mstamp", [uuid, time])
    const id = "mgoal_id"
    return {
        name,
        hash: hashes[0],
        goal,
        result,
        feedback,
        sendGoal: serviceType(sg, hashes[1], rec(sg + "_Request", "mgoal_id mgoal", [uuid, goal]), rec(sg + "_Response", "baccepted mstamp", [time])),
        getResult: serviceType(gr, hashes[2], rec(gr + "_Request", id, [uuid]), rec(gr + "_Response", "cstatus mresult", [result])),
        feedbackMessage: rec(name + "_FeedbackMessage", "mgoal_id mfeedback", [uuid, feedback]),
        cancelGoal: serviceType(
            cg,
            CANCEL_GOAL_HASH,
            rec(cg + "_Request", "mgoal_info", [info]),
            rec(cg + "_Response", "creturn_code Mgoals_canceling", [info, -1, -1])
        ),
        watch: serviceType(
            wt,
            (hashes[0] ^ WATCH_SALT) >>> 0,
            rec(wt + "_Request", "mgoal_id Iseq", [uuid]),
            rec(wt + "_Response", "Iseq cstatus Mfeedback", [feedback, -1, 1])
        ),
    }
}
