// `robot interface list|show|package|packages`: the output of `ros2 interface ...` for the
// interface packages of this project (devs.json `interfaces`, or --dir).
import * as path from "node:path"
import type { Command } from "commander"
import { findConfig, loadConfig } from "../config"
import { IdlError } from "../idl/diagnostics"
import { loadProjectInterfaces, misplacedFiles } from "../idl/load"
import { parseLine } from "../idl/parse"
import type { InterfaceSet, IdlMessage, IdlService } from "../idl/types"
import { fullTypeName, type TypeKind } from "../runtime/names"

/** `ros2 interface list`: `Messages:`, `Services:` and `Actions:` headings, then indented full names. */
export function formatList(set: InterfaceSet, only?: "msgs" | "srvs" | "actions"): string {
  const lines: string[] = []
  if (only === undefined || only === "msgs") {
    lines.push("Messages:")
    for (const n of messageNames(set)) lines.push(`    ${n}`)
  }
  if (only === undefined || only === "srvs") {
    lines.push("Services:")
    for (const n of [...set.services.keys()].sort()) lines.push(`    ${n}`)
  }
  if (only === undefined || only === "actions") {
    lines.push("Actions:")
    for (const n of [...set.actions.keys()].sort()) lines.push(`    ${n}`)
  }
  return lines.join("\n")
}

function messageNames(set: InterfaceSet): string[] {
  return [...set.messages.keys()].filter((n) => n.split("/")[1] === "msg").sort()
}

/** Package names, sorted. */
export function packages(set: InterfaceSet): string[] {
  const s = new Set<string>()
  for (const m of set.messages.values()) s.add(m.pkg)
  for (const v of set.services.values()) s.add(v.pkg)
  for (const a of set.actions.values()) s.add(a.pkg)
  return [...s].sort()
}

/** `ros2 interface package <pkg>`: the package's types, one per line; undefined when unknown. */
export function formatPackage(set: InterfaceSet, pkg: string): string | undefined {
  const names = [...messageNames(set), ...set.services.keys(), ...set.actions.keys()].filter((n) => n.startsWith(`${pkg}/`)).sort()
  return names.length === 0 ? undefined : names.join("\n")
}

export type CommentMode = "default" | "all" | "none"

const isCommentOrBlank = (l: string): boolean => l.trim() === "" || l.trim().startsWith("#")

/** A line with its trailing comment removed (a `#` inside quotes stays). */
function stripComment(line: string): string {
  let quote = ""
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote !== "") {
      if (c === "\\") i++
      else if (c === quote) quote = ""
    } else if (c === "'" || c === '"') quote = c
    else if (c === "#") return line.slice(0, i).trimEnd()
  }
  return line.trimEnd()
}

/**
 * The most lines `interface show` prints. The loader bounds the fields a type expands to
 * (MAX_FIELDS), but each nested type's constants, and with --all-comments its comments, are
 * written out again at every field that holds it: 2,048 fields holding a type of 3,000 such lines
 * are 6 million. The longest here, test_msgs/srv/Everything with all its comments, has 128.
 */
export const MAX_SHOW_LINES = 100_000

/** One line `interface show` prints of a message, and the type it expands under it, if any. */
interface ShownLine {
  text: string
  nested?: IdlMessage
}

/**
 * The lines of one message text as shown at a level: as written (`keepComments`), or its field and
 * constant lines only, comments stripped; each field of a nested type with that type. Made once per
 * type and kind in `cache` (one `formatShow`), so that each line shown costs one step however often
 * its type is repeated, a file's comments are read once.
 */
function shownLines(set: InterfaceSet, mt: IdlMessage, keepComments: boolean, cache: Map<string, ShownLine[]>): ShownLine[] {
  const key = `${keepComments ? "c" : "n"}${mt.fullName}`
  const made = cache.get(key)
  if (made) return made
  const byName = new Map(mt.definition.definitions.filter((d) => !d.isConstant).map((d) => [d.name, d]))
  const lines: ShownLine[] = []
  for (const src of splitText(mt.text)) {
    if (isCommentOrBlank(src)) {
      if (keepComments) lines.push({ text: src })
      continue
    }
    const line: ShownLine = { text: keepComments ? src : stripComment(src) }
    lines.push(line)
    const raw = parseLine(src, 0, () => undefined)
    if (raw?.isConstant) continue
    // the derived types of an action name their parts as ROS does (`Fibonacci_Goal goal`), which is
    // not a type a file may write: find the field by its name
    const name = raw ? raw.name : /^\s*\S+\s+([a-z][a-z0-9_]*)\s*$/.exec(src)?.[1]
    const field = name === undefined ? undefined : byName.get(name)
    if (field?.isComplex) line.nested = set.messages.get(field.type)
  }
  cache.set(key, lines)
  return lines
}

/**
 * Appends to `out` the lines of one message, each nested type expanded under its field and
 * indented with one tab per level, as `ros2 interface show` does. The top level keeps comments
 * (mode "default"); nested levels show only their field and constant lines. Stops, returning
 * false, when `out` holds MAX_SHOW_LINES.
 */
function showMessage(set: InterfaceSet, mt: IdlMessage, depth: number, mode: CommentMode, out: string[], cache: Map<string, ShownLine[]>): boolean {
  const indent = "\t".repeat(depth)
  const keepComments = mode === "all" || (mode === "default" && depth === 0)
  for (const line of shownLines(set, mt, keepComments, cache)) {
    if (out.length >= MAX_SHOW_LINES) return false
    out.push(indent + line.text)
    if (line.nested && !showMessage(set, line.nested, depth + 1, mode, out, cache)) return false
  }
  return true
}

function splitText(text: string): string[] {
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop()
  return lines
}

