// Line-level parsing of ROS 2 `.msg` / `.srv` / `.action` text with exact positions.
//
// Literal values (numbers, booleans, quoted strings with escapes, array literals) are parsed by
// `@foxglove/rosmsg` in ROS 2 mode. That parser reports errors without positions, normalises `byte`
// and `char` to `uint8`, maps `builtin_interfaces/Time` to a `time` primitive, and accepts a few
// things ROS 2 rejects (`int32 x 1.5` silently becomes 1, fixed-array defaults of the wrong length,
// string defaults longer than their bound). So every line is first split and checked here, with the
// column of each part, and only the literal is handed to foxglove; its errors are reported at the
// literal's column.
import { parse as foxgloveParse } from "@foxglove/rosmsg"
import type { MessageDefinitionField } from "@foxglove/message-definition"

export const PRIMITIVE_TYPES = [
  "bool", "byte", "char",
  "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
  "float32", "float64", "string", "wstring",
] as const
export type PrimitiveType = (typeof PRIMITIVE_TYPES)[number]
const PRIMITIVES = new Set<string>(PRIMITIVE_TYPES)
export function isPrimitive(t: string): t is PrimitiveType {
  return PRIMITIVES.has(t)
}

/** ROS 2 naming rules (rosidl): lower snake case without double/trailing underscores. */
export const FIELD_NAME_RE = /^[a-z](?:_?[a-z0-9]+)*$/
export const CONSTANT_NAME_RE = /^[A-Z](?:_?[A-Z0-9]+)*$/
export const PACKAGE_NAME_RE = /^[a-z](?:_?[a-z0-9]+)*$/
export const TYPE_NAME_RE = /^[A-Z][A-Za-z0-9]*$/

/** A type reference as written, split into parts. */
export interface TypeRef {
  /** primitive name, or the complex name as written (`Foo`, `pkg/Foo`, `pkg/msg/Foo`) */
  base: string
  /** package part of a complex name (`undefined` when written without one) */
  pkg?: string
  /** message name part of a complex name */
  name?: string
  stringBound?: number
  array?: { kind: "unbounded" } | { kind: "fixed"; length: number } | { kind: "bounded"; bound: number }
}

/** One field or constant line, with positions of its parts (1-based columns). */
export interface RawField {
  line: number
  typeText: string
  typeCol: number
  type: TypeRef
  name: string
  nameCol: number
  isConstant: boolean
  /** literal text of the default or constant value (comment stripped), if any */
  valueText?: string
  valueCol?: number
  /** the foxglove field for this line (type not yet resolved; byte/char kept as written) */
  field: MessageDefinitionField
}

/** A `.msg` body, or one half of a `.srv`. */
export interface RawMessage {
  fields: RawField[]
  /** the text of this part as written */
  text: string
}

export type DiagnosticSink = (line: number, col: number, message: string) => void

/** Index of the first `#` that is not inside a quoted string, or -1. */
function commentStart(s: string, from: number): number {
  let quote = ""
  for (let i = from; i < s.length; i++) {
    const c = s[i]
    if (quote !== "") {
      if (c === "\\") i++
      else if (c === quote) quote = ""
    } else if (c === "'" || c === '"') {
      quote = c
    } else if (c === "#") {
      return i
    }
  }
  return -1
}

const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\r"

/**
 * Splits a type token such as `string<=5[<=3]` or `pkg/msg/Foo[4]` into parts.
 * Reports bad syntax at the exact column and returns undefined.
 */
