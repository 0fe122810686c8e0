// Several simulated robots at once (`robot sim --robots N`): N DeviceScript VMs running the same
// firmware, each with its own simulated hardware and camera, its own flash (settings) and its own
// name, all on one frame hub on ws://127.0.0.1:8081 (or ROBOT_SIM_PORT's port, transport/hubport.ts) with
// rooms (packages/host/src/transport/hub.ts), so that each VM sees only its own hardware and its
// own Jacdac client, as N separate USB cables would. Each VM gets ROBOT_NAME and MQTT_URL through
// Jacdac (packages/host/src/sim/rig.ts `writeVmSettings`) and then serves its services over MQTT
// too (docs/mqtt.md): the way hosts reach them all at once.
import { copyFileSync, mkdirSync } from "node:fs"
import { join } from "node:path"
import { connect, type ServiceNode } from "../client/node"
import { ServiceError } from "../client/errors"
import { FrameHub, hubTransport } from "../transport/hub"
import { GetState } from "../gen/interfaces"
import { SimulatedHardware } from "./hardware"
import { mqttSettings, writeVmSettings } from "./rig"
import { acquirePortLock, buildFirmware, buildForPort, startVm, type BuiltFirmware, type VmProcess } from "./vm"
import { portLockFile, simPort } from "../transport/hubport"

export interface SimFleetOptions {
  /** How many robots (VMs). */
  robots: number
  /** Firmware entry (default src/main.ts) or a build. */
  firmware?: string | BuiltFirmware
  /** The broker every robot connects to (its MQTT_URL setting), e.g. `mqtt://127.0.0.1:1883`. */
  mqttUrl: string
  /** Robot names (default robot1..robotN). */
  names?: string[]
  /** Broker credentials per robot (MQTT_USER/MQTT_PASS settings), when the broker wants them. */
  credentials?: (name: string) => { user: string; pass: string } | undefined
  /** How long to wait for the simulator port lock (ms; 0: fail at once). */
  lockWaitMs?: number
  onProgress?: (step: string) => void
  echoVm?: boolean
  /** Per robot: how long to wait for its VM, services and hardware (ms, default 30000). */
  readyTimeoutMs?: number
}

export interface SimFleetRobot {
  name: string
  vm: VmProcess
  /** A Jacdac client of this robot's VM (its room on the hub). */
  node: ServiceNode
  hardware: SimulatedHardware
}

export interface SimFleet {
  readonly hub: FrameHub
  readonly robots: SimFleetRobot[]
  /** Kills robot `name`'s VM and starts it again (a reset: same flash, so same name and broker). */
  restart(name: string): Promise<void>
  /** Kills robot `name`'s VM (a power-off: its broker connection drops, the broker publishes its last will). */
  stop(name: string): Promise<void>
  /** Starts robot `name`'s stopped VM again (a power-on: same flash). Throws if it is running. */
  start(name: string): Promise<void>
  /** False while robot `name` is stopped. */
  running(name: string): boolean
  close(): Promise<void>
}

/** A private copy of the build for one VM: `devs run` keeps the VM's flash in its working folder. */
function vmCopy(fw: BuiltFirmware, name: string): BuiltFirmware {
  const dir = join(fw.dir, "robots", name)
  mkdirSync(dir, { recursive: true })
  for (const f of ["bytecode.devs", "bytecode-dbg.json", "bytecode-sizes.md"]) copyFileSync(join(fw.dir, f), join(dir, f))
  return { ...fw, dir }
}

/** Resolves once `get_state` answers over Jacdac: the firmware's roles are bound to the hardware. */
async function bound(node: ServiceNode, timeoutMs: number): Promise<void> {
  const client = node.createClient(GetState, "get_state")
  await client.waitForService({ timeoutMs })
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      await client.call({}, { timeoutMs: Math.max(1000, end - Date.now()) })
      return
    } catch (e) {
      const unbound = e instanceof ServiceError && e.code === "unavailable" && /not connected/.test(e.message)
      if (!unbound || Date.now() > end) throw e
      await new Promise<void>((r) => setTimeout(r, 100)) // binding has no event the host sees
    }
  }
}

