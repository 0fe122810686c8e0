// `robot sim --robots N` as a user first tries a fleet (issue 17): `help` on its standard input
// lists the commands; a robot can be stopped, started and rebooted and the embedded broker
// restarted from there, and the CLI through the bridge says what happened (`unavailable: robot X
// is offline`, then answers again); --broker-users gives the simulated robots broker credentials
// (each logs in as the user of its own name, the bridge as the host user: docs/mqtt.md). The real
// binary with 2 VMs; its bridge and broker on free ports; --wait, as other suites may hold the
// simulator.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { test } from "node:test"
import { fleetConsole, FLEET_HELP } from "../../packages/host/src/cli/sim"
import { ROOT, runRobot } from "./bridge_helpers"

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

test("the fleet console: help, and clear answers to mistakes (fake fleet, every command recorded)", async () => {
  const did: string[] = []
  const running = new Set(["robot1", "robot2"])
  const robots = ["robot1", "robot2"].map((name) => ({ name, hardware: { pressButton: async (down: boolean) => void did.push(`${name} button ${down}`) } }))
  const said: string[] = []
  const run = fleetConsole({
    robots: {
      robots: robots as any,
      stop: async (n) => void (did.push(`stop ${n}`), running.delete(n)),
      start: async (n) => void (did.push(`start ${n}`), running.add(n)),
      restart: async (n) => void did.push(`restart ${n}`),
      running: (n) => running.has(n),
    },
    say: (l) => said.push(l),
  })
  for (const l of ["help", "b", "b 2", "stop 2", "stop robot2", "b 2", "start 2", "reboot robot1", "stop 9", "stop", "fly", "broker restart", "stop 1 2"]) await run(l)
  assert.deepEqual(did, ["robot1 button true", "robot2 button true", "stop robot2", "start robot2", "restart robot1"])
  assert.equal(said[0], FLEET_HELP)
  assert.match(FLEET_HELP, /stop <robot>[\s\S]*start <robot>[\s\S]*reboot <robot>[\s\S]*broker restart/)
  assert.deepEqual(said.slice(1), [
    "[sim] robot1 button down",
    "[sim] robot2 button down",
    "[sim] robot2 stopped (the bridge shows it offline once the broker notices)",
    "[sim] robot2 is already stopped",
    "[sim] robot2 is stopped: start robot2 first",
    "[sim] starting robot2",
    "[sim] robot2 is up; it connects to the broker within a few seconds",
    "[sim] rebooting robot1",
    "[sim] robot1 is up; it connects to the broker within a few seconds",
    "[sim] no robot 9 (robots: robot1, robot2, or 1-2)",
    "[sim] stop which robot? e.g. stop 2",
    "[sim] unknown command 'fly' (help lists the commands)",
    "[sim] the broker is not this program's (--mqtt <url>): restart it where it runs",
    "[sim] 'stop 1 2': one argument at most (help lists the commands)",
  ])
})

test("robot sim: broker options that do not apply are refused before anything starts", async () => {
  for (const [args, re] of [
    [["sim", "--broker-users", "users.json"], /^robot: --broker-host\/--broker-port\/--broker-users\/--broker-host-rate configure the embedded broker of --robots <n>: add --robots, or leave them out\n$/],
    [["sim", "--broker-host-rate", "65536"], /^robot: --broker-host\/--broker-port\/--broker-users\/--broker-host-rate configure the embedded broker of --robots <n>: add --robots, or leave them out\n$/],
    [["sim", "--robots", "2", "--mqtt", "mqtt://127.0.0.1:1883", "--broker-users", "users.json"], /^robot: --broker-host\/--broker-port\/--broker-users\/--broker-host-rate configure the embedded broker: leave out --mqtt <url>\n$/],
  ] as [string[], RegExp][]) {
    const r = await runRobot(args, { timeoutMs: 60_000 })
    assert.equal(r.code, 1, args.join(" "))
    assert.match(r.stderr, re)
  }
})

