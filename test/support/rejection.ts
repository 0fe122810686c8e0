// The error a call failed with, for tests that expect a call to fail.
import assert from "node:assert/strict"
import { ServiceError } from "../../packages/host/src/client/errors"

/** The ServiceError `p` rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejection(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p
  } catch (e) {
    assert.ok(e instanceof ServiceError, `not a ServiceError: ${String(e)}`)
    return e
  }
  assert.fail("resolved, expected a rejection")
}
