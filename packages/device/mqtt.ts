// @robot-services/device/mqtt: the MQTT link (docs/mqtt.md). Import it and call `startMqttLink()`
// after your `createService` calls; settings MQTT_URL, ROBOT_NAME, MQTT_USER, MQTT_PASS.
export { startMqttLink } from "./src/net/mqtt"
