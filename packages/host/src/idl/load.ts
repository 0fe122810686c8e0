// Loads ROS 2 interface packages (`<root>/<pkg>/msg/*.msg`, `<root>/<pkg>/srv/*.srv`,
// `<root>/<pkg>/action/*.action`) into an InterfaceSet: parsed, nested type names resolved to full
// names, the types ROS 2 derives from each action added (host/idl/action.ts), hashed. Every problem in every
// file is collected and thrown together as one IdlError with compiler-style diagnostics.
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { MessageDefinition, MessageDefinitionField } from "@foxglove/message-definition"
import { IdlError, type Diagnostic } from "./diagnostics"
import { isPrimitive, PACKAGE_NAME_RE, parseLine, parseMessageLines, TYPE_NAME_RE, type RawField, type RawMessage } from "./parse"
import type { InterfaceSet, IdlAction, IdlMessage, IdlService } from "./types"
import { ACTION_DEPENDENCIES, ACTION_PARTS, deriveAction, splitAction } from "./action"

export { IdlError, formatDiagnostic, type Diagnostic } from "./diagnostics"

/**
 * The loader's steps so far, in this process: lines read, fields resolved, types and fields visited
 * by each check of the set, steps of the cycle search, dependencies walked for a hash. Only counted,
 * so that a test can see the work grow linearly with the set without timing it
 * (test/host/idl_scale.test.ts).
 */
export const loaderWork = { steps: 0 }

/** One interface file given by content (what the loader reads from disk; tests can pass their own). */
export interface SourceFile {
  /** the interface root the file was found under, as given (e.g. `services`) */
  root: string
  /** path relative to the root, with `/` separators: `<pkg>/msg/Foo.msg`, `<pkg>/srv/Foo.srv` or `<pkg>/action/Foo.action` */
  file: string
  text: string
}

/** Lists every interface file under the given roots, sorted (roots in the order given). */
export function findInterfaceFiles(roots: readonly string[]): SourceFile[] {
  const out: SourceFile[] = []
  for (const root of roots) {
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
      throw new Error(`interface root '${root}' is not a directory`)
    }
    for (const pkg of fs.readdirSync(root).sort()) {
      const pkgDir = path.join(root, pkg)
      if (!fs.statSync(pkgDir).isDirectory()) continue
      for (const kind of ["msg", "srv", "action"] as const) {
        const dir = path.join(pkgDir, kind)
        if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) continue
        for (const f of fs.readdirSync(dir).sort()) {
          if (!f.endsWith(`.${kind}`)) continue
          out.push({ root, file: `${pkg}/${kind}/${f}`, text: fs.readFileSync(path.join(dir, f), "utf8") })
        }
      }
    }
  }
  return out
}

/** How deep under a root {@link misplacedFiles} looks (a root's packages' folders are two levels down). */
const MISPLACED_DEPTH = 4

/**
 * The `.msg`, `.srv` and `.action` files under `roots` that {@link findInterfaceFiles} does not read
 * (`Loose.srv` beside the packages, `<pkg>/srvs/X.srv`, `<pkg>/msg/X.srv`), each with a message
 * naming it and where ROS 2 expects it: a file the user meant as a type is never silently left out.
 * Looks MISPLACED_DEPTH levels down, past hidden folders and node_modules.
 */
export function misplacedFiles(roots: readonly string[]): string[] {
  const out: string[] = []
  const layout = "ROS 2 interface files are <package>/msg/<Name>.msg, <package>/srv/<Name>.srv and <package>/action/<Name>.action under an interface root"
  for (const root of roots) {
    if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) continue
    const walk = (rel: string[]): void => {
      for (const n of fs.readdirSync(path.join(root, ...rel)).sort()) {
        const parts = [...rel, n]
        const abs = path.join(root, ...parts)
        if (fs.statSync(abs).isDirectory()) {
          if (!n.startsWith(".") && n !== "node_modules" && parts.length < MISPLACED_DEPTH) walk(parts)
          continue
        }
        const kind = /\.(msg|srv|action)$/.exec(n)?.[1]
        if (!kind || (parts.length === 3 && parts[1] === kind)) continue
        const show = (p: string[]) => path.posix.join(root.split(path.sep).join("/"), ...p)
        // a file in a package's folder of another name keeps its package; one beside the packages has none yet
        out.push(`${show(parts)} is not read: ${layout}; move it to ${show([parts.length === 3 ? (rel[0] as string) : "<package>", kind, n])}`)
      }
    }
    walk([])
  }
  return out
}

/**
 * The interface packages shipped with @robot-services/host (packages/host/interfaces: copies of the
 * standard packages in this repository's services/, test/host/gen.test.ts keeps them equal): what an
 * action's derived types need (unique_identifier_msgs, builtin_interfaces), action_msgs, std_msgs,
 * std_srvs, example_interfaces, sensor_msgs and service_msgs. The same path from src/idl and dist/idl.
 */
