// A board on a USB serial port, spoken to directly (this process is the serial bridge, as devtools
// is). `serialport` is loaded only when this transport is created.
import { existsSync } from "node:fs"
import { jd, type JD } from "./jacdac"
import type { RobotTransport } from "./types"

/** The DeviceScript runtime's serial speed (jacdac-ts opens ports at this rate). */
export const SERIAL_BAUD_RATE = 1_500_000

export interface SerialOptions {
  /** Only this port (e.g. `/dev/ttyACM0`); default: the first port jacdac-ts recognises as a Jacdac device. */
  path?: string
}

/** Loads `serialport` (or `moduleName`), with an error that names the package when it is missing. */
export function loadSerialPort(moduleName = "serialport"): { SerialPort: any } {
  try {
    return require(moduleName)
  } catch (e) {
    throw new Error(
      `the serial transport needs the optional package "${moduleName}" (npm install ${moduleName}): ${(e as Error).message}`,
    )
  }
}

/** Transport over a serial port at 1.5 Mbaud via jacdac-ts `createNodeWebSerialTransport`. */
export function serialTransport(options: SerialOptions = {}): RobotTransport {
  /** why jacdac-ts could not open the port, last time (it says only "device not found") */
  let openError: string | undefined
  return {
    kind: "serial",
    description: options.path ? `serial ${options.path}` : "serial (first Jacdac port)",
    whyNotConnected(error) {
      if (openError) return /lock|busy/i.test(openError) ? `the port is in use by another program (${openError})` : `the port did not open (${openError})`
      if (error && /JDUSB|HF2/.test(error)) return `nothing on the port answered as a DeviceScript board (${error})`
      return undefined
    },
    async create() {
      const { SerialPort } = loadSerialPort()
      openError = undefined
      // the port's own error when it does not open (another program holds it: "Cannot lock port")
      let Port = class extends SerialPort {
        constructor(o: unknown, cb?: (e: Error | null) => void) {
          super(o, (e: Error | null) => {
            openError = e ? e.message : undefined
            cb?.(e)
          })
        }
      }
      if (options.path) {
        const want = options.path
        // jacdac-ts picks among SerialPort.list(); narrow the list to the requested path. A path the
        // list does not name (a pseudo-terminal: socat or ser2net in front of a board elsewhere, a
        // by-id link) is still the port asked for, as long as it exists.
        Port = class extends Port {
          static async list() {
            const all: { path: string; serialNumber?: string }[] = await SerialPort.list()
            const named = all.filter((p) => p.path === want)
            if (!named.length && existsSync(want)) named.push({ path: want })
            return named.map((p) => ({ ...p, serialNumber: "JD-" + (p.serialNumber ?? p.path) }))
          }
        }
      }
      // jacdac-ts 1.33.7 starts a 2.5 s port-watch interval here and never stops it, which kept the
      // CLI alive after a failed connection: capture it, unref it, and stop it with the transport.
      const timers: ReturnType<typeof setInterval>[] = []
      const original = globalThis.setInterval
      globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
        const h = original(...args)
        timers.push(h)
        return h
      }) as typeof setInterval
      let transport: JD.Transport
      try {
        transport = jd.createNodeWebSerialTransport(Port)
      } finally {
        globalThis.setInterval = original
      }
      for (const h of timers) h.unref?.()
      const dispose = transport.dispose.bind(transport)
      transport.dispose = () => {
        for (const h of timers) clearInterval(h)
        dispose()
      }
      return transport
    },
  }
}
