// The fleet (packages/host/src/client/fleet.ts): several robots behind one RobotNode, addressed by namespace.
// Robots here are in-memory nodes; the MQTT tests run the same fleet over a broker.
import { test } from "node:test"
import assert from "node:assert/strict"
import { FleetNode, globMatcher, robotGlob } from "../../packages/host/src/client/fleet"
import { splitRobotName } from "../../packages/host/src/client/names"
import { ServiceError } from "../../packages/host/src/client/errors"
import { demoMemoryNode } from "../../packages/host/src/demo/demo"
import { CallPipeline } from "../../packages/host/src/calls/pipeline"
import { AddTwoInts, Trigger, serviceTypes } from "../../packages/host/src/gen/interfaces"

test("names: /robot/service splits at the first segment; globs match robot names", () => {
  assert.deepEqual(splitRobotName("/rover1/take_picture"), { robot: "rover1", service: "/take_picture" })
  assert.deepEqual(splitRobotName("rover1/cam/take"), { robot: "rover1", service: "/cam/take" })
  assert.equal(splitRobotName("/take_picture"), undefined)
  assert.equal(splitRobotName("/bad name/x"), undefined)
  assert.ok(globMatcher("rover*").test("rover12"))
  assert.ok(!globMatcher("rover*").test("arm1"))
  assert.ok(globMatcher("r?v.1").test("rav.1"))
  assert.ok(!globMatcher("r?v.1").test("ravx1"), "a dot is literal")
  assert.ok(globMatcher("robot[1-3]").test("robot2") && !globMatcher("robot[1-3]").test("robot4"))
  assert.ok(globMatcher("robot[!1-3]").test("robot4") && !globMatcher("robot[!1-3]").test("robot1"))
  assert.ok(globMatcher("a[]]b").test("a]b"), "a ] right after [ is a member")
  assert.ok(globMatcher("a[b").test("a[b"), "a [ without ] is literal")
  assert.ok(robotGlob("rover1,arm*").test("arm2") && !robotGlob("rover1,arm*").test("rover2"))
})

