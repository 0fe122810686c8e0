// A board's USB serial port, for the serial transport's tests: a pseudo-terminal the real
// `serialport` package opens as it opens /dev/ttyACM0, whose other end behaves as a DeviceScript
// board's USB bridge does (Jacdac's "USB Bridge" service, services/usbbridge.md of the Jacdac
// specification): Jacdac frames with a valid CRC between 0xFE 0xFC and 0xFE 0xFD, 0xFE inside a
// frame sent as 0xFE 0xF8, bytes outside frames are the board's serial log; broadcast commands to the
// USB Bridge service class (0x80 disable / 0x81 enable packets, 0x82 / 0x83 the log) are answered with
// a report of the same command and are not forwarded; bus frames pass only while packets are enabled.
// The board's bus is a room of the frame hub (the VM's program is the board's own device on it).
// What it models of the part's limits: the line's speed (1.5 Mbaud, 8N1: 150,000 bytes a second
// each way, as jacdac-ts opens the port), a receive buffer of one frame (a frame over 252 bytes, or one
// whose CRC is wrong, is dropped), and unplugging (the pseudo-terminal goes away under the reader).
//
// Node cannot make a pseudo-terminal; a python3 process (on every Debian machine) makes one, prints
// the name of its terminal end, and relays bytes between its other end and its own stdin/stdout.
import { spawn, type ChildProcess } from "node:child_process"
import type { FrameHub } from "../../packages/host/src/transport/hub"
import { jd } from "../../packages/host/src/transport/jacdac"

const MAGIC = 0xfe
const LITERAL_MAGIC = 0xf8
const FRAME_START = 0xfc
const FRAME_END = 0xfd
/** Jacdac's USB Bridge service class: commands to it are for the link, not the bus (frame flags: 0x01 command, 0x04 the device id field holds a service class) */
const USB_BRIDGE = 0x18f61a4a
const FLAG_IS_SERVICE_CLASS = 0x04
const FLAG_COMMAND = 0x01
/** the largest Jacdac frame: 12 bytes of header and 240 of packets */
const MAX_FRAME = 252
/** 1.5 Mbaud, 10 bits a byte */
const LINE_BYTES_PER_S = 150_000

const RELAY = String.raw`
import os, pty, sys, tty, select, fcntl
m, s = pty.openpty()
tty.setraw(s)
fcntl.fcntl(m, fcntl.F_SETFL, fcntl.fcntl(m, fcntl.F_GETFL) | os.O_NONBLOCK)
os.write(1, (os.ttyname(s) + "\n").encode())
pending = b""
while True:
    r, w, _ = select.select([m, 0], [m] if pending else [], [])
    if m in r:
        try:
            os.write(1, os.read(m, 65536))
        except BlockingIOError:
            pass
    if 0 in r:
        d = os.read(0, 65536)
        if not d:
            break
        pending += d
    if pending and (m in w or not r):
        try:
            pending = pending[os.write(m, pending):]
        except BlockingIOError:
            pass
`

export interface UsbSerialBoard {
  /** the terminal to open, as /dev/ttyACM0 would be (e.g. /dev/pts/3) */
  readonly path: string
  /** frames the host sent that reached the bus, bus frames sent to the host, log lines printed */
  readonly stats: { toBus: number; toHost: number; commands: number[]; dropped: number; logLines: number }
  /** the cable pulled out: the pseudo-terminal is gone, the hub keeps running */
  unplug(): Promise<void>
  close(): Promise<void>
}

/** Escapes `frame` for the line: start, the frame with 0xFE doubled as 0xFE 0xF8, end. */
export function encodeUsbFrame(frame: Uint8Array): Uint8Array {
  const out: number[] = [MAGIC, FRAME_START]
  for (const b of frame) {
    out.push(b)
    if (b === MAGIC) out.push(LITERAL_MAGIC)
  }
  out.push(MAGIC, FRAME_END)
  return Uint8Array.from(out)
}

/** A frame as the board sends it: the hub's frame with its CRC set (a board's frames always carry one). */
function withCrc(frame: Uint8Array): Uint8Array {
  const f = frame.slice()
  const c = jd.crc(f.subarray(2, 12 + f[2]!))
  f[0] = c & 0xff
  f[1] = c >> 8
  return f
}

/**
 * The board's USB bridge on `hub` (room 0), behind a new pseudo-terminal. `logEveryMs`: the board
 * also prints a line of its serial log (what console.log and DMESG print on a board) that often,
 * between frames, once the host has enabled the log (0x83). `unflashed`: the port of a board that
 * does not run the DeviceScript runtime (it answers nothing).
 */
