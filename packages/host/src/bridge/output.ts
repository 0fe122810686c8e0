// What the bridge holds for clients that do not read: every connection of every front end (rosbridge
// and Foxglove WebSockets, HTTP connections) is counted by one Output, which bounds the output a
// client has not taken yet, per client and in all. A client that stops reading while it asks for
// answers (or while topics it subscribed to keep publishing, or while it pipelines HTTP requests)
// would otherwise make the bridge hold that output in memory: per client up to the per-client
// bound, and with many such clients their sum (issue 16: 8 WebSocket clients that asked for 64 KiB
// answers and never read held 101 MiB; 4 HTTP connections pipelining 600 such requests, 164 MB;
// 4 followers of a goal's server-sent events behind fast feedback, 614 MB in 20 s).
import type * as http from "node:http"
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

/** One client connection: its name in the log, what it holds unsent, and how to drop it. */
interface Sink {
  name: string
  unsent(): number
  drop(): void
}

/** An HTTP connection: also the responses not yet written out, queued behind the one being written. */
interface HttpSink extends Sink {
  queued: Set<http.ServerResponse>
}

export class Output {
  readonly maxUnsent: number
  readonly maxTotal: number
  /** the open connections (a WebSocket, or an HTTP connection's socket) */
  private readonly sinks = new Map<object, Sink>()
  private readonly log: (line: string) => void

  constructor(options: OutputOptions) {
    this.maxUnsent = options.maxUnsentBytes ?? MAX_UNSENT_BYTES
    this.maxTotal = options.maxUnsentTotalBytes ?? MAX_UNSENT_TOTAL_BYTES
    this.log = options.log
  }

  /** Counts the WebSocket `ws` (named `name` in the log) until it closes. */
  add(ws: WebSocket, name: string) {
    this.sinks.set(ws, { name, unsent: () => ws.bufferedAmount, drop: () => ws.terminate() })
    ws.once("close", () => this.sinks.delete(ws))
  }

  /** Bytes the clients have not taken yet, in all. */
  unsent(): number {
    let n = 0
    for (const s of this.sinks.values()) n += s.unsent()
    return n
  }

  /**
   * Sends `data` to `ws`, then drops its client if it has stopped reading (see `within`). Its unsent
   * output grows only by sends, so the check after each send also covers the next one. False when
   * the client was closed or is dropped.
   */
  send(ws: WebSocket, data: string | Buffer): boolean {
    if (ws.readyState !== ws.OPEN) return false
    ws.send(data)
    return this.within(ws)
  }

  /** A text message already in UTF-8 (one encoding for a message many clients get). */
  sendText(ws: WebSocket, utf8: Buffer): boolean {
    if (ws.readyState !== ws.OPEN) return false
    ws.send(utf8, { binary: false })
    return this.within(ws)
  }

  /**
   * An HTTP request on its connection: counts the connection (the first time) and the response
   * until it is written out, and checks the connection's bound before the request is served. False
   * when the connection was dropped instead (it stopped reading: pipelined requests whose answers
   * it never takes would otherwise pile up in the server's queue of responses). Call `within` on the
   * socket again once the response is written.
   */
  http(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const socket = req.socket
    // (a request parsed from a connection already dropped: nothing is answered to it)
    if (socket.destroyed) return false
    let sink = this.sinks.get(socket) as HttpSink | undefined
    if (!sink) {
      const queued = new Set<http.ServerResponse>()
      sink = {
        name: `HTTP client ${socket.remoteAddress}:${socket.remotePort}`,
        queued,
        // the socket's own buffer, and the responses Node queues behind the one being written
        // (pipelined requests: a response gets the socket when the one before it is written out)
        unsent: () => {
          let n = socket.writableLength
          for (const r of queued) if (!r.socket) n += r.writableLength
          return n
        },
        drop: () => socket.destroy(),
      }
      this.sinks.set(socket, sink)
      socket.once("close", () => this.sinks.delete(socket))
    }
    const q = sink.queued
    q.add(res)
    const done = () => q.delete(res)
    res.once("finish", done)
    res.once("close", done)
    return this.within(socket)
  }

  /**
   * False (and the client dropped) when the client of `key` (a WebSocket, or an HTTP connection's
   * socket) holds more than the per-client bound. When it holds more than a sixteenth of it and all
   * clients together pass the total, the client holding the most is dropped (false if that is this one).
   */
  within(key: object): boolean {
    const sink = this.sinks.get(key)
    if (!sink) return false
    const mine = sink.unsent()
    if (mine > this.maxUnsent) {
      this.drop(key, sink, this.maxUnsent, "")
      return false
    }
    // (the sum is only taken for a client that is behind: those that read cost nothing here)
    if (mine <= this.maxUnsent >> 4) return true
    let total = 0
    let worst = key
    let most = mine
    for (const [k, s] of this.sinks) {
      const n = s.unsent()
      total += n
      if (n > most) [worst, most] = [k, n]
    }
    if (total <= this.maxTotal) return true
    this.drop(worst, this.sinks.get(worst)!, this.maxTotal, " in all")
    return worst !== key
  }

  private drop(key: object, sink: Sink, bound: number, what: string) {
    this.sinks.delete(key)
    this.log(`${sink.name} disconnected: over ${bound} bytes unsent${what} (it stopped reading)`)
    sink.drop()
  }
}
