// Host CDR codec: hand-computed bytes, bounds on encode and decode, the 64-bit policy, floats,
// strings, defaults, truncation, and agreement with @foxglove/rosmsg2-serialization.
import { test } from "node:test"
import assert from "node:assert/strict"
import { MessageReader, MessageWriter } from "@foxglove/rosmsg2-serialization"
import { asciiOnly, foxgloveDefs, plain, usesWstring } from "../support/rosmsg2"
import { definitionsOf, loadInterfaces, loadSources } from "../../packages/host/src/idl/load"
import type { InterfaceSet } from "../../packages/host/src/idl/types"
import { CodecError, messageDescriptor } from "../../packages/host/src/runtime/codec"
import { sampleValue, SAMPLE_KINDS } from "../../packages/host/src/runtime/samples"
import type { MessageDescriptor } from "../../packages/host/src/runtime/types"

const all = loadInterfaces(["services", "test/fixtures/interfaces"])
function desc(name: string, set: InterfaceSet = all): MessageDescriptor<any> {
  return messageDescriptor<any>(name, set.messages.get(name)?.hash ?? "", definitionsOf(name, set.messages))
}
/** A descriptor for a one-off message body (package `t`, type `M`). */
function adhoc(body: string, extra: { file: string; text: string }[] = []): MessageDescriptor<any> {
  const set = loadSources([{ root: "mem", file: "t/msg/M.msg", text: body }, ...extra.map((e) => ({ root: "mem", ...e }))])
  return desc("t/msg/M", set)
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex").replace(/(..)(?!$)/g, "$1 ")
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ""), "hex"))
function codecError(fn: () => unknown, path: string, fragment: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CodecError, `expected CodecError, got ${String(e)}`)
    assert.equal(e.path, path, e.message)
    assert.match(e.message, fragment)
    return true
  })
}

// ------------------------------------------------------------------------------ exact bytes

test("AddTwoInts request: header 00 01 00 00 then two 8-byte little-endian ints", () => {
  const d = desc("example_interfaces/srv/AddTwoInts_Request")
  const b = d.encode({ a: 1n, b: -2n })
  assert.equal(hex(b), "00 01 00 00 01 00 00 00 00 00 00 00 fe ff ff ff ff ff ff ff")
  assert.deepEqual(d.decode(b), { a: 1n, b: -2n })
  const r = desc("example_interfaces/srv/AddTwoInts_Response")
  assert.equal(hex(r.encode({ sum: 0x0102030405060708n })), "00 01 00 00 08 07 06 05 04 03 02 01")
})

test("Header: alignment is counted from the byte after the 4-byte header", () => {
  const d = desc("std_msgs/msg/Header")
  const v = { stamp: { sec: 1, nanosec: 2 }, frame_id: "ab" }
  // sec @0, nanosec @4, string length @8 (3 = 'a' 'b' NUL), bytes @12
  assert.equal(hex(d.encode(v)), "00 01 00 00 01 00 00 00 02 00 00 00 03 00 00 00 61 62 00")
  assert.deepEqual(d.decode(d.encode(v)), v)
})

test("CompressedImage: padding before the string length and the sequence length", () => {
  const d = desc("sensor_msgs/msg/CompressedImage")
  const v = { header: { stamp: { sec: -1, nanosec: 5 }, frame_id: "ab" }, format: "jpeg", data: Uint8Array.of(1, 2, 3) }
  assert.equal(
    hex(d.encode(v)),
    "00 01 00 00" + " ff ff ff ff 05 00 00 00 03 00 00 00 61 62 00" + // header, ends at offset 15
      " 00 05 00 00 00 6a 70 65 67 00" + // pad to 16, "jpeg", ends at 25
      " 00 00 00 03 00 00 00 01 02 03", // pad to 28, count 3, bytes
  )
  assert.deepEqual(d.decode(d.encode(v)), v)
})