/** Starts N simulated robots; rejects (with nothing left running) when one cannot start. */
export async function startSimFleet(o: SimFleetOptions): Promise<SimFleet> {
  if (!Number.isInteger(o.robots) || o.robots < 1) throw new Error(`robots must be a whole number >= 1, got ${o.robots}`)
  const names = o.names ?? Array.from({ length: o.robots }, (_, i) => `robot${i + 1}`)
  if (names.length !== o.robots || new Set(names).size !== names.length) throw new Error(`need ${o.robots} distinct robot names, got ${names.join(", ")}`)
  const progress = o.onProgress ?? (() => {})
  const readyMs = o.readyTimeoutMs ?? 30000
  if (typeof o.firmware !== "object") progress(`building ${o.firmware ?? "src/main.ts"} (devs build; reused when the sources have not changed)`)
  const fw = typeof o.firmware === "object" ? o.firmware : buildFirmware(o.firmware ?? "src/main.ts")
  const port = simPort()
  progress(`taking the simulator port lock (${portLockFile(port)})`)
  const lock = await acquirePortLock(o.lockWaitMs, portLockFile(port))
  const hub = new FrameHub({ rooms: true })
  const robots: SimFleetRobot[] = []
  const vms: VmProcess[] = []
  const copies = new Map<string, BuiltFirmware>()
  const rooms = new Map<string, number>()
  /** starts `name`'s VM and resolves once it is on the hub in `room` */
  const boot = async (name: string, index: number, room: number, clearFlash: boolean): Promise<VmProcess> => {
    const joined = new Promise<void>((resolve) => {
      const on = (_kind: string, r: number) => {
        if (r !== room) return
        hub.off("peer", on)
        resolve()
      }
      hub.on("peer", on)
    })
    const deviceId = (0x5e7c0ffee0d10000n + BigInt(index + 1)).toString(16).padStart(16, "0")
    const vm = startVm(copies.get(name)!, { deviceId, echo: o.echoVm, clearFlash, port })
    vms.push(vm)
    let t: NodeJS.Timeout | undefined
    await Promise.race([
      joined,
      new Promise<void>((_, reject) => {
        t = setTimeout(() => reject(new Error(`VM ${name} did not connect to the hub within ${readyMs} ms:\n${vm.log.slice(-20).join("\n")}`)), readyMs)
      }),
    ]).finally(() => clearTimeout(t))
    return vm
  }
  const close = async () => {
    for (const r of robots) r.hardware.detach()
    await Promise.all(robots.map((r) => r.node.close().catch(() => {})))
    await Promise.all(vms.map((vm) => vm.kill()))
    await hub.close()
    lock.release()
  }
  try {
    await hub.listen(port)
    // (the robots' folders are this port's: two fleets of one build on two ports run at once)
    const own = buildForPort(fw, port)
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!
      progress(`starting VM ${i + 1} of ${names.length} (${name})`)
      // rooms go to sockets in the order they connect: one VM at a time
      const room = hub.nextRoomId
      copies.set(name, vmCopy(own, name))
      rooms.set(name, room)
      const vm = await boot(name, i, room, true)
      const node = await connect({ transport: hubTransport(hub, { room }) })
      const hardware = new SimulatedHardware({ deviceId: (0x51a0000000000000n + BigInt(i + 1)).toString(16).padStart(16, "0") })
      robots.push({ name, vm, node, hardware })
      await node.waitForDevice({ timeoutMs: readyMs })
      const cred = o.credentials?.(name)
      await writeVmSettings(node.bus, mqttSettings({ url: o.mqttUrl, name, user: cred?.user, pass: cred?.pass }), readyMs)
      hardware.attach(node.bus)
    }
    progress("waiting for every robot's hardware to bind")
    await Promise.all(robots.map((r) => bound(r.node, readyMs)))
    const stopped = new Set<string>()
    const robot = (name: string) => {
      const r = robots.find((x) => x.name === name)
      if (!r) throw new Error(`no simulated robot ${name} (robots: ${robots.map((x) => x.name).join(", ")})`)
      return r
    }
    const stop = async (name: string) => {
      const r = robot(name)
      if (stopped.has(name)) return
      stopped.add(name)
      await r.vm.kill()
      vms.splice(vms.indexOf(r.vm), 1)
    }
    const start = async (name: string) => {
      const r = robot(name)
      if (!stopped.has(name)) throw new Error(`${name} is running (restart reboots it)`)
      // its hub room is the one its Jacdac client and hardware are in
      hub.reuseRoom(rooms.get(name)!)
      r.vm = await boot(name, robots.indexOf(r), rooms.get(name)!, false)
      stopped.delete(name)
    }
    const restart = async (name: string) => {
      await stop(name)
      await start(name)
    }
    return { hub, robots, restart, stop, start, running: (name) => !stopped.has(robot(name).name), close }
  } catch (e) {
    await close()
    throw e
  }
}
