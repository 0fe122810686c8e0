// The `robot` command line: ros2-style verbs for interfaces, services, actions, the bridge and the simulator.
// Each verb lives in its own module and registers itself on the program. Only the module of the
// verb being run is loaded (`robot service call` does not load the simulator, jacdac-ts or the
// bridge server: issue 17, a call's start-up time); help and unknown verbs load them all.
import { Command } from "commander"

/** Each verb's module, loaded on demand (a static `require` string, so packages/host/bin/robot.js's bundle has it). */
const VERBS: Record<string, () => (program: Command) => void> = {
  gen: () => (require("./gen") as typeof import("./gen")).registerGen,
  init: () => (require("./init") as typeof import("./init")).registerInit,
  interface: () => (require("./interface") as typeof import("./interface")).registerInterface,
  service: () => (require("./service") as typeof import("./service")).registerService,
  action: () => (require("./action") as typeof import("./action")).registerAction,
  bridge: () => (require("./bridge") as typeof import("./bridge")).registerBridge,
  sim: () => (require("./sim") as typeof import("./sim")).registerSim,
  doctor: () => (require("./doctor") as typeof import("./doctor")).registerDoctor,
}

const program = new Command()
program
  .name("robot")
  .description("ROS 2-style services and actions for DeviceScript robots")
  // (by the package's name: this file also runs as a bundle in node_modules/.cache, bin/robot.js)
  .version((require("@robot-services/host/package.json") as { version: string }).version)
  .showHelpAfterError()

// the verb is the first argument (the program has no options of its own before it)
const verb = process.argv[2]
const only = verb !== undefined && Object.hasOwn(VERBS, verb) ? verb : undefined
for (const [name, register] of Object.entries(VERBS)) if (only === undefined || name === only) register()(program)

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err)
  // (a hint of the CLI's own, e.g. what to do about a serial port another program holds)
  const hint = (require("./errors") as typeof import("./errors")).ownHint(err)
  console.error(hint ? `robot: ${msg} (${hint})` : `robot: ${msg}`)
  process.exitCode = process.exitCode || 1
})
