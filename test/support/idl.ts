// What the interface loader says of a set of files that must not load (tests of the .srv/.msg parser).
import assert from "node:assert/strict"
import { loadSources, IdlError, type SourceFile } from "../../packages/host/src/idl/load"

/** The diagnostics of loading `files`; fails the test when they load. */
export function diagsOf(files: SourceFile[]): { line: number; col: number; message: string; file: string }[] {
  try {
    loadSources(files)
  } catch (e) {
    if (e instanceof IdlError) return e.diagnostics.map((d) => ({ line: d.line, col: d.col, message: d.message, file: d.file }))
    throw e
  }
  assert.fail("expected an IdlError")
}
