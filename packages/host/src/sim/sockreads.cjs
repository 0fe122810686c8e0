// Preloaded into the DeviceScript VM's process (`node --require`, host/sim/vm.ts): the VM's TCP
// and TLS sockets hand data to the program the way the ESP32 runtime does, not as whole Node reads.
// (It also moves the VM's hub connection to ROBOT_SIM_PORT's port: see the end of this file.)
//
// Why: the VM (devicescript-vm wasmpre.ts) passes every Node 'data' chunk, up to 64 KiB, to the
// program as one buffer allocated in its 64 KB heap; over 57,344 bytes (DEVS_MAX_ALLOC) the
// runtime throws "RangeError: buffer too big" in its own event callback, before any program code
// runs (PANIC 60005), and a smaller one can still run the heap out beside the program's own data.
// No program can guard against that. The ESP32 runtime (devicescript-esp32 main/sock.c,
// jd_tcpsock_process) reads in its main loop, 128 bytes per recv() into a static buffer, until
// recv() would block, and each piece becomes a 'data' event: a fiber and a 128-byte buffer in the
// program's heap. So what waits in the heap is at most what lwIP's TCP window (5,744 bytes by
// default) let in since the program last ran, cut into 128-byte events, and the program runs
// (its fibers consume those events) before the loop reads again.
// Here the same: events of READ bytes, at most WINDOW bytes per turn, then the VM runs at once
// (its exported jd_em_process: the VM otherwise runs only when its own timer fires, which a socket
// event does not advance, and windows kept arriving meanwhile: 8 MQTT hosts uploading at once ran
// the heap out with 1.5 KB of the call budget in use), and the socket stays paused (TCP pushes back
// on the sender) until what was read has been handed over.
//
// Writes on a TLS socket are held to the ESP32 runtime's limit too. Its socket worker writes each
// `_socketWrite` buffer in one `sock_mbedtls_write`, which begins with
// `JD_ASSERT(datalen < MBEDTLS_SSL_OUT_CONTENT_LEN)` (4096 in ESP-IDF's default mbedTLS config;
// main/sock.c): a write of 4096 bytes or more panics the board, which restarts with the program's
// state lost. The VM's Node TLS socket takes any size, so a program that breaks the rule would pass
// here and die on the board. Here such a write ends the VM's process at once, before the bytes reach
// the peer, with a line naming it ("PANIC", which the tests' panic checks look for): a VM that is
// gone fails every test that uses it, where a restarted program could pass for a slow answer.
"use strict"
const fs = require("node:fs")
const net = require("node:net")
const tls = require("node:tls")

/** bytes per 'data' event (main/sock.c: `static uint8_t sockbuf[128]`) */
const READ = 128
/** bytes handed over per turn (lwIP's default TCP window) */
const WINDOW = 5744
/** ms between turns (the ESP32's main loop reads again as soon as the program has run) */
const GAP_MS = 1
/** a TLS write must be shorter than this (MBEDTLS_SSL_OUT_CONTENT_LEN, asserted in main/sock.c) */
const TLS_OUT = 4096
/** exit status of the VM's process after such a write (128 + SIGABRT, as an assert's abort) */
const ASSERT_EXIT = 134
/**
 * ROBOT_SIM_TIMING=<file> (bench/mqtthops.ts): each time the program writes to one of its sockets
 * after that socket brought data, a line `<when, ms since the epoch> <ms since the data came>` is
 * appended to <file>: the program's own time for an answer (from the last data before the write),
 * without the network's.
 */
const TIMING = process.env.ROBOT_SIM_TIMING || ""