export async function usbSerialBoard(hub: FrameHub, options: { logEveryMs?: number; unflashed?: boolean } = {}): Promise<UsbSerialBoard> {
  const relay: ChildProcess = spawn("python3", ["-c", RELAY], { stdio: ["pipe", "pipe", "inherit"] })
  const path = await new Promise<string>((resolve, reject) => {
    let head = ""
    const onData = (d: Buffer) => {
      head += d.toString("latin1")
      const nl = head.indexOf("\n")
      if (nl < 0) return
      relay.stdout!.off("data", onData)
      resolve(head.slice(0, nl))
      const rest = Buffer.from(head.slice(nl + 1), "latin1")
      if (rest.length) relay.stdout!.emit("data", rest)
    }
    relay.stdout!.on("data", onData)
    relay.once("error", (e) => reject(new Error(`the pseudo-terminal relay needs python3 on the PATH: ${e.message}`)))
    relay.once("exit", (code) => reject(new Error(`the pseudo-terminal relay (python3) exited with ${code}`)))
  })
  const stats = { toBus: 0, toHost: 0, commands: [] as number[], dropped: 0, logLines: 0 }
  let packets = false
  let logs = false
  let plugged = true

  // the line to the host: bytes leave at the line's speed
  const queue: Uint8Array[] = []
  let queued = 0
  let timer: NodeJS.Timeout | undefined
  let credit = 0
  let last = performance.now()
  const pump = () => {
    timer = undefined
    const now = performance.now()
    credit = Math.min(credit + ((now - last) * LINE_BYTES_PER_S) / 1000, 4096)
    last = now
    while (queue.length && plugged) {
      const b = queue[0]!
      const n = Math.min(b.length, Math.floor(credit))
      if (n <= 0) break
      relay.stdin!.write(b.subarray(0, n))
      credit -= n
      queued -= n
      if (n === b.length) queue.shift()
      else queue[0] = b.subarray(n)
    }
    if (queue.length && plugged) timer = setTimeout(pump, 1)
  }
  const toHost = (bytes: Uint8Array) => {
    if (!plugged) return
    // a board's USB queue holds a few frames; past it, frames are dropped (0xFE 0xFB tells the host)
    if (queued > 4096) {
      stats.dropped++
      return
    }
    queue.push(bytes)
    queued += bytes.length
    if (!timer) {
      last = performance.now()
      pump()
    }
  }

  const link = hub.attach((frame) => {
    if (!packets) return
    stats.toHost++
    toHost(encodeUsbFrame(withCrc(frame)))
  })

  // the line from the host: frames between 0xFE 0xFC and 0xFE 0xFD, anything else is not ours
  let inFrame = false
  let wasMagic = false
  let buf: number[] = []
  const frameIn = (f: Uint8Array) => {
    if (f.length < 12 || f.length < 12 + f[2]! || 12 + f[2]! > MAX_FRAME) return void stats.dropped++
    const c = jd.crc(f.subarray(2, 12 + f[2]!))
    if (f[0] !== (c & 0xff) || f[1] !== c >> 8) return void stats.dropped++
    const flags = f[3]!
    const cls = f[4]! | (f[5]! << 8) | (f[6]! << 16) | (f[7]! << 24)
    if (flags & FLAG_IS_SERVICE_CLASS && cls >>> 0 === USB_BRIDGE) {
      const cmd = f[14]! | (f[15]! << 8)
      stats.commands.push(cmd)
      if (cmd === 0x80) packets = false
      if (cmd === 0x81) packets = true
      if (cmd === 0x82) logs = false
      if (cmd === 0x83) logs = true
      const report = f.slice(0, 16)
      report[3] = flags & ~FLAG_COMMAND
      toHost(encodeUsbFrame(withCrc(report)))
      return
    }
    stats.toBus++
    link.send(f.slice(0, 12 + f[2]!))
  }
  relay.stdout!.on("data", (d: Buffer) => {
    // (a board without the DeviceScript runtime: its USB port is there and answers nothing)
    if (options.unflashed) return
    for (const c of d) {
      if (wasMagic) {
        wasMagic = false
        if (c === FRAME_START) {
          inFrame = true
          buf = []
        } else if (c === FRAME_END) {
          if (inFrame) frameIn(Uint8Array.from(buf))
          inFrame = false
        } else if (c === LITERAL_MAGIC) {
          if (inFrame) buf.push(MAGIC)
        } else if (inFrame) {
          // anything else ends the frame as broken
          inFrame = false
          stats.dropped++
        }
        continue
      }
      if (c === MAGIC) wasMagic = true
      else if (inFrame) {
        if (buf.length >= MAX_FRAME) {
          inFrame = false
          stats.dropped++
        } else buf.push(c)
      }
    }
  })

  let lines = 0
  const logTimer = options.logEveryMs ? setInterval(() => logs && (stats.logLines++, toHost(new TextEncoder().encode(`heap: ${++lines} lines, ümlauts and 🤖 too\n`))), options.logEveryMs) : undefined

  const exited = new Promise<void>((resolve) => relay.once("exit", () => resolve()))
  const unplug = async () => {
    if (!plugged) return
    plugged = false
    clearInterval(logTimer)
    packets = false
    link.detach()
    if (timer) clearTimeout(timer)
    relay.kill("SIGKILL")
    await exited
  }
  return { path, stats, unplug, close: unplug }
}
