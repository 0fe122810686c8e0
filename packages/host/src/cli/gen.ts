// `robot gen [--check] [dirs...]`: generate device and host code from interface packages.
// Without dirs, the roots come from devs.json `interfaces`; outputs always come from devs.json
// (`firmware.generated`, `host.generated`) unless --host-out/--device-out are given. In a project
// with protocol/protocol.json (this repository), also the record protocol's code and doc tables
// (codegen/protocol.ts); a user's project has none.
import * as fs from "node:fs"
import * as path from "node:path"
import type { Command } from "commander"
import { generate } from "../codegen/index"
import { loadConfig, findConfig } from "../config"
import { IdlError } from "../idl/diagnostics"
import { misplacedFiles } from "../idl/load"
import { PROTOCOL_TABLE, ProtocolTableError } from "../codegen/protocol"

export interface GenCliOptions {
  check?: boolean
  hostOut?: string
  deviceOut?: string
  config?: string
}

/** Runs `robot gen`; returns the exit code (0 ok, 1 stale or invalid input). Prints to stdout/stderr. */
export function runGen(dirs: string[], o: GenCliOptions): number {
  const needConfig = dirs.length === 0 || o.hostOut === undefined || o.deviceOut === undefined
  const cfgFile = o.config ?? (needConfig ? findConfig() : undefined)
  const loaded = cfgFile ? loadConfig(cfgFile) : undefined
  const fromCfg = (p: string): string => path.relative(process.cwd(), path.resolve(loaded?.dir ?? ".", p)) || "."
  const roots = dirs.length > 0 ? dirs : (loaded?.config.interfaces ?? []).map(fromCfg)
  if (roots.length === 0) {
    console.error("robot gen: no interface directories given and no devs.json found")
    return 1
  }
  const hostOut = o.hostOut ?? (loaded ? fromCfg(loaded.config.host.generated) : undefined)
  const deviceOut = o.deviceOut ?? (loaded ? fromCfg(loaded.config.firmware.generated) : undefined)
  // before the interfaces are loaded, so that a file left out is named even when another one is invalid
  for (const w of misplacedFiles(roots)) console.error(`robot gen: warning: ${w}`)
  let r
  try {
    // header paths are relative to the project (devs.json) directory, so the output does not depend on the cwd
    r = generate({ roots, hostOut, deviceOut, check: o.check === true, base: loaded?.dir ?? process.cwd(), protocol: loaded !== undefined && fs.existsSync(path.join(loaded.dir, PROTOCOL_TABLE)) })
  } catch (e) {
    if (e instanceof IdlError || e instanceof ProtocolTableError) {
      console.error(e.message)
      return 1
    }
    throw e
  }
  for (const n of r.notes) console.error(`robot gen: note: ${n}`)
  const nTypes = `${r.set.messages.size} messages, ${r.set.services.size} services, ${r.set.actions.size} action${r.set.actions.size === 1 ? "" : "s"} from ${roots.join(", ")}`
  if (o.check) {
    if (r.stale.length > 0) {
      console.error(`robot gen --check: out of date (run \`robot gen\`):\n${r.stale.map((f) => `  ${f}`).join("\n")}`)
      return 1
    }
    console.log(`robot gen --check: up to date (${nTypes})`)
    return 0
  }
  for (const f of r.written) console.log(`wrote ${f}`)
  for (const f of r.unchanged) console.log(`unchanged ${f}`)
  console.log(`robot gen: ${nTypes}`)
  return 0
}

export function registerGen(program: Command): void {
  program
    .command("gen")
    .description("generate device and host code from ROS 2 interface packages (default: devs.json `interfaces`)")
    .argument("[dirs...]", "interface roots: directories laid out as <pkg>/msg/*.msg, <pkg>/srv/*.srv and <pkg>/action/*.action")
    .option("--check", "do not write; fail listing generated files that are out of date")
    .option("--host-out <file>", "host output (default: devs.json host.generated)")
    .option("--device-out <file>", "device output (default: devs.json firmware.generated)")
    .option("--config <file>", "devs.json to use (default: nearest one above the current directory)")
    .action((dirs: string[], o: GenCliOptions) => {
      process.exitCode = runGen(dirs, o)
    })
}
