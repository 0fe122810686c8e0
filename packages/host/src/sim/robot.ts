// The simulated robot: the real firmware (src/main.ts) in the DeviceScript VM plus the simulated
// hardware (packages/host/src/sim/hardware.ts) on the same Jacdac bus, and a host client node connected to it.
//
// Two ways to run it:
// - in process (default): the services engineer's rig (packages/host/src/sim/rig.ts) boots the firmware in the
//   VM inside this Node process and exposes its jacdac-ts bus; the hardware device joins that bus.
// - devtools: the firmware runs elsewhere (the DeviceScript VS Code simulator, or `devs run`),
//   connected to the devtools server at ws://127.0.0.1:8081; the hardware device joins the
//   devtools bus over the WebSocket. No node is created in this mode.
import * as fs from "node:fs"
import * as path from "node:path"
import type { RobotNode } from "../client/api"
import { SimulatedHardware, type SimulatedHardwareOptions } from "./hardware"
import { jd, type JD } from "../transport/jacdac"
import { startRig, type Rig, type RigOptions } from "./rig"
import { GetState } from "../gen/interfaces"
import { ServiceError } from "../client/errors"

/**
 * Resolves once the firmware's roles are bound to the simulated parts (about a second after both
 * are on the bus): `get_state` reads every part and answers `unavailable` until then.
 * Throws after `timeoutMs` with the last error.
 */
async function waitUntilBound(node: RobotNode, timeoutMs: number): Promise<void> {
  const client = node.createClient(GetState, "get_state")
  await client.waitForService({ timeoutMs })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await client.call({}, { timeoutMs: Math.max(1000, deadline - Date.now()) })
      return
    } catch (e) {
      const unbound = e instanceof ServiceError && e.code === "unavailable" && /not connected/.test(e.message)
      if (!unbound || Date.now() > deadline) throw e
      await new Promise<void>((r) => setTimeout(r, 100)) // poll again: binding has no event the host sees
    }
  }
}

export interface SimulatedRobotOptions {
  /** Firmware entry to build and run in the VM (default src/main.ts); in-process mode only. */
  firmware?: string
  /** Attach the hardware to a devtools server at this URL instead of starting the VM here. */
  devtools?: string
  /** Simulated hardware settings (battery model, device id). */
  hardware?: SimulatedHardwareOptions
  /** In process: resolve only once the firmware's roles are bound to the hardware (default true). */
  waitForHardware?: boolean
  /** Extra options for the in-process rig (packages/host/src/sim/rig.ts), e.g. `echoVm`, `deviceId`. */
  rig?: Omit<RigOptions, "firmware">
}

export interface SimulatedRobot {
  /** Client node connected to the firmware (undefined in devtools mode). */
  node: RobotNode | undefined
  /** The in-process rig (undefined in devtools mode). */
  rig: Rig | undefined
  /** The Jacdac bus the hardware is on (in process: the rig client's bus). */
  bus: JD.JDBus
  hardware: SimulatedHardware
  /**
   * In process: whether the firmware is this repository's robot (it serves /get_state, which reads
   * the simulated parts); another firmware runs with the parts on its bus but is not waited on.
   * Undefined in devtools mode (the firmware is not this program's).
   */
  robotFirmware: boolean | undefined
  /** Detaches the hardware and closes the rig or the devtools connection. */
  close(): Promise<void>
}

/** What `robot sim` and `robot bridge` say of the simulated hardware when the firmware is not this repository's robot. */
export function otherFirmwareNote(firmware: string): string {
  return (
    `${firmware} does not serve /get_state: it is not this package's example robot. The example robot's ` +
    "simulated hardware (motors, pan servo, LED, button, battery, camera) is on the bus all the same; " +
    "roles of those kinds in your firmware bind to it, and nothing waits for them."
  )
}

/** Custom service specs compiled by `devs build` (robotCamera, rosServices), for readable logs. */
function loadCustomSpecs(root: string): unknown[] {
  const file = path.join(root, ".devicescript", "services.json")
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as unknown[]
  } catch {
    return []
  }
}

/** Connects a jacdac-ts bus to a devtools WebSocket. Rejects if it cannot connect in `timeoutMs`. */
export async function connectDevtoolsBus(url: string, timeoutMs = 5000): Promise<JD.JDBus> {
  const g = globalThis as { WebSocket?: unknown }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!g.WebSocket) g.WebSocket = require("ws")
  const specs = loadCustomSpecs(process.cwd())
  if (specs.length) jd.loadServiceSpecifications(specs as jdspec.ServiceSpec[])
  const transport = jd.createWebSocketTransport(url)
  const bus = new jd.JDBus([transport], { disableRoleManager: true })
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      bus.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`could not connect to devtools at ${url} within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (e) {
    await bus.dispose()
    throw e
  } finally {
    if (timer) clearTimeout(timer)
  }
  if (!bus.connected) {
    await bus.dispose()
    throw new Error(`could not connect to devtools at ${url}: is \`devs devtools\` or the VS Code simulator running?`)
  }
  return bus
}

/**
 * Starts the simulated robot. In-process by default (firmware in the VM here, plus a connected
 * node); with `devtools` set, only the hardware is started and attached to that devtools bus.
 * Throws if the rig cannot start or the devtools server cannot be reached.
 */
export async function startSimulatedRobot(opts: SimulatedRobotOptions = {}): Promise<SimulatedRobot> {
  const hardware = new SimulatedHardware(opts.hardware)
  if (opts.devtools) {
    const bus = await connectDevtoolsBus(opts.devtools)
    hardware.attach(bus)
    return {
      node: undefined,
      rig: undefined,
      bus,
      hardware,
      robotFirmware: undefined,
      close: async () => {
        hardware.detach()
        await bus.dispose()
      },
    }
  }
  const rig = await startRig({ ...opts.rig, firmware: opts.firmware ?? "src/main.ts" })
  let robotFirmware: boolean
  try {
    hardware.attach(rig.bus)
    // (the rig has listed the services already: this list is the node's)
    robotFirmware = (await rig.node.listServices()).some((s) => s.name === "/get_state")
    if (robotFirmware && opts.waitForHardware !== false) await waitUntilBound(rig.node, 20000)
  } catch (e) {
    hardware.detach()
    await rig.close()
    throw e
  }
  return {
    node: rig.node,
    rig,
    bus: rig.bus,
    hardware,
    robotFirmware,
    close: async () => {
      hardware.detach()
      await rig.close()
    },
  }
}