export function parseTypeToken(tok: string, col: number, report: DiagnosticSink, line: number): TypeRef | undefined {
  let i = 0
  while (i < tok.length && tok[i] !== "<" && tok[i] !== "[") i++
  const base = tok.slice(0, i)
  const ref: TypeRef = { base }
  if (base === "") {
    report(line, col, `expected a type name before '${tok[0] ?? ""}'`)
    return undefined
  }
  // base type name
  if (!isPrimitive(base)) {
    const parts = base.split("/")
    let partCol = col
    const partCols = parts.map((p) => {
      const c = partCol
      partCol += p.length + 1
      return c
    })
    if (parts.length > 3 || (parts.length === 3 && parts[1] !== "msg")) {
      const hint =
        parts.length === 3 && (parts[1] === "srv" || parts[1] === "action")
          ? ` (a field cannot have ${parts[1] === "srv" ? "a service" : "an action"} type; use 'pkg/msg/Type')`
          : ""
      report(line, col, `invalid type name '${base}': expected 'Type', 'pkg/Type' or 'pkg/msg/Type'${hint}`)
      return undefined
    }
    const name = parts[parts.length - 1] ?? ""
    const nameCol = partCols[partCols.length - 1] ?? col
    if (parts.length > 1) {
      const pkg = parts[0] ?? ""
      if (!PACKAGE_NAME_RE.test(pkg)) {
        report(line, col, `invalid package name '${pkg}' in type '${base}': package names are lower snake case`)
        return undefined
      }
      ref.pkg = pkg
    }
    if (!TYPE_NAME_RE.test(name)) {
      let hint = ""
      if (parts.length === 1 && /^[a-z]/.test(name)) {
        hint =
          name === "time" || name === "duration"
            ? ` (ROS 1 '${name}' is 'builtin_interfaces/${name === "time" ? "Time" : "Duration"}' in ROS 2)`
            : ` (primitive types are ${PRIMITIVE_TYPES.join(", ")})`
      }
      report(line, nameCol, `invalid type name '${name}': message type names start with an upper-case letter and contain only letters and digits${hint}`)
      return undefined
    }
    ref.name = name
  }
  // string bound
  if (tok[i] === "<") {
    const m = /^<=([1-9][0-9]*)/.exec(tok.slice(i))
    if (!m) {
      report(line, col + i, `invalid string bound '${tok.slice(i).replace(/\[.*$/, "")}': expected '<=N' with N a positive integer`)
      return undefined
    }
    if (base !== "string" && base !== "wstring") {
      report(line, col + i, `a length bound '<=${m[1]}' is only allowed on string and wstring, not on '${base}'`)
      return undefined
    }
    ref.stringBound = Number(m[1])
    i += m[0].length
  }
  // array suffix
  if (tok[i] === "[") {
    const m = /^\[(?:(<=)?([1-9][0-9]*))?\]/.exec(tok.slice(i))
    if (!m) {
      const close = tok.indexOf("]", i)
      const shown = close < 0 ? tok.slice(i) : tok.slice(i, close + 1)
      report(line, col + i, `invalid array bound '${shown}': expected '[]', '[N]' or '[<=N]' with N a positive integer`)
      return undefined
    }
    if (m[2] === undefined) ref.array = { kind: "unbounded" }
    else if (m[1] !== undefined) ref.array = { kind: "bounded", bound: Number(m[2]) }
    else ref.array = { kind: "fixed", length: Number(m[2]) }
    i += m[0].length
  }
  if (i < tok.length) {
    const c = tok[i]
    const what =
      c === "<" ? "a string bound must come before the array suffix ('string<=N[M]')" : c === "[" ? "only one array suffix is allowed" : `unexpected '${c}'`
    report(line, col + i, `invalid type '${tok}': ${what}`)
    return undefined
  }
  return ref
}

function typeRefToText(t: TypeRef): string {
  let s = t.base
  if (t.stringBound !== undefined) s += `<=${t.stringBound}`
  if (t.array) s += t.array.kind === "unbounded" ? "[]" : t.array.kind === "fixed" ? `[${t.array.length}]` : `[<=${t.array.bound}]`
  return s
}

/** The largest finite float32 (the codec's bound too). */
const FLOAT32_MAX = 3.4028234663852886e38

const INT_LITERAL = /^[+-]?[0-9]+$/
const FLOAT_LITERAL = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/