export const BUILTIN_ROOT = path.join(__dirname, "..", "..", "interfaces")
/** How generated headers name a file of BUILTIN_ROOT (its place in node_modules depends on the install). */
export const BUILTIN_LABEL = "@robot-services/host/interfaces"

/**
 * The files of `roots`, then those of the built-in root (BUILTIN_ROOT), which comes after them as an
 * underlay comes after an overlay in ROS 2: a package that one of `roots` has replaces the built-in
 * package of that name as a whole (its types, not a mix of both). What `robot gen`, `robot interface`,
 * the CLI and the bridge read.
 */
export function findProjectFiles(roots: readonly string[]): SourceFile[] {
  const own = findInterfaceFiles(roots)
  const ownPackages = new Set(own.map((f) => f.file.split("/")[0]))
  if (!fs.existsSync(BUILTIN_ROOT)) return own
  return [...own, ...findInterfaceFiles([BUILTIN_ROOT]).filter((f) => !ownPackages.has(f.file.split("/")[0]))]
}

/**
 * Scans `<root>/<pkg>/{msg,srv,action}/*.{msg,srv,action}` under every root and returns the parsed set.
 * Throws IdlError (all diagnostics of all files) when anything is invalid, and Error when a root
 * is not a directory.
 */
export function loadInterfaces(roots: readonly string[]): InterfaceSet {
  return loadSources(findInterfaceFiles(roots))
}

/** {@link loadInterfaces} of `roots` and the built-in root after them ({@link findProjectFiles}). */
export function loadProjectInterfaces(roots: readonly string[]): InterfaceSet {
  return loadSources(findProjectFiles(roots))
}

/**
 * The part of `set` that files of `roots` define, and the types of other roots their fields use:
 * what a project's generated code holds (the built-in packages' other types cost a firmware flash).
 */
export function ownPart(set: InterfaceSet, roots: readonly string[]): InterfaceSet {
  const own = (t: { root: string }) => roots.includes(t.root)
  const names = new Set<string>()
  for (const m of set.messages.values()) {
    if (!own(m)) continue
    names.add(m.fullName)
    for (const d of dependencies(m.fullName, set.messages)) names.add(d)
  }
  return {
    // in the set's own order, which the emitters' sorting does not depend on but the headers' sources follow
    messages: new Map([...set.messages].filter(([n]) => names.has(n))),
    services: new Map([...set.services].filter(([, sv]) => own(sv))),
    actions: new Map([...set.actions].filter(([, a]) => own(a))),
  }
}

interface Pending {
  src: SourceFile
  display: string
  lines: string[]
  pkg: string
  name: string
  kind: "msg" | "srv" | "action"
  parts: { suffix: string; raw: RawMessage; firstLine: number }[]
}

