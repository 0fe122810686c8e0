// Actions (issue 19, "Interfaces"): `.action` parsing and diagnostics, the types ROS 2 derives from
// an action (names and layouts as rosidl makes them), hashing and names, action_msgs and
// unique_identifier_msgs, bytes agreeing with @foxglove/rosmsg2-serialization for every action type
// at edge values, the host descriptors, the device code made on demand, and the CLI.
// (Device bytes against host bytes in the VM: test/host/agreement.test.ts, whose roots include
// test/fixtures/actions.)
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { MessageReader, MessageWriter } from "@foxglove/rosmsg2-serialization"
import { asciiOnly, foxgloveDefs, plain, usesWstring } from "../support/rosmsg2"
import { canonicalActionText, canonicalServiceText, definitionsOf, formatDiagnostic, IdlError, loadInterfaces, loadSources, type SourceFile } from "../../packages/host/src/idl/load"
import type { InterfaceSet } from "../../packages/host/src/idl/types"
import { tsNames } from "../../packages/host/src/idl/names"
import { emitDevice, onDemand } from "../../packages/host/src/codegen/device"
import { messageDescriptor, sampleValue, SAMPLE_KINDS, type ActionDescriptor, type MessageDescriptor } from "../../packages/host/src/runtime/index"
import { makeVectors } from "../support/agreement"
import * as gen from "../../packages/host/src/gen/interfaces"

const REPO = path.resolve(__dirname, "../..")
const ROOTS = ["services", "test/fixtures/interfaces", "test/fixtures/actions"].map((r) => path.join(REPO, r))
const all = loadInterfaces(ROOTS)
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ""), "hex"))

/** UUID and Time as in services/, which every action needs. */
const DEPS: SourceFile[] = ["unique_identifier_msgs/msg/UUID.msg", "builtin_interfaces/msg/Time.msg"].map((file) => ({
  root: "services",
  file,
  text: fs.readFileSync(path.join(REPO, "services", file), "utf8"),
}))
const load = (files: SourceFile[]): InterfaceSet => loadSources([...files, ...DEPS])
function diagsOf(files: SourceFile[], deps = true): { at: string; message: string }[] {
  try {
    loadSources(deps ? [...files, ...DEPS] : files)
  } catch (e) {
    if (e instanceof IdlError) return e.diagnostics.map((d) => ({ at: `${d.file}:${d.line}:${d.col}`, message: d.message }))
    throw e
  }
  assert.fail("expected an IdlError")
}
function desc(name: string, set: InterfaceSet = all): MessageDescriptor<any> {
  return messageDescriptor<any>(name, set.messages.get(name)?.hash ?? "", definitionsOf(name, set.messages))
}

// ------------------------------------------------------------------------------ parsing and derived types

test("a .action gives Goal, Result, Feedback and the derived types with their ROS names and layouts", () => {
  const set = load([{ root: "r", file: "nav/action/Go.action", text: "# goal\nfloat64 x\nstring<=8 NAME=\"go\"\n---\nint64 travelled\n---\nfloat32 progress\n" }])
  const a = set.actions.get("nav/action/Go")
  assert.ok(a)
  assert.equal(a.file, "nav/action/Go.action")
  assert.equal(a.root, "r")
  const layout = (full: string): string[] =>
    (set.messages.get(full)?.definition.definitions ?? []).map((d) => `${d.type}${d.isArray ? "[]" : ""} ${d.name}${d.isConstant ? `=${String(d.value)}` : ""}`)
  // the golden table: rosidl_parser's Action (definition.py) with ACTION_GOAL/RESULT/FEEDBACK suffixes
  const want: [string, string[]][] = [
    ["nav/action/Go_Goal", ["float64 x", "string NAME=go"]],
    ["nav/action/Go_Result", ["int64 travelled"]],
    ["nav/action/Go_Feedback", ["float32 progress"]],
    ["nav/action/Go_SendGoal_Request", ["unique_identifier_msgs/msg/UUID goal_id", "nav/action/Go_Goal goal"]],
    ["nav/action/Go_SendGoal_Response", ["bool accepted", "builtin_interfaces/msg/Time stamp"]],
    ["nav/action/Go_GetResult_Request", ["unique_identifier_msgs/msg/UUID goal_id"]],
    ["nav/action/Go_GetResult_Response", ["int8 status", "nav/action/Go_Result result"]],
    ["nav/action/Go_FeedbackMessage", ["unique_identifier_msgs/msg/UUID goal_id", "nav/action/Go_Feedback feedback"]],
  ]
  for (const [full, fields] of want) assert.deepEqual(layout(full), fields, full)
  assert.deepEqual(
    [...set.messages.keys()].filter((k) => k.startsWith("nav/")).sort(),
    want.map((w) => w[0]).sort(),
    "exactly these messages, all in the action namespace",
  )
  assert.equal(a.goal, set.messages.get("nav/action/Go_Goal"))
  assert.equal(a.sendGoal.fullName, "nav/action/Go_SendGoal")
  assert.equal(a.sendGoal.request, set.messages.get("nav/action/Go_SendGoal_Request"))
  assert.equal(a.getResult.fullName, "nav/action/Go_GetResult")
  assert.equal(a.getResult.response, set.messages.get("nav/action/Go_GetResult_Response"))
  assert.equal(a.feedbackMessage, set.messages.get("nav/action/Go_FeedbackMessage"))
  // derived services belong to the action, not to the list of .srv services
  assert.equal(set.services.size, 0)
  // each part keeps its text (as `interface show` prints it) and line numbers for diagnostics
  assert.equal(a.goal.text, "# goal\nfloat64 x\nstring<=8 NAME=\"go\"")
  assert.equal(a.feedback.text, "float32 progress\n")
  assert.equal(a.sendGoal.request.text, "unique_identifier_msgs/UUID goal_id\nGo_Goal goal\n")
})

