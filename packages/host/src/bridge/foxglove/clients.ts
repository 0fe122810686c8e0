// The connected Foxglove clients and the sending to them (one client or all), through the bridge's
// Output (a client that stopped reading is dropped past its bound).
import type { WebSocket } from "ws"
import type { Output } from "../output"

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

  constructor(private readonly output: Output) {}

  /** Counts `c` until it leaves. */
  add(c: Conn) {
    this.conns.add(c)
    this.output.add(c.ws, `foxglove client ${c.id}`)
  }

  send(c: Conn, data: string | Buffer) {
    this.output.send(c.ws, data)
  }

  /** a JSON text message already encoded (sent as text) */
  sendText(c: Conn, utf8: Buffer) {
    this.output.sendText(c.ws, utf8)
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
