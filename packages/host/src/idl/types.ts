// The intermediate representation of a set of ROS 2 interface packages.
// Produced by host/idl/load.ts, consumed by both generators (device and host), the CLI
// (`robot interface list|show`) and the bridge (rosapi details).
import type { MessageDefinition } from "@foxglove/message-definition"

/** One parsed `.msg` (or one half of a `.srv`, or one message of a `.action`). */
export interface IdlMessage {
  /** Full ROS name, e.g. `std_msgs/msg/Header`, `example_interfaces/srv/AddTwoInts_Request`. */
  fullName: string
  /** Package name, e.g. `std_msgs`. */
  pkg: string
  /** Short name, e.g. `Header`. */
  name: string
  /** Path of the source file, relative to the interface root given to the loader. */
  file: string
  /** The interface root the file was found under, as given to the loader (e.g. `services`). */
  root: string
  /**
   * Fields and constants in foxglove's MessageDefinition shape (ROS 2 mode). Complex field types
   * are resolved to full names (`std_msgs/msg/Header`). Unlike foxglove's own parser, primitive
   * types are kept as written in ROS 2 (`byte` and `char` are not turned into `uint8`, and
   * `builtin_interfaces/msg/Time` is a complex type, not a `time` primitive). `name` is the full name.
   * Fields always carry `isArray`/`isComplex` booleans; constants carry `isConstant`, `value`, `valueText`.
   */
  definition: MessageDefinition
  /** The text of the definition as written (for the `.srv` halves: the text of that half). */
  text: string
  /** sha256 (hex) of the canonical definition, nested types included (docs/interfaces.md). */
  hash: string
  /** First 4 bytes of `hash` as an unsigned 32-bit number. */
  hash32: number
}

/** One parsed `.srv`. */
export interface IdlService {
  /** Full ROS name, e.g. `example_interfaces/srv/AddTwoInts`. */
  fullName: string
  pkg: string
  name: string
  file: string
  root: string
  request: IdlMessage
  response: IdlMessage
  /** The whole `.srv` text as written. */
  text: string
  /** sha256 (hex) over request and response canonical definitions. */
  hash: string
  /** First 4 bytes of `hash` as an unsigned 32-bit number: what goes on the wire. */
  hash32: number
}

/**
 * One parsed `.action` (goal --- result --- feedback), with the types ROS 2 derives from it
 * (rosidl_parser's `Action`): every message here is also in `InterfaceSet.messages`; the two derived
 * services are not in `InterfaceSet.services` (ROS lists them under the action, not as services).
 */
export interface IdlAction {
  /** Full ROS name, e.g. `example_interfaces/action/Fibonacci`. */
  fullName: string
  pkg: string
  name: string
  file: string
  root: string
  /** `<pkg>/action/<A>_Goal`, `_Result`, `_Feedback`: the three parts as written */
  goal: IdlMessage
  result: IdlMessage
  feedback: IdlMessage
  /** `<A>_SendGoal`: request {unique_identifier_msgs/UUID goal_id, <A>_Goal goal}, response {bool accepted, builtin_interfaces/Time stamp} */
  sendGoal: IdlService
  /** `<A>_GetResult`: request {UUID goal_id}, response {int8 status, <A>_Result result} */
  getResult: IdlService
  /** `<A>_FeedbackMessage`: {UUID goal_id, <A>_Feedback feedback} */
  feedbackMessage: IdlMessage
  /** The whole `.action` text as written. */
  text: string
  /** sha256 (hex) over the goal, result and feedback canonical definitions (docs/interfaces.md). */
  hash: string
  /** First 4 bytes of `hash` as an unsigned 32-bit number. */
  hash32: number
}

/** Everything found under one or more interface roots. */
export interface InterfaceSet {
  /** message full name -> type (includes the `_Request`/`_Response` halves of services, and every message of an action) */
  messages: Map<string, IdlMessage>
  /** service full name -> type (`.srv` files only) */
  services: Map<string, IdlService>
  /** action full name -> type */
  actions: Map<string, IdlAction>
}
