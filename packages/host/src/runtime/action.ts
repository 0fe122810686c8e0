// Host-side action descriptors: what host/gen/interfaces.ts exports per `.action` file.
import type { MessageDescriptor, ServiceDescriptor } from "./types"

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
