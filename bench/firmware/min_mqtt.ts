// min_jacdac.ts with the MQTT link too (bench/size.ts, min_mqtt_firmware_function_bytes).
import { createService } from "@robot-services/device"
import { startMqttLink } from "@robot-services/device/mqtt"
import { AddTwoInts } from "./gen/interfaces"

createService(AddTwoInts, "add_two_ints", async (req) => ({ sum: req.a + req.b }))
startMqttLink()
