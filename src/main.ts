// Robot firmware: ROS 2-style services over the robot's hardware (src/robot/), served with the
// createService runtime of @robot-services/device (packages/device), imported by name as any
// DeviceScript project would. The same program runs on the robot_s3 board and in
// the DeviceScript simulator, where the host simulates the hardware (`robot sim`).
import * as ds from "@devicescript/core"
import { ActionServerOptions, Concurrency, GoalHandle, ServiceType, createActionServer, createService, latest, serial, stampOf } from "@robot-services/device"
import { startMqttLink } from "@robot-services/device/mqtt"
import { AddTwoInts, Diagnose, Drive, DriveDistance, GetState, Rotate, Scan, SetBool, SetPan, TakePicture, Trigger } from "./gen/interfaces"
import { Picture } from "./robot/hardware"
import { checkRange, counted, diagnose, drive, initRobot, move, setLed, setPan, state, stop, takePicture } from "./robot/robot"
import { startHardware } from "./robot/select"

initRobot(startHardware())

/** Serves `handler` as `name`, each call counted by the robot (`counted`: calls served and failed, last error). */
function serve<Req, Res>(type: ServiceType<Req, Res>, name: string, handler: (req: Req) => Promise<Res>, concurrency?: Concurrency) {
    createService(type, name, async (req: Req) => await counted(handler, req), { concurrency })
}

serve(AddTwoInts, "add_two_ints", async (req) => ({ sum: req.a + req.b }))

serve(GetState, "get_state", state)

// Concurrency (docs/protocol.md): drive and set_pan `latest` (a newer command supersedes the running
// one), take_picture and set_led `serial` (one capture / one LED change at a time), the rest parallel.
/** a picture as sensor_msgs/CompressedImage, stamped now (robot uptime) */
function image(pic: Picture) {
    return {
        header: { stamp: stampOf(ds.millis()), frame_id: "camera" },
        format: "jpeg",
        data: pic.jpeg,
    }
}

serve(
    TakePicture,
    "take_picture",
    async (req) => {
        const pic = await takePicture(req.resolution, req.quality)
        return { image: image(pic), width: pic.width, height: pic.height }
    },
    serial
)

serve(
    SetBool,
    "set_led",
    async (req) => {
        const on = await setLed(req.data)
        return { success: on === req.data, message: on ? "LED on" : "LED off" }
    },
    serial
)

serve(Drive, "drive", drive, latest)

serve(SetPan, "set_pan", async (req) => ({ angle: await setPan(req.angle) }), latest)

serve(Trigger, "stop", async () => {
    await stop()
    return { success: true, message: "motors stopped" }
})

// `robot doctor` (packages/host/src/cli/doctor.ts): hardware identity and a frame read two ways.
serve(Diagnose, "diagnose", diagnose)

// Actions (docs/actions.md): a cancel stops the motors before it is answered; a goal that fails or
// is cancelled stops them too (move). One motion at a time: a newer goal takes over ("latest").
/**
 * drive_distance and rotate: move to the goal's field `target` (metres, degrees) at its
 * `speed`; `done` names the result's field and, with `left`, the feedback's. One closure for both
 * actions, the fields named by strings (a closure per action and per feedback cost about 100 bytes
 * more code).
 */
function motion(target: string, done: string, left: string, dflt: number, lim: number, turn: boolean): ActionServerOptions<any, any, any> {
    return {
        execute: async (g: any, h: GoalHandle<any, any>) => {
            const r: any = {}
            r[done] = await move(g[target], g.speed, dflt, lim, turn, h, done, left)
            return r
        },
        // (stop itself: the handle it is given is not read, and it returns nothing, not false)
        onCancel: stop,
        concurrency: "latest",
    }
}
createActionServer(DriveDistance(), "drive_distance", motion("distance", "distance_traveled", "distance_remaining", 0.5, 10, false))
createActionServer(Rotate(), "rotate", motion("angle", "angle_turned", "angle_remaining", 0.4, 720, true))

// scan: one picture per angle, each sent as feedback; the next waits until a host has it (the
// camera holds one picture), at most 5 s.
createActionServer(Scan(), "scan", {
    execute: async (g, h) => {
        const n = g.count
        let i = 0
        checkRange(n, 1, 19, false, "count must be in", "")
        for (; i < n && !h.cancelled; i++) {
            const at = await setPan(n > 1 ? g.from_angle + ((g.to_angle - g.from_angle) * i) / (n - 1) : g.from_angle)
            // the servo moves about 60 degrees in 100 ms
            await h.sleep(150)
            const pic = await takePicture(g.resolution, g.quality)
            h.feedback({ pictures_taken: i + 1, angle: at, image: image(pic) })
            await h.delivered(5000)
        }
        return { pictures_taken: i }
    },
    concurrency: "serial",
    maxGoals: 2,
})

// The same services over WiFi through an MQTT broker when the MQTT_URL setting names one
// (docs/mqtt.md). Started from a callback for code size: called directly here, the compiler
// numbers the link's strings before the codecs' field names, and the longer string indexes
// cost the codecs about 250 bytes.
startMqttLink.start()

console.log("robot services up")
