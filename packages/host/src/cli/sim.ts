// `robot sim`: starts the simulated robot (firmware in the DeviceScript VM + simulated hardware on
// the host) and prints what to do next. With --devtools, only the simulated hardware is started
// and attached to a running devtools server (the DeviceScript VS Code simulator's), which runs the
// firmware itself. Runs until Ctrl+C.
import type { Command } from "commander"
import * as path from "node:path"
import { loadConfig } from "../config"
import { ROBOT_NAME } from "../client/names"
import { mqttSettings, writeVmSettings, type RigMqttOptions } from "../sim/rig"
import { otherFirmwareNote, startSimulatedRobot, type SimulatedRobot } from "../sim/robot"
import { addListenOptions, addMaxResponseOption, BROKER_FLAGS, brokerOptionsGiven, listenSettings, maxResponseBytes, serveBridge, type BrokerCommandOptions, type CliBridge, type ListenCommandOptions } from "./serve"
import { ensurePortFree, lockAdvice, lockWaitMs, probeSimulatorLock, startupProgress } from "./startup"
import { PortLockBusyError } from "../sim/vm"
import { HOST_RATE_BYTES_PER_S } from "../mqtt/broker"

/** (the embedded broker's options go with --robots) */
export interface SimCommandOptions extends BrokerCommandOptions, ListenCommandOptions {
  devtools?: string | boolean
  firmware?: string
  /** false with --no-bridge; otherwise the bridge (rosbridge, HTTP, dashboard) starts too */
  bridge?: boolean
  /** --wait [seconds] for the simulator lock */
  wait?: string | boolean
  /** --mqtt <url>: the VM's MQTT_URL setting (its second link, docs/mqtt.md) */
  mqtt?: string
  /** --name <name>: the VM's ROBOT_NAME setting (default "sim") */
  name?: string
  /** --robots <n>: n simulated robots (VMs) on a broker, served as a fleet */
  robots?: string
  /** --max-response-bytes <n>: the largest response the bridge's client takes from a robot */
  maxResponseBytes?: string
}

/** Prints the services the firmware lists, and example commands. */
async function printNextSteps(robot: SimulatedRobot, firmware: string) {
  const out: string[] = []
  let services: { name: string; type: string }[] = []
  if (robot.node) {
    out.push(`Simulated robot is running: ${firmware} in the DeviceScript VM, hardware simulated on the host.`)
    if (!robot.robotFirmware) out.push(otherFirmwareNote(firmware))
    services = await robot.node.listServices({ timeoutMs: 15000 }).catch((e: Error) => {
      throw new Error(`the firmware did not list its services: ${e.message}`)
    })
    out.push("", "Services:")
    for (const s of services) out.push(`  ${s.name.padEnd(16)} ${s.type}`)
  } else {
    out.push(
      "Simulated hardware is attached to the devtools bus (motors, pan servo, LED, button, battery, camera).",
      `Run the firmware in the DeviceScript simulator (VS Code: DeviceScript > Run, or \`npx devs run ${firmware}\`);`,
      "roles of those kinds bind to this hardware within about a second.",
    )
  }
  // --devtools: the CLI talks to the Jacdac bus on ws://127.0.0.1:8081 directly, which is the
  // rig's hub in process mode and the devtools server in devtools mode.
  out.push("", "Next, in another terminal:", "  robot service list --devtools -t")
  if (robot.robotFirmware) {
    out.push(
      "  robot service call /get_state --devtools",
      '  robot service call /drive robot_interfaces/srv/Drive "{left: 0.5, right: 0.5, duration_ms: 2000}" --devtools',
      '  robot service call /set_pan robot_interfaces/srv/SetPan "{angle: 30}" --devtools',
      '  robot service call /take_picture robot_interfaces/srv/TakePicture "{resolution: 1, quality: 80}" --devtools --out picture.jpg',
    )
  } else {
    const s = services[0]
    out.push(s ? `  robot service call ${s.name} ${s.type} "{}" --devtools   (the request's fields as YAML)` : "  robot service call <service> <type> \"{...}\" --devtools   (a service from that list)")
  }
  out.push("", "Press the simulated button: type 'b' + Enter (toggles); 'help' lists the commands. Stop with Ctrl+C.")
  console.log(out.join("\n"))
}