test("empty parts are empty messages; a separator may be indented; nested types resolve as in .msg", () => {
  const set = load([
    { root: "r", file: "p/msg/Pose.msg", text: "float64 x\n" },
    { root: "r", file: "p/action/Move.action", text: "Pose target\nbuiltin_interfaces/Time deadline\n  ---  \n---\n" },
  ])
  const a = set.actions.get("p/action/Move")
  assert.ok(a)
  assert.deepEqual(a.goal.definition.definitions.map((d) => d.type), ["p/msg/Pose", "builtin_interfaces/msg/Time"])
  assert.deepEqual(a.result.definition.definitions, [])
  assert.deepEqual(a.feedback.definition.definitions, [])
  assert.equal(hex(desc("p/action/Move_Result", set).encode({})), "0001000000")
})

// [file text, where, message fragment]: each error at its exact line and column
const INVALID: [string, string, string][] = [
  ["int32 order\n", "1:1", "three parts, goal --- result --- feedback, separated by two '---' lines: no '---' line found"],
  ["int32 order\n---\nint32 x\n", "3:1", "only one '---' line found"],
  ["int32 a\n---\nint32 b\n---\nint32 c\n---\nint32 d\n", "6:1", "exactly two '---' separators (goal --- result --- feedback); this is a third one"],
  ["int32 a\n---\nint32 b\n---\n  int32 Bad\n", "5:9", "invalid field name 'Bad'"],
  ["int32 a\n---\np/action/Other_Goal g\n---\n", "3:1", "a field cannot have an action type"],
  ["Missing m\n---\n---\n", "1:1", "unknown type 'Missing' (looked for p/msg/Missing)"],
  ["int32 a\nint32 a\n---\n---\n", "2:7", "duplicate name 'a' (first declared on line 1)"],
  ["---\n---\nint32 x 1.5\n", "3:9", "invalid int32 literal '1.5'"],
  ["---\nstring<=2 s \"long\"\n---\n", "2:13", "more than the bound 2"],
  ["int32 a\n--- # results\n---\n---\n", "2:1", "a separator line holds '---' and nothing else"],
]

test("malformed .action files: compiler-style diagnostics at the exact line and column", () => {
  for (const [text, where, fragment] of INVALID) {
    const d = diagsOf([{ root: "r", file: "p/action/Act.action", text }])
    assert.equal(d.length, 1, `${JSON.stringify(text)}: ${JSON.stringify(d)}`)
    assert.equal(d[0]?.at, `r/p/action/Act.action:${where}`, `${JSON.stringify(text)}: ${d[0]?.message}`)
    assert.ok(d[0]?.message.includes(fragment), `${JSON.stringify(text)}: ${JSON.stringify(d[0]?.message)} should contain ${JSON.stringify(fragment)}`)
  }
})

test("a .action with extra separators still reports every bad line, in line order", () => {
  const d = diagsOf([{ root: "r", file: "p/action/Act.action", text: "int6 a\n---\nint32 B\n---\nint32 c\n---\nfloat32 Quality\n---\n" }])
  assert.deepEqual(d.map((x) => x.at.replace("r/p/action/Act.action:", "")), ["1:1", "3:7", "6:1", "7:9", "8:1"])
  assert.match(d[2]?.message ?? "", /this is a third one/)
  assert.match(d[4]?.message ?? "", /this is a fourth one/)
})

test("file names, and the two messages every action needs", () => {
  const names = diagsOf([
    { root: "r", file: "p/action/lower.action", text: "---\n---\n" },
    { root: "r", file: "p/msg/Wrong.action", text: "---\n---\n" },
  ])
  assert.ok(names.some((x) => x.at === "r/p/action/lower.action:1:1" && x.message.includes("invalid action name 'lower'")), JSON.stringify(names))
  assert.ok(names.some((x) => x.at === "r/p/msg/Wrong.action:1:1" && x.message.includes("'<pkg>/action/Name.action'")), JSON.stringify(names))
  const deps = diagsOf([{ root: "r", file: "p/action/Act.action", text: "---\n---\n" }], false)
  assert.deepEqual(deps.map((x) => x.at), ["r/p/action/Act.action:1:1"])
  assert.match(deps[0]?.message ?? "", /an action needs unique_identifier_msgs\/msg\/UUID and builtin_interfaces\/msg\/Time .*add their packages to the interface roots/)
  // a '---' in a .msg names the files that have separators
  const msg = diagsOf([{ root: "r", file: "p/msg/M.msg", text: "int32 a\n---\n" }])
  assert.match(msg[0]?.message ?? "", /a \.msg has no separator \(a \.srv has one, a \.action two\)/)
})