/** `pkg/action/<A>_SendGoal` or `_GetResult`: a service ROS 2 derives from an action, or undefined. */
function derivedService(set: InterfaceSet, fullName: string): IdlService | undefined {
  const a = set.actions.get(fullName.replace(/_(SendGoal|GetResult)$/, ""))
  return a && (a.sendGoal.fullName === fullName ? a.sendGoal : a.getResult.fullName === fullName ? a.getResult : undefined)
}

/**
 * Normalises `pkg/Type`, `pkg/msg/Type`, `pkg/srv/Type`, `pkg/action/Type` to a full name present in
 * `set` (a service half or a message of an action, `pkg/action/Fibonacci_Goal`, is a message),
 * by runtime/names.ts `fullTypeName` (a leading `/` is dropped, as the call paths do).
 */
export function resolveTypeName(set: InterfaceSet, name: string): { kind: TypeKind; fullName: string } | undefined {
  // a short name is tried as a message, then a service, then an action (a full name is one of them)
  for (const kind of ["msg", "srv", "action"] as const) {
    const fullName = fullTypeName(name, kind)
    const found = kind === "msg" ? set.messages.has(fullName) : kind === "srv" ? set.services.has(fullName) || derivedService(set, fullName) !== undefined : set.actions.has(fullName)
    if (found) return { kind, fullName }
  }
  return undefined
}

/** `ros2 interface show <type>`; undefined when the type is unknown. */
export function formatShow(set: InterfaceSet, name: string, mode: CommentMode = "default"): string | undefined {
  const r = resolveTypeName(set, name)
  if (!r) return undefined
  // a .msg; a .srv or .action: its parts as written, joined by `---`; nested types expanded
  const st = r.kind === "srv" ? (set.services.get(r.fullName) ?? derivedService(set, r.fullName)) : undefined
  const at = r.kind === "action" ? set.actions.get(r.fullName) : undefined
  const parts = r.kind === "msg" ? [set.messages.get(r.fullName) as IdlMessage] : st ? [st.request, st.response] : at ? [at.goal, at.result, at.feedback] : undefined
  if (!parts) return undefined
  const out: string[] = []
  const cache = new Map<string, ShownLine[]>()
  for (const [i, m] of parts.entries()) {
    if (i > 0) out.push("---")
    if (!showMessage(set, m, 0, mode, out, cache)) {
      out.push(`# ... stopped after ${MAX_SHOW_LINES.toLocaleString("en-US")} lines (MAX_SHOW_LINES): nested types' constants${mode === "all" ? " and comments" : ""} are written out again at every field that holds them`)
      break
    }
  }
  return out.join("\n")
}

interface RootOpts {
  dir?: string[]
  config?: string
}

function loadSet(o: RootOpts): InterfaceSet {
  let roots = o.dir ?? []
  if (roots.length === 0) {
    const f = o.config ?? findConfig()
    if (!f) throw new Error("no devs.json found; give interface directories with --dir")
    const { config, dir } = loadConfig(f)
    roots = config.interfaces.map((p) => path.relative(process.cwd(), path.resolve(dir, p)) || ".")
  }
  for (const w of misplacedFiles(roots)) console.error(`robot interface: warning: ${w}`)
  return loadProjectInterfaces(roots)
}

function run(o: RootOpts, body: (set: InterfaceSet) => number): void {
  let set: InterfaceSet
  try {
    set = loadSet(o)
  } catch (e) {
    console.error(e instanceof IdlError ? e.message : `robot interface: ${(e as Error).message}`)
    process.exitCode = 1
    return
  }
  process.exitCode = body(set)
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v]

export function registerInterface(program: Command): void {
  const cmd = program.command("interface").description("show information about ROS 2 interface types (as `ros2 interface`)")
  const roots = (c: Command): Command =>
    c
      .option("--dir <dir>", "interface root (repeatable; default: devs.json `interfaces`)", collect)
      .option("--config <file>", "devs.json to use")
  roots(cmd.command("list").description("list all interface types"))
    .option("-m, --only-msgs", "print messages only")
    .option("-s, --only-srvs", "print services only")
    .option("-a, --only-actions", "print actions only")
    .action((o: RootOpts & { onlyMsgs?: boolean; onlySrvs?: boolean; onlyActions?: boolean }) =>
      run(o, (set) => {
        console.log(formatList(set, o.onlyMsgs ? "msgs" : o.onlySrvs ? "srvs" : o.onlyActions ? "actions" : undefined))
        return 0
      }),
    )
  roots(cmd.command("show").description("print the definition of a type, nested types expanded").argument("<type>", "e.g. example_interfaces/srv/AddTwoInts, example_interfaces/action/Fibonacci"))
    .option("--all-comments", "show comments of nested types too")
    .option("--no-comments", "show no comments")
    .action((type: string, o: RootOpts & { allComments?: boolean; comments?: boolean }) =>
      run(o, (set) => {
        const text = formatShow(set, type, o.comments === false ? "none" : o.allComments ? "all" : "default")
        if (text === undefined) {
          console.error(`robot interface show: unknown type '${type}' (see 'robot interface list')`)
          return 1
        }
        console.log(text)
        return 0
      }),
    )
  roots(cmd.command("package").description("list the types of one package").argument("<pkg>"))
    .action((pkg: string, o: RootOpts) =>
      run(o, (set) => {
        const text = formatPackage(set, pkg)
        if (text === undefined) {
          console.error(`robot interface package: unknown package '${pkg}' (see 'robot interface packages')`)
          return 1
        }
        console.log(text)
        return 0
      }),
    )
  roots(cmd.command("packages").description("list the packages that define interfaces"))
    .action((o: RootOpts) =>
      run(o, (set) => {
        console.log(packages(set).join("\n"))
        return 0
      }),
    )
}
