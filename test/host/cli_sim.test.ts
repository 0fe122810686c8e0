// `robot sim` and `robot bridge` as a new user meets them (issue 9): a simulator already in use is
// named at once with what to do; a taken port is said before anything starts, and the command
// exits; start-up progress says each step and why a slow one is slow.
import assert from "node:assert/strict"
import * as net from "node:net"
import { test } from "node:test"
import { startupProgress } from "../../packages/host/src/cli/startup"
import { acquirePortLock } from "../../packages/host/src/sim/vm"
import { runRobot } from "./bridge_helpers"

test("robot sim / robot bridge with the simulator lock taken: fail at once naming the holder and --wait", async () => {
  // this test process holds the lock, as another `robot sim` or a test suite would
  const lock = await acquirePortLock()
  try {
    for (const cmd of [["sim", "--port", "0", "--no-foxglove"], ["bridge", "--port", "0", "--no-foxglove"]]) {
      const t0 = performance.now()
      const r = await runRobot(cmd, { timeoutMs: 60000 })
      assert.equal(r.code, 1, `${cmd[0]}: ${r.stdout}\n${r.stderr}`)
      assert.ok(performance.now() - t0 < 30000, "it did not wait for the lock")
      assert.match(r.stderr, new RegExp(`cannot start the simulator: /tmp/port8081\\.lock is taken \\(flock exit 1\\): pid ${process.pid} \\(.*node.*\\) holds it`))
      assert.match(r.stderr, /run again with --wait \[seconds\] to wait until it is done/)
    }
  } finally {
    lock.release()
  }
})

test("robot sim / robot bridge on a taken port: the port's message, no wrong prefix, and the command exits", async () => {
  const srv = net.createServer()
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()))
  const port = (srv.address() as net.AddressInfo).port
  try {
    for (const cmd of ["sim", "bridge"]) {
      // exits on its own (runRobot would kill it after 60 s and report code null)
      const r = await runRobot([cmd, "--port", String(port)], { timeoutMs: 60000 })
      assert.equal(r.code, 1, `${cmd}: ${r.stderr}`)
      assert.equal(
        r.stderr,
        `robot: port ${port} on 127.0.0.1 is in use (another bridge or rosbridge running?): pass --port <n>, and --url ws://127.0.0.1:<n> to every \`robot service\` call (or set bridge.port in devs.json: both then use it)\n`,
      )
      assert.doesNotMatch(r.stderr, /did not list its services/)
    }
  } finally {
    srv.close()
  }
})

test("start-up progress: each step with its time, and a reason once a step is slow", async () => {
  const lines: string[] = []
  let slowSeen!: () => void
  const slow = new Promise<void>((r) => (slowSeen = r))
  const p = startupProgress((l) => {
    lines.push(l)
    if (l.includes("still")) slowSeen()
  }, 30)
  p.step("building src/main.ts (devs build; reused when the sources have not changed)")
  await slow
  p.step("services listed")
  p.done()
  assert.match(lines[0]!, /^\[sim\] \d+\.\d s: building src\/main\.ts/)
  assert.match(lines[1]!, /^\[sim\] \d+\.\d s: still building src\/main\.ts: the first build of a firmware compiles it .*\/tmp\/devs\.lock/)
  assert.match(lines[2]!, /^\[sim\] \d+\.\d s: services listed$/)
  assert.equal(lines.length, 3)
})
