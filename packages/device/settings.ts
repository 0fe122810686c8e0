// @robot-services/device/settings: `settingText(key)`, one DeviceScript setting read as text.
// A separate entry because @devicescript/settings makes its settings client (a role) when it is
// imported: a firmware that reads no setting carries none of it.
export { settingText } from "./src/lib/settings"
