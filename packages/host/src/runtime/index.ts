// Host runtime: CDR codecs and descriptors (what packages/host/src/gen/interfaces.ts is built from).
export type { MessageDescriptor, ServiceDescriptor } from "./types"
export { CodecError, MessageCodec, messageDescriptor, serviceDescriptor, isByteArrayField, fieldTypeText } from "./codec"
export type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
export { actionDescriptor, type ActionDescriptor, type GoalId, type SendGoalRequest, type SendGoalResponse, type GetResultRequest, type GetResultResponse, type FeedbackMessage } from "./action"
export { sampleValue, SAMPLE_KINDS, type SampleKind } from "./samples"
