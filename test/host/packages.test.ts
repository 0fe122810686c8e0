// The published packages used the way a DeviceScript user would (issue 18): `npm pack` both
// workspaces, make a project as `devs init` does (the CLI's own `init --no-install`), install the
// tarballs, `robot init`, add a Ping.srv, `robot gen`, a main.ts with createService, `devs build`,
// run it in the VM behind `devs devtools`, call /ping with the `robot` CLI and through
// `robot bridge`'s rosbridge. A second project with specs and settings of its own keeps them.
//
// Installing: each tarball is unpacked into node_modules/<name> (what npm does with a package),
// and only the dependencies the packed host package.json declares (plus the DeviceScript CLI) are
// linked from this repository's node_modules, so the test runs offline in seconds and a module the
// compiled CLI loads without declaring it fails here. The CLI runs from the tarball's dist/ (it
// ships no TypeScript sources): no tsx, no bundling.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createInterface } from "node:readline"
import WebSocket from "ws"
import { acquirePortLock, type PortLock } from "../../packages/host/src/sim/vm"
import { FrameHub } from "../../packages/host/src/transport/hub"
import { simPort } from "../../packages/host/src/transport/hubport"

const REPO = path.resolve(__dirname, "../..")
const DEVS = path.join(REPO, "node_modules/@devicescript/cli/devicescript")
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "robot-packages-"))
const tarballs: Record<"device" | "host", string> = { device: "", host: "" }
const contents: Record<"device" | "host", string[]> = { device: [], host: [] }

