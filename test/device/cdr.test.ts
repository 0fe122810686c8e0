// The device CDR runtime (packages/device/src/cdr/cdr.ts) in the VM: exact bytes for each primitive, alignment,
// strings, 64-bit policy, floats (NaN, infinities, -0), bounds, truncation, and messages whose
// bytes are served from segments (a large ByteSource is never copied).
// flock /tmp/devs.lock npx devs run test/device/cdr.test.ts --test --test-self-exit
import { describe, expect, test } from "@devicescript/test"
import { CdrReader, CdrWriter, K, readArr, readFixedBytes, readWstring, Segments, writeArr, writeFixedBytes, writeWstring } from "@robot-services/device/src/cdr/cdr"
import { ByteSource } from "@robot-services/device"
import * as ds from "@devicescript/core"
import { eq, fail, hexOf, throwsInvalid } from "./cdr_util"

const FLOAT32_MIN_SUBNORMAL = 1.401298464324817e-45

function reader(h: string) {
    return new CdrReader(Buffer.from(h, "hex"))
}

/** byte i = (i * 31 + 7) & 255, computed on demand; counts reads */
class Pattern implements ByteSource {
    length: number
    reads = 0
    constructor(n: number) {
        this.length = n
    }
    async read(offset: number, length: number): Promise<Buffer> {
        this.reads++
        if (offset + length > this.length) length = this.length - offset
        const b = Buffer.alloc(length)
        for (let i = 0; i < length; i++) b[i] = ((offset + i) * 31 + 7) & 255
        return b
    }
}

/** an empty float64 sequence followed by a u8: no alignment padding for elements that are not there */
function seqThenU8() {
    const w = new CdrWriter()
    writeArr(w, K.F64, [], -1, -1, "none")
    w.u8(7)
    return w
}