test("int64 after a bool is aligned to 8; float64 too", () => {
  const d = adhoc("bool b\nint64 x\nuint8 c\nfloat64 f\n")
  const v = { b: true, x: -1n, c: 7, f: 1 }
  assert.equal(hex(d.encode(v)), "00 01 00 00 01 00 00 00 00 00 00 00 ff ff ff ff ff ff ff ff 07 00 00 00 00 00 00 00 00 00 00 00 00 00 f0 3f")
  assert.deepEqual(d.decode(d.encode(v)), v)
})

test("strings are UTF-8 with a NUL; wstrings are uint32 code units", () => {
  const d = adhoc("string s\nwstring w\n")
  const v = { s: "é", w: "a😀" }
  // s: len 3, c3 a9 00 (ends @7); w: pad to 8, count 3, 'a', d83d, de00 as uint32 each
  assert.equal(hex(d.encode(v)), "00 01 00 00 03 00 00 00 c3 a9 00 00 03 00 00 00 61 00 00 00 3d d8 00 00 00 de 00 00")
  assert.deepEqual(d.decode(d.encode(v)), v)
})

test("an empty message is one placeholder byte; fixed arrays have no count", () => {
  assert.equal(hex(desc("std_srvs/srv/Empty_Request").encode({})), "00 01 00 00 00")
  assert.deepEqual(desc("std_srvs/srv/Empty_Request").decode(bytes("00 01 00 00 00")), {})
  const d = adhoc("uint16[2] a\nint16[] b\n")
  assert.equal(hex(d.encode({ a: [1, 2], b: [-1] })), "00 01 00 00 01 00 02 00 01 00 00 00 ff ff")
})

// ------------------------------------------------------------------------------ round trips

test("every type in services/ and the fixtures round-trips min, max and mixed samples", () => {
  for (const name of all.messages.keys()) {
    const d = desc(name)
    for (const kind of SAMPLE_KINDS) {
      const v = sampleValue(name, d.definitions, kind)
      const b = d.encode(v)
      assert.deepStrictEqual(d.decode(b), v, `${name} (${kind})`)
      assert.deepEqual(d.encode(d.decode(b)), b, `${name} (${kind}) re-encodes to the same bytes`)
    }
  }
})

test("float extremes survive exactly: NaN, ±Infinity, -0, subnormals", () => {
  const d = adhoc("float32 a\nfloat64 b\nfloat32[] c\n")
  for (const v of [
    { a: NaN, b: NaN, c: [Infinity, -Infinity, -0] },
    { a: -0, b: -0, c: [1.401298464324817e-45, 3.4028234663852886e38] },
    { a: Infinity, b: -Infinity, c: [] },
    { a: 0.5, b: Number.MIN_VALUE, c: [-3.4028234663852886e38] },
  ]) assert.deepStrictEqual(d.decode(d.encode(v)), v)
  codecError(() => d.encode({ a: 1e39, b: 0, c: [] }), "a", /outside the float32 range/)
})

// ------------------------------------------------------------------------------ 64-bit policy

test("int64: bigint always; a number only when it is a safe integer; never narrowed", () => {
  const d = desc("example_interfaces/srv/AddTwoInts_Request")
  assert.deepEqual(d.decode(d.encode({ a: 2 ** 53 - 1, b: -(2 ** 53 - 1) })), { a: 2n ** 53n - 1n, b: -(2n ** 53n - 1n) })
  codecError(() => d.encode({ a: 2 ** 53, b: 0n }), "a", /not a safe integer; pass a bigint/)
  codecError(() => d.encode({ a: 0n, b: 2 ** 53 + 2 }), "b", /not a safe integer/)
  codecError(() => d.encode({ a: 1.5, b: 0n }), "a", /not a safe integer/)
  codecError(() => d.encode({ a: 2n ** 63n, b: 0n }), "a", /outside the int64 range/)
  codecError(() => d.encode({ a: -(2n ** 63n) - 1n, b: 0n }), "a", /outside the int64 range/)
  codecError(() => d.encode({ a: "1", b: 0n }), "a", /expected a bigint/)
  const ext = { a: -(2n ** 63n), b: 2n ** 63n - 1n }
  assert.deepEqual(d.decode(d.encode(ext)), ext)
  assert.deepEqual(d.decode(d.encode({ a: 2n ** 53n + 1n, b: 0n })), { a: 9007199254740993n, b: 0n })
  const u = adhoc("uint64 u\n")
  assert.equal(hex(u.encode({ u: 2n ** 64n - 1n })), "00 01 00 00 ff ff ff ff ff ff ff ff")
  assert.deepEqual(u.decode(u.encode({ u: 2n ** 64n - 1n })), { u: 2n ** 64n - 1n })
  codecError(() => u.encode({ u: -1n }), "u", /outside the uint64 range/)
  codecError(() => u.encode({ u: 2n ** 64n }), "u", /outside the uint64 range/)
})

