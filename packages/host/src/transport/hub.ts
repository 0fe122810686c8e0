// A devtools-compatible frame hub: a WebSocket server (ws://127.0.0.1:8081 by default, or
// ROBOT_SIM_PORT's port: transport/hubport.ts) that passes every binary Jacdac frame from one peer to all
// the others, as `devs devtools` does, plus in-process peers (`hubTransport`) that need no socket.
// The test rig runs the DeviceScript VM against it; tests drop chosen frames with a peer's filter.
// It does not serve the devtools dashboard.
//
// Rooms: with `rooms: true`, every WebSocket peer gets a room of its own (0, 1, 2… in the order they
// connect) and frames pass only between peers of one room, so several VMs (`robot sim --robots N`)
// each see only their own simulated hardware and client, as separate Jacdac buses would. In-process
// peers name their room (default 0). Without rooms everything is room 0: one bus, as devtools has.
import { EventEmitter } from "node:events"
import { WebSocketServer, type WebSocket } from "ws"
import { jd } from "./jacdac"
import type { RobotTransport } from "./types"
import { DEVTOOLS_PORT, simPort } from "./hubport"

type Deliver = (frame: Uint8Array) => void

/** A frame filter: return false to drop the frame. `dir` is relative to the peer. */
export type FrameFilter = (frame: Uint8Array, dir: "in" | "out") => boolean

/**
 * A link between a peer and the hub in one direction: it gets every frame and calls `deliver`
 * zero or more times, now or later (a model of a lossy, slow, reordering cable in the tests).
 */
export type FramePipe = (frame: Uint8Array, deliver: (frame: Uint8Array) => void) => void

export interface FrameHubOptions {
  /** Give every WebSocket peer a room of its own (default false: one shared bus). */
  rooms?: boolean
}

/**
 * What the hub holds for one WebSocket peer that does not keep up (bytes, beyond what its socket's
 * kernel buffers took): past it, frames to that peer are dropped, as a Jacdac bus drops what a
 * device cannot take (the record protocol recovers what matters: docs/protocol.md). Before, a peer
 * that stopped reading held everything sent on the bus: 200,000 frames of 250 bytes left 47 MB in
 * the hub for it (hub_rooms "a WebSocket peer that stops reading ..."). 1 MiB is about 4,000 frames,
 * far more than a reader that keeps up ever has waiting.
 */
export const HUB_PEER_BUFFER_BYTES = 1024 * 1024

/**
 * WebSocket peers at once; one more is closed at once (1013, try again later). A bus has a few: the
 * VM(s), VS Code or `devs`, the CLI's `--devtools` clients; `robot sim --robots 16` has 16 VMs. With
 * HUB_PEER_BUFFER_BYTES it bounds what the hub can hold for its peers (64 MiB), where each new
 * connection that did not read added a copy of everything sent on the bus (hub_rooms "the hub
 * takes at most HUB_MAX_PEERS ...").
 */
export const HUB_MAX_PEERS = 64

export class FrameHub extends EventEmitter {
  /** every peer and its room */
  private readonly peers = new Map<Deliver, number>()
  private nextRoom = 0
  /** the room the next WebSocket peer joins instead of a new one (a restarted VM) */
  private reuse: number | undefined
  private wss: WebSocketServer | undefined
  private readonly sockets = new Set<WebSocket>()
  /** frames passed through, for tests and diagnostics */
  frames = 0
  /** frames not sent to a WebSocket peer that held HUB_PEER_BUFFER_BYTES already */
  framesDropped = 0

  constructor(private readonly options: FrameHubOptions = {}) {
    super()
  }

