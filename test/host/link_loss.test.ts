// A robot's link lost and back, as a user meets it: a board on a USB serial port unplugged and
// plugged in again (or an ESP32-S3, whose USB port goes away while it resets), through the real
// `serialport` package and jacdac-ts's serial transport, the port a pseudo-terminal whose other end
// is a board's USB bridge (test/support/usbserial.ts: Jacdac's USB Bridge framing at 1.5 Mbaud)
// onto the bus of the test firmware running in the VM; and the devtools WebSocket restarted (devs
// devtools, restarted on a redeploy), as a relay in front of the rig's hub.
import assert from "node:assert/strict"
import { after, before, test } from "node:test"
import { connect, type ServiceNode } from "../../packages/host/src/client/node"
import { AddTwoInts } from "../../packages/host/src/gen/interfaces"
import { serialTransport } from "../../packages/host/src/transport/serial"
import { websocketTransport } from "../../packages/host/src/transport/websocket"
import { WebSocket, WebSocketServer } from "ws"
import { simPort } from "../../packages/host/src/transport/hubport"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import { Echo, Upload, echo, pattern, uploadHash } from "../../harness/services"
import { usbSerialBoard, type UsbSerialBoard } from "../support/usbserial"
import { rejection } from "../support/rejection"
import { rawRosClient, runRobot, runningBridge } from "./bridge_helpers"
import { testFirmware } from "./services_fixture"

let rig: Rig

before(async () => {
  rig = await startRig({ firmware: testFirmware() })
})
after(async () => {
  await rig?.close()
})

/** `attempt` again every 500 ms until `ok` takes its answer or 20 s have passed; the last answer */
async function retry<T>(attempt: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const end = Date.now() + 20000
  for (;;) {
    const v = await attempt()
    if (ok(v) || Date.now() >= end) return v
    await new Promise((r) => setTimeout(r, 500))
  }
}

async function withBoard<T>(run: (board: UsbSerialBoard, node: ServiceNode) => Promise<T>): Promise<T> {
  const board = await usbSerialBoard(rig.hub, { logEveryMs: 20 })
  let node: ServiceNode | undefined
  try {
    node = await connect({ transport: serialTransport({ path: board.path }) })
    return await run(board, node)
  } finally {
    await node?.close()
    await board.close()
  }
}

test("a board on a serial port the system does not list (a pseudo-terminal, as socat or ser2net make): the client connects with its path, lists and calls; 64 KiB from the board and 16 KiB to it arrive whole (0xFE escaped, 64-byte chunks, 1.5 Mbaud)", { timeout: 120000 }, () =>
  // (before: "cannot connect to serial /dev/pts/N: connection refused": jacdac-ts picks among the
  // ports SerialPort.list() names, and it names no pseudo-terminal)
  withBoard(async (board, node) => {
    const names = (await node.listServices({ timeoutMs: 10000 })).map((s) => s.name)
    assert.ok(names.includes("/add_two_ints"), names.join(" "))
    assert.deepEqual(await node.createClient(AddTwoInts, "add_two_ints").call({ a: 2n, b: 3n }), { sum: 5n })
    const big = await node.createClient(Echo, "echo").call(echo("down", { size: 65536 }), { timeoutMs: 30000 })
    assert.deepEqual(big.data, pattern(65536), "64 KiB from the board")
    const data = pattern(16384)
    const up = await node.createClient(Upload, "upload").call({ data }, { timeoutMs: 30000 })
    assert.equal(up.hash, uploadHash(data), "16 KiB to the board")
    assert.ok(board.stats.commands.includes(0x81), `the host enabled the bridge's packets: ${board.stats.commands}`)
    assert.equal(board.stats.dropped, 0, "no frame dropped at the line")
    assert.ok(board.stats.logLines > 20, `the board's log between the frames: ${board.stats.logLines} lines`)
  }),
)

