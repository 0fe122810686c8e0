// Compiler-style diagnostics for interface files: `file:line:col: message`, the source line, a caret.

/** One problem found in an interface file. `line` and `col` are 1-based. */
export interface Diagnostic {
  /** the file as the user knows it (root joined with the package-relative path) */
  file: string
  line: number
  col: number
  message: string
  /** the source line the problem is on (without its newline); "" when there is none */
  source: string
}

/** Formats one diagnostic as three lines: location + message, the source line, a caret under `col`. */
export function formatDiagnostic(d: Diagnostic): string {
  const head = `${d.file}:${d.line}:${d.col}: ${d.message}`
  if (d.source === "") return head
  // Keep tabs in the caret line so the caret lines up under tab-indented source.
  const pad = Array.from(d.source.slice(0, Math.max(0, d.col - 1)), (c) => (c === "\t" ? "\t" : " ")).join("")
  return `${head}\n${d.source}\n${pad}^`
}

/** Thrown by the loader when any file is invalid; carries every diagnostic found (all files). */
export class IdlError extends Error {
  override readonly name = "IdlError"
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n") + `\n${diagnostics.length} error${diagnostics.length === 1 ? "" : "s"} in interface files`)
  }
}
