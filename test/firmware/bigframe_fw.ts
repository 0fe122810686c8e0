// The test firmware (services_fw.ts) with the MQTT link's largest frames: maxRecord is
// clamp(budget / 12, 236, 4096), so a budget of 49152 gives 4096-byte frames, whose PUBLISHes
// (the frame, its topic and header) are larger than one TLS write may be on the ESP32
// (test/host/mqtt_device.test.ts, "mqtts:// with the largest frames"). Its other limits are services_fw.ts's.
import { configureServices } from "@robot-services/device"
import "./services_fw"

// (before the link reads the budget: it does so once MQTT_URL is set, after the program's first turn)
configureServices({ budget: 49152 })
