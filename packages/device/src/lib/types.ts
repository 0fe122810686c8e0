// Device-side contracts shared by the CDR runtime (cdr.ts), the generated interfaces
// (src/gen/interfaces.ts) and the service runtime (packages/device/src/rpc/, facade packages/device/src/lib/services.ts).
// Everything here stays inside the DeviceScript language subset.
import type { CdrReader, CdrWriter } from "./cdr"

/**
 * Bytes that are read on demand rather than held in the heap: a camera frame buffer, or an
 * encoded CDR message made of segments. `read` may be called again for any range (resends).
 */
export interface ByteSource {
    /** total length in bytes */
    length: number
    /** `length` bytes from `offset`; never more than asked, fewer only at the end */
    read(offset: number, length: number): Promise<Buffer>
}

/** A `uint8[]`/`byte[]` field: decoded values are always Buffer; a handler may answer with a ByteSource. */
export type Bytes = Buffer | ByteSource

/** CDR codec of one message type (generated). */
export interface MessageCodec<T> {
    /** full ROS name, e.g. `std_msgs/msg/Header` */
    name: string
    encode(w: CdrWriter, v: T): void
    decode(r: CdrReader): T
}

/** Descriptor of one service type (generated), what `createService` takes. */
export interface ServiceType<Req, Res> {
    /** full ROS name, e.g. `example_interfaces/srv/AddTwoInts` */
    name: string
    /** first 4 bytes of the sha256 of the definition, as an unsigned number */
    hash: number
    request: MessageCodec<Req>
    response: MessageCodec<Res>
    /**
     * Generated when the request is fixed-size fields and then one byte array: the offset in its
     * CDR where the array's bytes start. The device then receives the array into a buffer of its
     * own and gives it to the handler uncopied (uploads up to maxRequestBytes).
     */
    tail?: number
}

// Status codes on the wire come from the protocol's one table (protocol/protocol.json, generated
// into packages/device/src/rpc/wire.ts); re-exported here for handlers.
export { Status } from "../rpc/wire"
import { Status } from "../rpc/wire"

/**
 * Throw this from a handler (or a codec) to answer with a specific status;
 * anything else thrown by a handler is answered as `Internal` with its message.
 */
export class ServiceError extends Error {
    constructor(public code: Status, message: string) {
        super(message)
        this.name = "ServiceError"
    }
}
