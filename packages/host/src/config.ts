// devs.json: the project's manifest read by the host tools (schema: packages/host/devs.schema.json).
// Every wrong value is reported with the key that holds it:
//   devs.json: bridge.port must be an integer 1-65535, got "x"
import * as fs from "node:fs"
import * as path from "node:path"

export interface DevsConfig {
  /** interface roots (directories of ROS packages), relative to the project directory */
  interfaces: string[]
  firmware: {
    /** DeviceScript entry point, e.g. `src/main.ts` */
    entry: string
    /** generated device interfaces, e.g. `src/gen/interfaces.ts` */
    generated: string
  }
  host: {
    /** generated host interfaces, e.g. `packages/host/src/gen/interfaces.ts` */
    generated: string
  }
  /** board id (a `boards/<board>.board.json`) */
  board: string
  simulator: {
    /** DeviceScript devtools WebSocket URL, e.g. `ws://127.0.0.1:8081` */
    devtools: string
  }
  bridge: {
    host: string
    /** TCP port 1-65535 */
    port: number
  }
}

/** A devs.json problem; `key` is the dotted path of the offending value ("" for the whole file). */
export class ConfigError extends Error {
  override readonly name = "ConfigError"
  constructor(
    readonly file: string,
    readonly key: string,
    detail: string,
  ) {
    super(`${file}: ${key === "" ? "" : `${key} `}${detail}`)
  }
}

const KNOWN: Record<string, readonly string[]> = {
  "": ["$schema", "interfaces", "firmware", "host", "board", "simulator", "bridge"],
  firmware: ["entry", "generated"],
  host: ["generated"],
  simulator: ["devtools"],
  bridge: ["host", "port"],
}

function show(v: unknown): string {
  if (v === undefined) return "nothing"
  return JSON.stringify(v)
}

/**
 * Validates parsed devs.json content. `file` is only used in messages. Throws ConfigError naming
 * the first bad key (keys are checked in a fixed order, so the message is stable).
 */
export function validateConfig(raw: unknown, file = "devs.json"): DevsConfig {
  const fail = (key: string, detail: string): never => {
    throw new ConfigError(file, key, detail)
  }
  const obj = (v: unknown, key: string): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) fail(key, `must be an object, got ${show(v)}`)
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) {
      if (!(KNOWN[key] ?? []).includes(k)) fail(key === "" ? k : `${key}.${k}`, `is not a known key (expected one of ${(KNOWN[key] ?? []).join(", ")})`)
    }
    return o
  }
  const str = (v: unknown, key: string): string => {
    if (typeof v !== "string" || v.trim() === "") fail(key, `must be a non-empty string, got ${show(v)}`)
    return v as string
  }
  const root = obj(raw, "")
  if (!Array.isArray(root.interfaces) || root.interfaces.length === 0) fail("interfaces", `must be a non-empty array of directory paths, got ${show(root.interfaces)}`)
  const interfaces = (root.interfaces as unknown[]).map((v, i) => str(v, `interfaces[${i}]`))
  const firmware = obj(root.firmware, "firmware")
  const entry = str(firmware.entry, "firmware.entry")
  if (!/\.ts$/.test(entry)) fail("firmware.entry", `must be a .ts file, got ${show(entry)}`)
  const fwGen = str(firmware.generated, "firmware.generated")
  if (!/\.ts$/.test(fwGen)) fail("firmware.generated", `must be a .ts file, got ${show(fwGen)}`)
  const host = obj(root.host, "host")
  const hostGen = str(host.generated, "host.generated")
  if (!/\.ts$/.test(hostGen)) fail("host.generated", `must be a .ts file, got ${show(hostGen)}`)
  const board = str(root.board, "board")
  if (!/^[A-Za-z0-9_-]+$/.test(board)) fail("board", `must be a board id (letters, digits, '_' and '-'), got ${show(board)}`)
  const simulator = obj(root.simulator, "simulator")
  const devtools = str(simulator.devtools, "simulator.devtools")
  if (!/^wss?:\/\/[^\s/]+(:\d+)?(\/\S*)?$/.test(devtools)) fail("simulator.devtools", `must be a ws:// URL, got ${show(devtools)}`)
  const bridge = obj(root.bridge, "bridge")
  const bhost = str(bridge.host, "bridge.host")
  const port = bridge.port
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) fail("bridge.port", `must be an integer 1-65535, got ${show(port)}`)
  return {
    interfaces,
    firmware: { entry, generated: fwGen },
    host: { generated: hostGen },
    board,
    simulator: { devtools },
    bridge: { host: bhost, port: port as number },
  }
}

/** The loaded configuration and the directory it came from (paths in it are relative to `dir`). */
export interface LoadedConfig {
  config: DevsConfig
  /** absolute directory of devs.json */
  dir: string
  /** absolute path of devs.json */
  file: string
}

/** The folder `start` or the nearest one above it that holds a file `name`; undefined when none does. */
export function folderWith(name: string, start: string): string | undefined {
  let dir = path.resolve(start)
  for (;;) {
    if (fs.existsSync(path.join(dir, name))) return dir
    const up = path.dirname(dir)
    if (up === dir) return undefined
    dir = up
  }
}

/** Finds devs.json in `start` or the nearest parent directory; undefined when there is none. */
export function findConfig(start = process.cwd()): string | undefined {
  const dir = folderWith("devs.json", start)
  return dir === undefined ? undefined : path.join(dir, "devs.json")
}

/** Reads and validates devs.json (the given file, or the nearest one above the cwd). Throws ConfigError. */
export function loadConfig(file?: string): LoadedConfig {
  const f = file ?? findConfig()
  if (!f) throw new ConfigError("devs.json", "", `not found in ${process.cwd()} or any parent directory: \`npx robot init\` makes one in a DeviceScript project`)
  const shown = path.relative(process.cwd(), f) || f
  let text: string
  try {
    text = fs.readFileSync(f, "utf8")
  } catch (e) {
    throw new ConfigError(shown, "", `cannot be read: ${(e as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw new ConfigError(shown, "", `is not valid JSON: ${(e as Error).message}`)
  }
  return { config: validateConfig(raw, shown), dir: path.dirname(path.resolve(f)), file: path.resolve(f) }
}

/**
 * devs.json's settings and folder when there is a devs.json (above the cwd), undefined when there
 * is none. A devs.json that exists but is wrong is an error naming the key, never a silent default.
 */
export function loadConfigIfPresent(): LoadedConfig | undefined {
  const f = findConfig()
  return f ? loadConfig(f) : undefined
}

/** The devtools URL from devs.json (`simulator.devtools`), or `fallback` when there is no devs.json. */
export function configuredDevtoolsUrl(fallback: string): string {
  return loadConfigIfPresent()?.config.simulator.devtools ?? fallback
}
