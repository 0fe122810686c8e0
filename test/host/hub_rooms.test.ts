// The frame hub's rooms (packages/host/src/transport/hub.ts): with `rooms`, each WebSocket peer (a VM) shares
// frames only with the in-process peers of its own room, as separate Jacdac buses would.
import { test } from "node:test"
import assert from "node:assert/strict"
import WebSocket from "ws"
import { FrameHub, HUB_MAX_PEERS, HUB_PEER_BUFFER_BYTES } from "../../packages/host/src/transport/hub"

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

test("a WebSocket peer that stops reading holds at most HUB_PEER_BUFFER_BYTES of the hub's memory, and the peers that read get every frame meanwhile", { timeout: 60000 }, async () => {
  const hub = new FrameHub()
  await hub.listen(0)
  const stalled = new WebSocket(`ws://127.0.0.1:${hub.port}`)
  await new Promise((r, j) => stalled.once("open", r).once("error", j))
  // (its socket paused: the kernel's buffers fill, then the hub's own)
  ;(stalled as unknown as { _socket: import("node:net").Socket })._socket.pause()
  let readerGot = 0
  const reader = new WebSocket(`ws://127.0.0.1:${hub.port}`)
  reader.on("message", () => readerGot++)
  await new Promise((r, j) => reader.once("open", r).once("error", j))
  await until(() => hub.socketCount === 2, "two sockets")
  const source = hub.attach(() => {})
  // 200,000 frames of 250 bytes (50 MB), 200 per turn of the event loop (a peer that reads takes
  // them as they come; in 2,000 a turn the reader, in this process too, fell behind on a loaded machine)
  const frame = new Uint8Array(250).fill(7)
  let most = 0
  const N = 200_000
  try {
    for (let i = 0; i < N; ) {
      for (const end = i + 200; i < end; i++) source.send(frame)
      most = Math.max(most, hub.bufferedBytes)
      await new Promise((r) => setImmediate(r))
    }
    await until(() => readerGot === N, `the reading peer's ${N} frames (got ${readerGot}; ${hub.framesDropped} frames dropped in all)`)
    most = Math.max(most, hub.bufferedBytes)
    assert.ok(most <= HUB_PEER_BUFFER_BYTES * 1.1 + 200 * 250, `the hub held ${most} bytes for its peers (bound ${HUB_PEER_BUFFER_BYTES} per peer)`)
    assert.ok(hub.framesDropped > 0, "no frame to the stalled peer was dropped: the test did not stall it")
  } finally {
    source.detach()
    stalled.terminate()
    reader.close()
    await hub.close()
  }
})

test("the hub takes at most HUB_MAX_PEERS WebSocket peers at once: one more is closed (1013) and the others keep the bus", { timeout: 30000 }, async () => {
  const hub = new FrameHub()
  await hub.listen(0)
  const peers: { ws: WebSocket; got: string[] }[] = []
  try {
    for (let i = 0; i < HUB_MAX_PEERS; i++) peers.push(await open(hub.port))
    await until(() => hub.socketCount === HUB_MAX_PEERS, `${HUB_MAX_PEERS} sockets`)
    const extra = new WebSocket(`ws://127.0.0.1:${hub.port}`)
    const code = await Promise.race([new Promise<number>((r) => extra.once("close", (c) => r(c))), new Promise<string>((r) => setTimeout(() => r("still open after 3 s"), 3000))])
    extra.terminate()
    assert.equal(code, 1013)
    assert.equal(hub.socketCount, HUB_MAX_PEERS)
    // the peers already there still share the bus
    peers[0]!.ws.send(Buffer.from("hello"), { binary: true })
    await until(() => peers.slice(1).every((p) => p.got.includes("hello")), "the frame at every other peer")
    // a place given up is taken again
    peers.pop()!.ws.close()
    await until(() => hub.socketCount === HUB_MAX_PEERS - 1, "a socket gone")
    peers.push(await open(hub.port))
    await until(() => hub.socketCount === HUB_MAX_PEERS, "the place taken again")
  } finally {
    for (const p of peers) p.ws.terminate()
    await hub.close()
  }
})