/** Checks the syntax of one non-string scalar literal that foxglove would accept too loosely. */
function checkScalarLiteral(base: string, text: string): string | undefined {
  switch (base) {
    case "bool":
      return ["true", "True", "false", "False", "1", "0"].includes(text) ? undefined : `invalid bool literal '${text}': expected true, false, True, False, 1 or 0`
    case "float32":
    case "float64":
      if (/^[+-]?(?:nan|inf|infinity)$/i.test(text)) return `'${text}' is not supported as a ${base} literal; write a finite decimal number`
      return FLOAT_LITERAL.test(text) ? undefined : `invalid ${base} literal '${text}': expected a decimal number`
    case "string":
    case "wstring":
      return undefined
    default:
      return INT_LITERAL.test(text) ? undefined : `invalid ${base} literal '${text}': expected a decimal integer`
  }
}

/** Splits the inside of a non-string array literal into elements with their columns. */
function splitArrayLiteral(text: string, col: number): { text: string; col: number }[] {
  const inner = text.slice(1, -1)
  if (inner.trim() === "") return []
  const out: { text: string; col: number }[] = []
  let start = 0
  for (let i = 0; i <= inner.length; i++) {
    if (i === inner.length || inner[i] === ",") {
      const raw = inner.slice(start, i)
      const lead = raw.length - raw.trimStart().length
      out.push({ text: raw.trim(), col: col + 1 + start + lead })
      start = i + 1
    }
  }
  return out
}

/** Length as a bound counts it on the wire: UTF-8 bytes for string, UTF-16 code units for wstring. */
function boundLength(base: string, s: string): number {
  return base === "wstring" ? s.length : Buffer.byteLength(s, "utf8")
}

/**
 * Parses the lines of one message body. `firstLine` is the 1-based number of `lines[0]` in its
 * file. Problems go to `report`; lines with problems are left out of the result.
 */
export function parseMessageLines(lines: readonly string[], firstLine: number, report: DiagnosticSink): RawMessage {
  const fields: RawField[] = []
  const seen = new Map<string, number>()
  lines.forEach((src, idx) => {
    const lineNo = firstLine + idx
    const f = parseLine(src, lineNo, report)
    if (!f) return
    const prev = seen.get(f.name)
    if (prev !== undefined) {
      report(lineNo, f.nameCol, `duplicate name '${f.name}' (first declared on line ${prev})`)
      return
    }
    seen.set(f.name, lineNo)
    fields.push(f)
  })
  return { fields, text: lines.join("\n") }
}