/** the VM's `jd_em_process` (runs the program's fibers that are due), once the VM is instantiated */
let vmProcess = null
const instantiate = WebAssembly.instantiate
WebAssembly.instantiate = async function (...args) {
  const r = await instantiate.apply(this, args)
  const ex = (r && r.instance ? r.instance : r).exports
  if (ex && typeof ex.jd_em_process === "function") vmProcess = ex.jd_em_process
  return r
}

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
        // one recv(): up to READ bytes of whatever has arrived, across Node's reads (a stream cut
        // into 1-byte pieces still reaches the program in 128-byte events, as on the board)
        const parts = []
        let k = 0
        while (q.length > 0 && k < READ) {
          const b = q[0]
          const m = Math.min(READ - k, b.length)
          parts.push(b.subarray(0, m))
          if (m === b.length) q.shift()
          else q[0] = b.subarray(m)
          k += m
        }
        n += k
        listener(parts.length === 1 ? parts[0] : Buffer.concat(parts))
      }
      // the program consumes the window before the next is read (main/sock.c runs in the main loop)
      if (n > 0 && vmProcess) vmProcess()
      if (q.length > 0) timer = setTimeout(pump, GAP_MS)
      else if (!sock.destroyed) sock.resume()
    }
    if (TIMING) {
      // the time from this socket's data to the program's next write on it (see TIMING)
      const write = sock.write
      sock.write = function (...args) {
        if (dataAt) {
          const now = performance.timeOrigin + performance.now()
          fs.appendFileSync(TIMING, `${now.toFixed(3)} ${(now - dataAt).toFixed(3)}\n`)
          dataAt = 0
        }
        return write.apply(this, args)
      }
    }
    let dataAt = 0
    return on.call(this, "data", (buf) => {
      // (the last data before the write: a PUBACK for the previous answer comes before the next call)
      if (TIMING) dataAt = performance.timeOrigin + performance.now()
      q.push(buf)
      sock.pause()
      if (!timer) pump()
    })
  }
  return sock
}

/** Ends the process at a TLS write the ESP32 runtime asserts on (see the header). */
function limitTlsWrites(sock) {
  const write = sock.write
  sock.write = function (data, ...rest) {
    const n = typeof data === "string" ? Buffer.byteLength(data) : data.length
    if (n >= TLS_OUT) {
      // (writeSync: the line must be out before the process ends)
      fs.writeSync(2, `PANIC: TLS write of ${n} bytes, not under ${TLS_OUT} (MBEDTLS_SSL_OUT_CONTENT_LEN): the ESP32 runtime asserts and the board restarts; the VM stops here\n`)
      process.exit(ASSERT_EXIT)
    }
    return write.call(this, data, ...rest)
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
  return program(args) ? limitTlsWrites(shape(s)) : s
}

// The hub's port. `devs run` connects the VM to ws://127.0.0.1:8081, fixed in the CLI
// (`setupWebsocketTransport("ws://127.0.0.1:8081")`), and has no option for another; the test suites
// run two rigs at once on two ports (host/transport/hubport.ts, scripts/test-host.ts). With ROBOT_SIM_PORT set
// to another port (vm.ts sets it for the VM), that one URL goes to ws://127.0.0.1:<port> instead; any
// other URL, and every connection when it is unset or 8081, is left alone. The VM opens it with
// `new WebSocket(url)` on the global WebSocket: Node 20 has none, and the CLI sets websocket-polyfill's
// there (`global.WebSocket = …`) before it connects; a Node that has its own has it there already.
// Either way the global is wrapped, now or when it is set. (The VM's log still says "connected to
// ws://127.0.0.1:8081": it prints the URL it asked for.)
const DEVTOOLS_URL = "ws://127.0.0.1:8081"
const simPort = process.env.ROBOT_SIM_PORT
if (simPort && simPort !== "8081") {
  if (!/^\d+$/.test(simPort)) throw new Error(`ROBOT_SIM_PORT must be a port number, got ${JSON.stringify(simPort)}`)
  const to = `ws://127.0.0.1:${simPort}`
  const wrap = (WS) =>
    typeof WS !== "function"
      ? WS
      : class extends WS {
          constructor(url, ...rest) {
            super(String(url) === DEVTOOLS_URL ? to : url, ...rest)
          }
        }
  let current = wrap(globalThis.WebSocket)
  Object.defineProperty(globalThis, "WebSocket", {
    configurable: true,
    enumerable: false,
    get: () => current,
    set: (WS) => {
      current = wrap(WS)
    },
  })
}