/** Runs `robot sim`; resolves when the robot has stopped (Ctrl+C). Rejects, with nothing left running, when it cannot start. */
export async function runSim(opts: SimCommandOptions): Promise<void> {
  if (opts.robots !== undefined) return await runSimFleet(opts)
  if (brokerOptionsGiven(opts)) throw new Error(`${BROKER_FLAGS} configure the embedded broker of --robots <n>: add --robots, or leave them out`)
  const { config, dir } = loadConfig()
  const firmware = opts.firmware ?? config.firmware.entry
  const devtools = opts.devtools === true ? config.simulator.devtools : opts.devtools || undefined
  const withBridge = opts.bridge !== false && !devtools
  if (devtools && opts.maxResponseBytes !== undefined) throw new Error("--max-response-bytes bounds the client robot sim starts; with --devtools it starts none (only the hardware)")
  const maxResponse = maxResponseBytes(opts)
  const listen = withBridge ? listenSettings(opts) : undefined
  const waitMs = lockWaitMs(opts.wait)
  // everything that can be checked is checked before the VM starts
  if (listen) await ensurePortFree(listen.host, listen.port)
  if (!devtools && waitMs === 0) await probeSimulatorLock()
  const mqtt: RigMqttOptions | undefined = opts.mqtt ? { url: opts.mqtt, name: opts.name ?? "sim" } : undefined
  if (mqtt && !/^mqtts?:\/\/[^/:]+(:\d+)?\/?$/.test(mqtt.url)) throw new Error(`--mqtt takes mqtt://host[:port] or mqtts://host[:port], got ${mqtt.url}`)
  if (mqtt && !ROBOT_NAME.test(mqtt.name)) throw new Error(`--name takes 1-32 characters of [A-Za-z0-9_-], got ${mqtt.name}`)
  const progress = startupProgress()
  let robot: SimulatedRobot
  try {
    robot = await startSimulatedRobot({ firmware: path.resolve(dir, firmware), devtools, rig: { lockWaitMs: waitMs, onProgress: progress.step, mqtt, maxResponseBytes: maxResponse } })
    // with --devtools the VM is the devtools server's (the VS Code simulator): its settings are written there
    if (mqtt && !robot.rig) {
      try {
        await writeVmSettings(robot.bus, mqttSettings(mqtt))
      } catch (e) {
        await robot.close()
        throw e
      }
    }
    if (mqtt) progress.step(`MQTT: the firmware connects to ${mqtt.url} as robots/${mqtt.name}/ (docs/mqtt.md)`)
  } catch (e) {
    throw e instanceof PortLockBusyError ? new Error(lockAdvice(e.message)) : e
  } finally {
    progress.done()
  }
  let bridge: CliBridge | undefined
  try {
    if (listen && robot.node) bridge = await serveBridge(robot.node, `the simulated robot (${firmware} in the DeviceScript VM, hardware simulated on the host)`, listen)
    else await printNextSteps(robot, firmware)
  } catch (e) {
    // nothing may stay behind: the VM, the lock helper and the hardware go before the error is shown
    await robot.close()
    throw e
  }
  if (bridge && !robot.robotFirmware) console.log(otherFirmwareNote(firmware))
  if (bridge) console.log("Press the simulated button: type 'b' + Enter (toggles); 'help' lists the commands. Stop with Ctrl+C.")
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
  let pressed = false
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (text: string) => {
    for (const raw of text.split("\n")) {
      const line = raw.trim()
      if (line === "b") {
        pressed = !pressed
        void robot.hardware.pressButton(pressed)
        console.log(`[sim] button ${pressed ? "down" : "up"}`)
      } else if (line === "help" || line === "?") console.log(SIM_HELP)
      else if (line) console.log(`[sim] unknown command '${line}' (help lists the commands)`)
    }
  })
  await new Promise<void>((resolve) => process.stdin.once("pause", () => resolve()))
}

