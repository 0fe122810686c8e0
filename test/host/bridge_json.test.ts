// The bridge's JSON rules (packages/host/src/calls/json.ts): exact int64 both ways, base64 bytes, defaults for
// missing fields, clear errors for unknown or mistyped ones.
import assert from "node:assert/strict"
import { test } from "node:test"
import { fromJson, parseJson, stringifyJson, toJson, ValueError } from "../../packages/host/src/calls/json"
import { AddTwoInts, TakePicture } from "../../packages/host/src/gen/interfaces"
import { startBridge } from "../../packages/host/src/bridge/server"
import { demoMemoryNode } from "../../packages/host/src/demo/demo"
import { CallPipeline } from "../../packages/host/src/calls/pipeline"
import { serviceTypes } from "../../packages/host/src/gen/interfaces"

test("parseJson keeps integers beyond 2^53 exact and everything else as JSON.parse does", () => {
  const table: [string, unknown][] = [
    ['{"a": 9223372036854775807}', { a: 9223372036854775807n }],
    ['{"a": -9223372036854775808, "b": [18446744073709551615, 1.5e300, -0.25]}', { a: -9223372036854775808n, b: [18446744073709551615n, 1.5e300, -0.25] }],
    ['{"s": "1234567890123456789", "n": 9007199254740991}', { s: "1234567890123456789", n: 9007199254740991 }],
    ['{"s": "\\u00e9\\"x", "t": true, "f": false, "z": null, "e": {}, "l": []}', { s: 'é"x', t: true, f: false, z: null, e: {}, l: [] }],
    ['[1, 12345678901234567]', [1, 12345678901234567n]],
  ]
  for (const [text, want] of table) assert.deepEqual(parseJson(text), want, text)
  for (const bad of ['{"a": 12345678901234567', '{"a": 12345678901234567,}', "{a: 12345678901234567}", '[12345678901234567] x', '{"a": 01234567890123456}']) {
    assert.throws(() => parseJson(bad), SyntaxError, bad)
  }
  // "__proto__" is an ordinary key, not a prototype change
  const p = parseJson('{"__proto__": {"x": 1}, "n": 12345678901234567}') as Record<string, unknown>
  assert.equal(Object.getPrototypeOf(p), Object.prototype)
  assert.deepEqual(Object.keys(p), ["__proto__", "n"])
})

test("parseJson (issue 9): deep nesting never throws RangeError, and int64 stays exact at any depth it reads", () => {
  // 20,000 levels: the old hand-written reader overflowed the stack near 5,000
  const deep = "[".repeat(20000) + "1" + "]".repeat(20000)
  let v = parseJson(deep)
  for (let i = 0; i < 20000; i++) v = (v as unknown[])[0]
  assert.equal(v, 1)
  // integers beyond 2^53 nested 500 deep are read exactly (the library path)
  const exact = '{"x":'.repeat(500) + "-9223372036854775808" + "}".repeat(500)
  let w = parseJson(exact)
  for (let i = 0; i < 500; i++) w = (w as Record<string, unknown>).x
  assert.equal(w, -(2n ** 63n))
  assert.deepEqual(parseJson("[9007199254740993, 9007199254740991, 18446744073709551615, 1e400, 12345678901234567.5]"), [
    9007199254740993n,
    9007199254740991,
    2n ** 64n - 1n,
    Infinity,
    12345678901234567.5,
  ])
  // the same depth with a long integer in it: a SyntaxError that says why, not a RangeError
  const deepBig = "[".repeat(20000) + "12345678901234567890" + "]".repeat(20000)
  assert.throws(() => parseJson(deepBig), (e: unknown) => e instanceof SyntaxError && /nested too deeply/.test(e.message))
  // malformed text names what was expected and where
  assert.throws(() => parseJson('{"a": 12345678901234567 "b": 1}'), (e: unknown) => e instanceof SyntaxError && /position 24/.test(e.message))
})