/** Parses one line; returns undefined for blank/comment lines and for invalid lines (reported). */
export function parseLine(src: string, lineNo: number, report: DiagnosticSink): RawField | undefined {
  let i = 0
  while (isSpace(src[i])) i++
  if (i >= src.length || src[i] === "#") return undefined
  const typeStart = i
  while (i < src.length && !isSpace(src[i]) && src[i] !== "#") i++
  const typeText = src.slice(typeStart, i)
  const typeCol = typeStart + 1
  if (typeText === "---") {
    const alone = src.trim() === "---"
    report(lineNo, typeCol, alone ? "unexpected '---': a .msg has no separator (a .srv has one, a .action two)" : "a separator line holds '---' and nothing else (no comment)")
    return undefined
  }
  const type = parseTypeToken(typeText, typeCol, report, lineNo)
  if (!type) return undefined
  while (isSpace(src[i])) i++
  if (i >= src.length || src[i] === "#") {
    report(lineNo, i + 1, `expected a field name after type '${typeText}'`)
    return undefined
  }
  const nameStart = i
  while (i < src.length && !isSpace(src[i]) && src[i] !== "=" && src[i] !== "#") i++
  const name = src.slice(nameStart, i)
  const nameCol = nameStart + 1
  if (name === "") {
    report(lineNo, nameCol, `expected a field name after type '${typeText}'`)
    return undefined
  }
  const afterName = i
  while (isSpace(src[i])) i++
  let isConstant = false
  let valueText: string | undefined
  let valueCol: number | undefined
  if (src[i] === "=") {
    isConstant = true
    const eqCol = i + 1
    i++
    while (isSpace(src[i])) i++
    const end = commentStart(src, i)
    valueText = src.slice(i, end < 0 ? src.length : end).trimEnd()
    valueCol = i + 1
    if (valueText === "") {
      report(lineNo, eqCol, `constant '${name}' needs a value after '='`)
      return undefined
    }
  } else if (i < src.length && src[i] !== "#") {
    if (i === afterName) {
      report(lineNo, i + 1, `unexpected '${src[i]}' in field name`)
      return undefined
    }
    const end = commentStart(src, i)
    valueText = src.slice(i, end < 0 ? src.length : end).trimEnd()
    valueCol = i + 1
  }

  // names
  if (isConstant) {
    if (!CONSTANT_NAME_RE.test(name)) {
      report(lineNo, nameCol, `invalid constant name '${name}': constant names are upper case letters, digits and single underscores, starting with a letter (e.g. MAX_SPEED)`)
      return undefined
    }
    if (!isPrimitive(type.base)) {
      report(lineNo, typeCol, `constant '${name}' has type '${type.base}': constants must have a primitive type`)
      return undefined
    }
    if (type.array) {
      report(lineNo, typeCol + type.base.length + (type.stringBound !== undefined ? `<=${type.stringBound}`.length : 0), `constant '${name}' cannot be an array`)
      return undefined
    }
  } else if (!FIELD_NAME_RE.test(name)) {
    let why = "field names are lower snake case: a lower-case letter first, then lower-case letters, digits and single underscores, not ending with '_'"
    if (/^[A-Z][A-Z0-9_]*$/.test(name)) why += " (an upper-case name is a constant: write 'NAME=value')"
    report(lineNo, nameCol, `invalid field name '${name}': ${why}`)
    return undefined
  }

  const field: MessageDefinitionField = {
    type: type.base,
    name,
    isComplex: !isPrimitive(type.base),
    isArray: type.array !== undefined,
  }
  if (type.array?.kind === "fixed") field.arrayLength = type.array.length
  if (type.array?.kind === "bounded") field.arrayUpperBound = type.array.bound
  if (type.stringBound !== undefined) field.upperBound = type.stringBound
  if (isConstant) {
    field.isConstant = true
    delete field.isArray
    delete field.isComplex
  }

  if (valueText !== undefined && valueCol !== undefined) {
    if (!isConstant && !isPrimitive(type.base)) {
      report(lineNo, valueCol, `field '${name}' has type '${type.base}': default values are only allowed for primitive types`)
      return undefined
    }
    const v = parseValue(type, name, isConstant, valueText, valueCol, lineNo, report)
    if (!v.ok) return undefined
    if (isConstant) {
      field.value = v.value as MessageDefinitionField["value"]
      field.valueText = valueText
    } else {
      field.defaultValue = v.value as MessageDefinitionField["defaultValue"]
    }
  }
  const out: RawField = { line: lineNo, typeText, typeCol, type, name, nameCol, isConstant, field }
  if (valueText !== undefined) out.valueText = valueText
  if (valueCol !== undefined) out.valueCol = valueCol
  return out
}

type ParsedValue = { ok: true; value: unknown } | { ok: false }

