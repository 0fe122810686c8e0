// One DeviceScript setting read as text, shared by the robot's calibration (src/robot/calibration.ts)
// and the MQTT link (packages/device/src/net/mqtt.ts): one reader instead of `readSetting` of @devicescript/settings
// beside a reader of our own (code size).
import * as ds from "@devicescript/core"
import "../cdr/strings" // first: see strings.ts
import { settings } from "@devicescript/settings"

/**
 * The setting `key` as text ("" when unset): devtools stores a `.env` value as JSON
 * (`ROBOT_NAME=rover1` is the bytes `"rover1"`), given here without its quotes; text a host wrote
 * through Jacdac as it is; spaces around either trimmed. Throws when the settings service fails.
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
            if (!b) return ""
            let v = b.toString()
            // trimmed (`.env` values keep the spaces around them)
            let a = 0
            let z = v.length
            // (a character past the end reads as 0 here: the bounds are tested first, in single tests)
            while (a < z) {
                if (v.charCodeAt(a) > 32) break
                a++
            }
            while (z > a) {
                if (v.charCodeAt(z - 1) > 32) break
                z--
            }
            v = v.slice(a, z)
            // unquoted when a JSON string (one starts with a quote and, trimmed, ends with one:
            // JSON.parse throws on anything else that starts with one, `"` alone included)
            if (v[0] === '"')
                try {
                    return JSON.parse(v)
                } catch (e) {
                    // raw text after all
                }
            return v
        }
    }
    throw new Error("no answer from the settings service for " + key)
}
