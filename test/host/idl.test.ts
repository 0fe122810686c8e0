// Parser/loader tests: tables of valid and invalid lines with exact positions, .srv splitting,
// type resolution, diagnostics format, and the hash.
import { test } from "node:test"
import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import type { MessageDefinitionField } from "@foxglove/message-definition"
import { loadInterfaces, loadSources, canonicalText, canonicalServiceText, hash32, IdlError, formatDiagnostic, type SourceFile } from "../../packages/host/src/idl/load"
import { diagsOf } from "../support/idl"
import { tsNames } from "../../packages/host/src/idl/names"

/** Loads one in-memory .msg (plus optional extra files) and returns the set or the diagnostics. */
function loadMsg(body: string, extra: SourceFile[] = [], file = "pkg/msg/Thing.msg") {
  return loadSources([{ root: "mem", file, text: body }, ...extra])
}
function field(line: string): MessageDefinitionField {
  const set = loadMsg(line)
  const defs = set.messages.get("pkg/msg/Thing")?.definition.definitions
  assert.ok(defs && defs.length === 1, `one field from ${JSON.stringify(line)}`)
  return defs[0] as MessageDefinitionField
}

// ---------------------------------------------------------------------------------------------
// valid lines: [line, expected subset of the field]
const VALID: [string, Partial<MessageDefinitionField>][] = [
  ["bool b", { type: "bool", name: "b", isArray: false, isComplex: false }],
  ["byte b", { type: "byte", name: "b" }],
  ["char c", { type: "char", name: "c" }],
  ["int8 x", { type: "int8" }],
  ["uint8 x", { type: "uint8" }],
  ["int16 x", { type: "int16" }],
  ["uint16 x", { type: "uint16" }],
  ["int32 x", { type: "int32" }],
  ["uint32 x", { type: "uint32" }],
  ["int64 x", { type: "int64" }],
  ["uint64 x", { type: "uint64" }],
  ["float32 x", { type: "float32" }],
  ["float64 x", { type: "float64" }],
  ["string s", { type: "string" }],
  ["wstring s", { type: "wstring" }],
  ["int32[3] xs", { isArray: true, arrayLength: 3 }],
  ["int32[] xs", { isArray: true, arrayLength: undefined, arrayUpperBound: undefined }],
  ["int32[<=5] xs", { isArray: true, arrayUpperBound: 5 }],
  ["string<=10 s", { type: "string", upperBound: 10, isArray: false }],
  ["wstring<=3 s", { type: "wstring", upperBound: 3 }],
  ["string<=4[<=2] s", { upperBound: 4, arrayUpperBound: 2, isArray: true }],
  ["string<=4[7] s", { upperBound: 4, arrayLength: 7 }],
  ["  int32   spaced_out   # comment", { type: "int32", name: "spaced_out" }],
  ["\tint32\tx\t#tabs", { type: "int32", name: "x" }],
  ["int32 x 42", { defaultValue: 42 }],
  ["int32 x -7 # c", { defaultValue: -7 }],
  ["int64 x -9223372036854775808", { defaultValue: -9223372036854775808n }],
  ["uint64 x 18446744073709551615", { defaultValue: 18446744073709551615n }],
  ["float64 x -1.5e3", { defaultValue: -1500 }],
  ["float32 x .5", { defaultValue: 0.5 }],
  ["bool x True", { defaultValue: true }],
  ["bool x 0", { defaultValue: false }],
  ["byte x 255", { defaultValue: 255 }],
  ["string s hello", { defaultValue: "hello" }],
  ['string s "a # not comment" # comment', { defaultValue: "a # not comment" }],
  ["string s 'it\\'s'", { defaultValue: "it's" }],
  ['string s "q\\"t\\tx\\n\\\\\\x41\\u00e9"', { defaultValue: 'q"t\tx\n\\Aé' }],
  ['wstring s "ü"', { defaultValue: "ü" }],
  ["int32[3] xs [1, 2, 3]", { defaultValue: [1, 2, 3] }],
  ["int32[<=3] xs [1]", { defaultValue: [1] }],
  ["float64[] xs [1.5, -2]", { defaultValue: [1.5, -2] }],
  ["bool[2] xs [true, False]", { defaultValue: [true, false] }],
  ['string[] xs ["a", \'b,c\', "d e"]', { defaultValue: ["a", "b,c", "d e"] }],
  ["int64[] xs [-1, 9223372036854775807]", { defaultValue: [-1n, 9223372036854775807n] }],
  ["int32 MAX=10", { isConstant: true, value: 10, valueText: "10" }],
  ["int32 MAX = -10 # comment", { isConstant: true, value: -10 }],
  ['string NAME="x y"', { isConstant: true, value: "x y" }],
  ["string NAME=plain words", { isConstant: true, value: "plain words" }],
  ["uint64 BIG=18446744073709551615", { isConstant: true, value: 18446744073709551615n }],
  ["bool ON=true", { isConstant: true, value: true }],
  ["int32 a1_b2", { name: "a1_b2" }],
  ["int32 A1_B2=1", { name: "A1_B2", isConstant: true }],
]

