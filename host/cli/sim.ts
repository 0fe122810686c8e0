// `robot sim`: starts the simulated robot (firmware in the DeviceScript VM + simulated hardware on
// the host) and prints what to do next. With --devtools, only the simulated hardware is started
// and attached to a running devtools server (the DeviceScript VS Code simulator's), which runs the
// firmware itself. Runs until Ctrl+C.
import type { Command } from "commander"
import * as path from "node:path"
import { loadConfig } from "../config"
import { startSimulatedRobot, type SimulatedRobot } from "../sim/robot"
import { addListenOptions, listenSettings, serveBridge, type CliBridge } from "./bridge"

export interface SimCommandOptions {
  devtools?: string | boolean
  firmware?: string
  /** false with --no-bridge; otherwise the bridge (rosbridge, HTTP, dashboard) starts too */
  bridge?: boolean
  host?: string
  port?: string
  token?: string
  foxglovePort?: string
  foxglove?: boolean
}

/** Prints the services the firmware lists, and example commands. */
async function printNextSteps(robot: SimulatedRobot, firmware: string) {
  const out: string[] = []
  if (robot.node) {
    out.push(`Simulated robot is running: ${firmware} in the DeviceScript VM, hardware simulated on the host.`)
    const services = await robot.node.listServices({ timeoutMs: 15000 })
    out.push("", "Services:")
    for (const s of services) out.push(`  ${s.name.padEnd(16)} ${s.type}`)
  } else {
    out.push(
      "Simulated hardware is attached to the devtools bus (motors, pan servo, LED, button, battery, camera).",
      "Run the firmware in the DeviceScript simulator (VS Code: DeviceScript > Run, or `npx devs run src/main.ts`);",
      "its roles bind to this hardware within about a second.",
    )
  }
  // --devtools: the CLI talks to the Jacdac bus on ws://127.0.0.1:8081 directly, which is the
  // rig's hub in process mode and the devtools server in devtools mode.
  out.push(
    "",
    "Next, in another terminal:",
    "  robot service list --devtools -t",
    "  robot service call /get_state --devtools",
    '  robot service call /drive robot_interfaces/srv/Drive "{left: 0.5, right: 0.5, duration_ms: 2000}" --devtools',
    '  robot service call /set_pan robot_interfaces/srv/SetPan "{angle: 30}" --devtools',
    '  robot service call /take_picture robot_interfaces/srv/TakePicture "{resolution: 1, quality: 80}" --devtools --out picture.jpg',
    "",
    "Press the simulated button: type 'b' + Enter (toggles). Stop with Ctrl+C.",
  )
  console.log(out.join("\n"))
}

/** Runs `robot sim`; resolves when the robot has stopped (Ctrl+C). */
export async function runSim(opts: SimCommandOptions): Promise<void> {
  const { config, dir } = loadConfig()
  const firmware = opts.firmware ?? config.firmware.entry
  const devtools = opts.devtools === true ? config.simulator.devtools : opts.devtools || undefined
  const withBridge = opts.bridge !== false && !devtools
  const listen = withBridge ? listenSettings(opts) : undefined
  const robot = await startSimulatedRobot({ firmware: path.resolve(dir, firmware), devtools })
  let bridge: CliBridge | undefined
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    console.log("\nstopping the simulated robot")
    await bridge?.close()
    await robot.close()
    process.stdin.pause()
  }
  process.once("SIGINT", () => void stop())
  process.once("SIGTERM", () => void stop())
  robot.hardware.camera.on("picture", (p: { width: number; height: number; size: number }) =>
    console.log(`[sim] camera: ${p.width}x${p.height} JPEG, ${p.size} bytes`),
  )
  try {
    if (listen && robot.node) {
      bridge = await serveBridge(robot.node, `the simulated robot (${firmware} in the DeviceScript VM, hardware simulated on the host)`, listen)
      console.log("Press the simulated button: type 'b' + Enter (toggles). Stop with Ctrl+C.")
    } else await printNextSteps(robot, firmware)
  } catch (e) {
    console.error(`robot sim: the firmware did not list its services: ${(e as Error).message}`)
  }
  let pressed = false
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (line: string) => {
    if (line.trim() === "b") {
      pressed = !pressed
      void robot.hardware.pressButton(pressed)
      console.log(`[sim] button ${pressed ? "down" : "up"}`)
    }
  })
  await new Promise<void>((resolve) => process.stdin.once("pause", () => resolve()))
}

export function registerSim(program: Command): void {
  const cmd = program
    .command("sim")
    .description("run the robot firmware in the DeviceScript simulator with simulated hardware, and the bridge on 127.0.0.1:9090")
    .option("--devtools [url]", "only start the simulated hardware, on a devtools server (default from devs.json)")
    .option("--firmware <entry>", "firmware entry to run (default from devs.json)")
    .option("--no-bridge", "do not start the bridge (rosbridge, HTTP API, dashboard)")
  addListenOptions(cmd, "bridge: ")
  cmd.action(async (opts: SimCommandOptions) => {
    await runSim(opts)
  })
}
