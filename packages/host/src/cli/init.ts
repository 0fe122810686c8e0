// `robot init`: adds ROS 2-style services to an existing DeviceScript project (what `devs init`
// makes: package.json, devsconfig.json, src/main.ts). It writes only files that do not exist:
//   services/rosservices.md      the Jacdac spec the device library's calls travel on, copied from
//                                @robot-services/device (DeviceScript compiles custom service specs
//                                only from the project's own services/*.md)
//   devs.json                    the robot tools' section of the project: interface roots, firmware
//                                entry and generated files, board, simulator and bridge addresses
//   services/<pkg>/srv/Hello.srv an example service type, in the ROS 2 package layout
// and prints the lines to add to src/main.ts. A file that exists is never changed: if it differs
// from what init would write, init says what it would change and why, and leaves it to the user.
// Running it twice changes nothing. Exit code 0 when the project is ready (or was already), 1 when
// it is not a DeviceScript project, the device library is not installed, or a kept file blocks use.
import * as fs from "node:fs"
import * as path from "node:path"
import type { Command } from "commander"
import { ConfigError, validateConfig, type DevsConfig } from "../config"
import { PACKAGE_NAME_RE } from "../idl/parse"

/** The device library's package name (what src/main.ts imports). */
export const DEVICE_PACKAGE = "@robot-services/device"
/** Where the Jacdac spec of the calls goes in the project, and where it is in the device library. */
export const SPEC_FILE = "services/rosservices.md"

export interface InitOptions {
  /** project directory (default: the current directory) */
  dir?: string
  /** ROS package of the example service (default: `<package.json name>_interfaces`) */
  package?: string
  /** board id for devs.json (default: the project's only boards/*.board.json, else esp32_devkit_c) */
  board?: string
}

/** What init did with one file. */
export interface InitStep {
  file: string
  /** created; unchanged (already what init writes); kept (exists and differs: not touched) */
  action: "created" | "unchanged" | "kept"
  /** for `kept`: what init would change and why */
  note?: string
}

export interface InitResult {
  steps: InitStep[]
  /** the example service type's full name and the lines to add to src/main.ts */
  example: { type: string; name: string }
  mainLines: string[]
  /** the firmware entry and the two generated files, as the project's devs.json names them */
  paths: { entry: string; device: string; host: string }
  /** true when every file the tools need is in place (kept files that still work count) */
  ready: boolean
}

/** A project that init cannot set up (not a DeviceScript project, library missing, bad option). */
export class InitError extends Error {
  override readonly name = "InitError"
}

/** A ROS package name from an npm package name: `@me/My-Robot` -> `my_robot_interfaces`. */
export function interfacePackageName(npmName: string | undefined): string {
  const base = (npmName ?? "")
    .replace(/^@[^/]*\//, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^[^a-z]+/, "")
    .replace(/_+$/, "")
  const name = `${base || "robot"}_interfaces`
  return PACKAGE_NAME_RE.test(name) ? name : "robot_interfaces"
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    throw new InitError(`${file}: ${(e as Error).message}`)
  }
}

/** The device library's copy of the spec, found from the project as its compiler finds packages. */
function librarySpec(dir: string): string {
  let pkgJson: string
  try {
    pkgJson = require.resolve(`${DEVICE_PACKAGE}/package.json`, { paths: [dir] })
  } catch {
    throw new InitError(`${DEVICE_PACKAGE} is not installed in ${dir}: install it first (its tarball from \`npm pack\`, or the registry: README "Your own project"; init copies its ${SPEC_FILE})`)
  }
  const spec = path.join(path.dirname(pkgJson), SPEC_FILE)
  if (!fs.existsSync(spec)) throw new InitError(`${spec} is missing: reinstall ${DEVICE_PACKAGE}`)
  return fs.readFileSync(spec, "utf8")
}

function defaultBoard(dir: string): string {
  const boards = path.join(dir, "boards")
  const ids = fs.existsSync(boards) ? fs.readdirSync(boards).filter((f) => f.endsWith(".board.json")).map((f) => f.slice(0, -".board.json".length)) : []
  return ids.length === 1 ? ids[0]! : "esp32_devkit_c"
}

/** The devs.json init writes. */
export function initialConfig(board: string): DevsConfig {
  return {
    interfaces: ["services"],
    firmware: { entry: "src/main.ts", generated: "src/gen/interfaces.ts" },
    host: { generated: "host/gen/interfaces.ts" },
    board,
    simulator: { devtools: "ws://127.0.0.1:8081" },
    bridge: { host: "127.0.0.1", port: 9090 },
  }
}

const EXAMPLE_SRV = `# An example service type made by \`robot init\`: edit it, or add your own next to it
# (ROS 2 .srv syntax: request fields, ---, response fields), then run \`npx robot gen\`.
string name
---
string greeting
`

/**
 * Sets up the project in `o.dir`. Never overwrites or edits an existing file. Throws InitError
 * when the directory is not a DeviceScript project or the device library is not installed.
 */