test("the cable pulled during a call (as when an ESP32-S3 resets: its USB port goes with it): the call fails at once, unavailable naming the port (not at its deadline); calls fail the same while it is out; plugged back in with its program restarted, the same client reports the restart and calls again", { timeout: 120000 }, async () => {
  let board = await usbSerialBoard(rig.hub)
  const path = board.path
  const node = await connect({ transport: serialTransport({ path }) })
  try {
    const add = node.createClient(AddTwoInts, "add_two_ints")
    assert.deepEqual(await add.call({ a: 1n, b: 1n }), { sum: 2n })
    // a call the VM holds for 3 s (mode 9: it sleeps), then the cable goes
    const held = rejection(node.createClient(Echo, "echo").call(echo("slow", { mode: 9, delay_ms: 3000 }), { timeoutMs: 20000 }))
    await new Promise((r) => setTimeout(r, 300))
    const t = Date.now()
    await board.unplug()
    const e = await held
    assert.equal(e.code, "unavailable", e.message)
    assert.match(e.detail, new RegExp(`serial ${path}.*disconnected`))
    assert.ok(Date.now() - t < 2000, `failed ${Date.now() - t} ms after the cable went, not at its deadline`)
    const out = await rejection(add.call({ a: 1n, b: 2n }, { timeoutMs: 5000 }))
    assert.equal(out.code, "unavailable", out.message)
    // the board's program restarts meanwhile (a reset), and the client hears of it once it is back
    const restarted = new Promise<void>((resolve) => node.onStateChange((_s, i) => i.restarted && resolve()))
    await rig.restartVm()
    // plugged back: the system gives the port its name again (a pseudo-terminal's number is reused
    // once free, as /dev/ttyACM0 is); jacdac-ts looks for it every 2.5 s
    board = await usbSerialBoard(rig.hub)
    assert.equal(board.path, path, "the new pseudo-terminal took the same name")
    const t0 = Date.now()
    const sum = await retry(() => add.call({ a: 2n, b: 2n }, { timeoutMs: 2000 }).then((r) => r.sum, () => undefined), (v) => v !== undefined)
    assert.equal(sum, 4n, "a call after the board came back")
    assert.equal(node.state, "connected")
    await restarted
    console.log(`# back ${Date.now() - t0} ms after the board was plugged in again`)
  } finally {
    await node.close()
    await board.close()
  }
})

test("`robot service call --serial <path>` and `robot service list --serial <path>` on the board, its serial log kept out of the output", { timeout: 120000 }, async () => {
  const board = await usbSerialBoard(rig.hub, { logEveryMs: 20 })
  try {
    const call = await runRobot(["service", "call", "--serial", board.path, "/add_two_ints", "{a: 20, b: 22}"])
    assert.equal(call.code, 0, call.stderr)
    assert.equal(call.stdout, "requester: making request: example_interfaces.srv.AddTwoInts_Request(a=20, b=22)\n\nresponse:\nexample_interfaces.srv.AddTwoInts_Response(sum=42)\n\n")
    assert.ok(board.stats.logLines > 0, "the board printed its log meanwhile")
    const list = await runRobot(["service", "list", "--serial", board.path])
    assert.equal(list.code, 0, list.stderr)
    assert.match(list.stdout, /^\/add_two_ints$/m)
    assert.ok(!/heap:/.test(call.stdout + call.stderr + list.stdout + list.stderr), "no log line in the CLI's output")
  } finally {
    await board.close()
  }
})

test("`robot bridge --serial <path>` across a replug: rosbridge calls fail at once naming the port while the board is out, and the same bridge answers once it is back", { timeout: 120000 }, async () => {
  let board = await usbSerialBoard(rig.hub)
  const path = board.path
  const b = await runningBridge(["bridge", "--serial", path, "--port", "0", "--no-foxglove"])
  const ros = await rawRosClient(b.wsUrl)
  try {
    assert.deepEqual(await ros.call("/add_two_ints", { a: 1, b: 2 }), { op: "service_response", id: "raw0", service: "/add_two_ints", result: true, values: { sum: 3 } })
    await board.unplug()
    await new Promise((r) => setTimeout(r, 300))
    const t = Date.now()
    const out = await ros.call("/add_two_ints", { a: 1, b: 2 })
    assert.equal(out.result, false, JSON.stringify(out))
    assert.match(JSON.stringify(out.values), new RegExp(`unavailable.*serial ${path}`))
    assert.ok(Date.now() - t < 2000, `answered in ${Date.now() - t} ms`)
    board = await usbSerialBoard(rig.hub)
    assert.equal(board.path, path)
    const back = await retry(() => ros.call("/add_two_ints", { a: 20, b: 22 }), (r) => r.result)
    assert.deepEqual(back.values, { sum: 42 }, JSON.stringify(back))
  } finally {
    ros.close()
    await b.stop()
    await board.close()
  }
})

