// The least firmware with a service (bench/size.ts, min_firmware_function_bytes): one AddTwoInts
// over Jacdac, as a user's project would write it. gen/ is written by bench/size.ts.
import { createService } from "@robot-services/device"
import { AddTwoInts } from "./gen/interfaces"

createService(AddTwoInts, "add_two_ints", async (req) => ({ sum: req.a + req.b }))