/** Builds an InterfaceSet from file contents. Throws IdlError listing every problem. */
export function loadSources(sources: readonly SourceFile[]): InterfaceSet {
  const diags: Diagnostic[] = []
  const pending: Pending[] = []

  for (const given of sources) {
    // a UTF-8 byte order mark (as some Windows editors save a file) is not part of the text
    const src = given.text.charCodeAt(0) === 0xfeff ? { ...given, text: given.text.slice(1) } : given
    const display = path.posix.join(src.root.split(path.sep).join("/"), src.file)
    const lines = src.text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
    loaderWork.steps += lines.length
    const report = (line: number, col: number, message: string): void => {
      diags.push({ file: display, line, col, message, source: lines[line - 1] ?? "" })
    }
    const m = /^([^/]+)\/(msg|srv|action)\/([^/]+)\.(msg|srv|action)$/.exec(src.file)
    if (!m || m[2] !== m[4]) {
      diags.push({ file: display, line: 1, col: 1, message: `interface files must be '<pkg>/msg/Name.msg', '<pkg>/srv/Name.srv' or '<pkg>/action/Name.action'`, source: "" })
      continue
    }
    const pkg = m[1] as string
    const kind = m[2] as "msg" | "srv" | "action"
    const name = m[3] as string
    let ok = true
    if (!PACKAGE_NAME_RE.test(pkg)) {
      diags.push({ file: display, line: 1, col: 1, message: `invalid package name '${pkg}': package names are lower snake case`, source: "" })
      ok = false
    }
    if (!TYPE_NAME_RE.test(name)) {
      diags.push({ file: display, line: 1, col: 1, message: `invalid ${kind === "msg" ? "message" : kind === "srv" ? "service" : "action"} name '${name}': names start with an upper-case letter and contain only letters and digits`, source: "" })
      ok = false
    }
    const p: Pending = { src, display, lines, pkg, name, kind, parts: [] }
    if (kind === "msg") {
      p.parts.push({ suffix: "", raw: parseMessageLines(lines, 1, report), firstLine: 1 })
    } else if (kind === "action") {
      const parts = splitAction(lines, report)
      if (parts) parts.forEach((part, i) => p.parts.push({ suffix: ACTION_PARTS[i] as string, ...part }))
      else ok = false
    } else {
      const seps = lines.flatMap((l, i) => (l.trim() === "---" ? [i] : []))
      if (seps.length === 0) {
        // still check each line, so one run shows every problem; where the request ends is not
        // known, so names are not compared (the same name may be in both halves)
        lines.forEach((l, i) => parseLine(l, i + 1, report))
        report(Math.max(1, lines.length - (lines[lines.length - 1] === "" ? 1 : 0)), 1, "missing '---' separating the request from the response: a .srv is the request's fields, a line '---', then the response's (either may be empty)")
        ok = false
      } else if (seps.length > 1) {
        for (const s of seps.slice(1)) report(s + 1, (lines[s] ?? "").indexOf("-") + 1, "a .srv file has exactly one '---' separator; this is a second one")
        // still check every line between the separators, so one run shows every problem
        const bounds = [-1, ...seps, lines.length]
        for (let i = 0; i + 1 < bounds.length; i++) {
          const from = (bounds[i] as number) + 1
          parseMessageLines(lines.slice(from, bounds[i + 1]), from + 1, report)
        }
        ok = false
      } else {
        const s = seps[0] as number
        p.parts.push({ suffix: "_Request", raw: parseMessageLines(lines.slice(0, s), 1, report), firstLine: 1 })
        p.parts.push({ suffix: "_Response", raw: parseMessageLines(lines.slice(s + 1), s + 2, report), firstLine: s + 2 })
      }
    }
    if (ok) pending.push(p)
  }

  // every message full name that exists (including service halves, which fields cannot use)
  const known = new Map<string, Pending>()
  for (const p of pending) {
    const full = `${p.pkg}/${p.kind}/${p.name}`
    const prev = known.get(full)
    if (prev) {
      diags.push({ file: p.display, line: 1, col: 1, message: `${full} is already defined in ${prev.display}`, source: "" })
      continue
    }
    known.set(full, p)
  }

  // resolve nested type names
  const messages = new Map<string, IdlMessage>()
  const services = new Map<string, IdlService>()
  const actions = new Map<string, IdlAction>()
  const fieldLines = new Map<string, RawField[]>()
  for (const p of known.values()) {
    const report = (line: number, col: number, message: string): void => {
      diags.push({ file: p.display, line, col, message, source: p.lines[line - 1] ?? "" })
    }
    const halves: IdlMessage[] = []
    for (const part of p.parts) {
      const fullName = `${p.pkg}/${p.kind}/${p.name}${part.suffix}`
      const defs: MessageDefinitionField[] = []
      for (const f of part.raw.fields) {
        loaderWork.steps++
        const field = { ...f.field }
        if (!isPrimitive(f.type.base)) {
          const cands = candidates(f.type.pkg, f.type.name ?? f.type.base, p.pkg)
          const found = cands.find((c) => known.get(c)?.kind === "msg")
          if (!found) {
            report(f.line, f.typeCol, `unknown type '${f.type.base}' (looked for ${cands.join(", ")})`)
            continue
          }
          field.type = found
        }
        defs.push(field)
      }
      const mt: IdlMessage = {
        fullName,
        pkg: p.pkg,
        name: p.name + part.suffix,
        file: p.src.file,
        root: p.src.root,
        definition: { name: fullName, definitions: defs },
        text: part.raw.text,
        hash: "",
        hash32: 0,
      }
      messages.set(fullName, mt)
      fieldLines.set(fullName, part.raw.fields)
      halves.push(mt)
    }
    if (p.kind === "srv" && halves.length === 2) {
      services.set(`${p.pkg}/srv/${p.name}`, {
        fullName: `${p.pkg}/srv/${p.name}`,
        pkg: p.pkg,
        name: p.name,
        file: p.src.file,
        root: p.src.root,
        request: halves[0] as IdlMessage,
        response: halves[1] as IdlMessage,
        text: p.src.text,
        hash: "",
        hash32: 0,
      })
    }
    if (p.kind === "action" && halves.length === 3) {
      // the goal ids and stamps of the derived types are these two messages, as in rosidl
      const missing = ACTION_DEPENDENCIES.filter((d) => known.get(d)?.kind !== "msg")
      if (missing.length > 0) {
        // a package of the roots without the type hides the built-in package of its name (findProjectFiles)
        const hidden = (d: string) => sources.some((s) => s.file.startsWith(`${d.split("/")[0]}/`) && s.root !== BUILTIN_ROOT)
        const absent = missing.filter((d) => !hidden(d))
        const advice = [
          ...missing.filter(hidden).map((d) => {
            const [pkg, , name] = d.split("/")
            return `the project's own package ${pkg} hides the built-in one; add ${name}.msg to it, or remove the package to use the built-in one`
          }),
          ...(absent.length > 0 ? [`add ${absent.length === 1 ? "its package" : "their packages"} to the interface roots (@robot-services/host ships ${absent.length === 1 ? "it" : "them"} in ${BUILTIN_LABEL})`] : []),
        ].join("; ")
        diags.push({
          file: p.display, line: 1, col: 1, source: "",
          message: `an action needs ${missing.join(" and ")} (goal ids and stamps of the types derived from it): ${advice}`,
        })
        continue
      }
      const a = deriveAction({ pkg: p.pkg, name: p.name, file: p.src.file, root: p.src.root, text: p.src.text }, halves as [IdlMessage, IdlMessage, IdlMessage])
      for (const mt of a.derivedMessages) messages.set(mt.fullName, mt)
      actions.set(a.action.fullName, a.action)
    }
  }

  /** The file a message comes from: its .msg, the .srv of a half, the .action of a part or of a type derived from it. */
  const byFile = new Map([...known.values()].map((p) => [`${p.src.root}\0${p.src.file}`, p]))
  const pendingOf = (fullName: string): Pending | undefined => {
    const mt = messages.get(fullName)
    return mt && byFile.get(`${mt.root}\0${mt.file}`)
  }

  // a type must not contain itself (directly or through other types)
  const cycles = cyclesThrough(messages, cyclicComponents(messages))
  for (const mt of messages.values()) {
    const found = cycles.get(mt.fullName)
    if (found) {
      // the cycle from this type round to it again; a long one shortened as the nesting chain is
      const n = found.cycle.length
      const at = (k: number) => found.cycle[(found.at + k) % n] as string
      const chain = n + 1 > 6 ? [at(0), at(1), at(2), "...", at(n - 1), at(n)] : Array.from({ length: n + 1 }, (_, k) => at(k))
      const fl = fieldLines.get(mt.fullName) ?? []
      const first = mt.definition.definitions.find((d) => d.isComplex && d.type === at(1))
      const raw = fl.find((r) => r.name === first?.name)
      const p = known.get(mt.fullName.replace(/_(Request|Response|Goal|Result|Feedback)$/, ""))
      diags.push({
        file: p?.display ?? mt.file,
        line: raw?.line ?? 1,
        col: raw?.typeCol ?? 1,
        message: `recursive type: ${chain.join(" -> ")}${n + 1 > 6 ? ` (a cycle of ${n.toLocaleString("en-US")} types)` : ""}`,
        source: raw ? (p?.lines[raw.line - 1] ?? "") : "",
      })
    }
  }

  // a bound on nesting: the hash, the codecs and `interface show` walk nested types recursively (a
  // chain of 12,000 overflowed the stack), and each type's canonical text holds every type below it
  if (diags.length === 0) {
    for (const over of nestedTooDeep(messages)) {
      const raw = (fieldLines.get(over.fullName) ?? []).find((r) => r.name === over.field)
      const p = known.get(over.fullName.replace(/_(Request|Response|Goal|Result|Feedback)$/, ""))
      const chain = over.chain.length > 6 ? [...over.chain.slice(0, 3), "...", ...over.chain.slice(-2)] : over.chain
      diags.push({
        file: p?.display ?? over.file,
        line: raw?.line ?? 1,
        col: raw?.typeCol ?? 1,
        message: `types nested more than ${MAX_NESTING} levels deep: ${chain.join(" -> ")} (${over.chain.length} levels)`,
        source: raw ? (p?.lines[raw.line - 1] ?? "") : "",
      })
    }
  }

  // a bound on what a type expands to: show, the JSON Schemas, the request forms and defaults write
  // each nested type out again at every field that holds it, a fixed array N times (values)
  if (diags.length === 0) {
    for (const over of expandsTooFar(messages)) {
      const fl = fieldLines.get(over.fullName) ?? []
      const raw = fl.find((r) => r.name === over.field)
      const p = pendingOf(over.fullName)
      diags.push({ file: p?.display ?? over.file, line: raw?.line ?? 1, col: raw?.typeCol ?? 1, message: over.message, source: raw ? (p?.lines[raw.line - 1] ?? "") : "" })
    }
  }

  if (diags.length > 0) {
    // file by file, in line order, as a compiler prints them
    diags.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col))
    throw new IdlError(diags)
  }

  // Each hash is taken when it is first read, then kept. A type's hash covers every type below it
  // (docs/interfaces.md), so hashing all of a set reads all their canonical texts: N types that each
  // hold a type of D others are N x D blocks. Taken here, that was most of a load of such a set (3 s
  // for 3,500 types over one of 1,000: test/host/idl_scale.test.ts 'hub'); what reads only some
  // hashes (interface show, a call's service) now pays only for those. Each type's own block is made once.
  const bodies = new Map<string, string>()
  const textOf = (fullName: string) => textWith(fullName, messages, bodies)
  for (const mt of messages.values()) hashOnRead(mt, () => textOf(mt.fullName))
  for (const st of [...services.values(), ...[...actions.values()].flatMap((a) => [a.sendGoal, a.getResult])]) hashOnRead(st, () => serviceText(st, textOf))
  for (const at of actions.values()) hashOnRead(at, () => actionText(at, textOf))
  return { messages, services, actions }
}

