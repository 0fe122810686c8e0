// A disposable test rig: the real firmware in the DeviceScript VM (`devs run`, a child process),
// connected to an in-process devtools-compatible frame hub on ws://127.0.0.1:8081 (or ROBOT_SIM_PORT's
// port, transport/hubport.ts; or, with `devtools: true`, to a real `devs devtools`, always on 8081), and the real host client attached to the hub
// in-process (or over devtools' WebSocket). Tests can drop frames (a transport filter), restart
// the VM, and add simulated hardware (jacdac-ts servers) to `rig.bus`. With `mqtt`, the rig writes
// the VM's ROBOT_NAME/MQTT_URL settings through Jacdac so the firmware's MQTT link (packages/device/src/net/mqtt.ts)
// connects to that broker. The rig holds `flock /tmp/port8081.lock` (its port's lock) while it runs;
// `close()` kills the VM's process group and frees the port.
import type { ServiceNode, ConnectOptions } from "../client/node"
import { connect } from "../client/node"
import { FrameHub, hubTransport, type FrameFilter, type FramePipe } from "../transport/hub"
import type { RobotTransport } from "../transport/types"
import { spawn, type ChildProcess } from "node:child_process"
import { websocketTransport } from "../transport/websocket"
import { jd, type JD } from "../transport/jacdac"
import { acquirePortLock, buildFirmware, buildForPort, startVm, DEVS_CLI, ROOT, type BuiltFirmware, type VmProcess } from "./vm"
import { DEVTOOLS_PORT, portLockFile, simPort } from "../transport/hubport"

/** Spawns `devs devtools` (own process group) and resolves once it serves ws://127.0.0.1:8081. */
function startDevtools(timeoutMs: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [DEVS_CLI, "devtools"], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  })
  let out = ""
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // gone
      }
      reject(new Error(`devs devtools did not start within ${timeoutMs} ms:\n${out}`))
    }, timeoutMs)
    const onData = (d: Buffer) => {
      out += d.toString()
      if (/websocket\s*:\s*ws:\/\/127\.0\.0\.1:8081/.test(out)) {
        clearTimeout(t)
        resolve(child)
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(t)
      reject(new Error(`devs devtools exited (${code}):\n${out}`))
    })
  })
}

/** The VM's MQTT link (docs/mqtt.md): written into its settings when the rig starts. */
export interface RigMqttOptions {
  /** `mqtt://127.0.0.1:<port>` (or `mqtts://…`): the MQTT_URL setting */
  url: string
  /** ROBOT_NAME: the topic root `robots/<name>/` */
  name: string
  /** MQTT_USER (the firmware's default: the name) */
  user?: string
  /** MQTT_PASS */
  pass?: string
}

/** How long writeVmSettings waits for the VM's Jacdac settings service to appear (ms): not a call's timeout. */
const SETTINGS_WAIT_MS = 10000

/**
 * Writes DeviceScript settings into the VM on `bus` through its Jacdac settings service, in the
 * form devtools deploys `.env` values (JSON text), in the order given (put MQTT_URL last: the
 * firmware reads it first and the others once it is set). Waits for the settings service to appear;
 * rejects after `timeoutMs` (default SETTINGS_WAIT_MS, 10000) if it does not. Settings live in the VM's flash: they
 * survive `restartVm()`, and a new rig starts blank.
 */