test("a .action diagnostic prints as file:line:col: message, the line, and a caret", () => {
  try {
    load([{ root: "services", file: "nav/action/Go.action", text: "float64 x\n---\n---\n\tfloat32 Progress\n" }])
    assert.fail("expected an error")
  } catch (e) {
    assert.ok(e instanceof IdlError)
    const [d] = e.diagnostics
    assert.ok(d)
    const lines = formatDiagnostic(d).split("\n")
    assert.match(lines[0] ?? "", /^services\/nav\/action\/Go\.action:4:10: invalid field name 'Progress'/)
    assert.equal(lines[1], "\tfloat32 Progress")
    assert.equal(lines[2], "\t        ^")
  }
})

// ------------------------------------------------------------------------------ hashes and names

test("an action hashes the documented canonical text; its derived services hash like services", () => {
  const a = all.actions.get("example_interfaces/action/Fibonacci")
  assert.ok(a)
  const canon = canonicalActionText(a, all.messages)
  assert.equal(
    canon,
    "ACT: example_interfaces/action/Fibonacci\n" +
      "MSG: example_interfaces/action/Fibonacci_Goal\nint32 order\n---\n" +
      "MSG: example_interfaces/action/Fibonacci_Result\nint32[] sequence\n---\n" +
      "MSG: example_interfaces/action/Fibonacci_Feedback\nint32[] sequence\n",
  )
  const h = createHash("sha256").update(canon).digest("hex")
  assert.equal(a.hash, h)
  assert.equal(a.hash32, parseInt(h.slice(0, 8), 16))
  for (const s of [a.sendGoal, a.getResult]) {
    assert.equal(s.hash, createHash("sha256").update(canonicalServiceText(s, all.messages)).digest("hex"), s.fullName)
    assert.equal(s.hash32, parseInt(s.hash.slice(0, 8), 16))
  }
  assert.match(canonicalServiceText(a.sendGoal, all.messages), /^SRV: example_interfaces\/action\/Fibonacci_SendGoal\nMSG: example_interfaces\/action\/Fibonacci_SendGoal_Request\nunique_identifier_msgs\/msg\/UUID goal_id\nexample_interfaces\/action\/Fibonacci_Goal goal\n===\n/)
  // comments do not change the hash; a change in any part does
  const h2 = (text: string): number => load([{ root: "r", file: "p/action/A.action", text }]).actions.get("p/action/A")?.hash32 ?? -1
  const base = h2("int32 a\n---\nint32 b\n---\nint32 c\n")
  assert.equal(h2("# x\nint32 a # y\n---\nint32 b\n---\n\nint32 c\n"), base)
  assert.notEqual(h2("int32 a\n---\nint32 b\n---\nint64 c\n"), base, "feedback")
  assert.notEqual(h2("int32 a\n---\nint32 bb\n---\nint32 c\n"), base, "result")
  assert.notEqual(h2("int32 a\nint32 c\n---\nint32 b\n---\n"), base, "a field moved from feedback to goal")
})

test("generated names: actions and their derived types by short name, package prefix on a clash", () => {
  const set = load([
    { root: "r", file: "a/action/Go.action", text: "---\n---\n" },
    { root: "r", file: "b/action/Go.action", text: "---\n---\n" },
    { root: "r", file: "c/msg/Run.msg", text: "int8 x\n" },
    { root: "r", file: "c/action/Run.action", text: "---\n---\n" },
  ])
  const n = tsNames(set)
  assert.equal(n.get("a/action/Go"), "a_Go")
  assert.equal(n.get("b/action/Go_SendGoal"), "b_Go_SendGoal")
  assert.equal(n.get("b/action/Go_FeedbackMessage"), "b_Go_FeedbackMessage")
  assert.equal(n.get("c/msg/Run"), "c_msg_Run")
  assert.equal(n.get("c/action/Run"), "c_action_Run")
  assert.equal(n.get("c/action/Run_Goal"), "Run_Goal")
  assert.equal(n.get("unique_identifier_msgs/msg/UUID"), "UUID")
  assert.equal(new Set(n.values()).size, n.size)
})

// ------------------------------------------------------------------------------ action_msgs, UUID