test("smaller integers: range and integrality are checked, never wrapped", () => {
  const d = adhoc("int8 a\nuint8 b\nint16 c\nuint16 d\nint32 e\nuint32 f\nbyte g\nchar h\n")
  const ok = { a: -128, b: 255, c: -32768, d: 65535, e: -2147483648, f: 4294967295, g: 255, h: 0 }
  assert.deepEqual(d.decode(d.encode(ok)), ok)
  const cases: [string, unknown, RegExp][] = [
    ["a", 128, /128 is outside the int8 range \[-128, 127\]/],
    ["b", -1, /outside the uint8 range/],
    ["c", 40000, /outside the int16 range/],
    ["d", 65536, /outside the uint16 range/],
    ["e", 2147483648, /outside the int32 range/],
    ["f", -1, /outside the uint32 range/],
    ["g", 256, /outside the byte range/],
    ["h", 1.5, /char value 1.5 is not an integer/],
    ["e", NaN, /not an integer/],
    ["a", 1n, /expected a number/],
  ]
  for (const [k, v, re] of cases) codecError(() => d.encode({ ...ok, [k]: v }), k, re)
})

// ------------------------------------------------------------------------------ bounds

test("bounds are enforced on encode with the field path and the bound", () => {
  const d = desc("test_msgs/srv/Everything_Request")
  const good = sampleValue("test_msgs/srv/Everything_Request", d.definitions, "max") as any
  d.encode(good)
  const edit = (f: (v: any) => void): unknown => {
    const v = structuredClone(good)
    f(v)
    return v
  }
  codecError(() => d.encode(edit((v) => (v.note = "x".repeat(17)))), "note", /17 UTF-8 bytes exceeds the bound string<=16/)
  codecError(() => d.encode(edit((v) => (v.note = "é".repeat(9)))), "note", /18 UTF-8 bytes exceeds the bound string<=16/)
  codecError(() => d.encode(edit((v) => v.arrays.int32_bounded.push(1))), "arrays.int32_bounded", /4 elements exceed the bound of int32\[<=3\]/)
  codecError(() => d.encode(edit((v) => (v.arrays.int32_fixed = [1, 2]))), "arrays.int32_fixed", /int32\[3\] needs exactly 3 elements, got 2/)
  codecError(() => d.encode(edit((v) => (v.arrays.uint8_bounded = new Uint8Array(5)))), "arrays.uint8_bounded", /5 elements exceed the bound of uint8\[<=4\]/)
  codecError(() => d.encode(edit((v) => (v.arrays.bounded_wstring = "abcde"))), "arrays.bounded_wstring", /5 UTF-16 code units exceeds the bound wstring<=4/)
  codecError(() => d.encode(edit((v) => (v.arrays.bounded_string_bounded[1] = "abcde"))), "arrays.bounded_string_bounded[1]", /exceeds the bound string<=4/)
  codecError(() => d.encode(edit((v) => (v.nested.labels_fixed[1].text = "123456789"))), "nested.labels_fixed[1].text", /9 UTF-8 bytes exceeds the bound string<=8/)
  codecError(() => d.encode(edit((v) => v.nested.defaults_bounded.push(v.nested.defaults_bounded[0]))), "nested.defaults_bounded", /3 elements exceed the bound of test_msgs\/msg\/Defaults\[<=2\]/)
  const res = desc("test_msgs/srv/Everything_Response")
  codecError(() => res.encode({ points: [], checksum: 0n, tags: ["a", "b", "c"] }), "tags", /3 elements exceed the bound of string<=4\[<=2\]/)
})