describe("cdr writer", () => {
    test("header and int64 pair (AddTwoInts request)", async () => {
        const w = new CdrWriter()
        w.i64(1)
        w.i64(-2)
        eq("hex", await hexOf(w), "00010000" + "0100000000000000" + "feffffffffffffff")
    })
    test("empty message is the header only until the codec adds its placeholder", async () => {
        eq("hex", await hexOf(new CdrWriter()), "00010000")
    })
    test("alignment is relative to the end of the header", async () => {
        const w = new CdrWriter()
        w.u8(1)
        w.u16(0x0203)
        w.u8(4)
        w.u32(0x05060708)
        w.u8(9)
        w.f64(1)
        w.bool(true)
        w.i16(-2)
        w.i8(-1)
        w.i32(-3)
        eq("hex", await hexOf(w), "00010000" + "01000302" + "04000000" + "08070605" + "09000000" + "000000000000f03f" + "0100feff" + "ff000000" + "fdffffff")
    })
    test("values crossing a 64-byte chunk boundary land in the right chunk", async () => {
        for (let lead = 52; lead <= 68; lead++) {
            await ds.sleep(0) // about 10000 calls + loop iterations are allowed between yields
            const w = new CdrWriter()
            let want = "00010000"
            for (let i = 0; i < lead; i++) {
                w.u8(0x5a)
                want += "5a"
            }
            // u32 aligned to 4 after the header
            while ((want.length / 2 - 4) % 4) want += "00"
            w.u32(0x11223344)
            want += "44332211"
            w.string("")
            want += "0100000000"
            w.bool(true)
            want += "01"
            w.i16(-2)
            while ((want.length / 2 - 4) % 2) want += "00"
            want += "feff"
            w.f64(1)
            while ((want.length / 2 - 4) % 8) want += "00"
            want += "000000000000f03f"
            eq("lead " + lead, await hexOf(w), want)
        }
    })
    test("integer ranges are enforced", () => {
        const w = new CdrWriter()
        throwsInvalid("u8 256", () => w.u8(256, "level"), "level: 256 is not a uint8 (0 .. 255)")
        throwsInvalid("u8 -1", () => w.u8(-1), "uint8")
        throwsInvalid("i8 128", () => w.i8(128), "int8")
        throwsInvalid("u16", () => w.u16(65536), "uint16")
        throwsInvalid("i16", () => w.i16(-32769), "int16")
        throwsInvalid("u32", () => w.u32(4294967296), "uint32")
        throwsInvalid("i32", () => w.i32(2147483648), "int32")
        throwsInvalid("fraction", () => w.i32(1.5), "1.5 is not a int32")
        // (a number as the VM prints it: exact up to 15 significant digits)
        throwsInvalid("large", () => w.u32(1e20, "n"), "n: 100000000000000000000 is not a uint32 (0 .. 4294967295)")
        throwsInvalid("NaN int", () => w.u16(NaN), "uint16")
        throwsInvalid("not a number", () => w.u8("5" as any, "level"), "level: 5 is not a uint8 (0 .. 255)")
        throwsInvalid("undefined", () => w.i32(undefined, "n"), "n: undefined is not a int32")
        throwsInvalid("Infinity int", () => w.u32(Infinity), "uint32: Infinity is not a uint32")
        throwsInvalid("bool", () => w.bool(1 as any, "flag"), "flag: expected true or false")
        throwsInvalid("f32 range", () => w.f32(1e39, "x"), "x: ")
        throwsInvalid("string type", () => w.string(5 as any, -1, "name"), "name: expected a string")
    })
    test("int64/uint64 within +-(2^53-1) are exact", async () => {
        const w = new CdrWriter()
        w.i64(9007199254740991)
        w.i64(-9007199254740991)
        w.u64(9007199254740991)
        w.u64(0)
        w.i64(-1)
        w.u64(4294967296)
        const h = await hexOf(w)
        eq("hex", h, "00010000" + "ffffffffffff1f00" + "010000000000e0ff" + "ffffffffffff1f00" + "0000000000000000" + "ffffffffffffffff" + "0000000001000000")
        const r = reader(h)
        eq("i64 max", r.i64(), 9007199254740991)
        eq("i64 min", r.i64(), -9007199254740991)
        eq("u64 max", r.u64(), 9007199254740991)
        eq("u64 0", r.u64(), 0)
        eq("i64 -1", r.i64(), -1)
        eq("u64 2^32", r.u64(), 4294967296)
    })
    test("int64/uint64 outside +-(2^53-1) are refused on encode", () => {
        const w = new CdrWriter()
        // an integer beyond the range as its two halves, hi * 2^32 + lo (hi = floor(v / 2^32)): exact
        throwsInvalid("2^53", () => w.i64(9007199254740992, "a"), "a: 2097152 * 2^32 + 0 is not exactly representable on the device (|v| <= 2^53-1)")
        throwsInvalid("2^53+2", () => w.i64(9007199254740994, "a"), "a: 2097152 * 2^32 + 2 is not exactly representable")
        throwsInvalid("-2^53", () => w.i64(-9007199254740992, "a"), "a: -2097152 * 2^32 + 0 is not exactly representable")
        throwsInvalid("-2^53-2", () => w.i64(-9007199254740994, "a"), "a: -2097153 * 2^32 + 4294967294 is not exactly representable")
        throwsInvalid("2^63", () => w.i64(9223372036854775808, "a"), "a: 2147483648 * 2^32 + 0 is not exactly")
        throwsInvalid("u64 -1", () => w.u64(-1, "b"), "b: -1 is not exactly representable")
        throwsInvalid("u64 2^64", () => w.u64(18446744073709551616, "b"), "b: 4294967296 * 2^32 + 0 is not exactly representable")
        throwsInvalid("fraction", () => w.i64(0.5, "c"), "c: 0.5 is not exactly")
        throwsInvalid("NaN", () => w.i64(NaN), "int64: NaN is not exactly")
        throwsInvalid("Infinity", () => w.u64(Infinity), "uint64: Infinity is not exactly")
        throwsInvalid("not a number", () => w.i64("12" as any, "a"), "a: 12 is not exactly")
        throwsInvalid("u64 not a number", () => w.u64(true as any), "uint64: true is not exactly")
        throwsInvalid("-Infinity", () => w.i64(-Infinity), "int64: -Infinity is not exactly")
        // 16 digits and more by the halves (the VM prints 15 significant digits)
        throwsInvalid("u64 -(2^53-1)", () => w.u64(-9007199254740991), "uint64: -2097152 * 2^32 + 1 is not exactly")
        eq("size unchanged after refusals", w.size(), 4)
    })
    test("int64/uint64 outside +-(2^53-1) are refused on decode, with the exact value as hi * 2^32 + lo", () => {
        // the two 32-bit halves as read: hi signed for int64 (unsigned for uint64), lo unsigned
        throwsInvalid("2^53+1", () => reader("000100000100000000002000").i64("sum"), "sum: 2097152 * 2^32 + 1 is not exactly representable on the device (|v| <= 2^53-1)")
        throwsInvalid("2^53", () => reader("000100000000000000002000").i64("sum"), "sum: 2097152 * 2^32 + 0 is not")
        throwsInvalid("-2^53", () => reader("00010000000000000000e0ff").i64("sum"), "sum: -2097152 * 2^32 + 0 is not")
        throwsInvalid("-2^53-1", () => reader("00010000ffffffffffffdfff").i64("sum"), "sum: -2097153 * 2^32 + 4294967295 is not")
        throwsInvalid("int64 min", () => reader("000100000000000000000080").i64(), "int64: -2147483648 * 2^32 + 0 is not")
        throwsInvalid("int64 max", () => reader("00010000ffffffffffffff7f").i64(), "int64: 2147483647 * 2^32 + 4294967295 is not")
        throwsInvalid("uint64 max", () => reader("00010000ffffffffffffffff").u64("u"), "u: 4294967295 * 2^32 + 4294967295 is not")
        throwsInvalid("uint64 2^53", () => reader("000100000000000000002000").u64("u"), "u: 2097152 * 2^32 + 0 is not")
        eq("-2^53+1 ok", reader("00010000010000000000e0ff").i64(), -9007199254740991)
    })
    test("floats: NaN and infinities round-trip bit-exactly", async () => {
        const w = new CdrWriter()
        w.f32(NaN)
        w.f32(Infinity)
        w.f32(-Infinity)
        w.f32(FLOAT32_MIN_SUBNORMAL)
        w.f64(NaN)
        w.f64(-Infinity)
        w.f32(3.4028234663852886e38)
        w.f64(-1.7976931348623157e308)
        w.f64(2.2250738585072014e-308)
        const h = await hexOf(w)
        eq("hex", h, "00010000" + "0000c07f" + "0000807f" + "000080ff" + "01000000" + "000000000000f87f" + "000000000000f0ff" + "ffff7f7f" + "00000000" + "ffffffffffffefff" + "0000000000001000")
        const r = reader(h)
        const f1 = r.f32()
        expect(f1 !== f1).toBe(true)
        eq("f32 inf", r.f32(), Infinity)
        eq("f32 -inf", r.f32(), -Infinity)
        eq("f32 subnormal (a normal double)", r.f32(), FLOAT32_MIN_SUBNORMAL)
        const d1 = r.f64()
        expect(d1 !== d1).toBe(true)
        eq("f64 -inf", r.f64(), -Infinity)
        eq("f32 max", r.f32(), 3.4028234663852886e38)
        eq("f64 -max", r.f64(), -1.7976931348623157e308)
        eq("f64 min normal", r.f64(), 2.2250738585072014e-308)
    })
    test("VM limits (documented): -0 reads as +0, float64 subnormals read as 0", async () => {
        const r = reader("00010000" + "00000080" + "00000000" + "0000000000000080" + "0100000000000000")
        const z32 = r.f32()
        eq("f32 -0", z32, 0)
        eq("f32 -0 has no sign", 1 / z32, Infinity)
        const z64 = r.f64()
        eq("f64 -0", z64, 0)
        eq("f64 subnormal flushed", r.f64(), 0)
        const w = new CdrWriter()
        w.f64(z64)
        eq("re-encoded as +0", await hexOf(w), "000100000000000000000000")
    })
    test("strings: UTF-8 with length incl. NUL, non-ASCII and emoji", async () => {
        const w = new CdrWriter()
        w.string("")
        w.string("hé😀")
        w.u8(7)
        w.string("ab", 2)
        const h = await hexOf(w)
        eq("hex", h, "00010000" + "0100000000" + "000000" + "08000000" + "68c3a9f09f988000" + "07000000" + "03000000616200")
        const r = reader(h)
        eq("empty", r.string(), "")
        eq("emoji", r.string(), "hé😀")
        eq("u8", r.u8(), 7)
        eq("bounded", r.string(2, "s"), "ab")
    })
    test("wstring: UTF-16 code units, one u32 each; bound counts code units", async () => {
        const w = new CdrWriter()
        writeWstring(w, "aé😀", 4, "ws")
        const h = await hexOf(w)
        eq("hex", h, "00010000" + "04000000" + "61000000" + "e9000000" + "3dd80000" + "00de0000")
        eq("back", readWstring(reader(h), 4, "ws"), "aé😀")
        throwsInvalid("bound", () => writeWstring(new CdrWriter(), "aé😀", 3, "ws"), "ws: wstring of 4 UTF-16 code units exceeds the bound wstring<=3")
        throwsInvalid("decode bound", () => readWstring(reader(h), 3, "ws"), "ws: wstring of 4 UTF-16 code units exceeds the bound wstring<=3")
        throwsInvalid("lone surrogate", () => readWstring(reader("00010000" + "01000000" + "3dd80000")), "lone UTF-16 surrogate")
        throwsInvalid("> 0xffff", () => readWstring(reader("00010000" + "01000000" + "00000100")), "does not fit in UTF-16")
    })
    test("string bounds on encode and decode name the bound", () => {
        throwsInvalid("encode", () => new CdrWriter().string("héllo", 5, "name"), "name: string of 6 UTF-8 bytes exceeds the bound string<=5")
        throwsInvalid("decode", () => reader("00010000" + "07000000" + "68c3a96c6c6f00").string(5, "name"), "name: string of 6 UTF-8 bytes exceeds the bound string<=5")
        throwsInvalid("no NUL", () => reader("00010000" + "0300000061626300").string(), "not NUL-terminated")
        throwsInvalid("bad utf8", () => reader("00010000" + "0300000061ff00").string(-1, "t"), "t: string is not valid UTF-8")
        throwsInvalid("encoded surrogate", () => reader("00010000" + "04000000eda08000").string(), "not valid UTF-8")
    })
    test("sequences and fixed arrays: counts and bounds", async () => {
        const w = new CdrWriter()
        writeArr(w, K.I32, [1, -1], -1, 3, "ints")
        writeArr(w, K.Bool, [true, false], 2, -1, "flags")
        writeArr(w, K.Str, ["ab", "c"], -1, -1, "names", 4)
        writeArr(w, K.F64, [], -1, 2, "none")
        const h = await hexOf(w)
        eq("hex", h, "00010000" + "02000000" + "01000000" + "ffffffff" + "0100" + "0000" + "02000000" + "03000000616200" + "00" + "020000006300" + "0000" + "00000000")
        const r = reader(h)
        const ints = readArr(r, K.I32, -1, 3, "ints")
        eq("ints", ints.length + ":" + ints[0] + ":" + ints[1], "2:1:-1")
        const flags = readArr(r, K.Bool, 2, -1, "flags")
        eq("flags", flags[0] + ":" + flags[1], "true:false")
        const names = readArr(r, K.Str, -1, -1, "names", 4)
        eq("names", names.join(","), "ab,c")
        eq("none", readArr(r, K.F64, -1, 2, "none").length, 0)
        r.end()
        throwsInvalid("seq bound", () => writeArr(new CdrWriter(), K.I32, [1, 2, 3, 4], -1, 3, "ints"), "ints: 4 elements exceed the bound <=3")
        throwsInvalid("fixed", () => writeArr(new CdrWriter(), K.Bool, [true], 2, -1, "flags"), "flags: needs exactly 2 elements, got 1")
        throwsInvalid("elem bound", () => writeArr(new CdrWriter(), K.Str, ["abcde"], -1, -1, "names", 4), "names: string of 5 UTF-8 bytes exceeds the bound string<=4")
        throwsInvalid("decode seq bound", () => readArr(reader("00010000" + "04000000" + "00000000000000000000000000000000"), K.I32, -1, 3, "ints"), "ints: 4 elements exceed the bound <=3")
        throwsInvalid("not an array", () => writeArr(new CdrWriter(), K.I32, 5 as any, -1, -1, "ints"), "ints: expected an array")
        throwsInvalid("element range", () => writeArr(new CdrWriter(), K.U16, [1, 70000], -1, -1, "ports"), "ports[1]: 70000 is not a uint16 (0 .. 65535)")
        throwsInvalid("element type", () => writeArr(new CdrWriter(), K.F64, [1, "x" as any], -1, -1, "xs"), "xs[1]: expected a number, got x")
        throwsInvalid("bool element", () => writeArr(new CdrWriter(), K.Bool, [true, 2 as any], 2, -1, "flags"), "flags[1]: expected true or false")
        throwsInvalid("bool element decode", () => readArr(reader("00010000" + "0102"), K.Bool, 2, -1, "flags"), "flags[1]: bool byte is 2")
    })
    test("truncated input names the byte", () => {
        throwsInvalid("u32", () => reader("000100000102").u32(), "truncated at byte 6")
        throwsInvalid("f64 after u8", () => {
            const r = reader("0001000001000000000000")
            r.u8()
            r.f64()
        }, "truncated at byte 11")
        throwsInvalid("string body", () => reader("00010000" + "0500000061").string(), "truncated at byte 9")
        throwsInvalid("huge seq count", () => reader("00010000" + "ffffff7f").seqLen(-1, "data"), "truncated at byte 8")
        throwsInvalid("no header", () => new CdrReader(Buffer.from("0001", "hex")), "truncated at byte 2")
        throwsInvalid("big endian", () => reader("00000000"), "unsupported encapsulation 0000")
        throwsInvalid("bool 2", () => reader("0001000002").bool("flag"), "flag: bool byte is 2")
        throwsInvalid("left over", () => reader("00010000" + "0100000002000000").end(), "8 bytes left over")
        const r = reader("00010000" + "01" + "000000")
        r.u8()
        r.end() // up to 3 bytes of padding are fine
    })
    test("bytes: small Buffers copied, large Buffers and ByteSources referenced", async () => {
        const small = Buffer.from("0102", "hex")
        const w = new CdrWriter()
        w.bytes(small, 4, "small")
        small[0] = 9 // copied: no effect
        const h = await hexOf(w)
        eq("small", h, "00010000" + "02000000" + "0102")
        const r = reader(h)
        eq("decoded", (r.bytes(4, "small") as Buffer).toString("hex"), "0102")
        throwsInvalid("bound", () => new CdrWriter().bytes(Buffer.alloc(5), 4, "data"), "data: 5 elements exceed the bound <=4")
        throwsInvalid("decode bound", () => reader(h).bytes(1, "data"), "data: 2 elements exceed the bound <=1")
        throwsInvalid("fixed", () => writeFixedBytes(new CdrWriter(), Buffer.alloc(3), 4, "fb"), "fb: needs exactly 4 elements, got 3")
        const w2 = new CdrWriter()
        writeFixedBytes(w2, Buffer.from("00ff", "hex"), 2, "fb")
        eq("fixed bytes", await hexOf(w2), "0001000000ff")
        eq("fixed decode", readFixedBytes(reader("0001000000ff"), 2).toString("hex"), "00ff")
    })
    test("a 100 KiB ByteSource is streamed from segments, any range, any number of times", async () => {
        const n = 102400 + 3
        const p = new Pattern(n)
        const w = new CdrWriter()
        w.u32(0xaabbccdd)
        w.string("jpeg")
        w.bytes(p, -1, "data")
        w.u16(0x1234)
        w.u16(0x5678)
        eq("no reads while encoding", p.reads, 0)
        const src = w.finish()
        // 4 header + 4 u32 + 9 string + 3 pad + 4 count + n bytes + 1 pad + 2 + 2
        const dataAt = 24
        eq("length", src.length, dataAt + n + 1 + 4)
        const head = await src.read(0, dataAt)
        eq("head", head.toString("hex"), "00010000" + "ddccbbaa" + "050000006a70656700" + "000000" + "03900100")
        for (let round = 0; round < 2; round++) {
            for (let off = 0; off < src.length; off += 4999) {
                await ds.sleep(0) // the byte loop below would trip the VM's watchdog without a yield
                const chunk = await src.read(off, 230)
                const want = Math.min(230, src.length - off)
                eq("chunk length at " + off, chunk.length, want)
                for (let i = 0; i < chunk.length; i++) {
                    const at = off + i
                    let b: number
                    if (at < dataAt) b = head[at]
                    else if (at < dataAt + n) b = ((at - dataAt) * 31 + 7) & 255
                    else b = -1
                    if (b >= 0 && chunk[i] !== b) fail(`byte ${at}: ${chunk[i]} != ${b}`)
                }
            }
        }
        const tail = await src.read(src.length - 6, 100)
        eq("last data byte", tail[0], ((n - 1) * 31 + 7) & 255)
        eq("tail bytes", tail.slice(1).toString("hex"), "00" + "3412" + "7856")
        eq("past the end", (await src.read(src.length, 10)).length, 0)
        expect(p.reads > 0).toBe(true)
    })
    test("a 1500-element array is encoded and decoded within the VM's step budget", async () => {
        // numbers and bools are written/read without a call per element; arrays much larger than this do not fit the 64 KB heap anyway
        await ds.sleep(0)
        const xs: number[] = []
        for (let i = 0; i < 1500; i++) xs.push(-i * 3)
        await ds.sleep(0)
        const w = new CdrWriter()
        writeArr(w, K.I32, xs, -1, -1, "xs")
        const src = w.finish()
        eq("length", src.length, 4 + 4 + 6000)
        const back = readArr(new CdrReader(await src.read(0, src.length)), K.I32, -1, -1, "xs")
        eq("count", back.length, 1500)
        eq("last", back[1499], -4497)
        eq("empty sequence adds no padding", await hexOf(seqThenU8()), "00010000" + "00000000" + "07")
    })
    test("a Buffer longer than 32 bytes is referenced, not copied", async () => {
        const big = Buffer.alloc(40)
        big.fillAt(0, 40, 0x11)
        const w = new CdrWriter()
        w.bytes(big)
        const src = w.finish()
        big[0] = 0x22 // referenced: visible in the message
        const b = await src.read(8, 2)
        eq("first data bytes", b.toString("hex"), "2211")
    })
})

