// The host side of test/firmware/services_fw.ts, the device of the service tests and of the
// benchmark: its two services' descriptors and what a host needs to check their answers.
import type { Echo_Request } from "./gen/interfaces"

// rs_test/srv/Echo and Upload, generated from test/interfaces/ like the firmware's own copy
// (test/firmware/gen/interfaces.ts): see test/firmware/services_fw.ts for what each mode does.
export { Echo, Upload } from "./gen/interfaces"
export type EchoRequest = Echo_Request
export type { Echo_Response as EchoResponse } from "./gen/interfaces"

/** The hash the firmware's /upload answers: every 61st byte. */
export function uploadHash(b: Uint8Array): number {
  let h = 0
  for (let i = 0; i < b.length; i += 61) h = (h * 31 + b[i]!) & 0xffff
  return h
}

/** The bytes the firmware's Pattern source produces. */
export function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 255
  return b
}

export function echo(text: string, more: Partial<EchoRequest> = {}): EchoRequest {
  return { delay_ms: 0, mode: 0, size: 0, text, ...more }
}
