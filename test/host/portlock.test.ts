// The simulator lock's refusal names who holds it, this process included (issue 17: a start-up
// that met its own lock was told "another program holds it").
import assert from "node:assert/strict"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { acquirePortLock } from "../../packages/host/src/sim/vm"

test("a lock this process holds is named as this process's, not another program's", async () => {
  const lockFile = join(mkdtempSync(join(tmpdir(), "portlock-")), "port.lock")
  const held = await acquirePortLock(0, lockFile)
  try {
    const e = await acquirePortLock(0, lockFile).then(
      (l) => {
        l.release()
        return undefined
      },
      (err: Error) => err,
    )
    assert.ok(e, "a second acquisition of a held lock succeeded")
    assert.match(e.message, new RegExp(`this process \\(pid ${process.pid}`))
    assert.doesNotMatch(e.message, /another program holds it/)
  } finally {
    held.release()
  }
  // released: taken again at once
  ;(await acquirePortLock(0, lockFile)).release()
})
