// test/firmware/actions_fw.ts with the MQTT link too (ROBOT_NAME and MQTT_URL come from the rig's
// settings), so that one VM serves its actions over Jacdac and over a broker:
// test/host/cli_action.test.ts drives `robot action` on both.
import "./actions_fw"
import { startMqttLink } from "@robot-services/device/mqtt"

startMqttLink()
