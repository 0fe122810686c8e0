// `robot gen` orchestration: load interface roots (and the host package's built-in one after them),
// run the host emitter and (when present) the device emitter on what the roots define and use,
// write only files whose content changed, or in check mode report stale files.
import * as fs from "node:fs"
import * as path from "node:path"
import { BUILTIN_LABEL, BUILTIN_ROOT, findProjectFiles, loadSources, ownPart } from "../idl/load"
import type { InterfaceSet } from "../idl/types"
import { emitHost } from "./host"
import { protocolOutputs } from "./protocol"

export interface GenerateOptions {
  /** interface roots (directories of ROS packages) */
  roots: readonly string[]
  /** output of the host emitter (omit to skip it) */
  hostOut?: string
  /** output of the device emitter (omit to skip it; skipped with a note when host/codegen/device.ts is absent) */
  deviceOut?: string
  /** do not write; report files whose content differs from what would be generated */
  check?: boolean
  /** paths in headers are relative to this directory (default: cwd) */
  base?: string
  /** also generate the record protocol's constants from `<base>/protocol/protocol.json` */
  protocol?: boolean
}

export interface GenerateResult {
  set: InterfaceSet
  /** files written (content changed or new) */
  written: string[]
  /** files already up to date */
  unchanged: string[]
  /** check mode: files that are missing or out of date */
  stale: string[]
  /** things skipped, with the reason (e.g. the device emitter is not there yet) */
  notes: string[]
}

type DeviceEmitter = (set: InterfaceSet, opts: { outFile: string; sources: readonly string[] }) => string

/** The device emitter from host/codegen/device.ts, or a reason why there is none. */
export function findDeviceEmitter(): DeviceEmitter | string {
  const candidates = ["device.ts", "device.js"].map((f) => path.join(__dirname, f))
  if (!candidates.some((f) => fs.existsSync(f))) return "host/codegen/device.ts does not exist yet"
  const modPath = path.join(__dirname, "device")
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(modPath) as { emitDevice?: unknown }
  if (typeof mod.emitDevice !== "function") return "host/codegen/device.ts does not export emitDevice"
  return mod.emitDevice as DeviceEmitter
}

/** Runs the generators. Throws IdlError when an interface file is invalid. */
export function generate(opts: GenerateOptions): GenerateResult {
  const base = path.resolve(opts.base ?? process.cwd())
  // the built-in root's packages come after the project's; of them, only the types the project uses are generated
  const files = findProjectFiles(opts.roots)
  const set = ownPart(loadSources(files), opts.roots)
  const used = new Set([...set.messages.values(), ...set.services.values(), ...set.actions.values()].map((t) => `${t.root}\0${t.file}`))
  const sources = files
    .filter((f) => used.has(`${f.root}\0${f.file}`) || opts.roots.includes(f.root))
    .map((f) => (f.root === BUILTIN_ROOT ? `${BUILTIN_LABEL}/${f.file}` : path.relative(base, path.resolve(f.root, f.file)).split(path.sep).join("/")))
  const result: GenerateResult = { set, written: [], unchanged: [], stale: [], notes: [] }
  const outputs: { file: string; content: string }[] = []
  if (opts.hostOut) outputs.push({ file: opts.hostOut, content: emitHost(set, { outFile: opts.hostOut, sources }) })
  if (opts.deviceOut) {
    const dev = findDeviceEmitter()
    if (typeof dev === "string") result.notes.push(`device code not generated: ${dev}`)
    else outputs.push({ file: opts.deviceOut, content: dev(set, { outFile: opts.deviceOut, sources }) })
  }
  if (opts.protocol) for (const o of protocolOutputs(base)) outputs.push({ file: path.relative(process.cwd(), path.join(base, o.file)) || o.file, content: o.content })
  for (const o of outputs) {
    const current = fs.existsSync(o.file) ? fs.readFileSync(o.file, "utf8") : undefined
    if (current === o.content) {
      result.unchanged.push(o.file)
    } else if (opts.check) {
      result.stale.push(o.file)
    } else {
      fs.mkdirSync(path.dirname(o.file), { recursive: true })
      fs.writeFileSync(o.file, o.content)
      result.written.push(o.file)
    }
  }
  return result
}