/**
 * `robot sim --robots N`: N VMs (robot1..robotN), each with its own simulated hardware, on the
 * embedded broker (or --mqtt <url>), and the bridge serving them all as /<robot>/<service>.
 */
async function runSimFleet(opts: SimCommandOptions): Promise<void> {
  const n = Number(opts.robots)
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`--robots takes a whole number 1-16 (each robot is a VM), got ${opts.robots}`)
  if (opts.devtools) throw new Error("--robots runs its own VMs: it does not go with --devtools")
  if (opts.name !== undefined) throw new Error("--robots names the robots robot1..robotN: drop --name")
  if (opts.mqtt !== undefined && brokerOptionsGiven(opts)) throw new Error(`${BROKER_FLAGS} configure the embedded broker: leave out --mqtt <url>`)
  const { config, dir } = loadConfig()
  const firmware = opts.firmware ?? config.firmware.entry
  const listen = opts.bridge !== false ? listenSettings(opts) : undefined
  const maxResponse = maxResponseBytes(opts)
  const waitMs = lockWaitMs(opts.wait)
  if (listen) await ensurePortFree(listen.host, listen.port)
  if (waitMs === 0) await probeSimulatorLock()
  const { startCliBroker } = (require("./serve") as typeof import("./serve"))
  const { openMqttFleet } = (require("../mqtt/fleet") as typeof import("../mqtt/fleet"))
  const { startSimFleet } = (require("../sim/fleet") as typeof import("../sim/fleet"))
  const closers: (() => Promise<void>)[] = []
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => {})
  }
  const progress = startupProgress()
  let fleetNode: import("../client/fleet").FleetNode
  let robots: import("../sim/fleet").SimFleetRobot[]
  let sims: import("../sim/fleet").SimFleet
  let broker: import("../mqtt/broker").EmbeddedBroker | undefined
  let restartBroker: ((stopOnly?: boolean) => Promise<void>) | undefined
  try {
    let url = opts.mqtt
    let host: { username?: string; password?: string } = {}
    let credentials: ((name: string) => { user: string; pass: string }) | undefined
    if (url === undefined) {
      const b = await startCliBroker(opts)
      broker = b.broker
      closers.push(() => broker?.close() ?? Promise.resolve())
      url = b.broker.url
      host = { username: b.username, password: b.password }
      const users = b.users
      if (users) {
        // each robot logs in as the user of its own name (docs/mqtt.md: a robot's user is its name)
        const missing = Array.from({ length: n }, (_, i) => `robot${i + 1}`).filter((r) => !users.some((u) => u.role === "robot" && u.name === r))
        if (missing.length) throw new Error(`--broker-users ${opts.brokerUsers}: add a user with role "robot" for ${missing.join(", ")} (a robot's user name is its name)`)
        credentials = (name) => {
          const u = users.find((x) => x.role === "robot" && x.name === name)!
          return { user: u.name, pass: u.password }
        }
      }
      // the same address, port and users again: robots and the bridge reconnect by themselves
      const port = Number(new URL(url).port)
      restartBroker = async (stopOnly = false) => {
        await broker?.close()
        broker = undefined
        if (stopOnly) return
        const again = await startCliBroker({ ...opts, brokerPort: String(port) })
        broker = again.broker
      }
    }
    sims = await startSimFleet({ robots: n, firmware: path.resolve(dir, firmware), mqttUrl: url, credentials, lockWaitMs: waitMs, onProgress: progress.step })
    closers.push(() => sims.close())
    robots = sims.robots
    progress.step(`waiting for ${n} robot${n > 1 ? "s" : ""} on ${url}`)
    const f = await openMqttFleet({ url, ...host, maxResponseBytes: maxResponse })
    closers.push(() => f.close())
    await f.directory.waitFor({ names: robots.map((r) => r.name), timeoutMs: 30000 })
    await f.fleet.listServices({ timeoutMs: 30000 })
    fleetNode = f.fleet
  } catch (e) {
    await closeAll()
    throw e instanceof PortLockBusyError ? new Error(lockAdvice(e.message)) : e
  } finally {
    progress.done()
  }
  try {
    if (listen) {
      const b = await serveBridge(fleetNode, `${n} simulated robots (${firmware} in ${n} DeviceScript VMs, hardware simulated on the host; over MQTT)`, listen)
      closers.push(() => b.close())
    } else {
      console.log(`${n} simulated robots are online: ${robots.map((r) => r.name).join(", ")}. Try: robot service list --mqtt ${opts.mqtt ?? "mqtt://127.0.0.1:" + (opts.brokerPort ?? "1883")}`)
    }
  } catch (e) {
    await closeAll()
    throw e
  }
  console.log("Type 'help' + Enter for the commands (a robot's button, stop/start/reboot a robot, restart the broker). Stop with Ctrl+C.")
  for (const r of robots) r.hardware.camera.on("picture", (p: { width: number; height: number; size: number }) => console.log(`[sim] ${r.name} camera: ${p.width}x${p.height} JPEG, ${p.size} bytes`))
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    console.log("\nstopping the simulated robots")
    await closeAll()
    process.stdin.pause()
  }
  process.once("SIGINT", () => void stop())
  process.once("SIGTERM", () => void stop())
  const console_ = fleetConsole({ robots: sims, broker: restartBroker, say: (l) => console.log(l) })
  // one command at a time (a robot's VM joins its hub room in the order the VMs connect)
  let queue = Promise.resolve()
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (text: string) => {
    for (const line of text.split("\n")) {
      if (!line.trim()) continue
      queue = queue.then(() => (stopping ? undefined : console_(line)))
    }
  })
  await new Promise<void>((resolve) => process.stdin.once("pause", () => resolve()))
}