test("stringifyJson writes bigints digit for digit, bytes as base64, non-finite as null", () => {
  assert.equal(stringifyJson({ a: 2n ** 64n - 1n, b: -(2n ** 63n), c: [NaN, Infinity, 1.5], d: new Uint8Array([255, 0, 1]), e: undefined, s: "\n" }), '{"a":18446744073709551615,"b":-9223372036854775808,"c":[null,null,1.5],"d":"/wAB","s":"\\n"}')
})

test("fromJson: defaults, exact int64, base64 or byte arrays, clear errors", () => {
  assert.deepEqual(fromJson(AddTwoInts.request, { a: 5 }), { a: 5n, b: 0n })
  assert.deepEqual(fromJson(AddTwoInts.request, { a: 2n ** 63n - 1n, b: "-12" }), { a: 2n ** 63n - 1n, b: -12n })
  assert.throws(() => fromJson(AddTwoInts.request, { a: 2 ** 60 }), /a: 1152921504606846976 came as a JS number beyond 2\^53/)
  assert.throws(() => fromJson(AddTwoInts.request, { a: 1.5 }), /a: expected an integer \(int64\), got 1.5/)
  assert.throws(() => fromJson(AddTwoInts.request, { c: 1 }), (e: unknown) => e instanceof ValueError && /has no field 'c' \(fields: a, b\)/.test(e.message))
  assert.throws(() => fromJson(AddTwoInts.request, [1]), /expected an object/)
  // the CLI's rules (YAML keeps integers exact; rosapi's type names): the same check, stricter
  const cli = { intStrings: false, typeName: (t: string) => t.replace("/srv/", "/") }
  assert.throws(() => fromJson(AddTwoInts.request, { b: "-12" }, cli), /^ValueError: b: expected an integer \(int64\), got the string '-12'; write it without quotes$/)
  assert.throws(() => fromJson(AddTwoInts.request, { c: 1 }, cli), /c: example_interfaces\/AddTwoInts_Request has no field 'c'/)
  const img = TakePicture.response
  const v = fromJson(img, { image: { format: "jpeg", data: "/9j/" }, width: 2 }) as any
  assert.deepEqual([...v.image.data], [0xff, 0xd8, 0xff])
  assert.equal(v.image.header.frame_id, "")
  assert.deepEqual([...(fromJson(img, { image: { data: [1, 2, 255] } }) as any).image.data], [1, 2, 255])
  assert.throws(() => fromJson(img, { image: { data: [256] } }), /image\.data: byte values must be integers 0\.\.255, got 256/)
  assert.throws(() => fromJson(img, { image: { data: "not base64!" } }), /image\.data: not a base64 string/)
  assert.throws(() => fromJson(img, { image: { header: { stamp: { secs: 1 } } } }), /image\.header\.stamp\.secs: builtin_interfaces\/msg\/Time has no field 'secs'/)
  // round trip through the codec and back to JSON
  const enc = img.encode(v)
  assert.deepEqual(toJson(img, img.decode(enc)), { image: { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: "" }, format: "jpeg", data: "/9j/" }, width: 2, height: 0 })
})

test("startBridge names the problem when the port is taken", async () => {
  const node = demoMemoryNode()
  const a = await startBridge({ node, port: 0, typeRegistry: serviceTypes })
  try {
    await assert.rejects(startBridge({ node, port: a.port, typeRegistry: serviceTypes }), new RegExp(`port ${a.port} on 127\\.0\\.0\\.1 is in use .*--port`))
  } finally {
    await a.close()
  }
})

test("a service whose type the bridge has no definition of: unimplemented, saying the bridge reads the interface roots when it starts", async () => {
  // (a user adds a .srv and rebuilds the firmware while the bridge runs: the robot lists the new
  // service, the bridge has no definition of its type until it is started again)
  const node = demoMemoryNode()
  const p = new CallPipeline(node, {})
  try {
    await assert.rejects(p.resolve("/add_two_ints"), (e: any) => {
      assert.equal(e.code, "unimplemented")
      assert.match(e.detail, /^the bridge has no definition of example_interfaces\/srv\/AddTwoInts: its \.srv was not under the project's interface roots \(devs\.json "interfaces"\) when the bridge started; a type added since needs the bridge restarted$/)
      return true
    })
  } finally {
    p.close()
    await node.close()
  }
})
