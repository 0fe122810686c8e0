// One DeviceScript setting read as text, shared by the robot's calibration (src/robot/calibration.ts)
// and the MQTT link (packages/device/src/net/mqtt.ts): one reader instead of `readSetting` of @devicescript/settings
// beside a reader of our own (code size).
import * as ds from "@devicescript/core"
import "../cdr/strings" // first: see strings.ts
import { settings } from "@devicescript/settings"

/**
 * The setting `key` as the text stored ("" when unset). Throws when the settings service fails.
 * Readers take turns: the answer comes through the settings role's `_reportHandlers.get`, the slot
 * in which DeviceScript's packet handler (core jacdac.ts `_onPacket`) resumes the one fiber waiting
 * for a command's report and then empties, rather than through `ds.actionReport`, whose role
 * emitter brings DeviceScript's event classes into the image (about 500 bytes; docs/benchmarks.md
 * "Firmware code size"). An answer for another key (a reader of @devicescript/settings) is skipped.
 */
export async function settingText(key: string): Promise<string> {
    const r = settings as any
    if (!r._reportHandlers) r._reportHandlers = {}
    const h = r._reportHandlers
    while (h.get) await ds.sleep(1)
    // (asked again after 500 ms without its answer, 5 times, as actionReport does: a reader that
    // waited forever would hold the slot, and every later reader would wait behind it)
    for (let i = 0; i < 5; i++) {
        h.get = ds.Fiber.self()
        try {
            await settings.get(key)
        } catch (e) {
            delete h.get
            throw e
        }
        let pkt = await ds.suspend<ds.Packet>(500)
        while (pkt && pkt.decode()[0] !== key) {
            h.get = ds.Fiber.self()
            pkt = await ds.suspend<ds.Packet>(500)
        }
        delete h.get
        if (pkt) {
            const b: Buffer = pkt.decode()[1]
            return b ? b.toString() : ""
        }
    }
    throw new Error("no answer from the settings service for " + key)
}
