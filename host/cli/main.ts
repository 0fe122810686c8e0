// The `robot` command line: ros2-style verbs for interfaces, services, the bridge and the simulator.
// Each verb lives in its own module and registers itself on the program.
import { Command } from "commander"
import { registerGen } from "./gen"
import { registerInterface } from "./interface"
import { registerService } from "./service"
import { registerBridge } from "./bridge"
import { registerSim } from "./sim"
import { registerDoctor } from "./doctor"

const program = new Command()
program
  .name("robot")
  .description("ROS 2-style services for DeviceScript robots")
  .showHelpAfterError()

registerGen(program)
registerInterface(program)
registerService(program)
registerBridge(program)
registerSim(program)
registerDoctor(program)

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err)
  console.error(`robot: ${msg}`)
  process.exitCode = process.exitCode || 1
})
