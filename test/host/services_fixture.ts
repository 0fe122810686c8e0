// What the service tests share beyond the test firmware's host side (harness/services.ts, which
// the benchmark uses too): which firmware to boot, and readers of raw frames for tests that watch
// the link itself.
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