test("bounds are enforced on decode too", () => {
  // encode with unbounded twins, decode with the bounded type
  const loose = adhoc("string s\nint32[] a\nwstring w\n")
  const tight = adhoc("string<=3 s\nint32[<=2] a\nwstring<=2 w\n")
  tight.decode(loose.encode({ s: "abc", a: [1, 2], w: "ab" }))
  codecError(() => tight.decode(loose.encode({ s: "abcd", a: [], w: "" })), "s", /string of 4 bytes exceeds the bound string<=3/)
  codecError(() => tight.decode(loose.encode({ s: "", a: [1, 2, 3], w: "" })), "a", /sequence of 3 elements exceeds the bound of int32\[<=2\]/)
  codecError(() => tight.decode(loose.encode({ s: "", a: [], w: "abc" })), "w", /wstring of 3 code units exceeds the bound wstring<=2/)
  const nested = adhoc("Inner[<=1] xs\n", [{ file: "t/msg/Inner.msg", text: "uint8[<=2] b\n" }])
  const looseNested = adhoc("Inner[] xs\n", [{ file: "t/msg/Inner.msg", text: "uint8[] b\n" }])
  codecError(() => nested.decode(looseNested.encode({ xs: [{ b: new Uint8Array(3) }] })), "xs[0].b", /3 elements exceeds the bound of uint8\[<=2\]/)
})

// ------------------------------------------------------------------------------ bad input

test("wrong shapes are refused with the field named", () => {
  const d = desc("std_msgs/msg/Header")
  codecError(() => d.encode({ stamp: { sec: 1 }, frame_id: "" }), "stamp.nanosec", /missing field \(uint32\)/)
  codecError(() => d.encode({ stamp: { sec: 1, nanosec: 0, nsec: 3 }, frame_id: "" }), "stamp.nsec", /unknown field/)
  codecError(() => d.encode({ stamp: 5, frame_id: "" }), "stamp", /expected an object/)
  codecError(() => d.encode({ stamp: { sec: 1, nanosec: 0 }, frame_id: 3 }), "frame_id", /expected a string, got 3$/)
  // (an integer the CLI read from YAML is a bigint: said as a number, not in JavaScript's `5n`)
  codecError(() => d.encode({ stamp: { sec: 1, nanosec: 0 }, frame_id: 5n }), "frame_id", /expected a string, got the integer 5$/)
  codecError(() => d.encode({ stamp: { sec: 1, nanosec: 0 }, frame_id: "\ud800" }), "frame_id", /lone UTF-16 surrogate/)
  codecError(() => d.encode(null), "", /expected an object/)
  const img = desc("sensor_msgs/msg/CompressedImage")
  const base = { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "" }, format: "" }
  codecError(() => img.encode({ ...base, data: "abc" }), "data", /expected an array/)
  codecError(() => img.encode({ ...base, data: [1, 256] }), "data[1]", /outside the uint8 range/)
  assert.deepEqual(img.decode(img.encode({ ...base, data: [1, 255] })).data, Uint8Array.of(1, 255))
  const b = adhoc("bool[] b\n")
  codecError(() => b.encode({ b: [true, 1] }), "b[1]", /expected a boolean/)
})

test("truncated data is a CodecError at every length, never a RangeError", () => {
  for (const name of ["test_msgs/srv/Everything_Request", "sensor_msgs/msg/CompressedImage", "test_msgs/msg/Primitives"]) {
    const d = desc(name)
    const full = d.encode(sampleValue(name, d.definitions, "max"))
    for (let n = 0; n < full.length; n++) {
      assert.throws(() => d.decode(full.subarray(0, n)), CodecError, `${name} cut at ${n} of ${full.length}`)
    }
  }
})

