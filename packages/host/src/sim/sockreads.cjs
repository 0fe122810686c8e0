// Preloaded into the DeviceScript VM's process (`node --require`, host/sim/vm.ts): the VM's TCP
// and TLS sockets hand data to the program the way the ESP32 runtime does, not as whole Node reads.
//
// Why: the VM (devicescript-vm wasmpre.ts) passes every Node 'data' chunk, up to 64 KiB, to the
// program as one buffer allocated in its 64 KB heap; over 57,344 bytes (DEVS_MAX_ALLOC) the
// runtime throws "RangeError: buffer too big" in its own event callback, before any program code
// runs (PANIC 60005), and a smaller one can still run the heap out beside the program's own data.
// No program can guard against that. The ESP32 runtime (devicescript-esp32 main/sock.c) reads
// 1,024 bytes per event, and lwIP's TCP window (5,744 bytes by default) bounds what is waiting.
// Here: events of at most READ bytes, at most WINDOW bytes per turn, the socket paused (TCP pushes
// back on the sender) until what was read has been handed over.
"use strict"
const net = require("node:net")
const tls = require("node:tls")

/** bytes per 'data' event (main/sock.c sockbuf) */
const READ = 1024
/** bytes handed over per turn (lwIP's default TCP window) */
const WINDOW = 5744
/** ms between turns: about the VM's scheduling tick, so its fibers run between two windows */
const GAP_MS = 10

function shape(sock) {
  const on = sock.on
  sock.on = function (event, listener) {
    if (event !== "data") return on.call(this, event, listener)
    const q = []
    let timer = null
    const pump = () => {
      timer = null
      let n = 0
      while (q.length > 0 && n < WINDOW) {
        const b = q[0]
        const k = Math.min(READ, b.length)
        if (k === b.length) q.shift()
        else q[0] = b.subarray(k)
        n += k
        listener(b.subarray(0, k))
      }
      if (q.length > 0) timer = setTimeout(pump, GAP_MS)
      else if (!sock.destroyed) sock.resume()
    }
    return on.call(this, "data", (buf) => {
      q.push(buf)
      sock.pause()
      if (!timer) pump()
    })
  }
  return sock
}

/** the program's sockets: the VM opens them with `{ host, port }` alone (the CLI's own WebSocket has more options) */
function program(args) {
  const o = args[0]
  return args.length === 1 && o !== null && typeof o === "object" && Object.keys(o).sort().join() === "host,port"
}

const createConnection = net.createConnection
net.createConnection = function (...args) {
  const s = createConnection.apply(this, args)
  return program(args) ? shape(s) : s
}
const connect = tls.connect
tls.connect = function (...args) {
  const s = connect.apply(this, args)
  return program(args) ? shape(s) : s
}