test("action_msgs and unique_identifier_msgs in services/ have the ROS 2 fields and constants", () => {
  const layout = (full: string): string =>
    (all.messages.get(full)?.definition.definitions ?? [])
      .map((d) => (d.isConstant ? `${d.type} ${d.name}=${String(d.value)}` : `${d.type}${d.isArray ? (d.arrayLength !== undefined ? `[${d.arrayLength}]` : "[]") : ""} ${d.name}`))
      .join("; ")
  assert.equal(layout("unique_identifier_msgs/msg/UUID"), "uint8[16] uuid")
  assert.equal(layout("action_msgs/msg/GoalInfo"), "unique_identifier_msgs/msg/UUID goal_id; builtin_interfaces/msg/Time stamp")
  assert.equal(
    layout("action_msgs/msg/GoalStatus"),
    "int8 STATUS_UNKNOWN=0; int8 STATUS_ACCEPTED=1; int8 STATUS_EXECUTING=2; int8 STATUS_CANCELING=3; int8 STATUS_SUCCEEDED=4; int8 STATUS_CANCELED=5; int8 STATUS_ABORTED=6; action_msgs/msg/GoalInfo goal_info; int8 status",
  )
  assert.equal(layout("action_msgs/msg/GoalStatusArray"), "action_msgs/msg/GoalStatus[] status_list")
  assert.ok(all.services.has("action_msgs/srv/CancelGoal"))
  assert.equal(layout("action_msgs/srv/CancelGoal_Request"), "action_msgs/msg/GoalInfo goal_info")
  assert.equal(
    layout("action_msgs/srv/CancelGoal_Response"),
    "int8 ERROR_NONE=0; int8 ERROR_REJECTED=1; int8 ERROR_UNKNOWN_GOAL_ID=2; int8 ERROR_GOAL_TERMINATED=3; int8 return_code; action_msgs/msg/GoalInfo[] goals_canceling",
  )
})

// ------------------------------------------------------------------------------ bytes

const u = (b: number): Uint8Array => new Uint8Array(16).fill(b)

/** [type, value, bytes]: layouts worked out by hand (alignment counted after the 4-byte header). */
const GOLDEN: [string, unknown, string][] = [
  ["example_interfaces/action/Fibonacci_SendGoal_Request", { goal_id: { uuid: Uint8Array.from({ length: 16 }, (_, i) => i) }, goal: { order: 10 } },
    "00010000 000102030405060708090a0b0c0d0e0f 0a000000"],
  // bool, then Time's int32 aligned to 4
  ["example_interfaces/action/Fibonacci_SendGoal_Response", { accepted: true, stamp: { sec: 1, nanosec: 2 } }, "00010000 01000000 01000000 02000000"],
  ["example_interfaces/action/Fibonacci_GetResult_Request", { goal_id: { uuid: u(0xab) } }, "00010000" + "ab".repeat(16)],
  // int8 status, then the sequence count aligned to 4
  ["example_interfaces/action/Fibonacci_GetResult_Response", { status: 4, result: { sequence: [0, 1, 1] } }, "00010000 04000000 03000000 00000000 01000000 01000000"],
  ["example_interfaces/action/Fibonacci_FeedbackMessage", { goal_id: { uuid: u(0xff) }, feedback: { sequence: [5] } }, "00010000" + "ff".repeat(16) + "01000000 05000000"],
  // an empty feedback is one placeholder byte after the 16 of the id
  ["test_actions/action/Everything_FeedbackMessage", { goal_id: { uuid: u(1) }, feedback: {} }, "00010000" + "01".repeat(16) + "00"],
  // the second GoalStatus starts right after the first one's int8; its stamp is padded to 4 (offset 48)
  ["action_msgs/msg/GoalStatusArray", {
    status_list: [
      { goal_info: { goal_id: { uuid: u(0x11) }, stamp: { sec: 1, nanosec: 2 } }, status: 2 },
      { goal_info: { goal_id: { uuid: u(0x22) }, stamp: { sec: 3, nanosec: 4 } }, status: 6 },
    ],
  }, "00010000 02000000" + "11".repeat(16) + "01000000 02000000 02" + "22".repeat(16) + "000000 03000000 04000000 06"],
  ["action_msgs/srv/CancelGoal_Response", { return_code: 0, goals_canceling: [{ goal_id: { uuid: u(0x33) }, stamp: { sec: 5, nanosec: 6 } }] },
    "00010000 00000000 01000000" + "33".repeat(16) + "05000000 06000000"],
  ["action_msgs/srv/CancelGoal_Request", { goal_info: { goal_id: { uuid: u(0) }, stamp: { sec: 0, nanosec: 0 } } }, "00010000" + "00".repeat(16) + "00000000 00000000"],
]

test("golden bytes of the derived types and action_msgs, equal to @foxglove/rosmsg2-serialization's", () => {
  for (const [type, value, want] of GOLDEN) {
    const d = desc(type)
    const ours = d.encode(value)
    assert.equal(hex(ours), want.replace(/\s+/g, ""), `${type}: ours`)
    assert.equal(hex(new MessageWriter(foxgloveDefs(d.definitions)).writeMessage(value)), hex(ours), `${type}: foxglove`)
    assert.deepEqual(d.decode(bytes(want)), value, `${type}: decode`)
  }
})

/** Every type that belongs to actions: each action's 8 messages, action_msgs and UUID. */
const actionTypes = (set: InterfaceSet): string[] =>
  [...set.messages.keys()].filter((n) => n.includes("/action/") || n.startsWith("action_msgs/") || n.startsWith("unique_identifier_msgs/")).sort()

