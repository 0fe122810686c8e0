// Work done a slice at a time (packages/host/src/net/turns.ts): what the bridge finishes WebSocket
// handshakes with, so that a storm of them leaves turns of the event loop for other clients.
import { test } from "node:test"
import assert from "node:assert/strict"
import { Turns } from "../../packages/host/src/net/turns"

const spin = (ms: number) => {
  const end = performance.now() + ms
  while (performance.now() < end) {}
}

test("Turns: 200 jobs of 0.5 ms run in order, in later turns, at most the budget's worth a turn, and other work runs between the turns", async () => {
  const t = new Turns(4)
  const ran: number[] = []
  let turn = 0
  const perTurn = new Map<number, number>()
  // other work: one callback every turn of the loop until the jobs are done (a client's message)
  let others = 0
  let done = false
  const other = () => {
    others++
    turn++
    if (!done) setImmediate(other)
  }
  setImmediate(other)
  for (let i = 0; i < 200; i++)
    t.add(() => {
      ran.push(i)
      perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1)
      spin(0.5)
    })
  assert.equal(ran.length, 0, "nothing runs in the turn that queued it")
  assert.equal(t.waiting, 200)
  while (t.waiting > 0) await new Promise((r) => setImmediate(r))
  done = true
  assert.deepEqual(ran, Array.from({ length: 200 }, (_, i) => i))
  const most = Math.max(...perTurn.values())
  // 4 ms of 0.5 ms jobs: 8, and one more when the clock passes the budget inside the last
  assert.ok(most <= 9, `${most} jobs ran in one turn`)
  assert.ok(perTurn.size >= 200 / 9, `the jobs took ${perTurn.size} turns`)
  assert.ok(others >= perTurn.size - 1, `other work ran ${others} times in ${perTurn.size} turns of jobs`)
})

test("Turns: a job that throws is reported and the others still run; one job a turn at least, however long", async () => {
  const errors: unknown[] = []
  const t = new Turns(1, (e) => errors.push(e))
  const ran: string[] = []
  t.add(() => {
    ran.push("long")
    spin(5)
  })
  t.add(() => {
    throw new Error("bad handshake")
  })
  t.add(() => ran.push("after"))
  while (t.waiting > 0) await new Promise((r) => setImmediate(r))
  assert.deepEqual(ran, ["long", "after"])
  assert.equal(errors.length, 1)
  assert.match(String(errors[0]), /bad handshake/)
  // and the queue takes more afterwards
  t.add(() => ran.push("later"))
  while (t.waiting > 0) await new Promise((r) => setImmediate(r))
  assert.deepEqual(ran, ["long", "after", "later"])
})