export async function writeVmSettings(bus: JD.JDBus, values: Record<string, string>, timeoutMs = SETTINGS_WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs
  let svc = bus.services({ serviceClass: jd.SRV_SETTINGS })[0]
  while (!svc) {
    if (Date.now() > end) throw new Error(`no Jacdac settings service (the VM's) appeared within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
    svc = bus.services({ serviceClass: jd.SRV_SETTINGS })[0]
  }
  const client = new jd.SettingsClient(svc)
  for (const [k, v] of Object.entries(values)) await client.setValue(k, new TextEncoder().encode(JSON.stringify(v)))
}

/** The settings `mqtt` stands for, MQTT_URL last. */
export function mqttSettings(m: RigMqttOptions): Record<string, string> {
  const s: Record<string, string> = { ROBOT_NAME: m.name }
  if (m.user !== undefined) s.MQTT_USER = m.user
  if (m.pass !== undefined) s.MQTT_PASS = m.pass
  s.MQTT_URL = m.url
  return s
}

export interface RigOptions {
  /** Firmware entry, from the project root (e.g. `test/firmware/services_fw.ts` or `src/main.ts`), or a build. */
  firmware: string | BuiltFirmware
  /** Jacdac device id of the VM (16 hex digits); fixed so a restarted VM is the same device. */
  deviceId?: string
  /** Port of the hub and its lock (default `simPort()`: 8081, where `devs run` connects, unless ROBOT_SIM_PORT is set; the VM is sent there). */
  port?: number
  /** Print the VM's log lines. */
  echoVm?: boolean
  /** How long to wait for the device and its service list (ms, default 30000). */
  readyTimeoutMs?: number
  /** Passed to the rig's own client. */
  window?: number
  /** Passed to the rig's own client: the largest response it takes (bytes; `connect({ maxResponseBytes })`). */
  maxResponseBytes?: number
  /**
   * Use the real `devs devtools` server on 8081 instead of the in-process hub (checks devtools
   * compatibility; clients then connect over WebSocket and `transport({ filter })` cannot drop frames).
   * Its ports are fixed: the rig takes 8081's lock whatever `port` and ROBOT_SIM_PORT say.
   */
  devtools?: boolean
  /** How long to wait for the simulator port lock (ms, default 300000; 0: fail at once naming the holder). */
  lockWaitMs?: number
  /** Told each start-up step as it begins (building, lock, VM, services). */
  onProgress?: (step: string) => void
  /**
   * Give the VM an MQTT link: the rig writes ROBOT_NAME, MQTT_USER/MQTT_PASS (when given) and
   * MQTT_URL into the VM's settings through Jacdac right after it boots; the firmware picks them up
   * within about 2 s and connects (see docs/mqtt.md). Without it the VM starts with blank settings.
   */
  mqtt?: RigMqttOptions
}

export interface Rig {
  readonly firmware: BuiltFirmware
  readonly hub: FrameHub
  /** The rig's own client, connected and with the service list loaded. */
  readonly node: ServiceNode
  /** The rig client's jacdac-ts bus: add jacdac-ts servers (simulated hardware) here. */
  readonly bus: ServiceNode["bus"]
  /** The running VM (its log, for diagnostics). */
  readonly vm: VmProcess
  /** A transport onto the hub (in-process, optionally dropping frames), or devtools' WebSocket. */
  transport(options?: { filter?: FrameFilter }): RobotTransport
  /** Another connected client (closed by `close()`). */
  connect(options?: Omit<ConnectOptions, "transport"> & { filter?: FrameFilter; pipes?: { in?: FramePipe; out?: FramePipe } }): Promise<ServiceNode>
  /** Kills the VM and starts it again (a device reset, settings kept); resolves once the new VM is on the hub. */
  restartVm(): Promise<void>
  /** Writes settings into the VM (see `writeVmSettings`), e.g. `mqttSettings({ url, name })`. */
  writeSettings(values: Record<string, string>): Promise<void>
  close(): Promise<void>
}

const DEFAULT_DEVICE_ID = "5e7c0ffee0d15ea5"

/** Builds and boots `firmware`, connects a client, waits for its service list. Close it in `finally`. */
export async function startRig(options: RigOptions): Promise<Rig> {
  const progress = options.onProgress ?? (() => {})
  if (typeof options.firmware === "string") progress(`building ${options.firmware} (devs build; reused when the sources have not changed)`)
  const built = typeof options.firmware === "string" ? buildFirmware(options.firmware) : options.firmware
  const port = options.devtools ? DEVTOOLS_PORT : options.port ?? simPort()
  progress(`taking the simulator port lock (${portLockFile(port)})`)
  const lock = await acquirePortLock(options.lockWaitMs, portLockFile(port))
  let firmware: BuiltFirmware
  try {
    // (after the lock: a VM of this port may be reading the copy until then)
    firmware = buildForPort(built, port)
  } catch (e) {
    lock.release()
    throw e
  }
  const hub = new FrameHub()
  const nodes: ServiceNode[] = []
  let vm: VmProcess | undefined
  let devtools: ChildProcess | undefined
  const readyMs = options.readyTimeoutMs ?? 30000
  const transportFor = (filter?: FrameFilter, pipes?: { in?: FramePipe; out?: FramePipe }): RobotTransport => {
    if (!options.devtools) return hubTransport(hub, { filter, pipes })
    if (filter || pipes) throw new Error("startRig: frame filters need the in-process hub (devtools: false)")
    return websocketTransport()
  }
  const bootVm = async (clearFlash = false) => {
    if (options.devtools) {
      vm = startVm(firmware, { deviceId: options.deviceId ?? DEFAULT_DEVICE_ID, echo: options.echoVm, clearFlash, port })
      await vm.waitForLog(/connected to ws:/, readyMs)
      return
    }
    const connected = new Promise<void>((resolve) => hub.once("peer", () => resolve()))
    vm = startVm(firmware, { deviceId: options.deviceId ?? DEFAULT_DEVICE_ID, echo: options.echoVm, clearFlash, port })
    let t: NodeJS.Timeout | undefined
    await Promise.race([
      connected,
      new Promise<void>((_, reject) => {
        t = setTimeout(() => reject(new Error(`the VM did not connect to the hub within ${readyMs} ms:\n${vm!.log.slice(-20).join("\n")}`)), readyMs)
      }),
    ]).finally(() => clearTimeout(t))
  }
  const close = async () => {
    for (const n of nodes.splice(0)) await n.close().catch(() => {})
    await vm?.kill()
    await hub.close()
    if (devtools?.pid && devtools.exitCode === null) {
      const gone = new Promise<void>((r) => devtools!.once("exit", () => r()))
      try {
        process.kill(-devtools.pid, "SIGKILL")
      } catch {
        // gone
      }
      await gone
    }
    lock.release()
  }
  try {
    if (options.devtools) devtools = await startDevtools(readyMs)
    else await hub.listen(port)
    progress("starting the DeviceScript VM")
    await bootVm(true)
    progress("VM up; waiting for the firmware's service list")
    const node = await connect({ transport: transportFor(), window: options.window, maxResponseBytes: options.maxResponseBytes })
    nodes.push(node)
    if (options.mqtt) {
      progress("writing the VM's MQTT settings")
      await writeVmSettings(node.bus, mqttSettings(options.mqtt), readyMs)
    }
    await node.waitForDevice({ timeoutMs: readyMs })
    await node.listServices({ timeoutMs: readyMs })
    progress("services listed")
    const rig: Rig = {
      firmware,
      hub,
      node,
      bus: node.bus,
      get vm() {
        return vm!
      },
      transport: (o = {}) => transportFor(o.filter),
      async connect(o = {}) {
        const { filter, pipes, ...rest } = o
        const n = await connect({ ...rest, transport: transportFor(filter, pipes) })
        nodes.push(n)
        return n
      },
      async restartVm() {
        await vm?.kill()
        await bootVm()
      },
      writeSettings: (values) => writeVmSettings(node.bus, values, readyMs),
      close,
    }
    return rig
  } catch (e) {
    await close()
    throw e
  }
}