function run(cmd: string, args: string[], cwd: string, timeout = 120_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" } })
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`, stdout: r.stdout ?? "", stderr: r.stderr ?? "" }
}

/** Runs the installed `robot` of `project` (node_modules/.bin/robot, as `npx robot` does). */
function robot(project: string, ...args: string[]) {
  return run(process.execPath, [path.join(project, "node_modules/.bin/robot"), ...args], project)
}

before(() => {
  // the host package's prepack builds dist/ (tsc); the device package ships its TypeScript
  const r = run("npm", ["pack", "--json", "--workspace", "packages/device", "--workspace", "packages/host", "--pack-destination", TMP], REPO, 180_000)
  assert.equal(r.status, 0, r.out)
  const packed = JSON.parse(r.stdout.slice(r.stdout.indexOf("["))) as { name: string; filename: string; files: { path: string }[] }[]
  for (const p of packed) {
    const key = p.name === "@robot-services/device" ? "device" : p.name === "@robot-services/host" ? "host" : undefined
    assert.ok(key, `unexpected package ${p.name}`)
    tarballs[key] = path.join(TMP, p.filename)
    contents[key] = p.files.map((f) => f.path)
  }
})

after(() => fs.rmSync(TMP, { recursive: true, force: true }))

/** Unpacks `tgz` into `dir` (npm's tarballs hold one `package/` folder). */
function unpack(tgz: string, dir: string) {
  fs.mkdirSync(dir, { recursive: true })
  const r = run("tar", ["-xzf", tgz, "-C", dir, "--strip-components=1"], TMP)
  assert.equal(r.status, 0, r.out)
}

/** A project made by `devs init`, with both tarballs installed. */
function makeProject(name: string, extra?: (dir: string) => void): string {
  const dir = path.join(TMP, name)
  fs.mkdirSync(dir)
  extra?.(dir)
  const r = run(process.execPath, [DEVS, "init", "--no-install"], dir)
  assert.equal(r.status, 0, r.out)
  for (const f of ["devsconfig.json", "src/main.ts", "src/tsconfig.json", "package.json"]) assert.ok(fs.existsSync(path.join(dir, f)), `devs init made ${f}`)
  install(dir, true)
  return dir
}

/** Installs the host tarball (and the device one) into `dir`/node_modules. */
function install(dir: string, device: boolean) {
  const nm = path.join(dir, "node_modules")
  if (device) unpack(tarballs.device, path.join(nm, "@robot-services/device"))
  unpack(tarballs.host, path.join(nm, "@robot-services/host"))
  const hostPkg = JSON.parse(fs.readFileSync(path.join(nm, "@robot-services/host/package.json"), "utf8"))
  const deps = [...Object.keys(hostPkg.dependencies), ...Object.keys(hostPkg.optionalDependencies ?? {})]
  for (const d of deps) {
    const from = path.join(REPO, "node_modules", d)
    if (!fs.existsSync(from)) continue // an optional dependency not installed here (serialport may be)
    fs.mkdirSync(path.dirname(path.join(nm, d)), { recursive: true })
    // @devicescript/cli only: `devs build` writes the project's own @devicescript/core etc.
    fs.symlinkSync(from, path.join(nm, d))
  }
  fs.mkdirSync(path.join(nm, ".bin"))
  fs.symlinkSync("../@robot-services/host/bin/robot.js", path.join(nm, ".bin/robot"))
}

/** Every file under `dir` (node_modules and .devicescript aside) with its content. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d)) {
      if (n === "node_modules" || n === ".devicescript") continue
      const p = path.join(d, n)
      if (fs.statSync(p).isDirectory()) walk(p)
      else out.set(path.relative(dir, p), fs.readFileSync(p, "utf8"))
    }
  }
  walk(dir)
  return out
}

/** One rosbridge call_service to the bridge at `url` on a connection of its own: the service_response. */
async function rosbridgeCall(url: string, service: string, args: unknown): Promise<any> {
  const ws = new WebSocket(url)
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve())
      ws.once("error", reject)
    })
    const reply = new Promise<any>((resolve) =>
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString())
        if (m.op === "service_response" && m.id === "c1") resolve(m)
      }),
    )
    ws.send(JSON.stringify({ op: "call_service", id: "c1", service, args }))
    return await reply
  } finally {
    ws.close()
  }
}

/** A child process whose output lines can be awaited (own process group, killed by close()). */
function startChild(args: string[], cwd: string) {
  const child: ChildProcess = spawn(process.execPath, args, { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
  const lines: string[] = []
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  const onLine = (l: string) => {
    lines.push(l)
    for (const w of [...waiters]) if (w.re.test(l)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(l)
    }
  }
  createInterface({ input: child.stdout! }).on("line", onLine)
  createInterface({ input: child.stderr! }).on("line", onLine)
  let exitCode: number | null | undefined
  child.once("exit", (c) => (exitCode = c))
  return {
    lines,
    wait(re: RegExp, timeoutMs: number): Promise<string> {
      const seen = lines.find((l) => re.test(l))
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms (exit ${exitCode}):\n${lines.join("\n")}`)), timeoutMs)
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) })
        child.once("exit", (c) => {
          clearTimeout(t)
          reject(new Error(`exited (${c}) before a line matching ${re}:\n${lines.join("\n")}`))
        })
      })
    },
    /** Ctrl+C (SIGINT): resolves when it has exited (its own VM, in a process group of its own, with it); killed after 15 s */
    async stop(): Promise<void> {
      if (exitCode !== undefined || !child.pid) return
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      process.kill(child.pid, "SIGINT")
      const t = setTimeout(() => this.close(), 15_000)
      await gone
      clearTimeout(t)
    },
    /** kills its process group; resolves once it has exited (a devtools or VM still going would meet the next test's) */
    async close(): Promise<void> {
      if (exitCode !== undefined || !child.pid) return
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      try {
        process.kill(-child.pid, "SIGKILL")
      } catch {
        return // gone
      }
      await gone
    },
  }
}

/**
 * Builds `dir`'s src/main.ts and runs it as a user would: `devs devtools` (its ports are fixed:
 * 8081's lock held meanwhile), then the VM (`devs run`) until it prints `up`; `body` runs, then
 * the VM and devtools are gone before the lock is given back.
 */
