// Transports: the devtools-style WebSocket through the frame hub, refused connections, and the
// lazily loaded serial transport. No DeviceScript VM here (see services*.test.ts for that).
import assert from "node:assert/strict"
import { createServer } from "node:net"
import { describe, test } from "node:test"
import { connect } from "../../packages/host/src/client/node"
import { ServiceError } from "../../packages/host/src/client/errors"
import { FrameHub, hubTransport } from "../../packages/host/src/transport/hub"
import { jd, type JD } from "../../packages/host/src/transport/jacdac"
import { loadSerialPort, serialTransport } from "../../packages/host/src/transport/serial"
import { websocketTransport } from "../../packages/host/src/transport/websocket"

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      const port = a && typeof a === "object" ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

describe("transports", () => {
  test("connect() to a WebSocket nobody serves rejects with unavailable, promptly", async () => {
    const port = await freePort()
    const t0 = Date.now()
    await assert.rejects(connect({ transport: websocketTransport(`ws://127.0.0.1:${port}`), connectTimeoutMs: 5000 }), (e) => {
      assert.ok(e instanceof ServiceError)
      assert.equal(e.code, "unavailable")
      assert.match(e.message, new RegExp(`127.0.0.1:${port}`))
      return true
    })
    assert.ok(Date.now() - t0 < 5000)
  })

  test("WebSocket and in-process peers of the hub see each other's Jacdac devices", async () => {
    const hub = new FrameHub()
    await hub.listen(0)
    // an in-process jacdac-ts bus on the hub: it announces its own device every 500 ms
    const other = new jd.JDBus([await hubTransport(hub).create()], { client: false, disableRoleManager: true })
    const node = await connect({ transport: websocketTransport(`ws://127.0.0.1:${hub.port}`) })
    try {
      await other.connect()
      await new Promise<void>((resolve) => {
        const seen = (d: JD.JDDevice) => {
          if (d.deviceId === other.selfDeviceId) {
            node.bus.off(jd.DEVICE_ANNOUNCE, seen)
            resolve()
          }
        }
        node.bus.on(jd.DEVICE_ANNOUNCE, seen)
      })
      assert.equal(hub.socketCount, 1)
      assert.ok(hub.frames > 0)
    } finally {
      await node.close()
      await other.stop()
      await other.dispose()
      await hub.close()
    }
  })

  test("a hub peer's filter drops frames in both directions", async () => {
    const hub = new FrameHub()
    let dropped = 0
    const quiet = new jd.JDBus([await hubTransport(hub, { filter: () => (dropped++, false) }).create()], { disableRoleManager: true })
    const loud = new jd.JDBus([await hubTransport(hub).create()], { disableRoleManager: true })
    try {
      await quiet.connect()
      await loud.connect()
      // wait until the loud bus has announced at least twice: the quiet one must not have seen it
      await new Promise<void>((resolve) => {
        let n = 0
        const f = () => {
          if (++n >= 2 && dropped >= 2) {
            loud.off(jd.SELF_ANNOUNCE, f)
            resolve()
          }
        }
        loud.on(jd.SELF_ANNOUNCE, f)
      })
      assert.equal(quiet.device(loud.selfDeviceId, true), undefined)
      assert.equal(loud.device(quiet.selfDeviceId, true), undefined)
    } finally {
      for (const b of [quiet, loud]) {
        await b.stop()
        await b.dispose()
      }
      await hub.close()
    }
  })

  test("the serial transport loads serialport only when created, and names a missing package", async () => {
    const loaded = () => Object.keys(require.cache).some((k) => /node_modules[\\/]serialport[\\/]/.test(k))
    const before = loaded()
    const t = serialTransport({ path: "/dev/ttyNOPE" })
    assert.equal(t.kind, "serial")
    assert.equal(loaded(), before, "making the factory loads nothing")
    assert.throws(() => loadSerialPort("serialport-not-installed-xyz"), /needs the optional package "serialport-not-installed-xyz"/)
  })
})

test("a serial port that does not exist: the CLI prints one clear line and exits (regression: it used to hang)", () => {
  const { spawnSync } = require("node:child_process") as typeof import("node:child_process")
  const path = require("node:path") as typeof import("node:path")
  const r = spawnSync(process.execPath, [path.join(__dirname, "../../packages/host/bin/robot.js"), "service", "list", "--serial", "/dev/ttyNO_SUCH_PORT"], {
    encoding: "utf8",
    timeout: 30000,
  })
  assert.equal(r.signal, null, "exited by itself, not killed by the timeout")
  assert.equal(r.status, 1)
  // named as a missing port before any connection attempt (issue 9: it said "connection refused")
  assert.equal(r.stderr, "robot service list: unavailable: no serial port /dev/ttyNO_SUCH_PORT: is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB* lists the ports) (check the --serial path)\n")
  assert.equal(r.stdout, "", "no jacdac-ts chatter before the error")
})
