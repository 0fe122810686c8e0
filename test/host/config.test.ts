// devs.json loading and validation: every bad value is reported with its key.
import { test } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ConfigError, loadConfig, validateConfig, findConfig } from "../../packages/host/src/config"

const repo = path.resolve(__dirname, "../..")
const good = () => ({
  $schema: "./packages/host/devs.schema.json",
  interfaces: ["services"],
  firmware: { entry: "src/main.ts", generated: "src/gen/interfaces.ts" },
  host: { generated: "packages/host/src/gen/interfaces.ts" },
  board: "robot_s3",
  simulator: { devtools: "ws://127.0.0.1:8081" },
  bridge: { host: "127.0.0.1", port: 9090 },
})

test("the repository's devs.json is valid", () => {
  const { config, dir } = loadConfig(path.join(repo, "devs.json"))
  assert.equal(dir, repo)
  assert.deepEqual(config.interfaces, ["services"])
  assert.equal(config.bridge.port, 9090)
  assert.equal(config.host.generated, "packages/host/src/gen/interfaces.ts")
  assert.equal(findConfig(path.join(repo, "packages/host/src/idl")), path.join(repo, "devs.json"))
})

// [mutation, exact message]
const BAD: [(c: any) => void, string][] = [
  [(c) => (c.bridge.port = "x"), 'devs.json: bridge.port must be an integer 1-65535, got "x"'],
  [(c) => (c.bridge.port = 0), "devs.json: bridge.port must be an integer 1-65535, got 0"],
  [(c) => (c.bridge.port = 65536), "devs.json: bridge.port must be an integer 1-65535, got 65536"],
  [(c) => (c.bridge.port = 80.5), "devs.json: bridge.port must be an integer 1-65535, got 80.5"],
  [(c) => delete c.bridge.port, "devs.json: bridge.port must be an integer 1-65535, got nothing"],
  [(c) => (c.bridge.host = ""), 'devs.json: bridge.host must be a non-empty string, got ""'],
  [(c) => (c.bridge = []), "devs.json: bridge must be an object, got []"],
  [(c) => (c.interfaces = "services"), 'devs.json: interfaces must be a non-empty array of directory paths, got "services"'],
  [(c) => (c.interfaces = []), "devs.json: interfaces must be a non-empty array of directory paths, got []"],
  [(c) => (c.interfaces = ["services", 3]), "devs.json: interfaces[1] must be a non-empty string, got 3"],
  [(c) => (c.firmware.entry = "src/main.js"), 'devs.json: firmware.entry must be a .ts file, got "src/main.js"'],
  [(c) => delete c.firmware.generated, "devs.json: firmware.generated must be a non-empty string, got nothing"],
  [(c) => (c.host.generated = 5), "devs.json: host.generated must be a non-empty string, got 5"],
  [(c) => delete c.host, "devs.json: host must be an object, got nothing"],
  [(c) => (c.board = "robot s3"), 'devs.json: board must be a board id (letters, digits, \'_\' and \'-\'), got "robot s3"'],
  [(c) => (c.simulator.devtools = "http://x"), 'devs.json: simulator.devtools must be a ws:// URL, got "http://x"'],
  [(c) => (c.bridge.prot = 1), "devs.json: bridge.prot is not a known key (expected one of host, port)"],
  [(c) => (c.extra = true), "devs.json: extra is not a known key (expected one of $schema, interfaces, firmware, host, board, simulator, bridge)"],
]

test("bad values are reported with the key that holds them", () => {
  for (const [mutate, message] of BAD) {
    const c = good()
    mutate(c)
    assert.throws(
      () => validateConfig(c),
      (e: unknown) => e instanceof ConfigError && e.message === message,
      message,
    )
  }
  assert.doesNotThrow(() => validateConfig(good()))
  assert.throws(() => validateConfig(null), /^ConfigError: devs.json: must be an object, got null$/)
})

test("loadConfig reports unreadable or invalid JSON with the file name", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "devs-json-"))
  try {
    const f = path.join(dir, "devs.json")
    fs.writeFileSync(f, "{ not json")
    assert.throws(() => loadConfig(f), /devs\.json: is not valid JSON/)
    const c = good()
    c.bridge.port = 70000
    fs.writeFileSync(f, JSON.stringify(c))
    assert.throws(() => loadConfig(f), /devs\.json: bridge\.port must be an integer 1-65535, got 70000/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("packages/host/devs.schema.json describes the same keys the loader accepts", () => {
  const schema = JSON.parse(fs.readFileSync(path.join(repo, "packages/host/devs.schema.json"), "utf8"))
  const c = good()
  assert.deepEqual(Object.keys(schema.properties).sort(), Object.keys(c).sort())
  assert.deepEqual([...schema.required].sort(), Object.keys(c).filter((k) => k !== "$schema").sort())
  for (const k of ["firmware", "host", "simulator", "bridge"] as const) {
    assert.deepEqual(Object.keys(schema.properties[k].properties).sort(), Object.keys(c[k]).sort(), k)
  }
  assert.equal(schema.properties.bridge.properties.port.maximum, 65535)
})

test("no devs.json in the folder or above: the error says how to make one (robot init)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "no-devs-json-"))
  const cwd = process.cwd()
  try {
    process.chdir(dir)
    assert.throws(() => loadConfig(), /devs\.json: not found in .*no-devs-json-\w+ or any parent directory: `npx robot init` makes one in a DeviceScript project/)
  } finally {
    process.chdir(cwd)
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