/** The commands `robot sim` (one robot) takes on its standard input. */
export const SIM_HELP = [
  "Commands (type one + Enter):",
  "  help     this list",
  "  b        press or release the simulated button (toggles)",
  "  Ctrl+C   stop (several robots to stop, start and reboot: robot sim --robots N)",
].join("\n")

/** The commands `robot sim --robots N` takes on its standard input. */
export const FLEET_HELP = [
  "Commands (type one + Enter); <robot> is a number (2) or a name (robot2):",
  "  help                 this list",
  "  b [<robot>]          press or release the robot's simulated button (toggles; default robot1)",
  "  stop <robot>         power the robot off (its VM stops; the broker publishes its last will: offline)",
  "  start <robot>        power a stopped robot on again (same settings)",
  "  reboot <robot>       reset the robot (stop, then start; also: restart <robot>)",
  "  broker restart       stop the embedded MQTT broker and start it again on the same port (robots and bridge reconnect)",
  "  broker stop          stop the embedded broker (every robot goes offline); broker start: start it again",
  "  Ctrl+C               stop everything",
].join("\n")

/**
 * Reads one command line of `robot sim --robots N` and carries it out; resolves when it is done.
 * Says what happened (or why not) through `say`; never throws.
 */
export function fleetConsole(o: {
  robots: Pick<import("../sim/fleet").SimFleet, "robots" | "stop" | "start" | "restart" | "running">
  /** restarts the embedded broker (stopOnly: stops it); undefined with --mqtt <url> */
  broker?: (stopOnly?: boolean) => Promise<void>
  say: (line: string) => void
}): (line: string) => Promise<void> {
  const pressed = new Map<string, boolean>()
  let brokerDown = false
  const robotOf = (arg: string | undefined) => {
    const names = o.robots.robots.map((r) => r.name)
    if (arg === undefined) return undefined
    const name = /^\d+$/.test(arg) ? `robot${arg}` : arg
    const r = o.robots.robots.find((x) => x.name === name)
    if (!r) throw new Error(`no robot ${arg} (robots: ${names.join(", ")}, or 1-${names.length})`)
    return r
  }
  return async (line) => {
    const [cmd, arg, extra] = line.trim().split(/\s+/)
    try {
      if (extra !== undefined) throw new Error(`'${line.trim()}': one argument at most (help lists the commands)`)
      switch (cmd) {
        case "help":
        case "?":
          return o.say(FLEET_HELP)
        case "b": {
          const r = robotOf(arg ?? "1")!
          if (!o.robots.running(r.name)) throw new Error(`${r.name} is stopped: start ${r.name} first`)
          const down = !pressed.get(r.name)
          pressed.set(r.name, down)
          await r.hardware.pressButton(down)
          return o.say(`[sim] ${r.name} button ${down ? "down" : "up"}`)
        }
        case "stop":
        case "start":
        case "reboot":
        case "restart": {
          const r = robotOf(arg)
          if (!r) throw new Error(`${cmd} which robot? e.g. ${cmd} 2`)
          if (cmd === "stop") {
            if (!o.robots.running(r.name)) return o.say(`[sim] ${r.name} is already stopped`)
            await o.robots.stop(r.name)
            return o.say(`[sim] ${r.name} stopped (the bridge shows it offline once the broker notices)`)
          }
          if (cmd === "start" && o.robots.running(r.name)) return o.say(`[sim] ${r.name} is running (reboot ${arg} resets it)`)
          o.say(`[sim] ${cmd === "start" ? "starting" : "rebooting"} ${r.name}`)
          if (cmd === "start") await o.robots.start(r.name)
          else await o.robots.restart(r.name)
          return o.say(`[sim] ${r.name} is up; it connects to the broker within a few seconds`)
        }
        case "broker": {
          if (!o.broker) throw new Error("the broker is not this program's (--mqtt <url>): restart it where it runs")
          if (arg === "stop") {
            if (brokerDown) return o.say("[sim] the broker is already stopped")
            await o.broker(true)
            brokerDown = true
            return o.say("[sim] broker stopped: every robot is offline until 'broker start'")
          }
          if (arg === "start" || arg === "restart") {
            if (arg === "start" && !brokerDown) return o.say("[sim] the broker is running (broker restart restarts it)")
            await o.broker(false)
            brokerDown = false
            return o.say(`[sim] broker ${arg === "start" ? "started" : "restarted"}: robots and the bridge reconnect within a few seconds`)
          }
          throw new Error(`broker ${arg ?? ""}: say broker restart, broker stop or broker start`)
        }
        default:
          throw new Error(`unknown command '${line.trim()}' (help lists the commands)`)
      }
    } catch (e) {
      o.say(`[sim] ${(e as Error).message}`)
    }
  }
}


