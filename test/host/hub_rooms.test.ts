// The frame hub's rooms (packages/host/src/transport/hub.ts): with `rooms`, each WebSocket peer (a VM) shares
// frames only with the in-process peers of its own room, as separate Jacdac buses would.
import { test } from "node:test"
import assert from "node:assert/strict"
import WebSocket from "ws"
import { FrameHub } from "../../packages/host/src/transport/hub"

function open(port: number): Promise<{ ws: WebSocket; got: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    const got: string[] = []
    ws.on("message", (d) => got.push(Buffer.from(d as Buffer).toString()))
    ws.once("open", () => resolve({ ws, got }))
    ws.once("error", reject)
  })
}

async function until(cond: () => boolean, what: string) {
  const end = Date.now() + 2000
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

test("rooms: each socket peer talks only to its own room; without rooms everyone shares one bus", async () => {
  const hub = new FrameHub({ rooms: true })
  await hub.listen(0)
  const rooms: number[] = []
  hub.on("peer", (_kind: string, room: number) => rooms.push(room))
  const a = await open(hub.port)
  const b = await open(hub.port)
  await until(() => rooms.length === 2, "two peers")
  assert.deepEqual(rooms, [0, 1])
  const got0: string[] = []
  const got1: string[] = []
  const p0 = hub.attach((f) => got0.push(Buffer.from(f).toString()), 0)
  const p1 = hub.attach((f) => got1.push(Buffer.from(f).toString()), 1)
  a.ws.send(Buffer.from("from-a"))
  b.ws.send(Buffer.from("from-b"))
  p0.send(Buffer.from("to-room0"))
  p1.send(Buffer.from("to-room1"))
  await until(() => got0.length >= 1 && got1.length >= 1 && a.got.length >= 1 && b.got.length >= 1, "frames")
  await new Promise((r) => setTimeout(r, 50)) // anything misrouted would have arrived by now
  assert.deepEqual(got0, ["from-a"])
  assert.deepEqual(got1, ["from-b"])
  assert.deepEqual(a.got, ["to-room0"])
  assert.deepEqual(b.got, ["to-room1"])
  a.ws.close()
  b.ws.close()
  await hub.close()

  const shared = new FrameHub()
  await shared.listen(0)
  const c = await open(shared.port)
  const d = await open(shared.port)
  const gotShared: string[] = []
  shared.attach((f) => gotShared.push(Buffer.from(f).toString()))
  c.ws.send(Buffer.from("from-c"))
  await until(() => d.got.length === 1 && gotShared.length === 1, "shared frames")
  assert.deepEqual(d.got, ["from-c"])
  c.ws.close()
  d.ws.close()
  await shared.close()
})
