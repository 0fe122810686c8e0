// `robot interface list|show|package|packages`, run as a user would (node packages/host/bin/robot.js ...).
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as path from "node:path"

const repo = path.resolve(__dirname, "../..")
function robot(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repo, "packages/host/bin/robot.js"), ...args], { cwd: repo, encoding: "utf8", timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test("interface show example_interfaces/srv/AddTwoInts prints the .srv as ros2 does", () => {
  const r = robot("interface", "show", "example_interfaces/srv/AddTwoInts")
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, "int64 a\nint64 b\n---\nint64 sum\n")
  // the short spelling works too
  assert.equal(robot("interface", "show", "example_interfaces/AddTwoInts").stdout, r.stdout)
})

test("interface show expands nested types with one tab per level", () => {
  const r = robot("interface", "show", "std_msgs/msg/Header")
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.split("\n")
  const i = lines.indexOf("builtin_interfaces/Time stamp")
  assert.ok(i >= 0, r.stdout)
  assert.deepEqual(lines.slice(i, i + 3), ["builtin_interfaces/Time stamp", "\tint32 sec", "\tuint32 nanosec"])
  assert.ok(lines.some((l) => l.startsWith("#")), "top-level comments are kept")
  assert.ok(!lines.some((l) => l.startsWith("\t#")), "nested comments are not shown by default")
  const img = robot("interface", "show", "sensor_msgs/msg/CompressedImage", "--no-comments")
  assert.equal(
    img.stdout,
    "std_msgs/Header header\n\tbuiltin_interfaces/Time stamp\n\t\tint32 sec\n\t\tuint32 nanosec\n\tstring frame_id\nstring format\nuint8[] data\n",
  )
  const all = robot("interface", "show", "sensor_msgs/msg/CompressedImage", "--all-comments")
  assert.ok(all.stdout.split("\n").some((l) => /^\t#/.test(l)), all.stdout)
})

test("interface show on the fixtures expands nested types inside a service", () => {
  const r = robot("interface", "show", "test_msgs/srv/Everything", "--dir", "test/fixtures/interfaces", "--no-comments")
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.split("\n")
  assert.equal(lines[0], "Nested nested")
  assert.equal(lines[1], "\tPrimitives primitives")
  assert.equal(lines[2], "\t\tbool bool_value")
  const resp = lines.indexOf("---")
  assert.deepEqual(lines.slice(resp, resp + 5), ["---", "test_deps/Point[<=4] points", "\tfloat64 x", "\tfloat64 y", "\tfloat64 z"])
})

test("interface list prints Messages:, Services: and Actions: with indented full names", () => {
  const r = robot("interface", "list")
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trimEnd().split("\n")
  assert.equal(lines[0], "Messages:")
  const s = lines.indexOf("Services:")
  const a = lines.indexOf("Actions:")
  assert.ok(s > 0 && a > s)
  const msgs = lines.slice(1, s)
  const srvs = lines.slice(s + 1, a)
  assert.deepEqual(lines.slice(a + 1), [
    "    example_interfaces/action/Fibonacci",
    "    robot_interfaces/action/DriveDistance",
    "    robot_interfaces/action/Rotate",
    "    robot_interfaces/action/Scan",
  ])
  assert.ok(!msgs.some((l) => l.includes("/action/")), "the messages of an action are not listed as messages")
  assert.ok(msgs.includes("    std_msgs/msg/Header"))
  assert.ok(msgs.includes("    builtin_interfaces/msg/Time"))
  assert.ok(!msgs.some((l) => l.includes("_Request")), "service halves are not listed as messages")
  assert.ok(srvs.includes("    example_interfaces/srv/AddTwoInts"))
  assert.ok(srvs.includes("    std_srvs/srv/Trigger"))
  assert.deepEqual([...msgs].sort(), msgs)
  assert.deepEqual([...srvs].sort(), srvs)
  assert.ok([...msgs, ...srvs].every((l) => /^ {4}[a-z0-9_]+\/(msg|srv)\/[A-Z][A-Za-z0-9]*$/.test(l)))
  assert.equal(robot("interface", "list", "-s").stdout.split("\n")[0], "Services:")
})

test("interface packages and interface package <pkg>", () => {
  const p = robot("interface", "packages")
  assert.equal(p.status, 0)
  for (const n of ["builtin_interfaces", "example_interfaces", "sensor_msgs", "std_msgs", "std_srvs"]) assert.ok(p.stdout.split("\n").includes(n), n)
  const s = robot("interface", "package", "std_srvs")
  assert.equal(s.stdout, "std_srvs/srv/Empty\nstd_srvs/srv/SetBool\nstd_srvs/srv/Trigger\n")
})

test("unknown types and packages: one line on stderr, non-zero exit", () => {
  const r = robot("interface", "show", "nope_msgs/msg/Nothing")
  assert.notEqual(r.status, 0)
  assert.equal(r.stdout, "")
  assert.equal(r.stderr.trim().split("\n").length, 1)
  assert.match(r.stderr, /unknown type 'nope_msgs\/msg\/Nothing'/)
  const p = robot("interface", "package", "nope")
  assert.notEqual(p.status, 0)
  assert.match(p.stderr, /unknown package 'nope'/)
})

test("robot --version prints the host package's version", () => {
  const want = (JSON.parse(readFileSync(path.join(repo, "packages/host/package.json"), "utf8")) as { version: string }).version
  for (const flag of ["--version", "-V"]) {
    const r = robot(flag)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), want)
  }
})

test("every verb's --devtools help names where its default comes from (devs.json simulator.devtools)", () => {
  for (const verb of [["service", "call"], ["action", "send_goal"], ["bridge"], ["sim"]]) {
    const r = robot(...verb, "--help")
    assert.equal(r.status, 0, r.stderr)
    const help = r.stdout.replace(/\s+/g, " ")
    assert.match(help, /--devtools \[url\] [^-]*default[^-]*devs\.json/, `${verb.join(" ")} --help: ${help}`)
  }
})