test("valid lines parse to the expected fields", () => {
  for (const [line, want] of VALID) {
    const f = field(line)
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual((f as Record<string, unknown>)[k], v, `${JSON.stringify(line)}: ${k}`)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// invalid lines: [line, col, message fragment]; each is line 2 of a file whose line 1 is valid.
const INVALID: [string, number, string][] = [
  ["int32 Bad", 7, "invalid field name 'Bad'"],
  ["int32 bad__name", 7, "invalid field name 'bad__name'"],
  ["int32 trailing_", 7, "invalid field name 'trailing_'"],
  ["int32 1abc", 7, "invalid field name '1abc'"],
  ["int32 _x", 7, "invalid field name '_x'"],
  ["int32 CAPS", 7, "an upper-case name is a constant"],
  ["int32 lower=1", 7, "invalid constant name 'lower'"],
  ["int32 Mixed_Case=1", 7, "invalid constant name 'Mixed_Case'"],
  ["int32 BAD__X=1", 7, "invalid constant name 'BAD__X'"],
  ["int x", 1, "invalid type name 'int'"],
  ["float x", 1, "primitive types are"],
  ["time t", 1, "builtin_interfaces/Time"],
  ["foo/bar x", 5, "invalid type name 'bar'"],
  ["Foo_Bar/Baz x", 1, "invalid package name 'Foo_Bar'"],
  ["pkg/srv/Foo x", 1, "cannot have a service type"],
  ["a/b/c/D x", 1, "invalid type name 'a/b/c/D'"],
  ["int32<=5 x", 6, "only allowed on string and wstring"],
  ["string<5 x", 7, "invalid string bound '<5'"],
  ["string<=0 x", 7, "invalid string bound"],
  ["string<=x s", 7, "invalid string bound"],
  ["int32[<3] x", 6, "invalid array bound '[<3]'"],
  ["int32[0] x", 6, "invalid array bound '[0]'"],
  ["int32[-1] x", 6, "invalid array bound"],
  ["int32[3 x", 6, "invalid array bound"],
  ["int32[3][2] x", 9, "only one array suffix"],
  ["string[3]<=5 x", 10, "string bound must come before the array suffix"],
  ["int32", 6, "expected a field name after type 'int32'"],
  ["int32 # no name", 7, "expected a field name"],
  ["Missing thing", 1, "unknown type 'Missing' (looked for pkg/msg/Missing)"],
  ["other_pkg/Missing thing", 1, "unknown type 'other_pkg/Missing' (looked for other_pkg/msg/Missing)"],
  ["Header h", 1, "(looked for pkg/msg/Header, std_msgs/msg/Header)"],
  ["Good X=1", 1, "constants must have a primitive type"],
  ["int32[2] X=[1, 2]", 6, "cannot be an array"],
  ["int32 X=", 8, "needs a value"],
  ["int32 x 1.5", 9, "invalid int32 literal '1.5'"],
  ["int32 x 12abc", 9, "invalid int32 literal '12abc'"],
  ["int8 x 200", 8, "out of range"],
  ["uint8 x -1", 9, "out of range"],
  ["uint64 x -1", 10, "out of range"],
  ["int64 X=9223372036854775808", 9, "out of range"],
  ["float64 x abc", 11, "invalid float64 literal 'abc'"],
  ["float32 x nan", 11, "not supported"],
  ["bool x yes", 8, "invalid bool literal 'yes'"],
  ["int32[3] xs [1, 2]", 13, "has 2 elements, but 'int32[3]' has exactly 3"],
  ["int32[3] xs [1, 2, 3, 4]", 13, "has 4 elements"],
  ["int32[<=2] xs [1, 2, 3]", 15, "more than the bound"],
  ["int32[] xs [1, , 3]", 16, "empty element"],
  ["int32[] xs [1, x, 3]", 16, "invalid int32 literal 'x'"],
  ["int32[] xs 5", 12, "must be an array literal"],
  ["int32 x [1, 2]", 9, "is not an array"],
  ["string<=3 s \"toolong\"", 13, "more than the bound 3"],
  ["string<=2[] s [\"ok\", \"bad\"]", 15, "more than the bound 2"],
  ["string<=3 s \"éé\"", 13, "is 4 UTF-8 bytes long, more than the bound 3"],
  ["wstring<=1 s \"😀\"", 14, "is 2 UTF-16 code units long"],
  ['string s "unterminated', 10, "invalid default for 's'"],
  ["Good g 5", 8, "default values are only allowed for primitive types"],
  ["int32 first", 7, "duplicate name 'first' (first declared on line 1)"],
  ["---", 1, "unexpected '---'"],
]

test("invalid lines give diagnostics at the exact line and column", () => {
  const good: SourceFile = { root: "mem", file: "pkg/msg/Good.msg", text: "int32 v\n" }
  for (const [line, col, fragment] of INVALID) {
    const d = diagsOf([{ root: "mem", file: "pkg/msg/Thing.msg", text: `int32 first\n${line}\n` }, good])
    assert.equal(d.length, 1, `${JSON.stringify(line)}: ${JSON.stringify(d)}`)
    const [x] = d as [(typeof d)[number]]
    assert.equal(x.file, "mem/pkg/msg/Thing.msg")
    assert.equal(x.line, 2, `${JSON.stringify(line)}: line`)
    assert.equal(x.col, col, `${JSON.stringify(line)}: column (message: ${x.message})`)
    assert.ok(x.message.includes(fragment), `${JSON.stringify(line)}: message ${JSON.stringify(x.message)} should contain ${JSON.stringify(fragment)}`)
  }
})

test("diagnostics print as file:line:col: message, the line, and a caret", () => {
  try {
    loadSources([{ root: "services", file: "robot_interfaces/srv/TakePicture.srv", text: "uint8 resolution\n\tuint8 Quality\n---\n" }])
    assert.fail("expected an error")
  } catch (e) {
    assert.ok(e instanceof IdlError)
    const [d] = e.diagnostics
    assert.ok(d)
    const text = formatDiagnostic(d)
    const lines = text.split("\n")
    assert.match(lines[0] ?? "", /^services\/robot_interfaces\/srv\/TakePicture\.srv:2:8: invalid field name 'Quality'/)
    assert.equal(lines[1], "\tuint8 Quality")
    assert.equal(lines[2], "\t      ^")
    assert.ok(e.message.includes(text))
    assert.match(e.message, /1 error in interface files$/)
  }
})

test("diagnostics are collected across all files before throwing", () => {
  const d = diagsOf([
    { root: "r", file: "a_pkg/msg/A.msg", text: "int32 Bad\nint32 ok\nuint99 x\n" },
    { root: "r", file: "b_pkg/srv/B.srv", text: "int32 x\n" },
    { root: "r", file: "b_pkg/srv/C.srv", text: "---\nint32 x\n---\nint32 y\n" },
  ])
  assert.deepEqual(
    d.map((x) => `${x.file}:${x.line}:${x.col}`),
    ["r/a_pkg/msg/A.msg:1:7", "r/a_pkg/msg/A.msg:3:1", "r/b_pkg/srv/B.srv:1:1", "r/b_pkg/srv/C.srv:3:1"],
  )
  assert.match(d[2]?.message ?? "", /missing '---'/)
  assert.match(d[3]?.message ?? "", /exactly one '---'/)
})

test("a .srv with two separators still reports the bad lines around them, in line order", () => {
  const d = diagsOf([{ root: "r", file: "foo/srv/Bad.srv", text: "int64 a\nint6 b\nfloat32 Quality\n---\nint64 sum\n---\n" }])
  assert.deepEqual(
    d.map((x) => `${x.line}:${x.col}`),
    ["2:1", "3:9", "6:1"],
  )
  assert.match(d[0]?.message ?? "", /invalid type name 'int6'/)
  assert.match(d[1]?.message ?? "", /invalid field name 'Quality'/)
  assert.match(d[2]?.message ?? "", /exactly one '---'/)
})

test("a .srv without its '---' still reports its bad lines in the same run; names are not compared, since either half may hold a field", () => {
  const d = diagsOf([{ root: "r", file: "foo/srv/NoSep.srv", text: "int32 B\nfoo_bar x\nuint32 seq\nuint32 seq\n" }])
  assert.deepEqual(
    d.map((x) => `${x.line}:${x.col}`),
    ["1:7", "2:1", "4:1"],
  )
  assert.match(d[0]?.message ?? "", /invalid field name 'B'/)
  assert.match(d[1]?.message ?? "", /invalid type name 'foo_bar'/)
  assert.match(d[2]?.message ?? "", /missing '---' separating the request from the response/)
})

test("file and package names are checked", () => {
  const d = diagsOf([
    { root: "r", file: "Bad_Pkg/msg/A.msg", text: "int32 x\n" },
    { root: "r", file: "pkg/msg/lower.msg", text: "int32 x\n" },
  ])
  assert.match(d[0]?.message ?? "", /invalid package name 'Bad_Pkg'/)
  assert.match(d[1]?.message ?? "", /invalid message name 'lower'/)
})

test("recursive types are rejected", () => {
  const d = diagsOf([
    { root: "r", file: "p/msg/A.msg", text: "B b\n" },
    { root: "r", file: "p/msg/B.msg", text: "int32 x\nA[] a\n" },
  ])
  assert.ok(d.some((x) => x.message.includes("recursive type: p/msg/A -> p/msg/B -> p/msg/A") && x.line === 1 && x.col === 1))
  assert.ok(d.some((x) => x.file === "r/p/msg/B.msg" && x.line === 2))
})

test("nested names resolve in every spelling, Header included", () => {
  const set = loadSources([
    { root: "r", file: "std_msgs/msg/Header.msg", text: "builtin_interfaces/Time stamp\nstring frame_id\n" },
    { root: "r", file: "builtin_interfaces/msg/Time.msg", text: "int32 sec\nuint32 nanosec\n" },
    { root: "r", file: "p/msg/Local.msg", text: "int8 v\n" },
    { root: "r", file: "p/msg/User.msg", text: "Header h\nLocal a\np/Local b\np/msg/Local c\nstd_msgs/Header d\nstd_msgs/msg/Header e\n" },
    { root: "r", file: "p/srv/S.srv", text: "Local req\n---\nHeader res\n" },
  ])
  const types = set.messages.get("p/msg/User")?.definition.definitions.map((d) => d.type)
  assert.deepEqual(types, ["std_msgs/msg/Header", "p/msg/Local", "p/msg/Local", "p/msg/Local", "std_msgs/msg/Header", "std_msgs/msg/Header"])
  assert.equal(set.messages.get("std_msgs/msg/Header")?.definition.definitions[0]?.type, "builtin_interfaces/msg/Time")
  assert.equal(set.messages.get("std_msgs/msg/Header")?.definition.definitions[0]?.isComplex, true)
  const s = set.services.get("p/srv/S")
  assert.ok(s)
  assert.equal(s.request.fullName, "p/srv/S_Request")
  assert.equal(s.response.definition.definitions[0]?.type, "std_msgs/msg/Header")
  assert.equal(set.messages.get("p/srv/S_Response"), s.response)
})

test("a package's own Header wins over std_msgs/Header", () => {
  const set = loadSources([
    { root: "r", file: "std_msgs/msg/Header.msg", text: "string frame_id\n" },
    { root: "r", file: "p/msg/Header.msg", text: "int8 own\n" },
    { root: "r", file: "p/msg/User.msg", text: "Header h\n" },
  ])
  assert.equal(set.messages.get("p/msg/User")?.definition.definitions[0]?.type, "p/msg/Header")
})

test("duplicate full names across roots are reported", () => {
  const d = diagsOf([
    { root: "one", file: "p/msg/A.msg", text: "int8 x\n" },
    { root: "two", file: "p/msg/A.msg", text: "int8 y\n" },
  ])
  assert.match(d[0]?.message ?? "", /p\/msg\/A is already defined in one\/p\/msg\/A\.msg/)
})

test("the shipped services and the fixture package load", () => {
  const set = loadInterfaces(["services", "test/fixtures/interfaces"])
  for (const n of [
    "example_interfaces/srv/AddTwoInts", "std_srvs/srv/Empty", "std_srvs/srv/Trigger", "std_srvs/srv/SetBool",
    "test_msgs/srv/Everything",
  ]) assert.ok(set.services.has(n), n)
  for (const n of ["std_msgs/msg/Header", "builtin_interfaces/msg/Time", "sensor_msgs/msg/CompressedImage", "test_msgs/msg/Primitives", "test_deps/msg/Point"]) {
    assert.ok(set.messages.has(n), n)
  }
  const add = set.services.get("example_interfaces/srv/AddTwoInts")
  assert.equal(add?.text, "int64 a\nint64 b\n---\nint64 sum\n")
  assert.equal(add?.file, "example_interfaces/srv/AddTwoInts.srv")
  assert.equal(add?.root, "services")
  // every primitive appears in the fixture
  const prims = new Set(set.messages.get("test_msgs/msg/Primitives")?.definition.definitions.map((d) => d.type))
  for (const p of ["bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "wstring"]) {
    assert.ok(prims.has(p), p)
  }
})

test("an interface root that is not a directory is an error naming it", () => {
  assert.throws(() => loadInterfaces(["does/not/exist"]), /interface root 'does\/not\/exist' is not a directory/)
})

// ---------------------------------------------------------------------------------------------
// hashing

test("AddTwoInts hashes the documented canonical text", () => {
  const set = loadInterfaces(["services"])
  const st = set.services.get("example_interfaces/srv/AddTwoInts")
  assert.ok(st)
  const canon = canonicalServiceText(st, set.messages)
  assert.equal(
    canon,
    "SRV: example_interfaces/srv/AddTwoInts\nMSG: example_interfaces/srv/AddTwoInts_Request\nint64 a\nint64 b\n---\nMSG: example_interfaces/srv/AddTwoInts_Response\nint64 sum\n",
  )
  const h = createHash("sha256").update(canon).digest("hex")
  assert.equal(st.hash, h)
  assert.equal(st.hash32, parseInt(h.slice(0, 8), 16))
  assert.ok(st.hash32 >= 0 && st.hash32 <= 0xffffffff)
  assert.equal(hash32("ffffffff00"), 0xffffffff)
})

test("nested types are part of the canonical text, sorted, each once", () => {
  const set = loadInterfaces(["services"])
  assert.equal(
    canonicalText("sensor_msgs/msg/CompressedImage", set.messages),
    "MSG: sensor_msgs/msg/CompressedImage\nstd_msgs/msg/Header header\nstring format\nuint8[] data\n" +
      "===\nMSG: builtin_interfaces/msg/Time\nint32 sec\nuint32 nanosec\n" +
      "===\nMSG: std_msgs/msg/Header\nbuiltin_interfaces/msg/Time stamp\nstring frame_id\n",
  )
})

test("hash ignores comments, whitespace, defaults and constants; changes with wire-relevant edits", () => {
  const h = (text: string, extra: SourceFile[] = []): string => loadMsg(text, extra).messages.get("pkg/msg/Thing")?.hash ?? ""
  const base = h("int32 a\nstring<=4[<=2] b\n")
  assert.equal(h("# comment\n  int32   a   # c\n\nstring<=4[<=2] b\n"), base)
  assert.equal(h("int32 a 5\nint32 K=3\nstring<=4[<=2] b [\"x\"]\n"), base)
  assert.notEqual(h("int32 c\nstring<=4[<=2] b\n"), base, "field name")
  assert.notEqual(h("uint32 a\nstring<=4[<=2] b\n"), base, "type")
  assert.notEqual(h("int32 a\nstring<=5[<=2] b\n"), base, "string bound")
  assert.notEqual(h("int32 a\nstring<=4[<=3] b\n"), base, "array bound")
  assert.notEqual(h("int32 a\nstring<=4[2] b\n"), base, "array kind")
  assert.notEqual(h("string<=4[<=2] b\nint32 a\n"), base, "order")
  assert.notEqual(loadMsg("int32 a\nstring<=4[<=2] b\n", [], "pkg/msg/Other.msg").messages.get("pkg/msg/Other")?.hash, base, "type name")
  // a change in a nested type changes the outer hash
  const inner = (t: string): SourceFile[] => [{ root: "mem", file: "pkg/msg/Inner.msg", text: t }]
  assert.notEqual(h("Inner i\n", inner("int8 x\n")), h("Inner i\n", inner("int16 x\n")))
  assert.equal(h("Inner i\n", inner("int8 x # one\n")), h("Inner i\n", inner("int8 x # two\n")))
})

// ---------------------------------------------------------------------------------------------
// names

test("generated names: short names, package prefix on a clash", () => {
  const set = loadSources([
    { root: "r", file: "a/msg/Point.msg", text: "int8 x\n" },
    { root: "r", file: "b/msg/Point.msg", text: "int8 x\n" },
    { root: "r", file: "b/msg/Solo.msg", text: "int8 x\n" },
    { root: "r", file: "c/msg/Foo.msg", text: "int8 x\n" },
    { root: "r", file: "c/srv/Foo.srv", text: "---\n" },
  ])
  const n = tsNames(set)
  assert.equal(n.get("a/msg/Point"), "a_Point")
  assert.equal(n.get("b/msg/Point"), "b_Point")
  assert.equal(n.get("b/msg/Solo"), "Solo")
  assert.equal(n.get("c/msg/Foo"), "c_msg_Foo")
  assert.equal(n.get("c/srv/Foo"), "c_srv_Foo")
  assert.equal(n.get("c/srv/Foo_Request"), "Foo_Request")
  assert.equal(new Set(n.values()).size, n.size)
})
