// How the CLI reaches a robot directly (without a bridge): --serial [path] or --devtools [url].
// Transports are loaded lazily, so commands that do not need them never load serialport or ws.
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
    const { serialTransport } = require("../transport/serial") as typeof import("../transport/serial")
    return serialTransport(typeof o.serial === "string" ? { path: o.serial } : {})
  }
  const { websocketTransport, DEVTOOLS_URL } = require("../transport/websocket") as typeof import("../transport/websocket")
  const { configuredDevtoolsUrl } = require("../config") as typeof import("../config")
  return websocketTransport(typeof o.devtools === "string" ? o.devtools : configuredDevtoolsUrl(DEVTOOLS_URL))
}