  /** Starts listening on `port` (127.0.0.1 only; default `simPort()`, 8081 unless ROBOT_SIM_PORT is set). Rejects if the port is taken. */
  async listen(port = simPort()): Promise<void> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port })
    await new Promise<void>((resolve, reject) => {
      wss.once("listening", () => resolve())
      wss.once("error", (e: NodeJS.ErrnoException) => {
        const hint =
          e.code === "EADDRINUSE" && port === DEVTOOLS_PORT
            ? " (a DeviceScript devtools server or the VS Code simulator is probably running: stop it, or run the" +
              " firmware there and attach the simulated hardware with `robot sim --devtools`)"
            : ""
        reject(new Error(`frame hub: cannot listen on 127.0.0.1:${port}: ${e.message}${hint}`))
      })
    })
    this.wss = wss
    wss.on("connection", (ws) => {
      if (this.sockets.size >= HUB_MAX_PEERS) {
        ws.close(1013, `the frame hub has ${HUB_MAX_PEERS} peers already`)
        return
      }
      this.sockets.add(ws)
      const deliver: Deliver = (f) => {
        if (ws.readyState !== ws.OPEN) return
        if (ws.bufferedAmount > HUB_PEER_BUFFER_BYTES) this.framesDropped++
        else ws.send(f)
      }
      let room = 0
      if (this.options.rooms) {
        room = this.reuse ?? this.nextRoom++
        this.reuse = undefined
      }
      this.peers.set(deliver, room)
      this.emit("peer", "ws", room)
      ws.on("message", (data, isBinary) => {
        if (!isBinary) return // side data (JSON) is not forwarded
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)
        this.broadcast(new Uint8Array(buf), deliver)
      })
      ws.on("close", () => {
        this.peers.delete(deliver)
        this.sockets.delete(ws)
        this.emit("peerClosed", "ws", room)
      })
      ws.on("error", () => ws.close())
    })
  }

  /** Adds an in-process peer (in `room`, default 0); returns its send and detach functions. */
  attach(deliver: Deliver, room = 0): { send: (frame: Uint8Array) => void; detach: () => void } {
    this.peers.set(deliver, room)
    return {
      send: (f) => this.broadcast(f, deliver),
      detach: () => {
        this.peers.delete(deliver)
      },
    }
  }

  /** The port listened on (useful after `listen(0)`). */
  get port(): number {
    const a = this.wss?.address()
    return a && typeof a === "object" ? a.port : 0
  }

  /** Bytes the hub holds for its WebSocket peers, not yet taken by their sockets. */
  get bufferedBytes(): number {
    let n = 0
    for (const s of this.sockets) n += s.bufferedAmount
    return n
  }

  /** Number of WebSocket peers (the VM is one). */
  get socketCount(): number {
    return this.sockets.size
  }

  /** The room the next WebSocket peer will get (with `rooms`). */
  get nextRoomId(): number {
    return this.reuse ?? this.nextRoom
  }

  /** The next WebSocket peer joins `room` (a VM restarted in place of the one that left it). */
  reuseRoom(room: number): void {
    this.reuse = room
  }

  private broadcast(frame: Uint8Array, from: Deliver) {
    this.frames++
    const room = this.peers.get(from)
    for (const [p, r] of this.peers) if (p !== from && r === room) p(frame)
  }

  /** Closes every socket and the server. */
  async close(): Promise<void> {
    this.peers.clear()
    for (const s of this.sockets) s.terminate()
    this.sockets.clear()
    const wss = this.wss
    this.wss = undefined
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()))
  }
}

class HubJacdacTransport extends jd.Transport {
  private link: { send: (f: Uint8Array) => void; detach: () => void } | undefined
  constructor(
    private readonly hub: FrameHub,
    private readonly filter?: FrameFilter,
    private readonly pipes: { in?: FramePipe; out?: FramePipe } = {},
    private readonly room = 0,
  ) {
    super("hub", { checkPulse: false })
  }
  override description(): string {
    return "in-process frame hub"
  }
  protected transportConnectAsync(): Promise<void> {
    const deliver = (frame: Uint8Array) => {
      // deliver asynchronously, as a socket would
      setImmediate(() => {
        if (this.link) this.handleFrame(frame)
      })
    }
    this.link = this.hub.attach((frame) => {
      if (this.filter && !this.filter(frame, "in")) return
      if (this.pipes.in) this.pipes.in(frame, deliver)
      else deliver(frame)
    }, this.room)
    return Promise.resolve()
  }
  protected transportSendPacketAsync(frame: Uint8Array): Promise<void> {
    if (!this.link || (this.filter && !this.filter(frame, "out"))) return Promise.resolve()
    const send = (f: Uint8Array) => this.link?.send(f)
    if (this.pipes.out) this.pipes.out(frame.slice(), send)
    else send(frame.slice())
    return Promise.resolve()
  }
  protected transportDisconnectAsync(): Promise<void> {
    this.link?.detach()
    this.link = undefined
    return Promise.resolve()
  }
}

/**
 * In-process transport onto `hub` (no socket). `filter` sees every frame and may drop it; `pipes`
 * carry the frames each way (default: straight through); `room` picks the VM with a rooms hub.
 */
export function hubTransport(
  hub: FrameHub,
  options: { filter?: FrameFilter; pipes?: { in?: FramePipe; out?: FramePipe }; room?: number } = {},
): RobotTransport {
  return {
    kind: "hub",
    description: options.room ? `in-process frame hub (room ${options.room})` : "in-process frame hub",
    async create() {
      return new HubJacdacTransport(hub, options.filter, options.pipes, options.room ?? 0)
    },
  }
}