async function withDevtoolsVm(dir: string, up: RegExp, body: () => Promise<void>): Promise<void> {
  const build = run(process.execPath, [DEVS, "build", "src/main.ts"], dir)
  assert.equal(build.status, 0, build.out)
  const lock: PortLock = await acquirePortLock()
  const devtools = startChild([DEVS, "devtools"], dir)
  let vm: ReturnType<typeof startChild> | undefined
  try {
    // the VM gives up at once when nothing listens on 8081 yet: start it once devtools serves
    await devtools.wait(/websocket\s*:\s*ws:\/\/127\.0\.0\.1:8081/, 30_000)
    vm = startChild([DEVS, "run", ".devicescript/bin/bytecode.devs"], dir)
    await vm.wait(up, 30_000)
    await body()
  } finally {
    await vm?.close()
    await devtools.close()
    lock.release()
  }
}

test("published contents: built JavaScript and declarations, TypeScript only in the device library, licence, no tests or caches", () => {
  for (const key of ["device", "host"] as const) {
    const files = contents[key]
    assert.ok(files.includes("LICENSE"), `${key}: LICENSE`)
    assert.ok(files.includes("README.md"), `${key}: README.md`)
    assert.ok(files.includes("package.json"), `${key}: package.json`)
    const bad = files.filter((f) => /(^|\/)(test|tests|__tests__)\/|\.test\.|(^|\/)\.cache\/|(^|\/)\.devicescript\/|(^|\/)node_modules\/|tsbuildinfo|\.tgz$/.test(f))
    assert.deepEqual(bad, [], `${key}: no test files or caches`)
  }
  const host = contents.host
  for (const f of ["bin/robot.js", "dist/cli/main.js", "dist/client/index.js", "dist/client/index.d.ts", "dist/runtime/index.d.ts", "dist/bridge/web/index.html", "dist/demo/demo_camera.js", "dist/sim/sockreads.cjs", "devs.schema.json", "interfaces/unique_identifier_msgs/msg/UUID.msg", "interfaces/builtin_interfaces/msg/Time.msg", "interfaces/std_srvs/srv/Trigger.srv"]) assert.ok(host.includes(f), `host ships ${f}`)
  assert.deepEqual(host.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), [], "host ships no TypeScript sources")
  const device = contents.device
  for (const f of ["src/index.ts", "mqtt.ts", "settings.ts", "src/net/mqtt.ts", "src/cdr/cdr.ts", "src/gen/wire.ts", "services/rosservices.md"]) assert.ok(device.includes(f), `device ships ${f}`)
  assert.equal(JSON.parse(fs.readFileSync(path.join(REPO, "packages/device/package.json"), "utf8")).devicescript?.library, true)
  // the library's spec is this robot's, byte for byte (robot gen keeps them equal)
  assert.equal(fs.readFileSync(path.join(REPO, "packages/device/services/rosservices.md"), "utf8"), fs.readFileSync(path.join(REPO, "services/rosservices.md"), "utf8"))
})

test("robot init refuses a folder that is not a DeviceScript project, and a project without the device library", () => {
  const empty = path.join(TMP, "empty")
  fs.mkdirSync(empty)
  const hostOnly = path.join(TMP, "host-only")
  fs.mkdirSync(hostOnly)
  install(hostOnly, false)
  const cli = path.join(hostOnly, "node_modules/.bin/robot")
  const a = run(process.execPath, [cli, "init"], empty)
  assert.equal(a.status, 1)
  assert.match(a.stderr, /robot init: .*empty is not a DeviceScript project \(no devsconfig\.json, no package\.json\): run `npx devicescript init` there first/)
  // a folder with a package.json of its own: the file that is missing is the one named
  const npmOnly = path.join(TMP, "npm-only")
  fs.mkdirSync(npmOnly)
  fs.writeFileSync(path.join(npmOnly, "package.json"), `{"name": "y"}\n`)
  const c = run(process.execPath, [cli, "init"], npmOnly)
  assert.equal(c.status, 1)
  assert.match(c.stderr, /robot init: .*npm-only is not a DeviceScript project \(no devsconfig\.json\): run `npx devicescript init` there first/)
  fs.writeFileSync(path.join(hostOnly, "package.json"), `{"name": "x"}\n`)
  fs.writeFileSync(path.join(hostOnly, "devsconfig.json"), `{}\n`)
  const b = run(process.execPath, [cli, "init"], hostOnly)
  assert.equal(b.status, 1)
  assert.match(b.stderr, /@robot-services\/device is not installed in .*: install it first \(its tarball from `npm pack`, or the registry: README "Your own project"; init copies its services\/rosservices\.md\)/)
  assert.deepEqual(fs.readdirSync(hostOnly).sort(), ["devsconfig.json", "node_modules", "package.json"], "nothing written")
})