describe("cdr reader: a trailing byte array received apart (ServiceType.tail)", () => {
    test("bytes() hands over the tail itself, after the fields before it", async () => {
        // int32 a = -5, then uint8[] data of 3 bytes: prefix = header, a, count
        const tail = Buffer.from("0a0b0c", "hex")
        const r = new CdrReader(Buffer.from("00010000" + "fbffffff" + "03000000", "hex"), tail)
        eq("a", r.i32(), -5)
        const d = r.bytes(-1, "data")
        expect(d === tail).toBe(true)
        r.end()
    })
    test("an upload's tail as received, a Segments of pieces: handed over as it is, read across the pieces", async () => {
        const pieces = [Buffer.from("0a0b", "hex"), Buffer.from("0c", "hex")]
        const tail = new Segments(pieces, [2, 1], 3)
        const r = new CdrReader(Buffer.from("00010000" + "03000000", "hex"), tail)
        const d = r.bytes(-1, "data")
        expect(d === tail).toBe(true)
        eq("across pieces", (await tail.read(1, 2)).toString("hex"), "0b0c")
        eq("pieces", tail.segs.length, 2)
        r.end()
    })
    test("a count other than the tail's length, or over the bound, is refused naming the field", async () => {
        throwsInvalid("count", () => new CdrReader(Buffer.from("00010000" + "04000000", "hex"), Buffer.from("0a0b0c", "hex")).bytes(-1, "data"), "data: count 4, 3 bytes follow")
        throwsInvalid("bound", () => new CdrReader(Buffer.from("00010000" + "03000000", "hex"), Buffer.from("0a0b0c", "hex")).bytes(2, "data"), "exceed the bound <=2")
    })
})