/**
 * Makes `hash` and `hash32` of `t` be taken from `text()` when first read and then kept (still
 * plain enumerable properties to whoever reads, copies or compares them; a value written replaces them).
 */
function hashOnRead(t: { hash: string; hash32: number }, text: () => string): void {
  let hash: string | undefined
  let h32: number | undefined
  const get = (): string => (hash ??= sha256(text()))
  Object.defineProperty(t, "hash", {
    enumerable: true,
    configurable: true,
    get,
    set: (v: string) => {
      hash = v
      h32 = undefined
    },
  })
  Object.defineProperty(t, "hash32", {
    enumerable: true,
    configurable: true,
    get: () => (h32 ??= hash32(get())),
    set: (v: number) => {
      h32 = v
    },
  })
}

/** Full names tried for a nested type written in package `here`, in order. */
export function candidates(pkg: string | undefined, name: string, here: string): string[] {
  if (pkg !== undefined) return [`${pkg}/msg/${name}`]
  const out = [`${here}/msg/${name}`]
  if (name === "Header" && here !== "std_msgs") out.push("std_msgs/msg/Header")
  return out
}

/** The nested (complex, non-constant) field types of `name`, in field order. */
function nestedTypes(name: string, messages: ReadonlyMap<string, IdlMessage>): string[] {
  return (messages.get(name)?.definition.definitions ?? []).filter((d) => d.isComplex && !d.isConstant).map((d) => d.type)
}