test("robot bridge --memory from the installed package: the demo robot's camera (dist/demo/demo_camera.js, a worker started by its path) takes a picture; the CLI calls through that bridge", async () => {
  const dir = path.join(TMP, "memory")
  fs.mkdirSync(dir)
  install(dir, false)
  const bridge = startChild([path.join(dir, "node_modules/.bin/robot"), "bridge", "--memory", "--port", "0", "--no-foxglove"], dir)
  try {
    const line = await bridge.wait(/rosbridge: ws:\/\//, 30_000)
    const url = /rosbridge: (ws:\/\/\S+)/.exec(line)![1]!
    const m = await rosbridgeCall(url, "/take_picture", { resolution: 0, quality: 0 })
    assert.equal(m.result, true, JSON.stringify(m))
    assert.deepEqual([m.values.width, m.values.height, m.values.image.format], [160, 120, "jpeg"])
    assert.equal(Buffer.from(m.values.image.data, "base64").subarray(0, 3).toString("hex"), "ffd8ff", "a JPEG")
    const call = robot(dir, "service", "call", "/add_two_ints", "{a: 2, b: 3}", "--url", url)
    assert.equal(call.status, 0, call.out)
    assert.match(call.stdout, /sum=5/)
  } finally {
    bridge.close()
  }
})

test("a devs init project: robot init, Ping.srv, robot gen, devs build, the VM; /ping answers through the CLI and through robot bridge's rosbridge", async () => {
  const dir = makeProject("pingbot")
  const first = robot(dir, "init")
  assert.equal(first.status, 0, first.out)
  assert.match(first.stdout, /created +services\/rosservices\.md/)
  assert.match(first.stdout, /created +devs\.json/)
  assert.match(first.stdout, /created +services\/pingbot_interfaces\/srv\/Hello\.srv/)
  assert.match(first.stdout, /import \{ createService \} from "@robot-services\/device"/)
  const once = snapshot(dir)
  const again = robot(dir, "init")
  assert.equal(again.status, 0, again.out)
  assert.doesNotMatch(again.stdout, /created|kept/)
  assert.deepEqual(snapshot(dir), once, "a second robot init changes nothing")

  fs.writeFileSync(path.join(dir, "services/pingbot_interfaces/srv/Ping.srv"), "uint32 seq\n---\nuint32 seq\nstring text\n")
  const gen = robot(dir, "gen")
  assert.equal(gen.status, 0, gen.out)
  assert.match(fs.readFileSync(path.join(dir, "src/gen/interfaces.ts"), "utf8"), /from "@robot-services\/device"/)
  assert.match(fs.readFileSync(path.join(dir, "host/gen/interfaces.ts"), "utf8"), /from "@robot-services\/host\/runtime"/)
  fs.writeFileSync(
    path.join(dir, "src/main.ts"),
    [
      `import { createService } from "@robot-services/device"`,
      `import { Ping } from "./gen/interfaces"`,
      ``,
      `createService(Ping, "ping", async (req) => ({ seq: req.seq + 1, text: "pong " + req.seq }))`,
      `console.log("pingbot up")`,
      ``,
    ].join("\n"),
  )
  await withDevtoolsVm(dir, /pingbot up/, async () => {
    let bridge: ReturnType<typeof startChild> | undefined
    try {
      const call = robot(dir, "service", "call", "/ping", "{seq: 41}", "--devtools")
      assert.equal(call.status, 0, call.out)
      assert.match(call.stdout, /Ping_Response\(seq=42, text='pong 41'\)/)
      const list = robot(dir, "service", "list", "-t", "--devtools")
      assert.match(list.stdout, /\/ping \[pingbot_interfaces\/srv\/Ping\]/)

      bridge = startChild([path.join(dir, "node_modules/.bin/robot"), "bridge", "--devtools", "--port", "0", "--no-foxglove"], dir)
      const line = await bridge.wait(/rosbridge: ws:\/\//, 30_000)
      const url = /rosbridge: (ws:\/\/\S+)/.exec(line)![1]!
      const m = await rosbridgeCall(url, "/ping", { seq: 7 })
      assert.equal(m.result, true, JSON.stringify(m))
      assert.deepEqual(m.values, { seq: 8, text: "pong 7" })
    } finally {
      await bridge?.close()
    }
  })
})

test("an action in a devs init project: robot gen finds what it needs in the host package (its built-in interfaces), devs build compiles createActionServer, robot action send_goal runs a goal in the VM", async () => {
  const dir = makeProject("fibbot")
  const init = robot(dir, "init")
  assert.equal(init.status, 0, init.out)
  fs.mkdirSync(path.join(dir, "services/fibbot_interfaces/action"))
  fs.writeFileSync(path.join(dir, "services/fibbot_interfaces/action/Fibonacci.action"), "int32 order\n---\nint32[] sequence\n---\nint32[] sequence\n")
  const gen = robot(dir, "gen")
  assert.equal(gen.status, 0, gen.out)
  // Hello's halves, the action's three messages and five derived ones, UUID and Time
  assert.match(gen.stdout, /robot gen: 12 messages, 1 services, 1 action from services/)
  const show = robot(dir, "interface", "show", "unique_identifier_msgs/msg/UUID")
  assert.equal(show.status, 0, show.out)
  assert.match(show.stdout, /uint8\[16\] uuid/)
  fs.writeFileSync(
    path.join(dir, "src/main.ts"),
    [
      `import { createActionServer } from "@robot-services/device"`,
      `import { Fibonacci } from "./gen/interfaces"`,
      ``,
      `createActionServer(Fibonacci(), "fibonacci", {`,
      `    execute: async (goal, h) => {`,
      `        const seq = [0, 1]`,
      `        for (let i = 2; i < goal.order && !h.cancelled; i++) {`,
      `            seq.push(seq[i - 1] + seq[i - 2])`,
      `            h.feedback({ sequence: seq.slice(0) })`,
      `        }`,
      `        return { sequence: seq }`,
      `    },`,
      `})`,
      `console.log("fibbot up")`,
      ``,
    ].join("\n"),
  )
  await withDevtoolsVm(dir, /fibbot up/, async () => {
    const goal = robot(dir, "action", "send_goal", "/fibonacci", "fibbot_interfaces/action/Fibonacci", "{order: 5}", "--devtools")
    assert.equal(goal.status, 0, goal.out)
    assert.match(goal.stdout, /Result:\n\s+sequence: \[0, 1, 1, 2, 3\]/)
    assert.match(goal.stdout, /Goal finished with status: SUCCEEDED/)
  })
})

test("a project with its own service spec, settings and devs.json keeps them; a changed rosservices.md is reported, not replaced", () => {
  const OWN_SPEC = "# Lamp\n\n    identifier: 0x1f2e3d4c\n    camel: lamp\n\nA lamp of the user's own.\n\n## Registers\n\n    rw brightness: u8 @ intensity\n\nHow bright, 0 .. 255.\n"
  const dir = makeProject("lampbot", (d) => {
    fs.mkdirSync(path.join(d, "services"))
    fs.writeFileSync(path.join(d, "services/lamp.md"), OWN_SPEC)
    fs.writeFileSync(path.join(d, ".env.defaults"), "LAMP_LEVEL=3\n")
    // the robot tools' config of the user's own: another interface root, another bridge port
    const config = { interfaces: ["interfaces"], firmware: { entry: "src/main.ts", generated: "src/robot_gen/interfaces.ts" }, host: { generated: "tools/gen/interfaces.ts" }, board: "my_board", simulator: { devtools: "ws://127.0.0.1:8081" }, bridge: { host: "127.0.0.1", port: 9191 } }
    fs.writeFileSync(path.join(d, "devs.json"), JSON.stringify(config, null, 4))
  })
  const before = snapshot(dir)
  const r = robot(dir, "init")
  assert.equal(r.status, 0, r.out)
  const after = snapshot(dir)
  for (const [f, text] of before) assert.equal(after.get(f), text, `${f} kept as it was`)
  assert.deepEqual([...after.keys()].filter((f) => !before.has(f)).sort(), ["interfaces/lampbot_interfaces/srv/Hello.srv", "services/rosservices.md"])
  assert.match(r.stdout, /unchanged +devs\.json/)
  // its next steps follow the user's devs.json: the generated module's import, robot gen's files
  assert.match(r.stdout, /Add to src\/main\.ts:\n\n.*\n  import \{ Hello \} from "\.\/robot_gen\/interfaces"\n/)
  assert.match(r.stdout, /npx robot gen +# src\/robot_gen\/interfaces\.ts \(device\) and tools\/gen\/interfaces\.ts \(Node\)/)

  // both specs compile: the user's and the library's
  const gen = robot(dir, "gen")
  assert.equal(gen.status, 0, gen.out)
  assert.ok(fs.existsSync(path.join(dir, "tools/gen/interfaces.ts")), "robot gen follows the user's devs.json")
  fs.writeFileSync(
    path.join(dir, "src/main.ts"),
    [
      `import * as ds from "@devicescript/core"`,
      `import { createService } from "@robot-services/device"`,
      `import { Hello } from "./robot_gen/interfaces"`,
      `// the user's spec is compiled into typings as before: a client of it type-checks`,
      `const lamp = new ds.Lamp()`,
      `createService(Hello, "hello", async (req) => ({ greeting: "Hello, " + req.name + " " + lamp.isBound }))`,
      ``,
    ].join("\n"),
  )
  const build = run(process.execPath, [DEVS, "build", "src/main.ts"], dir)
  assert.equal(build.status, 0, build.out)
  const specs = JSON.parse(fs.readFileSync(path.join(dir, ".devicescript/services.json"), "utf8")) as { camelName: string }[]
  assert.deepEqual(specs.map((s) => s.camelName).sort(), ["lamp", "rosServices"])

  // a rosservices.md the user changed: kept, and init says why it would replace it
  const spec = path.join(dir, "services/rosservices.md")
  const changed = fs.readFileSync(spec, "utf8").replace("report frame_out @ 0x81", "report frame_out @ 0x84")
  fs.writeFileSync(spec, changed)
  const bad = robot(dir, "init")
  assert.equal(bad.status, 1, bad.out)
  assert.match(bad.stdout, /kept +services\/rosservices\.md: differs from @robot-services\/device's copy: the device library's calls travel on the Jacdac service this file defines/)
  // a failed init does not go on as if it had worked: no next steps, the failure said last
  assert.doesNotMatch(bad.out, /Add to src\/main\.ts|Then:/)
  assert.match(bad.stderr, /robot init: the kept file above needs your attention: change or remove it, then run `npx robot init` again/)
  assert.equal(fs.readFileSync(spec, "utf8"), changed, "not replaced")
})

/** A `devs init` project after `robot init` and `robot gen`, whose main.ts serves init's /hello and nothing of this repository's robot. */
function makeHelloProject(name: string): string {
  const dir = makeProject(name)
  for (const args of [["init"], ["gen"]]) {
    const r = robot(dir, ...args)
    assert.equal(r.status, 0, r.out)
  }
  fs.writeFileSync(
    path.join(dir, "src/main.ts"),
    [`import { createService } from "@robot-services/device"`, `import { Hello } from "./gen/interfaces"`, ``, `createService(Hello, "hello", async (req) => ({ greeting: "Hello, " + req.name }))`, ``].join("\n"),
  )
  return dir
}

test("robot sim and robot bridge in a user's project run the project's firmware (devs.json's firmware.entry) in the VM and serve it; they say the example robot's hardware is not waited for", async () => {
  const dir = makeHelloProject("simbot")
  for (const args of [["sim", "--port", "0", "--no-foxglove"], ["bridge", "--port", "0", "--no-foxglove"]]) {
    const child = startChild([path.join(dir, "node_modules/.bin/robot"), ...args], dir)
    try {
      const line = await child.wait(/rosbridge: ws:\/\//, 120_000)
      const url = /rosbridge: (ws:\/\/\S+)/.exec(line)![1]!
      await child.wait(/src\/main\.ts does not serve \/get_state: it is not this package's example robot/, 10_000)
      const m = await rosbridgeCall(url, "/hello", { name: "sim" })
      assert.equal(m.result, true, JSON.stringify(m))
      assert.deepEqual(m.values, { greeting: "Hello, sim" })
    } finally {
      await child.stop()
    }
  }
})

test("robot service call --devtools with nothing on the bus says no device is there and how to run one, not a longer --timeout", async () => {
  const dir = path.join(TMP, "emptybus")
  fs.mkdirSync(dir)
  install(dir, false)
  // a devtools-like bus with no device on it (the hub answers in process: the CLI runs beside it)
  const hub = new FrameHub()
  await hub.listen(0)
  const call = startChild([path.join(dir, "node_modules/.bin/robot"), "service", "call", "/x", "--devtools", `ws://127.0.0.1:${hub.port}`, "--timeout", "2000"], dir)
  try {
    const line = await call.wait(/^robot service call: /, 20_000)
    assert.match(line, /no device on .* within 2000 ms \(no device on the bus: is the firmware running\? Start it with `npx devs run`, the VS Code simulator, or a flashed board\)$/)
    assert.doesNotMatch(line, /longer --timeout/)
  } finally {
    await call.close()
    await hub.close()
  }
})

test("robot doctor on a user's robot: the generic steps pass, the example robot's are SKIP with the reason, no advice of this repository; standard input at its end is no, not a hang", async () => {
  const dir = makeHelloProject("doctorbot")
  // robot sim's hub is where --devtools reaches the VM (ROBOT_SIM_PORT's port, not devtools' 8081)
  const sim = startChild([path.join(dir, "node_modules/.bin/robot"), "sim", "--no-bridge"], dir)
  try {
    await sim.wait(/^Next, in another terminal:/, 120_000)
    for (const yes of [[], ["--yes"]]) {
      // startChild's standard input is /dev/null: at its end at once
      const doctor = startChild([path.join(dir, "node_modules/.bin/robot"), "doctor", "--devtools", `ws://127.0.0.1:${simPort()}`, ...yes], dir)
      try {
        await doctor.wait(/^all steps passed or were skipped$|step\(s\) FAILED$/, 60_000)
        const out = doctor.lines.join("\n")
        assert.match(out, /^all steps passed or were skipped$/m, out)
        assert.match(out, /^PASS  link and protocol: /m)
        assert.match(out, /^PASS  services and type hashes: 1 services, every type hash matches$/m)
        assert.match(out, /^SKIP  servo sweep: the robot does not serve \/set_pan \(the example robot's; robot service list shows what it serves\)$/m)
        assert.match(out, /^SKIP  motor left: the robot does not serve \/drive, \/get_state, \/stop /m)
        assert.match(out, /^SKIP  PWM budget: the robot does not serve \/diagnose /m)
        assert.doesNotMatch(out, /build:device|not valid JSON|Lift the robot/)
      } finally {
        await doctor.close()
      }
    }
  } finally {
    await sim.stop()
  }
})

test("robot sim --devtools in a user's project attaches the simulated hardware (the camera's spec ships with the package) and names the project's firmware to run", async () => {
  const dir = makeHelloProject("simdevtools")
  // a devtools-like bus: the hardware joins it, the firmware would come from `npx devs run`
  const hub = new FrameHub()
  await hub.listen(0)
  const sim = startChild([path.join(dir, "node_modules/.bin/robot"), "sim", "--devtools", `ws://127.0.0.1:${hub.port}`], dir)
  try {
    await sim.wait(/^Simulated hardware is attached to the devtools bus \(motors, pan servo, LED, button, battery, camera\)\.$/, 20_000)
    await sim.wait(/`npx devs run src\/main\.ts`/, 5_000)
  } finally {
    await sim.stop()
    await hub.close()
  }
})
