// Devtools / VS Code simulator transport: Jacdac frames over a WebSocket (ws://127.0.0.1:8081).
import { jd } from "./jacdac"
import type { RobotTransport } from "./types"

/** The devtools server's fixed address. */
export const DEVTOOLS_URL = "ws://127.0.0.1:8081"

/** Connects through a devtools-compatible WebSocket server (`devs devtools`, VS Code, or the rig's hub). */
export function websocketTransport(url: string = DEVTOOLS_URL): RobotTransport {
  return {
    kind: "websocket",
    description: url,
    async create() {
      // jacdac-ts looks for a global WebSocket; Node 20 has none, so lend it the `ws` package.
      const g = globalThis as { WebSocket?: unknown }
      if (!g.WebSocket) g.WebSocket = require("ws")
      return jd.createWebSocketTransport(url)
    },
  }
}
