// The device's free heap, measured the only way DeviceScript allows (it has no heap API): the test
// firmware's probe (Echo mode 5, text "probe") allocates 256-byte buffers, logging the count, until
// the VM panics with OutOfMemory; the program then restarts. Used by the benchmark and the soak.
import { DEFAULT_TIMEOUT_MS } from "../packages/host/src/client/calls"
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import type { Rig } from "../packages/host/src/sim/rig"
import { Echo, echo } from "./services"

/**
 * free heap in bytes, counted by the firmware's probe (mode 5), with `hold` slow calls in flight.
 * `settled`: a line of the VM's log, since the program's last restart, to wait for before probing
 * (a rig with the MQTT link: /mqtt: online/, so that every probe counts the link's buffers; without
 * it a probe that ran before the link connected counted 1-2 KB more free heap than one after)
 */
export async function heapFree(rig: Rig, hold: number, settled?: RegExp): Promise<number> {
  const node = rig.node
  const add = node.createClient(AddTwoInts, "add_two_ints")
  const ec = node.createClient(Echo, "echo")
  for (let attempt = 0; attempt < 4; attempt++) {
    // the device is ready when a call goes through (after a restart jacdac-ts may still report a
    // late disconnect, which fails calls made meanwhile: then try again)
    for (;;) {
      try {
        await add.call({ a: 1n, b: 1n }, { timeoutMs: DEFAULT_TIMEOUT_MS })
        break
      } catch {
        await node.listServices({ timeoutMs: 30000 }).catch(() => {})
      }
    }
    if (settled) await rig.vm.waitForLog(settled, 60000)
    const boot = node.limits?.bootId
    const from = rig.vm.log.length
    const held = Array.from({ length: hold }, () => ec.call(echo("hold", { delay_ms: 600000 }), { timeoutMs: 120000 }).catch(() => {}))
    const probe = ec.call(echo("probe", { mode: 5 }), { timeoutMs: 120000 }).then(
      () => false,
      () => false,
    )
    const panicked = await Promise.race([rig.vm.waitForLog(/PANIC|OutOfMemory/, 120000).then(() => true), probe])
    await Promise.all([probe, ...held])
    const lines = rig.vm.log.slice(from)
    const counts = lines
      .map((l) => /heap-probe (\d+)/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => Number(m[1]))
    // clear the log up to the panic, so the next waitForLog sees only what the restarted program said
    let cut = lines.length - 1
    while (cut >= 0 && !/PANIC|OutOfMemory/.test(lines[cut]!)) cut--
    rig.vm.log.splice(0, from + cut + 1)
    if (!panicked || !lines.some((l) => /PANIC|OutOfMemory/.test(l))) continue
    // wait for the restarted program (a new bootId)
    if (node.limits?.bootId === boot)
      await new Promise<void>((resolve) => {
        const off = node.onServicesChanged(() => {
          if (node.limits?.bootId !== boot) {
            off()
            resolve()
          }
        })
      })
    return Math.max(0, ...counts) * 256
  }
  throw new Error("heap probe: the device never ran out of memory")
}

