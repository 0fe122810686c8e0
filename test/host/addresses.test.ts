// The per-address counts the bridge and the embedded broker admit connections with
// (packages/host/src/net/addresses.ts): each bound refuses past it, and says so once per episode.
import { test } from "node:test"
import assert from "node:assert/strict"
import { AddressCount, foldAddress, isLoopback } from "../../packages/host/src/net/addresses"

test("AddressCount: at most max per address and maxTotal in all; each refusal names its bound; a log line per episode, not per refusal", () => {
  const said: (string | undefined)[] = []
  const c = new AddressCount(2, (a) => said.push(a), 5)
  const a1 = c.take("10.0.0.1")
  const a2 = c.take("::ffff:10.0.0.1") // the same address on an IPv6 socket
  assert.equal(typeof a1, "function")
  assert.equal(typeof a2, "function")
  assert.equal(c.take("10.0.0.1"), "address")
  assert.equal(c.take("10.0.0.1"), "address")
  assert.deepEqual(said, ["10.0.0.1"], "one line for the address's episode")
  const others = [c.take("10.0.0.2"), c.take("10.0.0.2"), c.take("10.0.0.3")]
  assert.ok(others.every((r) => typeof r === "function"))
  assert.equal(c.total, 5)
  assert.equal(c.take("10.0.0.4"), "total", "a fresh address is refused once all hold maxTotal")
  assert.equal(c.take("10.0.0.5"), "total")
  assert.deepEqual(said, ["10.0.0.1", undefined], "one line for the total's episode")
  ;(others[2] as () => void)()
  ;(others[2] as () => void)() // a second release counts nothing
  assert.equal(c.total, 4)
  const again = c.take("10.0.0.4")
  assert.equal(typeof again, "function")
  assert.equal(c.take("10.0.0.6"), "total")
  assert.deepEqual(said, ["10.0.0.1", undefined, undefined], "a new episode of the total is said again")
  ;(a1 as () => void)()
  assert.equal(typeof c.take("10.0.0.1"), "function", "released: the address may take one again")
  assert.equal(c.take("10.0.0.1"), "total", "the total is tested first")
  ;(others[0] as () => void)()
  assert.equal(c.take("10.0.0.1"), "address")
  assert.deepEqual(said, ["10.0.0.1", undefined, undefined, undefined, "10.0.0.1"], "each time a count went under its bound, the next refusal starts a new episode")
})

test("AddressCount without a total bound counts per address only", () => {
  const c = new AddressCount(1, () => {})
  for (let i = 0; i < 1000; i++) assert.equal(typeof c.take(`10.0.${i >> 8}.${i & 255}`), "function")
  assert.equal(c.total, 1000)
  assert.equal(c.take("10.0.0.0"), "address")
})

test("foldAddress and isLoopback", () => {
  assert.equal(foldAddress("::ffff:192.168.1.2"), "192.168.1.2")
  assert.equal(foldAddress(undefined), "unknown")
  for (const h of ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]) assert.ok(isLoopback(h), h)
  for (const h of ["10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", "example.com"]) assert.ok(!isLoopback(h), h)
})
