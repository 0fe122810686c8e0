// The Foxglove WebSocket protocol's framing: its subprotocol name, binary opcodes and status levels,
// and the headers of the binary messages the bridge sends. The layouts follow the protocol's spec
// (foxglove/ws-protocol, docs/spec.md).
import type { RawData } from "ws"

export const FOXGLOVE_SUBPROTOCOL = "foxglove.websocket.v1"

export const OP_MESSAGE_DATA = 0x01
export const OP_SERVICE_CALL_RESPONSE = 0x03
export const OP_CLIENT_SERVICE_CALL_REQUEST = 0x02
export const STATUS_ERROR = 2
export const STATUS_WARNING = 1

export function messageData(sub: number, ts: bigint, payload: Buffer): Buffer {
  const head = Buffer.alloc(13)
  head[0] = OP_MESSAGE_DATA
  head.writeUInt32LE(sub, 1)
  head.writeBigUInt64LE(ts, 5)
  return Buffer.concat([head, payload])
}

export function serviceCallResponse(serviceId: number, callId: number, encLen: number, encoding: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(13 + encLen)
  head[0] = OP_SERVICE_CALL_RESPONSE
  head.writeUInt32LE(serviceId, 1)
  head.writeUInt32LE(callId, 5)
  head.writeUInt32LE(encLen, 9)
  head.write(encoding, 13, "utf8")
  return Buffer.concat([head, data])
}

export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data as ArrayBuffer)
}
