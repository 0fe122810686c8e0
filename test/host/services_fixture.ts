// Host descriptors matching test/firmware/services_fw.ts, and helpers shared by the service tests.
import { messageDescriptor, serviceDescriptor } from "../../host/runtime/index"

export interface EchoRequest {
  delay_ms: number
  mode: number
  size: number
  text: string
}
export interface EchoResponse {
  text: string
  data: Uint8Array
}

/** rs_test/srv/Echo: see test/firmware/services_fw.ts (hash32 0x5e7ec40a there too). */
export const Echo = serviceDescriptor(
  "rs_test/srv/Echo",
  "5e7ec40a00000000000000000000000000000000000000000000000000000000",
  0x5e7ec40a,
  "uint32 delay_ms\nuint8 mode\nuint32 size\nstring text\n---\nstring text\nuint8[] data\n",
  messageDescriptor<EchoRequest>("rs_test/srv/Echo_Request", "", [
    {
      name: "rs_test/srv/Echo_Request",
      definitions: [
        { type: "uint32", name: "delay_ms", isComplex: false, isArray: false },
        { type: "uint8", name: "mode", isComplex: false, isArray: false },
        { type: "uint32", name: "size", isComplex: false, isArray: false },
        { type: "string", name: "text", isComplex: false, isArray: false },
      ],
    },
  ]),
  messageDescriptor<EchoResponse>("rs_test/srv/Echo_Response", "", [
    {
      name: "rs_test/srv/Echo_Response",
      definitions: [
        { type: "string", name: "text", isComplex: false, isArray: false },
        { type: "uint8", name: "data", isComplex: false, isArray: true },
      ],
    },
  ]),
)

/** rs_test/srv/Upload: a large request the firmware checks without echoing (length, sampled hash). */
export const Upload = serviceDescriptor(
  "rs_test/srv/Upload",
  "0b10ad0000000000000000000000000000000000000000000000000000000000",
  0x0b10ad00,
  "uint8[] data\n---\nuint32 length\nuint32 hash\n",
  messageDescriptor<{ data: Uint8Array }>("rs_test/srv/Upload_Request", "", [
    { name: "rs_test/srv/Upload_Request", definitions: [{ type: "uint8", name: "data", isComplex: false, isArray: true }] },
  ]),
  messageDescriptor<{ length: number; hash: number }>("rs_test/srv/Upload_Response", "", [
    {
      name: "rs_test/srv/Upload_Response",
      definitions: [
        { type: "uint32", name: "length", isComplex: false, isArray: false },
        { type: "uint32", name: "hash", isComplex: false, isArray: false },
      ],
    },
  ]),
)

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

import { jd } from "../../host/transport/jacdac"
import { parseDeviceFrame, REPORT_FRAME_OUT, CMD_FRAME, type DeviceRecord } from "../../host/client/records"
import type { BuiltFirmware } from "../../host/sim/vm"

/** The firmware under test; RS_FW_DIR points at a prebuilt bytecode folder instead. */
export function testFirmware(): string | BuiltFirmware {
  const dir = process.env.RS_FW_DIR
  return dir ? { entry: "prebuilt", dir, bytecodeBytes: 0 } : "test/firmware/services_fw.ts"
}

/** Host->device records in a raw Jacdac frame (kind byte, call id), for frame filters. */
export function hostRecords(frame: Uint8Array): { kind: number; callId: number }[] {
  const out: { kind: number; callId: number }[] = []
  for (const p of jd.Packet.fromFrame(frame, 0)) {
    if (p.isReport || p.serviceCommand !== CMD_FRAME) continue
    const d = p.data
    let o = 0
    while (o + 2 <= d.length) {
      const len = d[o + 1]!
      const id = o + 6 <= d.length ? new DataView(d.buffer, d.byteOffset + o + 2, 4).getUint32(0, true) : 0
      out.push({ kind: d[o]!, callId: id })
      o += 2 + len
    }
  }
  return out
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