/**
 * For each type that lies on a cycle, one cycle through it: the types of the cycle in order (each
 * holds the next, the last holds the first) and where the type is in it. Linear in the set: a search
 * from each type (as before) took a step per type of its component, so 4,500 types in one ring took
 * 8 s (and named every type of the ring in each of its 4,500 diagnostics, 300 MB).
 *
 * In each component (`components`, Tarjan's), from one of its types `r`: the shortest ways from r
 * to every type (a tree, `parentOf`) and from every type to r (`towardR`), both found breadth-first.
 * A type that holds itself is its own cycle. For r: from r down the tree to a type that holds r. For
 * any other type v: from v toward r until the first type x on the tree's way from r to v (an
 * ancestor of v, told in O(1) by the tree's entry and exit times), then down the tree from x to v;
 * the two parts share no type, so the cycle names each once. Each cycle found gives every type on it
 * that has none yet its own (the same cycle, from there): one search covers a whole ring.
 */
function cyclesThrough(messages: ReadonlyMap<string, IdlMessage>, components: ReadonlyMap<string, ReadonlySet<string>>): Map<string, { cycle: string[]; at: number }> {
  const out = new Map<string, { cycle: string[]; at: number }>()
  const cover = (cycle: string[]) => {
    loaderWork.steps += cycle.length
    cycle.forEach((t, at) => {
      if (!out.has(t)) out.set(t, { cycle, at })
    })
  }
  const seenComponents = new Set<ReadonlySet<string>>()
  for (const members of components.values()) {
    if (seenComponents.has(members)) continue
    seenComponents.add(members)
    const holds = new Map<string, string[]>()
    const heldBy = new Map<string, string[]>()
    for (const v of members) heldBy.set(v, [])
    for (const v of members) {
      const within = [...new Set(nestedTypes(v, messages).filter((t) => members.has(t)))]
      loaderWork.steps += 1 + within.length
      holds.set(v, within)
      for (const t of within) (heldBy.get(t) as string[]).push(v)
    }
    const r = members.values().next().value as string
    /** breadth-first from r along `edges`: each type's neighbour one step nearer r */
    const bfs = (edges: Map<string, string[]>): Map<string, string> => {
      const via = new Map<string, string>()
      const queue = [r]
      for (let i = 0; i < queue.length; i++) {
        const v = queue[i] as string
        for (const t of edges.get(v) as string[]) {
          loaderWork.steps++
          if (t === r || via.has(t)) continue
          via.set(t, v)
          queue.push(t)
        }
      }
      return via
    }
    const parentOf = bfs(holds)
    const towardR = bfs(heldBy)
    // entry and exit times of the tree, without recursion
    const children = new Map<string, string[]>()
    for (const [t, parent] of parentOf) {
      const list = children.get(parent)
      if (list) list.push(t)
      else children.set(parent, [t])
    }
    const enter = new Map<string, number>()
    const exit = new Map<string, number>()
    let clock = 0
    const stack: { v: string; i: number }[] = [{ v: r, i: 0 }]
    enter.set(r, clock++)
    while (stack.length > 0) {
      loaderWork.steps++
      const top = stack[stack.length - 1] as { v: string; i: number }
      const next = children.get(top.v)?.[top.i++]
      if (next === undefined) {
        exit.set(top.v, clock++)
        stack.pop()
      } else {
        enter.set(next, clock++)
        stack.push({ v: next, i: 0 })
      }
    }
    const isAncestor = (a: string, v: string) => (enter.get(a) as number) <= (enter.get(v) as number) && (exit.get(v) as number) <= (exit.get(a) as number)
    /** the tree's way from `a` down to `v` (a an ancestor of v), both included */
    const down = (a: string, v: string): string[] => {
      const way = [v]
      for (let t = v; t !== a; t = parentOf.get(t) as string) way.push(parentOf.get(t) as string)
      return way.reverse()
    }
    for (const v of members) {
      if (out.has(v)) continue
      if ((holds.get(v) as string[]).includes(v)) {
        cover([v])
      } else if (v === r) {
        cover(down(r, (heldBy.get(r) as string[])[0] as string))
      } else {
        const head = [v]
        let x = towardR.get(v) as string
        while (!isAncestor(x, v)) {
          loaderWork.steps++
          head.push(x)
          x = towardR.get(x) as string
        }
        cover([...head, ...down(x, v).slice(0, -1)])
      }
    }
  }
  return out
}

