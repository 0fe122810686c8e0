// Picks the robot's hardware at start: the board's own parts on an ESP32, or client roles bound
// to the host's simulated parts when running in the DeviceScript simulator (VM).
import * as ds from "@devicescript/core"
import { Hardware } from "./hardware"
import { startBoardHardware } from "./board"
import { startSimulatedHardware } from "./sim"

/** Starts and returns the robot's parts; call once, at the top of the program. */
export function startHardware(): Hardware {
    const hw = ds.isSimulator() ? startSimulatedHardware() : startBoardHardware()
    console.log(`robot hardware: ${hw.kind}`)
    return hw
}
