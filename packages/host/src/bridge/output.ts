// What the bridge holds for clients that do not read: every WebSocket of every front end (rosbridge,
// Foxglove) sends through one Output, which bounds the output a client has not taken yet, per client
// and in all. A client that stops reading while it asks for answers (or while topics it subscribed
// to keep publishing) would otherwise make the bridge hold that output in memory: per client up to
// the per-client bound, and with many such clients their sum (issue 16: 8 clients that asked for
// 256 KiB answers and never read held 184 MiB).
import type { WebSocket } from "ws"

/** Unsent output (bytes) past which a client that stopped reading is disconnected. */
export const MAX_UNSENT_BYTES = 16 * 1024 * 1024
/** Unsent output of all clients together (bytes) past which the client holding the most is disconnected. */
export const MAX_UNSENT_TOTAL_BYTES = 64 * 1024 * 1024

export interface OutputOptions {
  /** per client (default MAX_UNSENT_BYTES) */
  maxUnsentBytes?: number
  /** all clients together (default MAX_UNSENT_TOTAL_BYTES) */
  maxUnsentTotalBytes?: number
  log: (line: string) => void
}

export class Output {
  readonly maxUnsent: number
  readonly maxTotal: number
  /** the open sockets and the names the log gives them */
  private readonly sockets = new Map<WebSocket, string>()
  private readonly log: (line: string) => void

  constructor(options: OutputOptions) {
    this.maxUnsent = options.maxUnsentBytes ?? MAX_UNSENT_BYTES
    this.maxTotal = options.maxUnsentTotalBytes ?? MAX_UNSENT_TOTAL_BYTES
    this.log = options.log
  }

  /** Counts `ws` (named `name` in the log) until it closes. */
  add(ws: WebSocket, name: string) {
    this.sockets.set(ws, name)
    ws.once("close", () => this.sockets.delete(ws))
  }

  /** Bytes the clients have not taken yet, in all. */
  unsent(): number {
    let n = 0
    for (const ws of this.sockets.keys()) n += ws.bufferedAmount
    return n
  }

  /**
   * Sends `data` to `ws`, unless its client has stopped reading: one whose unsent output passed the
   * per-client bound is disconnected instead. When this client holds more than a sixteenth of the
   * bound and all clients together pass the total, the client holding the most is disconnected.
   * False when nothing was sent.
   */
  send(ws: WebSocket, data: string | Buffer): boolean {
    if (ws.readyState !== ws.OPEN) return false
    if (ws.bufferedAmount > this.maxUnsent) {
      this.drop(ws, this.maxUnsent)
      return false
    }
    ws.send(data)
    // (the sum is only taken for a client that is behind: those that read cost nothing here)
    if (ws.bufferedAmount > this.maxUnsent >> 4 && this.unsent() > this.maxTotal) {
      let worst = ws
      for (const s of this.sockets.keys()) if (s.bufferedAmount > worst.bufferedAmount) worst = s
      this.drop(worst, this.maxTotal, " in all")
      return worst !== ws
    }
    return true
  }

  private drop(ws: WebSocket, bound: number, what = "") {
    const name = this.sockets.get(ws) ?? "client"
    this.sockets.delete(ws)
    this.log(`${name} disconnected: over ${bound} bytes unsent${what} (it stopped reading)`)
    ws.terminate()
  }
}
