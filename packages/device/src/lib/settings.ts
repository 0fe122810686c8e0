// One DeviceScript setting read as text, shared by the robot's calibration (src/robot/calibration.ts)
// and the MQTT link (packages/device/src/net/mqtt.ts): one reader instead of `readSetting` of @devicescript/settings
// beside a reader of our own (code size).
import * as ds from "@devicescript/core"
import "./strings" // first: see strings.ts
import { settings } from "@devicescript/settings"

/** The setting `key` as the text stored ("" when unset). Throws when the settings service fails. */
export async function settingText(key: string): Promise<string> {
    const pkt = await ds.actionReport(settings, "get", async () => await settings.get(key), (p) => p.decode()[0] === key)
    const b: Buffer = pkt.decode()[1]
    return b ? b.toString() : ""
}