/**
 * Each type that lies on a cycle, with the types of its strongly connected component (Tarjan's
 * algorithm, iterative, linear in the set): a type of a component of one is on a cycle only when it
 * holds itself. Types on no cycle are left out.
 */
function cyclicComponents(messages: ReadonlyMap<string, IdlMessage>): Map<string, Set<string>> {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const out = new Map<string, Set<string>>()
  let next = 0
  for (const root of messages.keys()) {
    if (index.has(root)) continue
    const work: { name: string; children: string[]; i: number }[] = []
    const open = (name: string) => {
      index.set(name, next)
      low.set(name, next++)
      stack.push(name)
      onStack.add(name)
      work.push({ name, children: nestedTypes(name, messages).filter((t) => messages.has(t)), i: 0 })
    }
    open(root)
    while (work.length > 0) {
      loaderWork.steps++
      const top = work[work.length - 1] as { name: string; children: string[]; i: number }
      if (top.i < top.children.length) {
        const child = top.children[top.i++] as string
        if (!index.has(child)) open(child)
        else if (onStack.has(child)) low.set(top.name, Math.min(low.get(top.name) as number, index.get(child) as number))
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent) low.set(parent.name, Math.min(low.get(parent.name) as number, low.get(top.name) as number))
      if (low.get(top.name) !== index.get(top.name)) continue
      const members = new Set<string>()
      for (;;) {
        const n = stack.pop() as string
        onStack.delete(n)
        members.add(n)
        if (n === top.name) break
      }
      if (members.size > 1 || top.children.includes(top.name)) for (const n of members) out.set(n, members)
    }
  }
  return out
}

/** The deepest nesting a type may have: itself and the types below it, one level each. */
export const MAX_NESTING = 100

/**
 * Calls `visit` once for every message type of a set without cycles (and every type its fields
 * name), each after the types its nested fields hold: the order both bounds below sum in. Without
 * recursion: a chain of 12,000 types overflowed the stack.
 */
function nestedFirst(messages: ReadonlyMap<string, IdlMessage>, visit: (name: string) => void): void {
  const seen = new Set<string>()
  for (const root of messages.keys()) {
    const stack: { name: string; expanded: boolean }[] = [{ name: root, expanded: false }]
    while (stack.length > 0) {
      loaderWork.steps++
      const top = stack[stack.length - 1] as { name: string; expanded: boolean }
      if (seen.has(top.name)) {
        stack.pop()
        continue
      }
      if (!top.expanded) {
        top.expanded = true
        for (const f of messages.get(top.name)?.definition.definitions ?? []) if (f.isComplex && !f.isConstant && !seen.has(f.type)) stack.push({ name: f.type, expanded: false })
        continue
      }
      seen.add(top.name)
      visit(top.name)
      stack.pop()
    }
  }
}

/**
 * The types nested more than MAX_NESTING levels deep (a type with no nested field is 1 level) at the
 * point where they pass the bound: those of exactly MAX_NESTING + 1 levels (every deeper type holds
 * one), each with the field that leads to its deepest type and that chain. For a set without
 * cycles; computed once per type, without recursion.
 */
function nestedTooDeep(messages: ReadonlyMap<string, IdlMessage>): { fullName: string; file: string; field: string; chain: string[] }[] {
  const depth = new Map<string, number>()
  const deepest = new Map<string, { field: string; type: string }>()
  nestedFirst(messages, (name) => {
    let d = 1
    for (const f of messages.get(name)?.definition.definitions ?? []) {
      if (!f.isComplex || f.isConstant) continue
      const below = (depth.get(f.type) ?? 0) + 1
      if (below > d) {
        d = below
        deepest.set(name, { field: f.name, type: f.type })
      }
    }
    depth.set(name, d)
  })
  const out: { fullName: string; file: string; field: string; chain: string[] }[] = []
  for (const [name, d] of depth) {
    if (d !== MAX_NESTING + 1) continue
    const chain = [name]
    for (let n = deepest.get(name); n; n = deepest.get(n.type)) chain.push(n.type)
    out.push({ fullName: name, file: messages.get(name)?.file ?? "", field: deepest.get(name)?.field ?? "", chain })
  }
  return out
}