test("every action type agrees with @foxglove/rosmsg2-serialization at edge values, both ways", () => {
  const vectors = makeVectors(all).filter((v) => v.kind === "ok")
  const types = actionTypes(all)
  const compared = new Map<string, number>()
  const skipped: string[] = []
  for (const name of types) {
    const d = desc(name)
    if (usesWstring(d.definitions)) {
      skipped.push(name) // foxglove throws on wstring; the VM agreement test covers these
      continue
    }
    const writer = new MessageWriter(foxgloveDefs(d.definitions))
    const reader = new MessageReader(foxgloveDefs(d.definitions))
    // host samples (64-bit extremes, NaN/Infinity/-0, float32 subnormals, maximal arrays) and the
    // agreement vectors (2^53 +- 1, bounds at their limits, empty arrays)
    const values = [...SAMPLE_KINDS.map((k) => sampleValue(name, d.definitions, k)), ...vectors.filter((v) => v.type === name).map((v) => v.value)]
    for (const raw of values) {
      const v = asciiOnly(raw)
      const ours = d.encode(v)
      assert.equal(hex(ours), hex(writer.writeMessage(v)), `${name}: encode ${JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x))}`)
      assert.deepStrictEqual(plain(reader.readMessage(ours)), plain(v), `${name}: foxglove decodes ours`)
      assert.deepStrictEqual(d.decode(writer.writeMessage(v)), d.decode(ours), `${name}: we decode foxglove's`)
      compared.set(name, (compared.get(name) ?? 0) + 1)
    }
  }
  // nothing silently left out: only the two types with wstring, each action's derived shapes covered
  assert.deepEqual(skipped, ["test_actions/action/Everything_Goal", "test_actions/action/Everything_SendGoal_Request"])
  assert.equal(compared.size + skipped.length, types.length)
  for (const a of ["example_interfaces/action/Fibonacci", "test_actions/action/Navigate"]) {
    for (const s of ["_Goal", "_Result", "_Feedback", "_SendGoal_Request", "_SendGoal_Response", "_GetResult_Request", "_GetResult_Response", "_FeedbackMessage"]) {
      assert.ok((compared.get(a + s) ?? 0) >= 6, `${a}${s}: ${compared.get(a + s)} values`)
    }
  }
  for (const t of ["action_msgs/msg/GoalInfo", "action_msgs/msg/GoalStatus", "action_msgs/msg/GoalStatusArray", "action_msgs/srv/CancelGoal_Request", "action_msgs/srv/CancelGoal_Response", "unique_identifier_msgs/msg/UUID"]) {
    assert.ok((compared.get(t) ?? 0) >= 6, t)
  }
})

test("a UUID is exactly 16 bytes: 15 or 17 are refused on encode", () => {
  const d = desc("example_interfaces/action/Fibonacci_GetResult_Request")
  for (const n of [15, 17]) assert.throws(() => d.encode({ goal_id: { uuid: new Uint8Array(n) } }), new RegExp(`goal_id\\.uuid: .*16`))
})

// ------------------------------------------------------------------------------ host descriptors

test("packages/host/src/gen/interfaces.ts: action descriptors, derived service descriptors, registries", () => {
  const a = all.actions.get("example_interfaces/action/Fibonacci")
  assert.ok(a)
  const F = gen.Fibonacci
  assert.equal(F.fullName, a.fullName)
  assert.equal(F.hash, a.hash)
  assert.equal(F.hash32, a.hash32)
  assert.equal(F.text, fs.readFileSync(path.join(REPO, "services/example_interfaces/action/Fibonacci.action"), "utf8"))
  assert.equal(F.goal, gen.Fibonacci_Goal)
  assert.equal(F.sendGoal, gen.Fibonacci_SendGoal)
  assert.equal(F.sendGoal.request, gen.Fibonacci_SendGoal_Request)
  assert.equal(F.getResult.response, gen.Fibonacci_GetResult_Response)
  assert.equal(F.feedbackMessage, gen.Fibonacci_FeedbackMessage)
  assert.equal(F.sendGoal.fullName, "example_interfaces/action/Fibonacci_SendGoal")
  assert.equal(F.sendGoal.hash32, a.sendGoal.hash32)
  assert.equal(F.getResult.hash, a.getResult.hash)
  assert.deepEqual(Object.keys(gen.actionTypes), [
    "example_interfaces/action/Fibonacci", "robot_interfaces/action/DriveDistance", "robot_interfaces/action/Rotate", "robot_interfaces/action/Scan",
  ])
  assert.equal(gen.actionTypes["example_interfaces/action/Fibonacci"], F)
  assert.equal(gen.messageTypes["example_interfaces/action/Fibonacci_FeedbackMessage"], gen.Fibonacci_FeedbackMessage)
  assert.equal(gen.serviceTypes["example_interfaces/action/Fibonacci_SendGoal"], undefined, "derived services are reached through their action")
  assert.equal(gen.serviceTypes["action_msgs/srv/CancelGoal"], gen.CancelGoal)
  assert.equal(gen.GoalStatus.STATUS_ABORTED, 6)
  assert.equal(gen.CancelGoal_Response.ERROR_GOAL_TERMINATED, 3)
  const goalId = { uuid: Uint8Array.from({ length: 16 }, (_, i) => i) }
  assert.equal(hex(F.sendGoal.request.encode({ goal_id: goalId, goal: { order: 10 } })), "00010000000102030405060708090a0b0c0d0e0f0a000000")
  assert.deepEqual(F.getResult.response.decode(bytes("00010000 04000000 02000000 01000000 02000000")), { status: 4, result: { sequence: [1, 2] } })
  // types: the descriptor is an ActionDescriptor of the generated types
  const typed: ActionDescriptor<gen.Fibonacci_Goal, gen.Fibonacci_Result, gen.Fibonacci_Feedback> = F
  assert.ok(typed)
  // @ts-expect-error order is an int32: a number
  assert.throws(() => F.goal.encode({ order: "ten" }))
  // @ts-expect-error the goal id is a UUID, not a string
  assert.throws(() => F.getResult.request.encode({ goal_id: "0123" }))
})

