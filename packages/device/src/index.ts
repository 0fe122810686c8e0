// @robot-services/device: ROS 2-style services for a DeviceScript program (docs/protocol.md).
// The names a program and the code `robot gen` writes import; nothing here runs at import time.
// The MQTT link is a separate entry (`@robot-services/device/mqtt`), so a firmware that serves
// only over Jacdac carries none of its code; so is settingText (`@robot-services/device/settings`),
// whose settings client is made at import.
// Folders, each importing only from those before it (test/host/device_layers.test.ts): gen/ (the
// record protocol's constants, generated), cdr/ (the CDR runtime and the contracts handlers share),
// rpc/ (the call runtime under the links, and the Jacdac link), lib/ (createService, actions,
// settings, entry ../settings.ts), net/ (the MQTT link, entry ../mqtt.ts).
export { createService, configureServices, removeService, serviceStats, CallContext, PROTOCOL_VERSION } from "./lib/services"
export type { ServicesConfig, ServiceOptions } from "./lib/services"
export { ServiceError, Status } from "./cdr/types"
export type { ByteSource, Bytes } from "./cdr/types"
export type { MessageCodec, ServiceType } from "./cdr/cdr"
export type { ActionGoalId, ActionGoalInfo, ActionStamp, ActionType, ActionWatch } from "./lib/actiontype"
export { stampOf } from "./lib/actiontype"
// concurrency policies (rpc/policies.ts): a firmware that names neither carries neither
export { serial, latest } from "./rpc/policies"
export type { Concurrency } from "./rpc/core"
// ROS 2 actions (lib/actions.ts): a firmware that never calls createActionServer carries none of it
export { createActionServer, GoalHandle, GoalStatus } from "./lib/actions"
export type { ActionServerOptions } from "./lib/actions"
// used by generated code (src/gen/interfaces.ts of a project)
export { CdrReader, CdrWriter, K, MAX_SAFE, arrayOf, codec, decodeMessage, encodeMessage, notExactDefault, readAll, Segments, serviceType } from "./cdr/cdr"
// written by robot gen around the descriptor of a type that can exceed one record: the multi-frame
// paths (rpc/multiframe.ts) are in a firmware only when one of its types needs them
export { multiFrame } from "./rpc/multiframe"