/**
 * The most fields a type may expand to: its fields, and the fields of each nested type again at
 * every field that holds it (an array's element type once), as `robot interface show`, the bridge's
 * JSON Schemas and the dashboard's request forms write a type out. Real messages expand to a few
 * hundred at most (the largest here, test_msgs/srv/Everything_Request, 99 lines without comments);
 * a set of types that each hold the next one twice doubles with every level (30 levels: 3 * 2^30
 * lines; `interface show` overflowed the stack from 20). At 10,000 a JSON Schema is about 0.8 MB
 * and `interface show` takes about 50 ms (test/host/idl_hostile.test.ts).
 */
export const MAX_FIELDS = 10_000

/**
 * The most values a type may hold outside its sequences: its primitives, a fixed array T[N] N times
 * T's values, an empty message one (its placeholder byte). A sequence (T[], T[<=N]) counts none: its
 * elements come with the data, each value at least one byte of it (whose size the transports bound),
 * its default is empty, and T is bounded itself. This is the size of the type's default value, built
 * in full for every call that leaves a request field out (the CLI's and the bridge's `fromJson`):
 * 100,000 values in as many nested messages take about 60 ms and 10 MB. ROS 2's messages hold a few
 * hundred values outside sequences (the largest fixed arrays are covariances, float64[36]);
 * geometry_msgs/Point[1000] is 3,000. A value of 100,000 is at least 100 KB of CDR, five times the
 * largest request a device takes (20 KiB).
 */
export const MAX_VALUES = 100_000

/**
 * The types that expand past MAX_FIELDS or MAX_VALUES at the point where they pass the bound (every
 * type that holds one of them is past it too, and not listed), each with the field that weighs most
 * and a message naming the bound and the chain of types that makes the expansion. For a set without
 * cycles; each type computed once, without recursion, so the sums are linear in the set.
 */
function expandsTooFar(messages: ReadonlyMap<string, IdlMessage>): { fullName: string; file: string; field: string; message: string }[] {
  const fieldsOf = (name: string) => (messages.get(name)?.definition.definitions ?? []).filter((d) => !d.isConstant)
  const size = new Map<string, { fields: number; values: number }>()
  nestedFirst(messages, (name) => {
    // sums past any bound stay finite (>= 1 each, no 0 * Infinity): [0] is refused by the parser
    let nFields = 0
    let nValues = 0
    for (const f of fieldsOf(name)) {
      const below = f.isComplex ? size.get(f.type) : undefined
      nFields += 1 + (below?.fields ?? 0)
      if (!f.isArray || f.arrayLength !== undefined) nValues += (f.arrayLength ?? 1) * (below?.values ?? 1)
    }
    size.set(name, { fields: nFields, values: Math.max(1, nValues) })
  })
  const valuesOver = (n: string) => (size.get(n)?.values ?? 0) > MAX_VALUES
  const fieldsOver = (n: string) => (size.get(n)?.fields ?? 0) > MAX_FIELDS
  const num = (n: number) => n.toLocaleString("en-US")
  // one step of a chain: at type `at`, the fields of the nested type (or the one primitive array)
  // that weigh most, and that type; the same below any type, so made once per type and bound
  const stepMemo = new Map<string, { text: string; field?: string; next?: string }>()
  const stepOf = (at: string, byValues: boolean): { text: string; field?: string; next?: string } => {
    const key = `${byValues ? "v" : "f"}${at}`
    const known = stepMemo.get(key)
    if (known) return known
    const weight = (f: MessageDefinitionField): number => {
      const below = f.isComplex ? size.get(f.type) : undefined
      if (!byValues) return 1 + (below?.fields ?? 0)
      return f.isArray && f.arrayLength === undefined ? 0 : (f.arrayLength ?? 1) * (below?.values ?? 1)
    }
    const fields = fieldsOf(at)
    const sum = new Map<string, number>() // by nested type, or by field name for a primitive field
    const keyOf = (f: MessageDefinitionField) => (f.isComplex ? f.type : `\0${f.name}`)
    for (const f of fields) sum.set(keyOf(f), (sum.get(keyOf(f)) ?? 0) + weight(f))
    let heaviest: string | undefined
    for (const [k, w] of sum) if (heaviest === undefined || w > (sum.get(heaviest) as number)) heaviest = k
    const chosen = fields.filter((f) => keyOf(f) === heaviest)
    const first = chosen[0]
    // a type without nested types that weigh ends the chain, named alone unless a primitive array weighs
    const step =
      first === undefined || weight(first) <= (first.isComplex ? 0 : 1)
        ? { text: at }
        : {
            text: `${at} (${chosen.map((f) => f.name + (f.arrayLength !== undefined ? `[${f.arrayLength}]` : "")).join(", ")})`,
            field: first.name,
            next: first.isComplex ? first.type : undefined,
          }
    stepMemo.set(key, step)
    return step
  }
  const out: { fullName: string; file: string; field: string; message: string }[] = []
  for (const [name, s] of size) {
    const byValues = valuesOver(name)
    if (!byValues && !fieldsOver(name)) continue
    if (fieldsOf(name).some((f) => f.isComplex && (valuesOver(f.type) || fieldsOver(f.type)))) continue
    const steps: string[] = []
    for (let at: string | undefined = name; at !== undefined; at = stepOf(at, byValues).next) steps.push(stepOf(at, byValues).text)
    const firstField = stepOf(name, byValues).field ?? ""
    const chain = (steps.length > 6 ? [...steps.slice(0, 3), "...", ...steps.slice(-2)] : steps).join(" -> ")
    const message = byValues
      ? `${name} holds ${num(s.values)} values, more than MAX_VALUES (${num(MAX_VALUES)}): a fixed array T[N] holds N times T's values (a sequence, T[] or T[<=N], holds only the elements the data brings), here ${chain}`
      : `${name} expands to ${num(s.fields)} fields, more than MAX_FIELDS (${num(MAX_FIELDS)}): a nested type is written out again at every field that holds it (robot interface show, JSON Schemas, request forms), here ${chain}`
    out.push({ fullName: name, file: messages.get(name)?.file ?? "", field: firstField, message })
  }
  return out
}