function parseValue(
  type: TypeRef,
  name: string,
  isConstant: boolean,
  text: string,
  col: number,
  lineNo: number,
  report: DiagnosticSink,
): ParsedValue {
  const isString = type.base === "string" || type.base === "wstring"
  const isArrayLiteral = text.startsWith("[")
  if (type.array && !isArrayLiteral) {
    report(lineNo, col, `default for array field '${name}' must be an array literal such as [1, 2, 3]`)
    return { ok: false }
  }
  if (!type.array && isArrayLiteral && !isString) {
    report(lineNo, col, `'${name}' is not an array, but its ${isConstant ? "value" : "default"} is an array literal`)
    return { ok: false }
  }
  if (type.array && !text.endsWith("]")) {
    report(lineNo, col, `array literal for '${name}' must end with ']'`)
    return { ok: false }
  }
  // strict syntax of numeric/bool literals (foxglove uses parseInt/parseFloat, which accept '1.5' as 1)
  const elems = isString ? [] : type.array ? splitArrayLiteral(text, col) : [{ text, col }]
  if (!isString) {
    for (const e of elems) {
      if (e.text === "") {
        report(lineNo, e.col, `empty element in array literal for '${name}'`)
        return { ok: false }
      }
      const err = checkScalarLiteral(type.base, e.text)
      if (err) {
        report(lineNo, e.col, err)
        return { ok: false }
      }
    }
  }
  // hand the literal to foxglove (byte/char are parsed as uint8 by it, which is what ROS 2 allows)
  const fgType = type.base === "byte" || type.base === "char" ? "uint8" : type.base
  const synthetic = `${typeRefToText({ ...type, base: fgType })} ${name}${isConstant ? "=" : " "}${text}`
  let parsed: MessageDefinitionField | undefined
  try {
    parsed = foxgloveParse(synthetic, { ros2: true, skipTypeFixup: true })[0]?.definitions[0]
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err)
    report(lineNo, col, `invalid ${isConstant ? "value" : "default"} for '${name}' (${typeRefToText(type)}): ${msg.replace(/^Could not parse line: .*$/, "not a valid literal")}`)
    return { ok: false }
  }
  if (!parsed) {
    report(lineNo, col, `invalid ${isConstant ? "value" : "default"} for '${name}'`)
    return { ok: false }
  }
  const value = isConstant ? parsed.value : parsed.defaultValue
  // checks foxglove does not make
  if (type.array && Array.isArray(value)) {
    const n = value.length
    if (type.array.kind === "fixed" && n !== type.array.length) {
      report(lineNo, col, `default for '${name}' has ${n} element${n === 1 ? "" : "s"}, but '${typeRefToText(type)}' has exactly ${type.array.length}`)
      return { ok: false }
    }
    if (type.array.kind === "bounded" && n > type.array.bound) {
      report(lineNo, col, `default for '${name}' has ${n} elements, more than the bound of '${typeRefToText(type)}' (${type.array.bound})`)
      return { ok: false }
    }
  }
  // a float literal the type cannot hold: foxglove's parseFloat turns 1e400 into Infinity, and a
  // float32 default beyond its range is refused by the codec when the default is encoded
  if (type.base === "float32" || type.base === "float64") {
    const max = type.base === "float32" ? FLOAT32_MAX : Number.MAX_VALUE
    const values = Array.isArray(value) ? (value as unknown[]) : [value]
    for (let i = 0; i < values.length; i++) {
      const v = values[i]
      if (typeof v !== "number" || Math.abs(v) <= max) continue
      const e = elems[i] ?? { text, col }
      const what = Number.isFinite(v) ? `is outside the ${type.base} range` : `is not a finite ${type.base}`
      report(lineNo, e.col, `${isConstant ? "value" : "default"} ${e.text} for '${name}' ${what} (at most ${max} either way)`)
      return { ok: false }
    }
  }
  if (type.stringBound !== undefined) {
    const strs = Array.isArray(value) ? (value as unknown[]) : [value]
    for (const s of strs) {
      if (typeof s === "string" && boundLength(type.base, s) > type.stringBound) {
        const unit = type.base === "wstring" ? "UTF-16 code units" : "UTF-8 bytes"
        report(lineNo, col, `${isConstant ? "value" : "default"} "${s}" for '${name}' is ${boundLength(type.base, s)} ${unit} long, more than the bound ${type.stringBound}`)
        return { ok: false }
      }
    }
  }
  return { ok: true, value }
}
