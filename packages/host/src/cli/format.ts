// What `robot service` and `robot action` print: messages as ros2 prints them, the picture of a
// response (--out), and the progress of a long call.
import { stringifyJson } from "../calls/json"
import type { Typedef } from "../calls/rosapi"

// ---- ros2-style printing: example_interfaces.srv.AddTwoInts_Request(a=1, b=2)

function pyName(shortType: string, isService: boolean): string {
  const [pkg, name] = shortType.split("/")
  return `${pkg}.${isService ? "srv" : "msg"}.${name}`
}

function pyValue(v: unknown, type: string, arraylen: number, defs: Map<string, Typedef>): string {
  if (arraylen !== -1) {
    if (typeof v === "string" && type === "uint8") return `<${Buffer.from(v, "base64").length} bytes>`
    if (v instanceof Uint8Array) return `<${v.length} bytes>`
    if (!Array.isArray(v)) return String(v)
    return `[${v.map((x) => pyValue(x, type, -1, defs)).join(", ")}]`
  }
  const nested = defs.get(type)
  if (nested) return pyMessage(v as Record<string, unknown>, nested, defs, false)
  if (typeof v === "boolean") return v ? "True" : "False"
  if (typeof v === "string") return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`
  if ((type === "float32" || type === "float64") && ((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint")) return `${v}.0`
  if (v === null && type.startsWith("float")) return "nan"
  return String(v)
}

function exampleValue(example: string, type: string, arraylen: number): unknown {
  if (arraylen !== -1) return []
  if (type === "bool") return false
  if (type === "string" || type.startsWith("string<=") || type.startsWith("wstring")) return ""
  if (/^(u?int|float|byte|char)/.test(type)) return Number(example) || 0
  return {}
}

function pyMessage(v: Record<string, unknown> | undefined, td: Typedef, defs: Map<string, Typedef>, isService: boolean): string {
  const parts = td.fieldnames.map((f, i) => {
    const type = td.fieldtypes[i]!
    const len = td.fieldarraylen[i]!
    let x = v?.[f]
    if (x === undefined) x = defs.has(type) && len === -1 ? undefined : exampleValue(td.examples[i] ?? "", type, len)
    return `${f}=${pyValue(x, type, len, defs)}`
  })
  return `${pyName(td.type, isService)}(${parts.join(", ")})`
}

export function formatMessage(v: unknown, tds: Typedef[]): string {
  const root = tds[0]
  if (!root) return stringifyJson(v)
  return pyMessage(v as Record<string, unknown>, root, new Map(tds.map((t) => [t.type, t])), true)
}

// ---- ros2 action's printing: a message as YAML (message_to_yaml), arrays of numbers on one line

function yamlScalar(v: unknown): string {
  // plain when YAML reads it back as the same string, else double-quoted (JSON's quoting is YAML's)
  if (typeof v === "string") return /^[A-Za-z_/][\w./ -]*$/.test(v) && !/ $|^(true|false|yes|no|on|off|null)$/i.test(v) ? v : JSON.stringify(v)
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? ".nan" : v > 0 ? ".inf" : "-.inf"
  return String(v)
}

const isScalar = (v: unknown) => typeof v !== "object" || v === null

function yamlLines(v: Record<string, unknown>, indent: string): string[] {
  const out: string[] = []
  for (const [k, x] of Object.entries(v)) {
    if (x instanceof Uint8Array) out.push(`${indent}${k}: <${x.length} bytes>`)
    else if (Array.isArray(x) && x.every(isScalar)) out.push(`${indent}${k}: [${x.map(yamlScalar).join(", ")}]`)
    else if (Array.isArray(x)) {
      out.push(`${indent}${k}:`)
      for (const e of x) {
        const [first, ...rest] = yamlLines(e as Record<string, unknown>, `${indent}  `)
        out.push(`${indent}- ${(first ?? "{}").trimStart()}`, ...rest)
      }
    } else if (!isScalar(x)) {
      const inner = yamlLines(x as Record<string, unknown>, `${indent}  `)
      out.push(inner.length ? `${indent}${k}:` : `${indent}${k}: {}`, ...inner)
    } else out.push(`${indent}${k}: ${yamlScalar(x)}`)
  }
  return out
}

/** A decoded message as `ros2 action send_goal` prints goals, feedback and results: YAML, each line indented. */
export function formatYaml(v: unknown, indent = "    "): string {
  const lines = yamlLines(v as Record<string, unknown>, indent)
  return lines.length ? lines.join("\n") : `${indent}{}`
}

// ---- --out: the picture of a response

export function findImage(v: unknown): { format: string; data: Buffer } | undefined {
  if (typeof v !== "object" || v === null) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.format === "string" && (typeof o.data === "string" || o.data instanceof Uint8Array)) {
    return { format: o.format, data: typeof o.data === "string" ? Buffer.from(o.data, "base64") : Buffer.from(o.data as Uint8Array) }
  }
  for (const x of Object.values(o)) {
    const f = findImage(x)
    if (f) return f
  }
  return undefined
}

/**
 * Progress on stderr for calls still running after 200 ms or responses of 16 KiB or more: a bar
 * redrawn in place on a terminal; when stderr is not a terminal (a file, a pipe, CI), one line at
 * the end instead of hundreds of carriage-return updates.
 */
export function progressBar(stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr): { update: (r: number, t: number) => void; done: (interrupted?: boolean) => void } {
  let shown = false
  let last: [number, number] | undefined
  const start = performance.now()
  const kib = (n: number) => (n / 1024).toFixed(1)
  return {
    update(r, t) {
      last = [r, t]
      if (t <= 0 || (!shown && t < 16 * 1024 && performance.now() - start < 200)) return
      shown = true
      if (!stream.isTTY) return
      const w = 30
      const k = Math.min(w, Math.round((r / t) * w))
      stream.write(`\r[${"#".repeat(k)}${" ".repeat(w - k)}] ${Math.floor((100 * r) / t)}% ${kib(r)}/${kib(t)} KiB`)
    },
    done(interrupted = false) {
      if (!shown) return
      if (stream.isTTY) stream.write(interrupted ? " (interrupted)\n" : "\n")
      else if (last) {
        const [r, t] = last
        stream.write(`${interrupted ? "interrupted after" : "received"} ${kib(r)}/${kib(t)} KiB in ${((performance.now() - start) / 1000).toFixed(1)} s\n`)
      }
    },
  }
}
