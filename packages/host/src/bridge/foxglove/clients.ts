// The connected Foxglove clients and the sending to them (one client or all), dropping a client whose
// unsent bytes are over the bound.
import type { WebSocket } from "ws"
import { MAX_BUFFERED } from "../rosbridge"

export interface Conn {
  id: number
  ws: WebSocket
  address: string
  /** subscription id -> channel id */
  subs: Map<number, number>
  calls: Set<AbortController>
}

export class Clients {
  readonly conns = new Set<Conn>()

  constructor(private readonly log: (line: string) => void) {}

  send(c: Conn, data: string | Buffer) {
    if (c.ws.readyState !== c.ws.OPEN) return
    if (c.ws.bufferedAmount > MAX_BUFFERED) {
      this.log(`foxglove client ${c.id} disconnected: over ${MAX_BUFFERED} bytes unsent`)
      c.ws.terminate()
      return
    }
    c.ws.send(data)
  }

  sendJson(c: Conn, msg: unknown) {
    this.send(c, JSON.stringify(msg))
  }

  broadcast(msg: unknown) {
    const text = JSON.stringify(msg)
    for (const c of this.conns) this.send(c, text)
  }

  status(c: Conn, level: number, message: string) {
    this.sendJson(c, { op: "status", level, message })
  }
}