/** A stand-in for `devs devtools` on `port`: each client's frames relayed to the rig's hub and back. */
async function devtoolsRelay(port: number): Promise<{ close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port })
  await new Promise((r) => wss.once("listening", r))
  wss.on("connection", (client) => {
    const hub = new WebSocket(`ws://127.0.0.1:${simPort()}`)
    const early: Buffer[] = []
    hub.on("open", () => early.splice(0).forEach((m) => hub.send(m)))
    client.on("message", (d, binary) => {
      if (!binary) return
      if (hub.readyState === hub.OPEN) hub.send(d as Buffer)
      else early.push(d as Buffer)
    })
    hub.on("message", (d, binary) => binary && client.readyState === client.OPEN && client.send(d as Buffer))
    client.on("close", () => hub.close())
    hub.on("close", () => client.close())
  })
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => resolve())
      }),
  }
}

test("devtools restarted under a client connected with its WebSocket: calls fail at once while it is gone, and the same client calls again once it is back", { timeout: 120000 }, async () => {
  // (before: the WebSocket connected again by itself but the client stayed "disconnected", every
  // call ran to its deadline: 60 s of "no answer within 2000 ms" in a probe; a `robot bridge
  // --devtools` had to be restarted with devtools)
  const port = simPort() + 3
  let relay = await devtoolsRelay(port)
  const url = `ws://127.0.0.1:${port}`
  const node = await connect({ transport: websocketTransport(url) })
  try {
    const add = node.createClient(AddTwoInts, "add_two_ints")
    assert.deepEqual(await add.call({ a: 1n, b: 1n }), { sum: 2n })
    await relay.close()
    const gone = await rejection(add.call({ a: 1n, b: 2n }, { timeoutMs: 5000 }))
    assert.equal(gone.code, "unavailable", gone.message)
    assert.match(gone.detail, new RegExp(`${url} disconnected`))
    relay = await devtoolsRelay(port)
    const t = Date.now()
    const sum = await retry(() => add.call({ a: 2n, b: 2n }, { timeoutMs: 2000 }).then((r) => r.sum, () => undefined), (v) => v !== undefined)
    assert.equal(sum, 4n, "a call after devtools came back")
    assert.equal(node.state, "connected")
    console.log(`# back ${Date.now() - t} ms after devtools listened again`)
  } finally {
    await node.close()
    await relay.close()
  }
})

test("a port another program holds (devtools, a serial monitor) and a board that answers nothing on its port: the CLI says which, not 'connection refused'", { timeout: 120000 }, async () => {
  // (before, both: "unavailable: cannot connect to serial <path>: connection refused (is the robot
  // connected? start the bridge with `robot bridge`, or use --serial/--devtools)")
  const board = await usbSerialBoard(rig.hub)
  const { SerialPort } = require("serialport") as { SerialPort: new (o: object) => import("node:events").EventEmitter & { close(cb?: () => void): void } }
  const holder = new SerialPort({ path: board.path, baudRate: 1_500_000 })
  try {
    await new Promise((resolve, reject) => holder.once("open", resolve).once("error", reject))
    const busy = await runRobot(["service", "list", "--serial", board.path])
    assert.equal(busy.code, 1)
    assert.match(busy.stderr, new RegExp(`^robot service list: unavailable: cannot connect to serial ${board.path}: the port is in use by another program \\(.*\\) \\(only one program can have a serial port: stop devtools or the serial monitor, or reach the robot through devtools with --devtools\\)\\n$`))
  } finally {
    await new Promise<void>((r) => holder.close(() => r()))
    await board.close()
  }
  const blank = await usbSerialBoard(rig.hub, { unflashed: true })
  try {
    const none = await runRobot(["service", "list", "--serial", blank.path])
    assert.equal(none.code, 1)
    assert.match(none.stderr, new RegExp(`^robot service list: unavailable: cannot connect to serial ${blank.path}: nothing on the port answered as a DeviceScript board \\(.*\\) \\(is the DeviceScript runtime flashed\\? \\(devs flash esp32 --board <board>\\); is this the board's port\\?\\)\\n$`))
  } finally {
    await blank.close()
  }
})
