// Host-side descriptors. Generated code (packages/host/src/gen/interfaces.ts) exports one per type.
import type { MessageDefinition } from "@foxglove/message-definition"

/** A message type with its CDR codec. 64-bit integers are `bigint` and are never narrowed. */
export interface MessageDescriptor<T> {
  readonly fullName: string
  /** sha256 (hex) of the canonical definition */
  readonly hash: string
  /** This type first, then every nested type it uses (foxglove MessageDefinition, ROS 2 mode). */
  readonly definitions: readonly MessageDefinition[]
  /** ROS 2 CDR, little-endian, with the 4-byte encapsulation header. Throws CodecError on a value out of bounds. */
  encode(value: T): Uint8Array
  /** Throws CodecError on truncated data or a bound exceeded. */
  decode(bytes: Uint8Array): T
  /** A value with every field at its default (declared default or zero). */
  defaults(): T
}

/** A service type: what `createClient` takes. */
export interface ServiceDescriptor<Req, Res> {
  readonly fullName: string
  /** sha256 (hex) over request and response */
  readonly hash: string
  /** First 4 bytes of `hash`: what the device compares. */
  readonly hash32: number
  /** The `.srv` text, as `ros2 interface show` prints it. */
  readonly text: string
  readonly request: MessageDescriptor<Req>
  readonly response: MessageDescriptor<Res>
}

/** Service descriptors by full type name (gen/interfaces.ts `serviceTypes`, calls/projecttypes.ts `projectServiceTypes`). */
export type ServiceTypes = { readonly [fullName: string]: ServiceDescriptor<any, any> }
