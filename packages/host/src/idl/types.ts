// The intermediate representation of a set of ROS 2 interface packages.
// Produced by host/idl/load.ts, consumed by both generators (device and host), the CLI
// (`robot interface list|show`) and the bridge (rosapi details).
import type { MessageDefinition } from "@foxglove/message-definition"

/** One parsed `.msg` (or one half of a `.srv`). */
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

/** Everything found under one or more interface roots. */
export interface InterfaceSet {
  /** message full name -> type (includes the `_Request`/`_Response` halves of services) */
  messages: Map<string, IdlMessage>
  /** service full name -> type */
  services: Map<string, IdlService>
}
