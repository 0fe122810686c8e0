// How the CLI reaches a robot directly (without a bridge): --serial [path] or --devtools [url].
// Transports are loaded lazily, so commands that do not need them never load serialport or ws.
import { existsSync } from "node:fs"
import { ServiceError } from "../client/errors"
import type { ServiceNode } from "../client/node"
import type { RobotTransport } from "../transport/types"
import { hinted } from "./errors"

export interface LinkOptions {
  serial?: string | boolean
  devtools?: string | boolean
}

/** True when the options name a direct link (`--serial` or `--devtools`). */
export function wantsDirectLink(o: LinkOptions): boolean {
  return (o.serial !== undefined && o.serial !== false) || (o.devtools !== undefined && o.devtools !== false)
}

/**
 * The transport the options ask for: a serial port (`--serial [path]`, first Jacdac port when no
 * path) or the devtools WebSocket (`--devtools [url]`, default devs.json `simulator.devtools`).
 */
export function transportFromOptions(o: LinkOptions): RobotTransport {
  if (o.serial !== undefined && o.serial !== false) {
    // a port that does not exist is said as such (jacdac-ts would report "connection refused")
    if (typeof o.serial === "string" && !existsSync(o.serial)) {
      throw new ServiceError("unavailable", `no serial port ${o.serial}: is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB* lists the ports)`)
    }
    const { serialTransport } = require("../transport/serial") as typeof import("../transport/serial")
    return serialTransport(typeof o.serial === "string" ? { path: o.serial } : {})
  }
  const { websocketTransport, DEVTOOLS_URL } = require("../transport/websocket") as typeof import("../transport/websocket")
  const { configuredDevtoolsUrl } = require("../config") as typeof import("../config")
  return websocketTransport(typeof o.devtools === "string" ? o.devtools : configuredDevtoolsUrl(DEVTOOLS_URL))
}

/**
 * Connects the host client over the link the options name. A link that fails says what to do about
 * that link (a serial port another program holds, a board without the runtime, devtools not running),
 * not the CLI's general hint, which is about bridges.
 */
export async function connectLink(o: LinkOptions, extra: { maxResponseBytes?: number } = {}): Promise<{ node: ServiceNode; transport: RobotTransport }> {
  let transport: RobotTransport
  try {
    transport = transportFromOptions(o)
  } catch (e) {
    throw e instanceof ServiceError ? hinted(e, "check the --serial path") : e
  }
  const { connect } = require("../client/node") as typeof import("../client/node")
  try {
    return { node: await connect({ transport, ...extra }), transport }
  } catch (e) {
    if (e instanceof ServiceError && e.code === "unavailable") throw hinted(e, linkHint(o, e.detail))
    throw e
  }
}

function linkHint(o: LinkOptions, detail: string): string {
  if (o.serial !== undefined && o.serial !== false) {
    if (/in use by another program/.test(detail)) return "only one program can have a serial port: stop devtools or the serial monitor, or reach the robot through devtools with --devtools"
    if (/answered as a DeviceScript board/.test(detail)) return "is the DeviceScript runtime flashed? (devs flash esp32 --board <board>); is this the board's port?"
    return "is the board plugged in and running its firmware? `robot doctor --serial` checks it step by step"
  }
  return "is devtools running (`devs devtools src/main.ts`), or the simulator? `robot sim` runs the simulated robot"
}