test("robot sim --robots 2 --broker-users: help, stop/start a robot, stop/start/restart the broker; the CLI says offline, then answers", { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "robot-sim-fleet-"))
  const users = path.join(dir, "users.json")
  writeFileSync(users, JSON.stringify([
    { name: "robot1", password: "pw-r1", role: "robot" },
    { name: "robot2", password: "pw-r2", role: "robot" },
    { name: "bridge", password: "pw-bridge", role: "host" },
  ]))
  const brokerPort = await freePort()
  const child = spawn(process.execPath, [path.join(ROOT, "packages/host/bin/robot.js"), "sim", "--robots", "2", "--port", "0", "--no-foxglove", "--broker-port", String(brokerPort), "--broker-users", users, "--wait", "300"], { cwd: ROOT })
  let out = ""
  const waiters: { re: RegExp; from: number; resolve: () => void }[] = []
  const onData = (d: Buffer) => {
    out += d
    for (const w of [...waiters]) if (w.re.test(out.slice(w.from))) (waiters.splice(waiters.indexOf(w), 1), w.resolve())
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)))
  /** Resolves once output after `from` matches `re`. */
  const until = (re: RegExp, from: number, ms = 120_000) =>
    new Promise<void>((resolve, reject) => {
      if (re.test(out.slice(from))) return resolve()
      const t = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; output:\n${out}`)), ms)
      waiters.push({ re, from, resolve: () => (clearTimeout(t), resolve()) })
    })
  const send = (line: string) => {
    const from = out.length
    child.stdin.write(line + "\n")
    return from
  }
  try {
    await until(/Type 'help' \+ Enter/, 0, 300_000)
    const port = Number(/dashboard: http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)![1])
    const url = ["--url", `ws://127.0.0.1:${port}`]
    const online = async () => Object.fromEntries(((await (await fetch(`http://127.0.0.1:${port}/api/robots`)).json()) as any).robots.map((r: any) => [r.name, r.online]))
    const waitOnline = async (want: Record<string, boolean>, ms = 60_000) => {
      const end = Date.now() + ms
      for (;;) {
        const now = await online()
        if (JSON.stringify(now) === JSON.stringify(want)) return
        if (Date.now() > end) assert.fail(`robots ${JSON.stringify(now)}, wanted ${JSON.stringify(want)}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    await waitOnline({ robot1: true, robot2: true })

    let from = send("help")
    await until(/Commands \(type one \+ Enter\)[\s\S]*broker restart/, from)

    from = send("stop 2")
    await until(/robot2 stopped/, from)
    await waitOnline({ robot1: true, robot2: false })
    const off = await runRobot(["service", "call", "/robot2/get_state", ...url])
    assert.equal(off.code, 1)
    assert.match(off.stderr, /^robot service call: unavailable: robot robot2 is offline/)
    const group = await runRobot(["service", "call", "/add_two_ints", "{a: 2, b: 3}", "--robots", "robot*", ...url])
    assert.match(group.stdout, /robot1: .*sum=5\)\nrobot2: offline\n$/)

    from = send("start 2")
    await until(/robot2 is up/, from)
    await waitOnline({ robot1: true, robot2: true })
    const back = await runRobot(["service", "call", "/robot2/add_two_ints", "{a: 40, b: 2}", ...url])
    assert.equal(back.code, 0, back.stderr)
    assert.match(back.stdout, /sum=42/)

    // the broker down: the bridge knows no robot online, and the CLI says so (not "no service")
    from = send("broker stop")
    await until(/broker stopped/, from)
    await waitOnline({ robot1: false, robot2: false })
    const down = await runRobot(["service", "call", "/robot1/get_state", ...url])
    assert.equal(down.code, 1)
    assert.match(down.stderr, /^robot service call: unavailable: robot robot1 is offline/)
    from = send("broker start")
    await until(/broker started/, from)
    await waitOnline({ robot1: true, robot2: true })

    from = send("broker restart")
    await until(/broker restarted/, from)
    // both reconnect with their credentials (the broker refuses anyone else)
    const end = Date.now() + 60_000
    for (;;) {
      const r = await runRobot(["service", "call", "/add_two_ints", "{a: 1, b: 1}", "--robots", "robot*", ...url])
      if (r.code === 0) {
        // (typed, `...(sum=2)`, once the bridge has the robot's service list again; as JSON,
        // `{"sum":2}`, while it does not yet: seen in CI just after the broker restart)
        assert.match(r.stdout, /robot1: .*(sum=2\)|"sum":2\})\nrobot2: .*(sum=2\)|"sum":2\})\n$/)
        break
      }
      if (Date.now() > end) assert.fail(`the robots did not come back after the broker restart: ${r.stdout}${r.stderr}\n${out}`)
      await new Promise((r) => setTimeout(r, 500))
    }
  } finally {
    child.kill("SIGINT")
    const code = await exited
    rmSync(dir, { recursive: true, force: true })
    assert.equal(code, 0, out)
  }
})