export function runInit(o: InitOptions = {}): InitResult {
  const dir = path.resolve(o.dir ?? ".")
  const rel = (f: string) => path.join(dir, f)
  const missing = ["devsconfig.json", "package.json"].filter((f) => !fs.existsSync(rel(f)))
  if (missing.length) {
    throw new InitError(`${dir} is not a DeviceScript project (${missing.map((f) => `no ${f}`).join(", ")}): run \`npx devicescript init\` there first`)
  }
  const npmName = (readJson(rel("package.json")) as { name?: string }).name
  const pkg = o.package ?? interfacePackageName(npmName)
  if (!PACKAGE_NAME_RE.test(pkg)) throw new InitError(`--package '${pkg}' is not a ROS package name (lowercase letters, digits and single underscores, starting with a letter)`)
  const board = o.board ?? defaultBoard(dir)
  if (!/^[A-Za-z0-9_-]+$/.test(board)) throw new InitError(`--board '${board}' is not a board id (letters, digits, '_' and '-')`)
  const steps: InitStep[] = []
  let ready = true

  /** Writes `content` to `file` unless it exists; `differs` explains a kept file that differs. */
  const put = (file: string, content: string, differs: (current: string) => { note: string; blocks: boolean } | undefined) => {
    const abs = rel(file)
    if (!fs.existsSync(abs)) {
      fs.mkdirSync(path.dirname(abs), { recursive: true })
      fs.writeFileSync(abs, content)
      steps.push({ file, action: "created" })
      return
    }
    const current = fs.readFileSync(abs, "utf8")
    const d = current === content ? undefined : differs(current)
    if (!d) {
      steps.push({ file, action: "unchanged" })
      return
    }
    steps.push({ file, action: "kept", note: d.note })
    if (d.blocks) ready = false
  }

  put(SPEC_FILE, librarySpec(dir), () => ({
    note: `differs from ${DEVICE_PACKAGE}'s copy: the device library's calls travel on the Jacdac service this file defines, so a different one breaks them; replace it with node_modules/${DEVICE_PACKAGE}/${SPEC_FILE}`,
    blocks: true,
  }))

  const config = initialConfig(board)
  put("devs.json", `${JSON.stringify({ $schema: "./node_modules/@robot-services/host/devs.schema.json", ...config }, null, 2)}\n`, (current) => {
    let raw: unknown
    try {
      raw = JSON.parse(current)
    } catch (e) {
      return { note: `is not valid JSON (${(e as Error).message}): the robot tools read their settings from it`, blocks: true }
    }
    try {
      validateConfig(raw)
    } catch (e) {
      return { note: `${e instanceof ConfigError ? e.message : String(e)}; init would write ${JSON.stringify(config)}`, blocks: true }
    }
    return undefined // a valid devs.json of the user's own: nothing to change
  })

  // the example goes under the first interface root of the project's devs.json (services by
  // default), and the next steps name its files (the ones init writes when it is unreadable)
  let root = "services"
  let paths = { entry: config.firmware.entry, device: config.firmware.generated, host: config.host.generated }
  try {
    const own = validateConfig(JSON.parse(fs.readFileSync(rel("devs.json"), "utf8")))
    root = own.interfaces[0] ?? root
    paths = { entry: own.firmware.entry, device: own.firmware.generated, host: own.host.generated }
  } catch {
    // reported above
  }
  const srv = path.posix.join(root.split(path.sep).join("/"), pkg, "srv", "Hello.srv")
  const hasOwn = fs.existsSync(rel(path.join(root, pkg, "srv"))) && fs.readdirSync(rel(path.join(root, pkg, "srv"))).some((f) => f.endsWith(".srv") && f !== "Hello.srv")
  if (!hasOwn || fs.existsSync(rel(srv))) put(srv, EXAMPLE_SRV, () => undefined)

  // the generated module as the entry imports it: `./gen/interfaces` for src/main.ts and src/gen/interfaces.ts
  let mod = path.posix.relative(path.posix.dirname(paths.entry), paths.device).replace(/\.ts$/, "")
  if (!mod.startsWith(".")) mod = `./${mod}`
  const mainLines = [
    `import { createService } from "${DEVICE_PACKAGE}"`,
    `import { Hello } from "${mod}"`,
    ``,
    `createService(Hello, "hello", async (req) => ({ greeting: "Hello, " + req.name }))`,
  ]
  return { steps, example: { type: `${pkg}/srv/Hello`, name: "/hello" }, mainLines, ready, paths }
}

/** Runs `robot init` and prints what it did; returns the exit code. */
export function initCommand(o: InitOptions): number {
  let r: InitResult
  try {
    r = runInit(o)
  } catch (e) {
    if (e instanceof InitError) {
      console.error(`robot init: ${e.message}`)
      return 1
    }
    throw e
  }
  for (const s of r.steps) console.log(`${s.action.padEnd(9)} ${s.file}${s.note ? `: ${s.note}` : ""}`)
  if (!r.ready) {
    // (no next steps: they would fail on the kept file)
    const n = r.steps.filter((s) => s.action === "kept").length
    console.error(`robot init: the kept ${n === 1 ? "file above needs" : "files above need"} your attention: change or remove ${n === 1 ? "it" : "them"}, then run \`npx robot init\` again`)
    return 1
  }
  console.log(
    [
      "",
      `Add to ${r.paths.entry}:`,
      "",
      ...r.mainLines.map((l) => `  ${l}`),
      "",
      "Then:",
      `  npx robot gen                    # ${r.paths.device} (device) and ${r.paths.host} (Node) from your .srv files`,
      "  npx devicescript build           # the firmware, with services/rosservices.md",
      "  npx robot service call /hello \"{name: 'robot'}\" --devtools   # with the firmware running in the simulator",
    ].join("\n"),
  )
  return 0
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("add ROS 2-style services to this DeviceScript project (never overwrites a file)")
    .option("--package <name>", "ROS package of the example service (default: <package.json name>_interfaces)")
    .option("--board <id>", "board id for devs.json (default: the project's only boards/*.board.json, else esp32_devkit_c)")
    .action((opts: { package?: string; board?: string }) => {
      process.exitCode = initCommand({ package: opts.package, board: opts.board })
    })
}