export function registerSim(program: Command): void {
  const cmd = program
    .command("sim")
    .description("run the robot firmware in the DeviceScript simulator with simulated hardware, and the bridge on 127.0.0.1:9090")
    .option("--devtools [url]", "only start the simulated hardware, on a devtools server (default from devs.json)")
    .option("--firmware <entry>", "firmware entry to run (default from devs.json)")
    .option("--no-bridge", "do not start the bridge (rosbridge, HTTP API, dashboard)")
    .option("--wait [seconds]", "if another `robot sim` or a test suite is using the simulator, wait for it (default 300 s) instead of failing")
    .option("--mqtt <url>", "also serve over MQTT: the VM's MQTT_URL setting, e.g. mqtt://127.0.0.1:1883 (docs/mqtt.md)")
    .option("--name <name>", "the VM's ROBOT_NAME with --mqtt: its topics are robots/<name>/… (default sim)")
    .option("--robots <n>", "run n robots (robot1..robotN, a VM each) on an MQTT broker (the embedded one, or --mqtt <url>); the bridge serves them as /<robot>/<service>")
    .option("--broker-host <address>", "with --robots: where the embedded broker listens (default 127.0.0.1)")
    .option("--broker-port <port>", "with --robots: the embedded broker's port (default 1883)")
    .option("--broker-users <file>", "with --robots: the embedded broker's users, JSON [{name, password, role: robot|host}]; each robot logs in as the user of its name (robot1..), the bridge as the host user (docs/mqtt.md)")
    .option("--broker-host-rate <bytes/s>", `with --robots: what one host may send one robot per second through the embedded broker; more is dropped (default ${HOST_RATE_BYTES_PER_S})`)
  addListenOptions(cmd, "bridge: ")
  addMaxResponseOption(cmd)
  cmd.action(async (opts: SimCommandOptions) => {
    await runSim(opts)
  })
}
