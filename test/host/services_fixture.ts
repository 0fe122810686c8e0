// Host descriptors matching test/firmware/services_fw.ts, and helpers shared by the service tests.
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

import { jd } from "../../packages/host/src/transport/jacdac"
import { parseDeviceFrame, parseHostFrame, REPORT_FRAME_OUT, CMD_FRAME, Kind, type DeviceRecord, type HostRecord } from "../../packages/host/src/client/records"
import type { BuiltFirmware } from "../../packages/host/src/sim/vm"

/** The firmware under test; RS_FW_DIR points at a prebuilt bytecode folder instead. */
export function testFirmware(): string | BuiltFirmware {
  const dir = process.env.RS_FW_DIR
  return dir ? { entry: "prebuilt", dir, bytecodeBytes: 0 } : "test/firmware/services_fw.ts"
}

/** Host->device records in a raw Jacdac frame: kind byte, and session + seq for call records. */
export function hostRecords(frame: Uint8Array): { kind: number; session: number; seq: number }[] {
  const out: { kind: number; session: number; seq: number }[] = []
  for (const p of jd.Packet.fromFrame(frame, 0)) {
    if (p.isReport || p.serviceCommand !== CMD_FRAME) continue
    for (const r of parseHostFrame(p.data).records) {
      const kind = KIND_OF[r.kind]
      out.push({ kind, session: "session" in r ? r.session : 0, seq: "seq" in r ? r.seq : 0 })
    }
  }
  return out
}

const KIND_OF: Record<HostRecord["kind"], number> = {
  open: Kind.OPEN,
  call: Kind.CALL,
  callx: Kind.CALLX,
  data: Kind.DATA,
  cancel: Kind.CANCEL,
  poll: Kind.POLL,
  done: Kind.DONE,
  list: Kind.LIST,
}

/** Device->host records in a raw Jacdac frame. */
export function deviceRecords(frame: Uint8Array): DeviceRecord[] {
  const out: DeviceRecord[] = []
  for (const p of jd.Packet.fromFrame(frame, 0)) {
    if (!p.isReport || p.serviceCommand !== REPORT_FRAME_OUT) continue
    try {
      out.push(...parseDeviceFrame(p.data))
    } catch {
      // not ours to judge here
    }
  }
  return out
}
