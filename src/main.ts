// Robot firmware: ROS 2-style services over the robot's hardware (src/robot/), served with the
// createService runtime (src/lib/services.ts). The same program runs on the robot_s3 board and in
// the DeviceScript simulator, where the host simulates the hardware (`robot sim`).
import * as ds from "@devicescript/core"
import { createService } from "./lib/services"
import { AddTwoInts, Diagnose, Drive, GetState, SetBool, SetPan, TakePicture, Trigger } from "./gen/interfaces"
import { Robot } from "./robot/robot"
import { startHardware } from "./robot/select"

const robot = new Robot(startHardware())

createService(AddTwoInts, "add_two_ints", async (req) => await robot.counted(async () => ({ sum: req.a + req.b })))

createService(GetState, "get_state", async () => await robot.counted(async () => await robot.state()))

// Concurrency (docs/protocol.md): drive and set_pan "latest" (a newer command supersedes the running
// one), take_picture and set_led "serial" (one capture / one LED change at a time), the rest parallel.
createService(TakePicture, "take_picture", async (req) =>
    await robot.counted(async () => {
        const pic = await robot.takePicture(req.resolution, req.quality)
        const t = Math.floor(ds.millis())
        return {
            image: {
                header: { stamp: { sec: Math.floor(t / 1000), nanosec: (t % 1000) * 1000000 }, frame_id: "camera" },
                format: "jpeg",
                data: pic.jpeg,
            },
            width: pic.width,
            height: pic.height,
        }
    }), { concurrency: "serial" }
)

createService(SetBool, "set_led", async (req) =>
    await robot.counted(async () => {
        const on = await robot.setLed(req.data)
        return { success: on === req.data, message: on ? "LED on" : "LED off" }
    }), { concurrency: "serial" }
)

createService(Drive, "drive", async (req) =>
    await robot.counted(async () => ({ stop_at_ms: await robot.drive(req.left, req.right, req.duration_ms) })), { concurrency: "latest" }
)

createService(SetPan, "set_pan", async (req) => await robot.counted(async () => ({ angle: await robot.setPan(req.angle) })), { concurrency: "latest" })

createService(Trigger, "stop", async () =>
    await robot.counted(async () => {
        await robot.stop()
        return { success: true, message: "motors stopped" }
    })
)

// `robot doctor` (host/cli/doctor.ts): hardware identity and a frame read two ways.
createService(Diagnose, "diagnose", async (req) => await robot.counted(async () => await robot.diagnose(req.check, req.chunk_size)))

console.log("robot services up")