// ------------------------------------------------------------------------------ device code

test("device code: action types made on demand (functions), derived ones through packages/device/src/lib/actiontype.ts, everything else unchanged", () => {
  const set = loadInterfaces([path.join(REPO, "services")])
  const lazy = onDemand(set)
  // every action with its eight derived types, action_msgs, UUID and service_msgs (types only
  // some firmwares use); everything else keeps its const form
  const parts = ["", "_FeedbackMessage", "_Feedback", "_GetResult_Request", "_GetResult_Response", "_Goal", "_Result", "_SendGoal_Request", "_SendGoal_Response"]
  assert.deepEqual([...set.actions.keys()].sort(), [
    "example_interfaces/action/Fibonacci", "robot_interfaces/action/DriveDistance", "robot_interfaces/action/Rotate", "robot_interfaces/action/Scan",
  ])
  assert.deepEqual([...lazy].sort(), [
    "action_msgs/msg/GoalInfo", "action_msgs/msg/GoalStatus", "action_msgs/msg/GoalStatusArray",
    "action_msgs/srv/CancelGoal", "action_msgs/srv/CancelGoal_Request", "action_msgs/srv/CancelGoal_Response",
    ...[...set.actions.keys()].flatMap((a) => parts.map((d) => a + d)),
    "service_msgs/msg/ServiceEventInfo",
    "unique_identifier_msgs/msg/UUID",
  ].sort())
  const src = fs.readFileSync(path.join(REPO, "src/gen/interfaces.ts"), "utf8")
  const names = tsNames(set)
  const a = set.actions.get("example_interfaces/action/Fibonacci")
  assert.ok(a)
  const derived = [...set.actions.values()].flatMap((x) => [x.sendGoal.request, x.sendGoal.response, x.getResult.request, x.getResult.response, x.feedbackMessage].map((m) => m.fullName))
  for (const full of lazy) {
    const n = names.get(full) as string
    if (derived.includes(full)) {
      // same layout for every action: built by packages/device/src/lib/actiontype.ts, no generated codec
      assert.match(src, new RegExp(`\nexport interface ${n} \{`), full)
      assert.doesNotMatch(src, new RegExp(`${n}_codec\b`), full)
    } else if (set.messages.has(full)) {
      assert.match(src, new RegExp(`\\nlet __c_${n}: MessageCodec<${n}>\\n.*\\nexport function ${n}_codec\\(\\): MessageCodec<${n}> \\{\\n    if \\(!__c_${n}\\) __c_${n} = __(rec<${n}>|codec)\\("${full}", `), full)
      assert.doesNotMatch(src, new RegExp(`export const ${n}_codec\\b`), full)
    }
  }
  // no top-level const of the file is an action type's (a const would always be in the image)
  for (const m of src.matchAll(/^export const (\w+)/gm)) {
    const id = m[1] as string
    assert.ok(![...lazy].some((full) => id === names.get(full) || id === `${names.get(full)}_codec`), id)
  }
  assert.match(src, /\nexport function CancelGoal\(\): ServiceType<CancelGoal_Request, CancelGoal_Response> \{\n    if \(!__s_CancelGoal\) __s_CancelGoal = __multiFrame\(__service\("action_msgs\/srv\/CancelGoal", \d+, CancelGoal_Request_codec\(\), CancelGoal_Response_codec\(\)\)\)\n/)
  const fn = /\nexport function Fibonacci\(\): ActionType<Fibonacci_Goal, Fibonacci_Result, Fibonacci_Feedback> \{\n([\s\S]*?)\n\}\n/.exec(src)?.[1] ?? ""
  assert.equal(
    fn,
    [
      `    if (!__a_Fibonacci)`,
      // (an action's types may exceed one record: the multi-frame paths come with it)
      `        __a_Fibonacci = __multiFrame(__action(`,
      `            "example_interfaces/action/Fibonacci",`,
      `            [${a.hash32}, ${a.sendGoal.hash32}, ${a.getResult.hash32}],`,
      // the goal, result and feedback codecs made in place, in the variables of their _codec() functions
      `            __c_Fibonacci_Goal || (__c_Fibonacci_Goal = __rec<Fibonacci_Goal>("example_interfaces/action/Fibonacci_Goal", "iorder")),`,
      `            __c_Fibonacci_Result || (__c_Fibonacci_Result = __rec<Fibonacci_Result>("example_interfaces/action/Fibonacci_Result", "Fsequence", [new __ArrayField(__K.I32, -1, -1)])),`,
      `            __c_Fibonacci_Feedback || (__c_Fibonacci_Feedback = __rec<Fibonacci_Feedback>("example_interfaces/action/Fibonacci_Feedback", "Fsequence", [new __ArrayField(__K.I32, -1, -1)])),`,
      `            UUID_codec(),`,
      `            Time_codec,`,
      `            __rec`,
      `        ))`,
      `    return __a_Fibonacci`,
    ].join("\n"),
  )
  // a type the robot uses keeps its const form (what src/ imports today)
  assert.match(src, /\nexport const AddTwoInts: ServiceType<AddTwoInts_Request, AddTwoInts_Response> = __service\(/)
  assert.match(src, /\nexport const Time_codec: MessageCodec<Time> = __rec<Time>\("builtin_interfaces\/msg\/Time", "isec Inanosec"\)\n/)
  assert.match(src, /import \{ ActionType, Bytes, MessageCodec, ServiceType, multiFrame as __multiFrame \} from "@robot-services\/device"\nimport \{ actionType as __action \} from "@robot-services\/device\/src\/lib\/actiontype"\n/)
})

test("device code: an ordinary message that nests an on-demand type calls its codec function", () => {
  const set = load([
    { root: "r", file: "p/msg/Tracked.msg", text: "unique_identifier_msgs/UUID id\nunique_identifier_msgs/UUID[] others\n" },
  ])
  const out = emitDevice(set, { sources: [], outFile: path.join(REPO, "src/gen/x.ts") })
  // the nested UUID is the argument of an `m` field, and of the UUID[] (kind M, with its length and bound)
  assert.match(out, /\nexport const Tracked_codec: MessageCodec<Tracked> = new __Rec<Tracked>\("p\/msg\/Tracked", "mid Mothers", \[UUID_codec\(\), UUID_codec\(\), -1, -1\]\)\n/)
  // the interpreter tests only the kinds the file uses (the last one is the fallback)
  assert.match(out, /if \(k === 73\) __writeU32\(w, x, n\)\n\s*else if \(k === 105\) \{ __checkInt\(x, -2147483648, 2147483647, "int32", n\); const o = __wAt\(w, 4, 4\); w\.buf\.setAt\(o, "i32", x\) \}\n\s*else if \(k === 109\) __writeMsg\(w, args\[a\+\+\], x, n\)\n\s*else if \(k === 77\) __writeArrC\(w, args\[a\+\+\], x, args\[a\+\+\], args\[a\+\+\], n\)\n\s*else __writeFixedBytes\(w, x, args\[a\+\+\], n\)\n/)
  assert.doesNotMatch(out, /w\.(bool|u8|i64|string|bytes)\(|__write(Bool|I64|String|Bytes)\(/)
  // without actions the header does not import ActionType
  assert.match(out, /import \{ Bytes, MessageCodec, ServiceType \} from/)
})

// ------------------------------------------------------------------------------ CLI

function robot(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(REPO, "packages/host/bin/robot.js"), ...args], { cwd: REPO, encoding: "utf8", timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test("robot interface show/list/package include actions, shaped like ros2 interface", () => {
  const show = robot("interface", "show", "example_interfaces/action/Fibonacci")
  assert.equal(show.status, 0, show.stderr)
  assert.equal(show.stdout, fs.readFileSync(path.join(REPO, "services/example_interfaces/action/Fibonacci.action"), "utf8"))
  assert.equal(robot("interface", "show", "example_interfaces/Fibonacci", "--no-comments").stdout, "int32 order\n---\nint32[] sequence\n---\nint32[] sequence\n")
  const dirs = ["--dir", "services", "--dir", "test/fixtures/interfaces", "--dir", "test/fixtures/actions"]
  assert.equal(
    robot("interface", "show", "test_actions/action/Navigate", "--no-comments", ...dirs).stdout,
    "builtin_interfaces/Time deadline\n\tint32 sec\n\tuint32 nanosec\nfloat64 x\nfloat32 y\nbool[3] flags\nint64 id\n---\n" +
      "int8 CODE_OK=0\nint8 CODE_BLOCKED=1\nint8 code\nstring message\nbyte[4] raw\nchar c\n---\nfloat32 progress\nuint32[<=4] stages\nstring<=16 phase\n",
  )
  // a derived type, with its parts expanded
  assert.equal(
    robot("interface", "show", "example_interfaces/action/Fibonacci_SendGoal_Request").stdout,
    "unique_identifier_msgs/UUID goal_id\n\tuint8[16] uuid\nFibonacci_Goal goal\n\tint32 order\n",
  )
  // a derived service, request --- response
  assert.equal(
    robot("interface", "show", "example_interfaces/action/Fibonacci_GetResult").stdout,
    "unique_identifier_msgs/UUID goal_id\n\tuint8[16] uuid\n---\nint8 status\nFibonacci_Result result\n\tint32[] sequence\n",
  )
  assert.match(robot("interface", "show", "example_interfaces/action/Fibonacci_Nope").stderr, /unknown type 'example_interfaces\/action\/Fibonacci_Nope'/)
  assert.equal(
    robot("interface", "list", "-a").stdout,
    "Actions:\n    example_interfaces/action/Fibonacci\n    robot_interfaces/action/DriveDistance\n    robot_interfaces/action/Rotate\n    robot_interfaces/action/Scan\n",
  )
  const list = robot("interface", "list", ...dirs).stdout.trimEnd().split("\n")
  assert.deepEqual(list.slice(list.indexOf("Actions:")), [
    "Actions:", "    example_interfaces/action/Fibonacci", "    robot_interfaces/action/DriveDistance", "    robot_interfaces/action/Rotate",
    "    robot_interfaces/action/Scan", "    test_actions/action/Everything", "    test_actions/action/Navigate",
  ])
  assert.ok(list.includes("    action_msgs/msg/GoalStatusArray") && list.includes("    action_msgs/srv/CancelGoal"))
  assert.equal(robot("interface", "package", "example_interfaces").stdout, "example_interfaces/action/Fibonacci\nexample_interfaces/srv/AddTwoInts\n")
  assert.equal(robot("interface", "package", "test_actions", ...dirs).stdout, "test_actions/action/Everything\ntest_actions/action/Navigate\n")
  const pkgs = robot("interface", "packages").stdout.split("\n")
  for (const p of ["action_msgs", "unique_identifier_msgs", "example_interfaces"]) assert.ok(pkgs.includes(p), p)
})

test("robot gen on a malformed .action prints compiler-style errors and exits 1 without writing", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-act-"))
  try {
    fs.mkdirSync(path.join(dir, "nav/action"), { recursive: true })
    fs.writeFileSync(path.join(dir, "nav/action/Go.action"), "float64 x\n---\nint64 Done\n---\nfloat32 p\n---\n")
    const out = path.join(dir, "out.ts")
    const r = robot("gen", "services", dir, "--host-out", out, "--device-out", path.join(dir, "dev.ts"))
    assert.equal(r.status, 1)
    const rel = path.join(dir, "nav/action/Go.action") // the file as the root was given
    assert.equal(
      r.stderr,
      `${rel}:3:7: invalid field name 'Done': field names are lower snake case: a lower-case letter first, then lower-case letters, digits and single underscores, not ending with '_'\n` +
        "int64 Done\n      ^\n" +
        `${rel}:6:1: a .action file has exactly two '---' separators (goal --- result --- feedback); this is a third one\n---\n^\n` +
        "2 errors in interface files\n",
    )
    assert.ok(!fs.existsSync(out))
    // fixed, it generates the action
    fs.writeFileSync(path.join(dir, "nav/action/Go.action"), "float64 x\n---\nint64 done\n---\nfloat32 p\n")
    const ok = robot("gen", "services", dir, "--host-out", out, "--device-out", path.join(dir, "dev.ts"))
    assert.equal(ok.status, 0, ok.stderr)
    // (the robot's four actions and this one)
    assert.match(ok.stdout, /robot gen: \d+ messages, \d+ services, 5 actions from services, /)
    assert.match(fs.readFileSync(out, "utf8"), /\nexport const Go = __action\("nav\/action\/Go", /)
    assert.match(fs.readFileSync(path.join(dir, "dev.ts"), "utf8"), /\nexport function Go\(\): ActionType<Go_Goal, Go_Result, Go_Feedback> \{/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("host code for the fixture actions type-checks under the strict tsconfig, with the types a client needs", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "robot-act-"))
  try {
    const out = path.join(dir, "interfaces.ts")
    const r = robot("gen", "services", "test/fixtures/interfaces", "test/fixtures/actions", "--host-out", out, "--device-out", path.join(dir, "device.ts"))
    assert.equal(r.status, 0, r.stderr)
    fs.writeFileSync(
      path.join(dir, "use.ts"),
      [
        // test_msgs/srv/Everything shares the short name: both get their package as a prefix
        `import { test_actions_Everything as Everything, Navigate, actionTypes, type Navigate_Goal, type Everything_GetResult_Response } from "./interfaces"`,
        `const g: Navigate_Goal = Navigate.goal.defaults()`,
        `const id: bigint = g.id`,
        `const code: 1 = Navigate.result.CODE_BLOCKED`,
        `const mode: 1 = Everything.goal.MODE_FAST`,
        `const res: Everything_GetResult_Response = Everything.getResult.response.defaults()`,
        `const total: bigint = res.result.total`,
        `const fb = Everything.feedbackMessage.encode({ goal_id: { uuid: new Uint8Array(16) }, feedback: {} })`,
        `// @ts-expect-error a feedback message needs its goal id`,
        `Navigate.feedbackMessage.encode({ feedback: { progress: 1, stages: [], phase: "" } })`,
        `const any = actionTypes["test_actions/action/Navigate"]`,
        `export { id, code, mode, total, fb, any }`,
      ].join("\n"),
    )
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({ extends: path.join(REPO, "tsconfig.json"), compilerOptions: { typeRoots: [path.join(REPO, "node_modules/@types")] }, files: ["interfaces.ts", "use.ts"] }),
    )
    const tsc = spawnSync(process.execPath, [path.join(REPO, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", path.join(dir, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 })
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