function sha256(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex")
}

/** First 4 bytes of a hex sha256, as an unsigned 32-bit number. */
export function hash32(hexHash: string): number {
  return parseInt(hexHash.slice(0, 8), 16) >>> 0
}

/** The canonical line of one field: `<type>[<=S][array] <name>` (no defaults, no comments). */
export function canonicalField(f: MessageDefinitionField): string {
  let t = f.type
  if (f.upperBound !== undefined) t += `<=${f.upperBound}`
  if (f.isArray) t += f.arrayLength !== undefined ? `[${f.arrayLength}]` : f.arrayUpperBound !== undefined ? `[<=${f.arrayUpperBound}]` : "[]"
  return `${t} ${f.name}\n`
}

/** Every complex type `fullName` uses, transitively, sorted by name (not including itself). */
export function dependencies(fullName: string, messages: ReadonlyMap<string, IdlMessage>): string[] {
  const seen = new Set<string>()
  const todo = [fullName]
  while (todo.length > 0) {
    for (const d of messages.get(todo.pop() as string)?.definition.definitions ?? []) {
      loaderWork.steps++
      if (d.isComplex && !d.isConstant && !seen.has(d.type)) {
        seen.add(d.type)
        todo.push(d.type)
      }
    }
  }
  seen.delete(fullName)
  return [...seen].sort()
}

function canonicalBody(mt: IdlMessage): string {
  return `MSG: ${mt.fullName}\n` + mt.definition.definitions.filter((d) => !d.isConstant).map(canonicalField).join("")
}

/** canonicalText, each type's own block made once in `bodies` */
function textWith(fullName: string, messages: ReadonlyMap<string, IdlMessage>, bodies: Map<string, string>): string {
  const self = messages.get(fullName)
  if (!self) throw new Error(`unknown message type ${fullName}`)
  const body = (mt: IdlMessage): string => {
    loaderWork.steps++
    let b = bodies.get(mt.fullName)
    if (b === undefined) bodies.set(mt.fullName, (b = canonicalBody(mt)))
    return b
  }
  return [self, ...dependencies(fullName, messages).map((d) => messages.get(d) as IdlMessage)].map(body).join("===\n")
}

function serviceText(st: IdlService, text: (fullName: string) => string): string {
  return `SRV: ${st.fullName}\n${text(st.request.fullName)}---\n${text(st.response.fullName)}`
}

function actionText(at: IdlAction, text: (fullName: string) => string): string {
  return `ACT: ${at.fullName}\n` + [at.goal, at.result, at.feedback].map((m) => text(m.fullName)).join("---\n")
}

/**
 * The text hashed for a message (see docs/interfaces.md): the type's own block, then one block per
 * nested type sorted by full name, each block `MSG: <full name>\n` + one canonical line per field,
 * blocks separated by `===\n`. Constants, defaults, comments and whitespace do not take part: they
 * do not change the bytes on the wire.
 */
export function canonicalText(fullName: string, messages: ReadonlyMap<string, IdlMessage>): string {
  return textWith(fullName, messages, new Map())
}

/** The text hashed for a service: `SRV: <full name>\n`, the request's canonical text, `---\n`, the response's. */
export function canonicalServiceText(st: IdlService, messages: ReadonlyMap<string, IdlMessage>): string {
  return serviceText(st, (n) => canonicalText(n, messages))
}

/**
 * The text hashed for an action: `ACT: <full name>\n`, then the canonical texts of its goal, result
 * and feedback messages separated by `---\n` (the derived types follow from these three).
 */
export function canonicalActionText(at: IdlAction, messages: ReadonlyMap<string, IdlMessage>): string {
  return actionText(at, (n) => canonicalText(n, messages))
}

/** The type first, then every nested type it uses (sorted): what descriptors carry as `definitions`. */
export function definitionsOf(fullName: string, messages: ReadonlyMap<string, IdlMessage>): MessageDefinition[] {
  const self = messages.get(fullName)
  if (!self) throw new Error(`unknown message type ${fullName}`)
  return [self.definition, ...dependencies(fullName, messages).map((d) => (messages.get(d) as IdlMessage).definition)]
}