test("corrupt data is refused", () => {
  const d = adhoc("bool b\nstring s\n")
  codecError(() => d.decode(bytes("00 00 00 00 01 00 00 00 01 00 00 00 00")), "", /only CDR little-endian/)
  codecError(() => d.decode(bytes("00 01 00 00 02 00 00 00 01 00 00 00 00")), "b", /bool byte is 2/)
  codecError(() => d.decode(bytes("00 01 00 00 01 00 00 00 02 00 00 00 ff 00")), "s", /not valid UTF-8/)
  codecError(() => d.decode(bytes("00 01 00 00 01 00 00 00 02 00 00 00 61 62")), "s", /not NUL-terminated/)
  // a sequence count larger than the data
  codecError(() => adhoc("int8[] a\n").decode(bytes("00 01 00 00 ff ff ff 7f 00")), "a", /truncated/)
  // padding up to 3 bytes after the message is accepted (RTPS pads to 4); more is not this type
  const e = desc("std_srvs/srv/Empty_Request")
  assert.deepEqual(e.decode(bytes("00 01 00 00 00 00 00 00")), {})
  codecError(() => e.decode(bytes("00 01 00 00 00 00 00 00 00")), "", /4 bytes left over/)
})

test("decoded byte arrays are copies, not views of the input", () => {
  const d = desc("sensor_msgs/msg/CompressedImage")
  const buf = d.encode({ header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "" }, format: "", data: Uint8Array.of(9, 9) })
  const v = d.decode(buf)
  buf.fill(0)
  assert.deepEqual(v.data, Uint8Array.of(9, 9))
})

// ------------------------------------------------------------------------------ defaults

test("defaults() honours declared defaults and zeroes the rest", () => {
  const d = desc("test_msgs/msg/Defaults")
  const v = d.defaults()
  assert.deepStrictEqual(v, {
    flag: true, small_byte: 7, letter: 65, tiny: -5, level: 200, temperature: -300, port: 8080, count: 42,
    mask: 4294967295, big: -9007199254740993n, huge: 18446744073709551615n, ratio: 0.5, precise: -1.25e-3,
    name: 'Robot "R2"\tunit', single_quoted: "it's here", unquoted: "hello",
    escapes: "tab\tnewline\nbackslash\\ hexA unicodeé", bounded_name: "short", wide_name: "wide é",
    fixed_ints: [1, -2, 3], floats: [1.5, -0.25], flags: [true, false, true], fixed_bytes: Uint8Array.of(0, 255),
    bigs: [-(2n ** 63n), 2n ** 63n - 1n], names: ["a", "b c", "d,e"], short_names: ["ab", "xyz"],
  })
  // a fresh object every time
  ;(v.fixed_ints as number[]).push(4)
  assert.deepEqual(d.defaults().fixed_ints, [1, -2, 3])
  assert.deepStrictEqual(d.decode(d.encode(d.defaults())), d.defaults())
  const n = desc("test_msgs/msg/Nested").defaults()
  assert.deepEqual(n.labels_fixed, [{ id: 0, text: "" }, { id: 0, text: "" }])
  assert.deepEqual(n.labels_unbounded, [])
  assert.equal(n.primitives.int64_value, 0n)
  assert.equal(n.primitives.wstring_value, "")
  assert.deepEqual(desc("test_msgs/msg/Arrays").defaults().uint8_fixed, new Uint8Array(4))
})

// ------------------------------------------------------------------------------ vs foxglove


test("bytes agree with @foxglove/rosmsg2-serialization for every type it supports", () => {
  let compared = 0
  for (const name of all.messages.keys()) {
    const d = desc(name)
    if (usesWstring(d.definitions)) continue
    const writer = new MessageWriter(foxgloveDefs(d.definitions))
    const reader = new MessageReader(foxgloveDefs(d.definitions))
    for (const kind of SAMPLE_KINDS) {
      const v = asciiOnly(sampleValue(name, d.definitions, kind))
      const ours = d.encode(v)
      assert.equal(hex(ours), hex(writer.writeMessage(v)), `${name} (${kind}) encode`)
      assert.deepStrictEqual(plain(reader.readMessage(ours)), plain(v), `${name} (${kind}) foxglove decodes ours`)
      compared++
    }
  }
  assert.ok(compared >= 30, `compared ${compared} values`)
})
