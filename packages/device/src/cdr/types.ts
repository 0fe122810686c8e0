// Device-side contracts shared by the CDR runtime (cdr.ts), the generated interfaces
// (src/gen/interfaces.ts) and the service runtime (rpc/, facade lib/services.ts). The codec and
// service-type descriptors (MessageCodec, ServiceType) are in cdr.ts, which imports this file and
// not the other way round. Everything here stays inside the DeviceScript language subset.

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

/**
 * A `uint8[]`/`byte[]` field: decoded values are Buffers, except a request's trailing byte array
 * (an upload, ServiceType.tail), which is a Segments of 1 KiB Buffers when not empty; a handler may
 * answer with any ByteSource.
 */
export type Bytes = Buffer | ByteSource

// Status codes on the wire come from the protocol's one table (protocol/protocol.json, generated
// into packages/device/src/gen/wire.ts); re-exported here for handlers.
export { Status } from "../gen/wire"
import { Status } from "../gen/wire"

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
