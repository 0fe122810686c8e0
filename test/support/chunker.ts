// A TCP proxy that cuts what the broker sends into pieces of seeded random sizes (1 byte to whole
// reads of several KB), so the robot's MQTT parser sees every chunking: on the ESP32 reads arrive in
// small pieces, in the VM a whole TCP read arrives at once (DEVICESCRIPT.md). Used by the soak.
import * as net from "node:net"
import { rng } from "../../harness/link"

export interface Chunker {
  /** `mqtt://127.0.0.1:<port>`: give this to the robot instead of the broker's address */
  url: string
  /** pieces written towards the robot */
  pieces: number
  close(): Promise<void>
}

export function startChunker(brokerPort: number, seed: number): Promise<Chunker> {
  const r = rng(seed)
  const sockets = new Set<net.Socket>()
  const c: Chunker = { url: "", pieces: 0, close: async () => {} }
  const server = net.createServer((dev) => {
    const up = net.connect(brokerPort, "127.0.0.1")
    sockets.add(dev)
    sockets.add(up)
    dev.pipe(up)
    dev.setNoDelay(true)
    // towards the robot: pieces of 1..16 bytes, up to 64, up to 4 KB, or whole reads, each written
    // in its own turn of the event loop (writes in one turn may leave as one segment)
    const queue: Buffer[] = []
    let writing = false
    const pump = () => {
      const p = queue.shift()
      if (!p || dev.destroyed) {
        writing = false
        return
      }
      dev.write(p)
      c.pieces++
      setImmediate(pump)
    }
    up.on("data", (d: Buffer) => {
      for (let o = 0; o < d.length; ) {
        const k = r()
        const n = k < 0.25 ? 1 + Math.floor(r() * 16) : k < 0.5 ? 1 + Math.floor(r() * 64) : k < 0.75 ? 1 + Math.floor(r() * 4096) : d.length
        queue.push(d.subarray(o, o + n))
        o += n
      }
      if (!writing) {
        writing = true
        setImmediate(pump)
      }
    })
    const end = () => {
      dev.destroy()
      up.destroy()
    }
    dev.on("error", end)
    up.on("error", end)
    dev.on("close", end)
    up.on("close", end)
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const a = server.address() as net.AddressInfo
      c.url = `mqtt://127.0.0.1:${a.port}`
      c.close = () =>
        new Promise<void>((done) => {
          for (const s of sockets) s.destroy()
          server.close(() => done())
        })
      resolve(c)
    })
  })
}
