// The host client's public entry point: connect to a device and call its services.
export type { CallOptions, Client, NodeState, RobotNode, ServiceInfo } from "./api"
export { ErrorCodes, ServiceError, errorCodeFromWire, type ErrorCode } from "./errors"
export { connect, type ConnectOptions, type DeviceLimits, type NodeStats, type ServiceNode } from "./node"
export type { RobotTransport } from "../transport/types"
export { websocketTransport, DEVTOOLS_URL } from "../transport/websocket"
export { serialTransport, SERIAL_BAUD_RATE, type SerialOptions } from "../transport/serial"
export { FrameHub, hubTransport, type FrameFilter } from "../transport/hub"
