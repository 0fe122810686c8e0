// How the CLI reaches a robot directly (without a bridge): --serial [path] or --devtools [url].
// Transports are loaded lazily, so commands that do not need them never load serialport or ws.
import { existsSync } from "node:fs"
import { ServiceError } from "../client/errors"
import type { RobotTransport } from "../transport/types"

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