test("globs (issue 20): the same answers as a regular expression on small globs, and no blow-up on hostile ones", () => {
  // reference: the shell-glob regular expression, fine for short globs
  const toRe = (g: string) => new RegExp("^" + g.replace(/\*/g, ".*").replace(/\?/g, ".").replace(/\[!/g, "[^") + "$")
  const parts = ["a", "b", "*", "?", "[ab]", "[!a]", "[a-b]", "**"]
  let seed = 7
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n
  for (let i = 0; i < 5000; i++) {
    let g = ""
    for (let j = 1 + rand(6); j > 0; j--) g += parts[rand(parts.length)]
    let name = ""
    for (let j = rand(8); j > 0; j--) name += "ab"[rand(2)]
    assert.equal(globMatcher(g).test(name), toRe(g).test(name), `glob ${g} name ${name}`)
  }
  // the glob: `*` repeated and a letter that matches nothing, at the 64-character limit, and
  // other worst cases for a backtracking matcher; 8 of them at once over 1000 32-character names
  const names = Array.from({ length: 1000 }, (_, i) => "a".repeat(28) + String(i).padStart(4, "0"))
  const hostile = ["*".repeat(63) + "Z", "*a".repeat(32), "*" + "a".repeat(62) + "Z", ..."bcdef".split("").map((c) => "*" + "a".repeat(20) + c + "*")]
  const m = robotGlob(hostile.join(","))
  const t = performance.now()
  const matched = names.filter((n) => m.test(n))
  const ms = performance.now() - t
  assert.deepEqual(matched, [])
  // linear: about 10 ms here; a backtracking matcher takes seconds per name
  assert.ok(ms < 500, `8 hostile globs over 1000 names took ${ms.toFixed(1)} ms`)
  assert.throws(() => robotGlob(Array.from({ length: 9 }, (_, i) => `r${i}`).join(",")), (e: ServiceError) => e.code === "invalid_argument" && /at most 8/.test(e.message))
  assert.throws(() => robotGlob("*".repeat(65)), (e: ServiceError) => e.code === "invalid_argument" && /1-64/.test(e.message))
  assert.throws(() => robotGlob("robot[3-1]"), (e: ServiceError) => e.code === "invalid_argument" && /backwards/.test(e.message))
  assert.throws(() => robotGlob("a/b"), (e: ServiceError) => e.code === "invalid_argument" && /"a\/b" is not a robot name glob/.test(e.message))
})

test("a fleet lists every online robot's services under its namespace and routes calls", async () => {
  const fleet = new FleetNode("the test fleet")
  const a = demoMemoryNode()
  const b = demoMemoryNode()
  b.addService(Trigger, "/only_b", () => ({ success: true, message: "b" }))
  fleet.add("rover1", a)
  fleet.add("rover2", b)
  const names = (await fleet.listServices({ timeoutMs: 2000 })).map((s) => s.name).sort()
  assert.ok(names.includes("/rover1/add_two_ints") && names.includes("/rover2/add_two_ints") && names.includes("/rover2/only_b"), names.join(" "))
  assert.ok(!names.includes("/rover1/only_b"))

  const sum = await fleet.createClient(AddTwoInts, "/rover2/add_two_ints").call({ a: 40n, b: 2n })
  assert.equal(sum.sum, 42n)
  const onlyB = await fleet.createClient(Trigger, "/rover2/only_b").call({})
  assert.equal(onlyB.message, "b")

  // a service only the other robot has
  await assert.rejects(fleet.createClient(Trigger, "/rover1/only_b").call({}), (e: ServiceError) => e.code === "unimplemented")
  // no robot named, and an unknown robot
  await assert.rejects(fleet.createClient(Trigger, "/only_b").call({}), (e: ServiceError) => e.code === "invalid_argument" && /name the robot/.test(e.message))
  await assert.rejects(
    fleet.createClient(Trigger, "/rover9/only_b").call({}),
    (e: ServiceError) => e.code === "unavailable" && /no robot rover9/.test(e.message) && /rover1, rover2/.test(e.message),
  )
  assert.deepEqual(fleet.matchRobots("rover*"), ["rover1", "rover2"])
  assert.deepEqual(fleet.matchRobots("*2"), ["rover2"])
  await fleet.close()
  assert.equal(fleet.state, "disconnected")
})

test("a robot going offline leaves the list, its calls fail, and it comes back; the others never stop", async () => {
  const fleet = new FleetNode()
  const a = demoMemoryNode()
  const b = demoMemoryNode()
  fleet.add("a", a)
  fleet.add("b", b)
  await fleet.listServices({ timeoutMs: 2000 })
  const seen: string[] = []
  fleet.onRobotsChanged((r) => seen.push(r.map((x) => `${x.name}:${x.online ? "on" : "off"}`).join(",")))

  a.disconnect()
  assert.deepEqual(
    fleet.robots().map((r) => [r.name, r.online]),
    [
      ["a", false],
      ["b", true],
    ],
  )
  assert.ok(seen.includes("a:off,b:on"), seen.join(" | "))
  assert.ok(!fleet.knownServices().some((s) => s.name.startsWith("/a/")), "an offline robot's services are not listed")
  assert.equal(fleet.state, "connected", "one robot online keeps the fleet connected")
  await assert.rejects(fleet.createClient(AddTwoInts, "/a/add_two_ints").call({ a: 1n, b: 1n }), (e: ServiceError) => e.code === "unavailable")
  assert.equal((await fleet.createClient(AddTwoInts, "/b/add_two_ints").call({ a: 1n, b: 1n })).sum, 2n)

  a.connectNow()
  const back = await fleet.listServices({ timeoutMs: 2000 })
  assert.ok(back.some((s) => s.name === "/a/add_two_ints"))
  assert.equal((await fleet.createClient(AddTwoInts, "/a/add_two_ints").call({ a: 2n, b: 3n })).sum, 5n)

  b.disconnect()
  a.disconnect()
  assert.equal(fleet.state, "connecting")
  await assert.rejects(fleet.listServices({ timeoutMs: 50 }), (e: ServiceError) => e.code === "unavailable" && /known: a, b/.test(e.message))
  await fleet.close()
})

test("waitForService waits for a robot that appears later", async () => {
  const fleet = new FleetNode()
  const client = fleet.createClient(AddTwoInts, "/late/add_two_ints")
  const waiting = client.waitForService({ timeoutMs: 3000 })
  setTimeout(() => fleet.add("late", demoMemoryNode()), 50)
  await waiting
  assert.equal((await client.call({ a: 1n, b: 2n })).sum, 3n)
  await assert.rejects(fleet.createClient(AddTwoInts, "/never/add_two_ints").waitForService({ timeoutMs: 100 }), (e: ServiceError) => e.code === "deadline_exceeded")
  await fleet.close()
})

test("the bridge's call pipeline serves a fleet unchanged (rosapi sees namespaced names)", async () => {
  const fleet = new FleetNode()
  fleet.add("r1", demoMemoryNode())
  fleet.add("r2", demoMemoryNode())
  const p = new CallPipeline(fleet, serviceTypes)
  const out = await p.callJson({ service: "/r2/add_two_ints", args: { a: 5, b: 6 }, timeoutMs: 2000 }, "base64", { via: "test", client: "t" })
  assert.ok(out.ok, String(out.values))
  assert.equal(String((out.values as { sum: unknown }).sum), "11")
  const listed = await p.callJson({ service: "/rosapi/services", args: {}, timeoutMs: 2000 }, "base64", { via: "test", client: "t" })
  const services = (listed.values as { services: string[] }).services
  assert.ok(services.includes("/r1/take_picture") && services.includes("/r2/take_picture"), services.join(" "))
  await fleet.close()
})
