// Device CDR runtime: ROS 2 CDR (XCDR1, little-endian) writer and reader in the DeviceScript subset.
//
// Wire format (the same bytes as packages/host/src/runtime/codec.ts):
//   - a 4-byte encapsulation header 00 01 00 00 (CDR_LE), then the fields in order;
//   - every primitive is aligned to its own size (1, 2, 4, 8), counted from the byte after the header;
//   - string: u32 length including the NUL, the UTF-8 bytes, a NUL;
//   - wstring: u32 count of UTF-16 code units, then each code unit as a u32 (Fast-CDR 1.x / the host);
//   - sequences (T[], T[<=N]): u32 element count, then the elements; fixed arrays T[N]: elements only;
//   - an empty message is one placeholder byte (the generated codecs write and read it).
//
// 64-bit integers (docs/int64.md): int64/uint64 are `number` on the device, exact only within
// +-(2^53-1) (uint64: 0 .. 2^53-1). Anything else is refused with
// ServiceError(InvalidArgument, "<what>: <value> is not exactly representable on the device (|v| <= 2^53-1)")
// on encode and on decode; a value is never silently different. The value is named exactly: read
// from the wire, or of 16 digits and more (the VM prints 15), by its two 32-bit halves,
// "hi * 2^32 + lo" (hi = floor(v / 2^32), signed for int64; lo in 0 .. 2^32-1): "2097152 * 2^32 + 1"
// is 2^53+1. Other values (0.5, NaN, Infinity, -1 as a uint64) as the VM prints them.
//
// Floats: NaN and +-Infinity round-trip. Two limits of the DeviceScript VM (2.16.4), not of this
// code: it has no -0 (a -0 decoded, stored or passed anywhere becomes +0, so it is encoded as +0),
// and it flushes float64 subnormals (|v| < 2.2250738585072014e-308) to 0. float32 subnormals are
// normal doubles and are exact. See docs/int64.md.
//
// Every error is a ServiceError with Status.InvalidArgument. The optional `what` argument names the
// field in messages (the generated codecs pass the field name).
//
// Code size: the DeviceScript compiler compiles every method of a class, used or not, but drops
// module-level functions nobody calls. So the classes hold only what most messages need; the
// encoders/decoders that only some message types use are functions after the classes
// (writeArr/readArr, writeArrC/readArrC, writeFixedBytes/readFixedBytes, writeWstring/readWstring),
// and a firmware whose messages do not use them does not carry them. Conditions without an else are
// nested ifs rather than `&&` (the compiler keeps a `&&`'s operands in a temporary: about 8 bytes more).
import "./strings" // first: see strings.ts
import { ByteSource, Bytes, ServiceError, Status } from "./types"

/** CDR codec of one message type (generated), or of one field of a message (the field codecs below). */
export interface MessageCodec<T> {
    /** full ROS name, e.g. `std_msgs/msg/Header` ("" for a field codec) */
    name: string
    /** `what`: the field being written, for error messages (field codecs use it; messages do not) */
    encode(w: CdrWriter, v: T, what?: string): void
    decode(r: CdrReader, what?: string): T
}

/** Descriptor of one service type (generated), what `createService` takes. */
export interface ServiceType<Req, Res> {
    /** full ROS name, e.g. `example_interfaces/srv/AddTwoInts` */
    name: string
    /** first 4 bytes of the sha256 of the definition, as an unsigned number */
    hash: number
    request: MessageCodec<Req>
    response: MessageCodec<Res>
    /**
     * Generated when the request is fixed-size fields and then one byte array: the offset in its
     * CDR where the array's bytes start. The device then receives the array in pieces of 1 KiB
     * and gives it to the handler uncopied, as a Segments (uploads up to maxRequestBytes).
     */
    tail?: number
}

/** Element kinds of primitive arrays (`writeArr`, `readArr`). */
export const enum K {
    Bool = 0,
    U8 = 1,
    I8 = 2,
    U16 = 3,
    I16 = 4,
    U32 = 5,
    I32 = 6,
    I64 = 7,
    U64 = 8,
    F32 = 9,
    F64 = 10,
    Str = 11,
    WStr = 12,
}

// Per numeric kind (up to F64): size on the wire and ROS type name. Module state is set up by
// every firmware, whether it uses it or not (and an array costs code to build), while an unused
// function is dropped: the sizes are a byte string (data, set up in one instruction), the names
// an array made by the one function that needs them (a firmware without arrays of primitives
// carried 64 bytes of code for these two tables).
const SIZE = hex`01 01 01 02 02 04 04 08 08 04 08`
function typeName(k: K): string {
    return ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64", "float32", "float64"][k]
}

const TWO32 = 4294967296
/** 2^53 - 1, the largest integer a double holds exactly together with all smaller ones */
export const MAX_SAFE = 9007199254740991
const F32_MAX = 3.4028234663852886e38
/** Buffers up to this size given to `bytes()` are copied into the message; longer ones are referenced */
const COPY_LIMIT = 32
const CHUNK = 64

function invalid(msg: string): ServiceError {
    return new ServiceError(Status.InvalidArgument, msg)
}

function label(what: string, dflt: string) {
    return what ? what : dflt
}

/** "<what>: <text> is not exactly representable ...", `what` defaulting to the type's name (the label inline) */
function notExact(what: string, unsigned: boolean, text: string): ServiceError {
    let t = "int64"
    if (unsigned) t = "uint64"
    if (what) t = what
    return invalid(`${t}: ${text} is not exactly representable on the device (|v| <= 2^53-1)`)
}

function checkBound(n: number, max: number, what: string, unit: string) {
    if (max >= 0) if (n > max) throw invalid(`${what}: ${n} ${unit} exceed the bound <=${max}`)
}

function checkFixed(n: number, len: number, what: string) {
    if (n !== len) throw invalid(`${what}: needs exactly ${len} elements, got ${n}`)
}

/** UTF-16 code units of a string (code points above U+FFFF count twice). */
function utf16Units(s: string): number {
    let n = s.length
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xffff) n++
    return n
}

/**
 * Writes one message. Starts with the encapsulation header; `finish()` gives the bytes as a
 * ByteSource. Allocates small chunks (64 bytes, or one string/array at a time); ByteSources and
 * Buffers longer than 32 bytes given to `bytes()` are kept by reference, never copied, so do not
 * change such a Buffer until the message has been sent.
 * Throws ServiceError(InvalidArgument) for a value that does not fit its type or bound.
 *
 * Code size: the writing is done by the module functions after the class (writeBool, writeU32, …,
 * `wAt`), which the generated codecs call; the methods call them. A method costs the image a
 * prototype entry (about 11 bytes) whenever its name is called anywhere, where an unused function
 * is dropped: with @devsWhenUsed, a firmware whose code calls only the functions carries no method.
 * @devsWhenUsed
 */
export class CdrWriter {
    // (internal: the module-level writers of this file use these)
    segs: Bytes[] = []
    lens: number[] = []
    base = 0
    /** the current chunk; internal (the module-level writers of this file use it with `wAt()`) */
    buf: Buffer
    n: number

    constructor() {
        this.buf = Buffer.alloc(CHUNK)
        this.buf[1] = 1
        this.n = 4
    }

    /** bytes written so far, header included */
    size(): number {
        return this.base + this.n
    }
    /** `wAt` (internal) */
    at(align: number, size: number): number {
        return wAt(this, align, size)
    }
    /** `checkInt` (internal) */
    int(v: number, lo: number, hi: number, t: string, what: string) {
        checkInt(v, lo, hi, t, what)
    }
    bool(v: boolean, what?: string) {
        writeBool(this, v, what)
    }
    /** uint8, and ROS 2 `byte` and `char` (one unsigned byte, 0 .. 255, a number) */
    u8(v: number, what?: string) {
        checkInt(v, 0, 255, "uint8", what)
        const o = wAt(this, 1, 1)
        this.buf[o] = v
    }
    i8(v: number, what?: string) {
        checkInt(v, -128, 127, "int8", what)
        const o = wAt(this, 1, 1)
        this.buf.setAt(o, "i8", v)
    }
    u16(v: number, what?: string) {
        checkInt(v, 0, 65535, "uint16", what)
        const o = wAt(this, 2, 2)
        this.buf.setAt(o, "u16", v)
    }
    i16(v: number, what?: string) {
        checkInt(v, -32768, 32767, "int16", what)
        const o = wAt(this, 2, 2)
        this.buf.setAt(o, "i16", v)
    }
    u32(v: number, what?: string) {
        writeU32(this, v, what)
    }
    i32(v: number, what?: string) {
        checkInt(v, -2147483648, 2147483647, "int32", what)
        const o = wAt(this, 4, 4)
        this.buf.setAt(o, "i32", v)
    }
    /** int64 from a number; only integers within +-(2^53-1) are accepted (docs/int64.md) */
    i64(v: number, what?: string) {
        writeI64(this, v, what)
    }
    /** uint64 from a number; only integers 0 .. 2^53-1 are accepted (docs/int64.md) */
    u64(v: number, what?: string) {
        writeU64(this, v, what)
    }
    /** float32; NaN and +-Infinity are written as such; finite values beyond the float32 range are refused */
    f32(v: number, what?: string) {
        writeF32(this, v, what)
    }
    /** float64; NaN and +-Infinity are written as such */
    f64(v: number, what?: string) {
        if (typeof v !== "number") throw invalid(`${label(what, "float64")}: expected a number, got ${v}`)
        const o = wAt(this, 8, 8)
        this.buf.setAt(o, "f64", v)
    }
    /** string: UTF-8; `max` (if >= 0) bounds the UTF-8 byte count (`string<=N`) */
    string(v: string, max?: number, what?: string) {
        writeString(this, v, max, what)
    }
    /** sequence length (T[] / T[<=max]); refuses n > max when max >= 0 */
    seqLen(n: number, max?: number, what?: string) {
        writeSeqLen(this, n, max, what)
    }
    /** a uint8[]/byte[] sequence: u32 count, then the bytes; a ByteSource (or a long Buffer) is referenced, not copied */
    bytes(v: Bytes, max?: number, what?: string) {
        writeBytes(this, v, max, what)
    }
    /** appends bytes without count or alignment */
    raw(v: Bytes) {
        writeRaw(this, v)
    }
    /** A nested message; refuses a missing value. */
    msg<T>(c: MessageCodec<T>, v: T, what?: string) {
        writeMsg(this, c, v, what)
    }
    /** The encoded message. Its `read(offset, length)` serves any range, any number of times. */
    finish(): ByteSource {
        return finishMessage(this)
    }
}

/**
 * Pads `w` to `align` (relative to the end of the header) and reserves `size` bytes; returns their
 * offset in w.buf, which it may replace: call it before reading w.buf
 * (`w.buf[wAt(w, 1, 1)] = v` would write into the previous chunk).
 */
export function wAt(w: CdrWriter, align: number, size: number): number {
    const pos = w.base + w.n
    const pad = (align - ((pos - 4) & (align - 1))) & (align - 1)
    const need = pad + size
    // (no chunk, or no room in it: without a chunk `x <= undefined` is false; one test)
    if (!(w.n + need <= w.buf?.length)) {
        cut(w)
        w.buf = Buffer.alloc(Math.max(need, CHUNK))
    }
    const o = w.n + pad
    w.n = o + size
    return o
}

/** closes the current chunk of `w` as a segment */
function cut(w: CdrWriter) {
    if (w.buf)
        if (w.n > 0) {
            w.segs.push(w.buf)
            w.lens.push(w.n)
            w.base = w.base + w.n
        }
    w.buf = null
    w.n = 0
}

/**
 * Throws InvalidArgument unless `v` is an integer in [lo, hi] (type name `t`): the range check of
 * every integer writer (the generated codecs write the fixed-size integers in place after it).
 */
export function checkInt(v: number, lo: number, hi: number, t: string, what: string) {
    // (Math.floor(v) !== v for a fraction, NaN and anything but a number)
    let bad = Math.floor(v) !== v
    if (v < lo) bad = true
    if (v > hi) bad = true
    if (bad) throw invalid(`${label(what, t)}: ${v} is not a ${t} (${lo} .. ${hi})`)
}
export function writeBool(w: CdrWriter, v: boolean, what?: string) {
    if (v !== true && v !== false) throw invalid(`${label(what, "bool")}: expected true or false, got ${v}`)
    const o = wAt(w, 1, 1)
    w.buf[o] = v ? 1 : 0
}
export function writeU32(w: CdrWriter, v: number, what?: string) {
    checkInt(v, 0, 4294967295, "uint32", what)
    const o = wAt(w, 4, 4)
    w.buf.setAt(o, "u32", v)
}
/** int64 (`unsigned`: uint64, the check from 0): one writer for both, one function less in the image */
export function writeI64(w: CdrWriter, v: number, what?: string, unsigned?: boolean) {
    // two halves by hand: `setAt(.., "i64", ..)` goes through a double and `%` is 32-bit in the VM
    const hi = Math.floor(v / TWO32)
    const lo = v - hi * TWO32
    // refused: not an integer (a fraction, NaN, anything but a number: Math.floor(v) !== v for all
    // of them), beyond +-(2^53-1) (Infinity too), or a negative uint64
    let bad = Math.floor(v) !== v
    const a = Math.abs(v)
    if (a > MAX_SAFE) bad = true
    if (unsigned) if (v < 0) bad = true
    if (bad) {
        // as the VM prints it, exact up to 15 digits; from 10^15 by its exact halves, hi * 2^32 + lo
        let text = "" + v
        if (a >= 1e15) if (a < Infinity) text = hi + " * 2^32 + " + lo
        throw notExact(what, unsigned, text)
    }
    const o = wAt(w, 8, 8)
    w.buf.setAt(o, "u32", lo)
    w.buf.setAt(o + 4, "i32", hi)
}
export function writeU64(w: CdrWriter, v: number, what?: string) {
    writeI64(w, v, what, true)
}
export function writeF32(w: CdrWriter, v: number, what?: string) {
    if (typeof v !== "number") throw invalid(`${label(what, "float32")}: expected a number, got ${v}`)
    if (v > F32_MAX || v < -F32_MAX) {
        if (v !== Infinity && v !== -Infinity) throw invalid(`${label(what, "float32")}: ${v} is outside the float32 range`)
    }
    const o = wAt(w, 4, 4)
    w.buf.setAt(o, "f32", v)
}
export function writeString(w: CdrWriter, v: string, max?: number, what?: string) {
    if (typeof v !== "string") throw invalid(`${label(what, "string")}: expected a string, got ${v}`)
    const n = v.byteLength
    if (max >= 0) if (n > max) throw invalid(`${label(what, "string")}: string of ${n} UTF-8 bytes exceeds the bound string<=${max}`)
    const o = wAt(w, 4, n + 5)
    const b = w.buf
    b.setAt(o, "u32", n + 1)
    if (n > 0) b.blitAt(o + 4, v, 0, n)
    b[o + 4 + n] = 0
}
function writeSeqLen(w: CdrWriter, n: number, max?: number, what?: string) {
    checkBound(n, max, label(what, "sequence"), "elements")
    writeU32(w, n, what)
}
export function writeBytes(w: CdrWriter, v: Bytes, max?: number, what?: string) {
    if (!v || typeof v.length !== "number") throw invalid(`${label(what, "bytes")}: expected a Buffer or ByteSource, got ${v}`)
    writeSeqLen(w, v.length, max, what)
    writeRaw(w, v)
}
function writeRaw(w: CdrWriter, v: Bytes) {
    const n = v.length
    if (n === 0) return
    if (n <= COPY_LIMIT)
        if (v instanceof Buffer) {
            const o = wAt(w, 1, n)
            w.buf.blitAt(o, v as Buffer, 0, n)
            return
        }
    cut(w)
    w.segs.push(v)
    w.lens.push(n)
    w.base = w.base + n
}
export function writeMsg<T>(w: CdrWriter, c: MessageCodec<T>, v: T, what?: string) {
    if (!v) throw invalid(`${label(what, c.name)}: missing ${c.name}`)
    c.encode(w, v)
}
/** The message `w` wrote. Its `read(offset, length)` serves any range, any number of times. */
export function finishMessage(w: CdrWriter): ByteSource {
    cut(w)
    return new Segments(w.segs, w.lens, w.base)
}

/**
 * Bytes in pieces, read on demand: an encoded message (heap chunks and referenced
 * ByteSources/Buffers), or an upload as received, whose `segs` are Buffers of at most 1 KiB (a
 * request's trailing byte array, ServiceType.tail: never one big buffer, which a busy heap may not have).
 */
export class Segments implements ByteSource {
    length: number
    constructor(public segs: Bytes[], private lens: number[], length: number) {
        this.length = length
    }
    async read(offset: number, length: number): Promise<Buffer> {
        if (offset < 0) offset = 0
        if (offset + length > this.length) length = this.length - offset
        if (!(length > 0)) return Buffer.alloc(0)
        let start = 0
        let i = 0
        // (the range within one segment, as every chunk of a large answer's byte source is: read
        // from it alone, without a second buffer of the chunk's size to copy into)
        while (i < this.segs.length - 1 && offset >= start + this.lens[i]) start += this.lens[i++]
        const one = this.segs[i]
        if (offset + length <= start + this.lens[i]) if (!(one instanceof Buffer)) return await (one as ByteSource).read(offset - start, length)
        const out = Buffer.alloc(length)
        let done = 0
        start = 0
        for (i = 0; i < this.segs.length && done < length; i++) {
            const sl = this.lens[i]
            const from = offset + done - start
            if (from < sl) {
                const k = Math.min(sl - from, length - done)
                const s = this.segs[i]
                if (s instanceof Buffer) out.blitAt(done, s as Buffer, from, k)
                else {
                    const part = await (s as ByteSource).read(from, k)
                    if (!part || part.length !== k)
                        throw new ServiceError(Status.Internal, `byte source gave ${part ? part.length : 0} bytes at ${from}, expected ${k}`)
                    out.blitAt(done, part, 0, k)
                }
                done += k
            }
            start += sl
        }
        return out
    }
}

/**
 * Reads one message from `buf` (which must start with the 00 01 header). Decoded strings and
 * byte arrays are copies. Throws ServiceError(InvalidArgument): "truncated at byte N", a bound
 * exceeded, a 64-bit value the device cannot hold exactly, invalid UTF-8, a bool byte other than 0/1.
 * The reading is done by the module functions after the class (readBool, readU32, …, `rAt`), as
 * for CdrWriter.
 * @devsWhenUsed
 */
export class CdrReader {
    /** offset of the next byte to read */
    pos = 4

    /** `tail`: the bytes of a trailing byte array received apart from `buf` (ServiceType.tail) */
    constructor(public buf: Buffer, public tail?: Bytes) {
        let n = 0
        if (buf) n = buf.length
        if (n < 4) throw invalid(`truncated at byte ${n}: shorter than the 4-byte CDR header`)
        // (bytes 00 01: the u16 0x100)
        if (buf.getAt(0, "u16") !== 0x100) {
            const h = Buffer.alloc(2)
            h.blitAt(0, buf, 0, 2)
            throw invalid(`unsupported encapsulation ${h.toString("hex")}: only CDR little-endian (00 01) is supported`)
        }
    }

    /** bytes left after `pos` */
    remaining(): number {
        return this.buf.length - this.pos
    }
    /** `rAt` (internal) */
    at(align: number, size: number): number {
        return rAt(this, align, size)
    }
    /** checks that the message used the whole buffer (up to 3 bytes of padding are allowed) */
    end() {
        const extra = this.buf.length - this.pos
        if (extra > 3) throw invalid(`${extra} bytes left over after the message`)
    }
    bool(what?: string): boolean {
        return readBool(this, what)
    }
    /** uint8, and ROS 2 `byte` and `char` */
    u8(): number {
        return this.buf[rAt(this, 1, 1)]
    }
    i8(): number {
        return this.buf.getAt(rAt(this, 1, 1), "i8")
    }
    u16(): number {
        return this.buf.getAt(rAt(this, 2, 2), "u16")
    }
    i16(): number {
        return this.buf.getAt(rAt(this, 2, 2), "i16")
    }
    u32(): number {
        return readU32(this)
    }
    i32(): number {
        return this.buf.getAt(rAt(this, 4, 4), "i32")
    }
    /** int64 as a number; refuses values outside +-(2^53-1) (docs/int64.md) */
    i64(what?: string): number {
        return readI64(this, what)
    }
    /** uint64 as a number; refuses values above 2^53-1 (docs/int64.md) */
    u64(what?: string): number {
        return readU64(this, what)
    }
    f32(): number {
        return this.buf.getAt(rAt(this, 4, 4), "f32")
    }
    f64(): number {
        return this.buf.getAt(rAt(this, 8, 8), "f64")
    }
    /** string (UTF-8, NUL-terminated on the wire); `max` (if >= 0) bounds the byte count */
    string(max?: number, what?: string): string {
        return readString(this, max, what)
    }
    /** sequence length; refuses n > max (max >= 0) and counts longer than the bytes left */
    seqLen(max?: number, what?: string): number {
        return readSeqLen(this, max, what)
    }
    /** a uint8[]/byte[] sequence, copied out of the input (the `tail` as it is: never copied) */
    bytes(max?: number, what?: string): Bytes {
        return readBytes(this, max, what)
    }
}

/**
 * Skips the padding to `align` and `size` bytes; returns their offset in r.buf. Throws
 * "truncated at byte N" if they are not there.
 */
export function rAt(r: CdrReader, align: number, size: number): number {
    // rounded up to a multiple of align counted from the byte after the 4-byte header
    const o = ((r.pos + align - 5) & -align) + 4
    if (o + size > r.buf.length) throw invalid(`truncated at byte ${r.buf.length} (${size} more needed at ${o})`)
    r.pos = o + size
    return o
}
export function readBool(r: CdrReader, what?: string): boolean {
    const b = r.buf[rAt(r, 1, 1)]
    if (b > 1) throw invalid(`${label(what, "bool")}: bool byte is ${b}, expected 0 or 1`)
    return b === 1
}
export function readU32(r: CdrReader): number {
    return r.buf.getAt(rAt(r, 4, 4), "u32")
}
/** int64 (`unsigned`: uint64): one reader for both, one function less in the image */
export function readI64(r: CdrReader, what?: string, unsigned?: boolean): number {
    const o = rAt(r, 8, 8)
    const b = r.buf
    const lo = b.getAt(o, "u32")
    let hi = b.getAt(o + 4, "i32")
    if (unsigned) hi = b.getAt(o + 4, "u32")
    // exact within +-(2^53-1); beyond, the double rounds but stays beyond (rounding is monotonic and
    // 2^53 is a double), so the test on it is exact. The error names the value by its two halves.
    const v = hi * TWO32 + lo
    if (Math.abs(v) > MAX_SAFE) throw notExact(what, unsigned, hi + " * 2^32 + " + lo)
    return v
}
export function readU64(r: CdrReader, what?: string): number {
    return readI64(r, what, true)
}
export function readString(r: CdrReader, max?: number, what?: string): string {
    const len = readU32(r)
    if (len === 0) return "" // some writers send an empty string without its NUL
    const n = len - 1
    if (max >= 0) if (n > max) throw invalid(`${label(what, "string")}: string of ${n} UTF-8 bytes exceeds the bound string<=${max}`)
    const o = rAt(r, 1, len)
    const b = r.buf
    if (b[o + n] !== 0) throw invalid(`${label(what, "string")}: string is not NUL-terminated`)
    if (n === 0) return ""
    const raw = b.slice(o, o + n)
    const s = raw.toString("utf-8")
    // the VM replaces invalid sequences with U+FFFD: re-encode and compare to refuse them
    if (s.byteLength !== n || (s.indexOf("\uFFFD") >= 0 && Buffer.from(s).toString("hex") !== raw.toString("hex")))
        throw invalid(`${label(what, "string")}: string is not valid UTF-8`)
    return s
}
function readSeqLen(r: CdrReader, max?: number, what?: string): number {
    const n = readU32(r)
    checkBound(n, max, label(what, "sequence"), "elements")
    if (n > r.buf.length - r.pos) throw invalid(`truncated at byte ${r.buf.length} (${label(what, "sequence")} claims ${n} elements)`)
    return n
}
export function readBytes(r: CdrReader, max?: number, what?: string): Bytes {
    const t = r.tail
    if (t) {
        // its count ends `buf`
        const c = readU32(r)
        checkBound(c, max, label(what, "sequence"), "elements")
        if (c !== t.length || r.pos !== r.buf.length) throw invalid(`${label(what, "bytes")}: count ${c}, ${t.length} bytes follow`)
        r.tail = null
        return t
    }
    const n = readSeqLen(r, max, what)
    const o = rAt(r, 1, n)
    return r.buf.slice(o, o + n)
}


// ---- Encoders/decoders only some message types need: module-level functions, so that a firmware
// whose messages do not use them does not carry them (see the header). Same bytes and messages as
// the methods they were; `w`/`r` is the writer/reader of the message being built/read.

/**
 * wstring: UTF-16 code units, each written as a u32; `max` (if >= 0) bounds the code unit count.
 * Throws InvalidArgument for a non-string or a bound exceeded.
 */
export function writeWstring(w: CdrWriter, v: string, max?: number, what?: string) {
    if (typeof v !== "string") throw invalid(`${label(what, "wstring")}: expected a string, got ${v}`)
    const n = utf16Units(v)
    if (max >= 0) if (n > max) throw invalid(`${label(what, "wstring")}: wstring of ${n} UTF-16 code units exceeds the bound wstring<=${max}`)
    let o = wAt(w, 4, 4 + 4 * n)
    const b = w.buf
    b.setAt(o, "u32", n)
    for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i)
        o += 4
        if (c > 0xffff) {
            b.setAt(o, "u32", 0xd800 + ((c - 0x10000) >> 10))
            o += 4
            b.setAt(o, "u32", 0xdc00 + ((c - 0x10000) & 0x3ff))
        } else b.setAt(o, "u32", c)
    }
}
/**
 * A fixed uint8[len]/byte[len] array: the bytes only (a ByteSource or a Buffer longer than 32 bytes
 * is referenced, as by `bytes()`). Throws InvalidArgument for a non-Bytes value or a length other than `len`.
 */
export function writeFixedBytes(w: CdrWriter, v: Bytes, len: number, what?: string) {
    if (!v || typeof v.length !== "number") throw invalid(`${label(what, "bytes")}: expected a Buffer or ByteSource, got ${v}`)
    checkFixed(v.length, len, label(what, "array"))
    writeRaw(w, v)
}
/** One primitive of kind `k` (strings: `max` bounds each string); the element writer of `writeArr`. */
function writePrim(w: CdrWriter, k: K, v: any, max?: number, what?: string) {
    switch (k) {
        case K.Bool: return writeBool(w, v, what)
        case K.U8: return w.u8(v, what)
        case K.I8: return w.i8(v, what)
        case K.U16: return w.u16(v, what)
        case K.I16: return w.i16(v, what)
        case K.U32: return writeU32(w, v, what)
        case K.I32: return w.i32(v, what)
        case K.I64: return writeI64(w, v, what)
        case K.U64: return writeU64(w, v, what)
        case K.F32: return writeF32(w, v, what)
        case K.F64: return w.f64(v, what)
        case K.Str: return writeString(w, v, max, what)
        default: return writeWstring(w, v, max, what)
    }
}
/**
 * An array of primitives: fixed (`len >= 0`, no count on the wire) or a sequence (`len < 0`,
 * bounded by `max` when `max >= 0`); `elemMax` bounds each string element. Numbers and bools
 * are written in one loop without a call per element (the VM allows about 10000 calls and loop
 * iterations between two yields). Throws InvalidArgument: not an array, a wrong count, a bad
 * element ("<what>[i]: ..." for numbers and bools, the scalar writer's message for strings).
 */
export function writeArr(w: CdrWriter, k: K, v: any[], len: number, max: number, what?: string, elemMax?: number) {
    if (!Array.isArray(v)) throw invalid(`${label(what, "array")}: expected an array, got ${v}`)
    const n = v.length
    if (len >= 0) checkFixed(n, len, label(what, "array"))
    else writeSeqLen(w, n, max, what)
    if (n === 0) return
    if (k <= K.I32 || k === K.F32 || k === K.F64) {
        const size = SIZE[k]
        const o = wAt(w, size, size * n)
        const b = w.buf
        // one loop per kind with a single check per element: the VM's watchdog counts every
        // jump and call, about 10000 between two yields; the bit tricks test type, integrality
        // and range at once (a string, NaN, undefined or a fraction never compares equal)
        let i = 0
        switch (k) {
            case K.Bool:
                for (; i < n; i++) {
                    const x = v[i]
                    if (x !== !!x) break
                    b[o + i] = x ? 1 : 0
                }
                break
            case K.U8:
                for (; i < n; i++) {
                    const x = v[i]
                    if ((x & 0xff) !== x) break
                    b[o + i] = x
                }
                break
            case K.I8:
                for (; i < n; i++) {
                    const x = v[i]
                    if ((x << 24) >> 24 !== x) break
                    b.setAt(o + i, "i8", x)
                }
                break
            case K.U16:
                for (; i < n; i++) {
                    const x = v[i]
                    if ((x & 0xffff) !== x) break
                    b.setAt(o + 2 * i, "u16", x)
                }
                break
            case K.I16:
                for (; i < n; i++) {
                    const x = v[i]
                    if ((x << 16) >> 16 !== x) break
                    b.setAt(o + 2 * i, "i16", x)
                }
                break
            case K.U32:
                for (; i < n; i++) {
                    const x = v[i]
                    if (x >>> 0 !== x) break
                    b.setAt(o + 4 * i, "u32", x)
                }
                break
            case K.I32:
                for (; i < n; i++) {
                    const x = v[i]
                    if ((x | 0) !== x) break
                    b.setAt(o + 4 * i, "i32", x)
                }
                break
            case K.F32:
                for (; i < n; i++) {
                    const x = v[i]
                    if (typeof x !== "number" || ((x > F32_MAX || x < -F32_MAX) && x !== Infinity && x !== -Infinity)) break
                    b.setAt(o + 4 * i, "f32", x)
                }
                break
            default:
                for (; i < n; i++) {
                    const x = v[i]
                    if (typeof x !== "number") break
                    b.setAt(o + 8 * i, "f64", x)
                }
        }
        // a bad element stopped the loop: the scalar writer gives the error message
        if (i < n) writePrim(w, k, v[i], -1, `${label(what, typeName(k))}[${i}]`)
        return
    }
    for (let i = 0; i < n; i++) writePrim(w, k, v[i], elemMax, what)
}
/** An array of messages (same `len`/`max` rules as `writeArr`); throws like `writeArr` and `c.encode`. */
export function writeArrC<T>(w: CdrWriter, c: MessageCodec<T>, v: T[], len: number, max: number, what?: string) {
    if (!Array.isArray(v)) throw invalid(`${label(what, "array")}: expected an array, got ${v}`)
    if (len >= 0) checkFixed(v.length, len, label(what, "array"))
    else writeSeqLen(w, v.length, max, what)
    for (let i = 0; i < v.length; i++) c.encode(w, v[i])
}

/**
 * wstring (UTF-16 code units as u32 each); `max` (if >= 0) bounds the code unit count. Throws
 * InvalidArgument: truncated, a bound exceeded, a code unit above 0xffff, a lone surrogate.
 */
export function readWstring(r: CdrReader, max?: number, what?: string): string {
    const n = readU32(r)
    const w = label(what, "wstring")
    if (max >= 0) if (n > max) throw invalid(`${w}: wstring of ${n} UTF-16 code units exceeds the bound wstring<=${max}`)
    let o = rAt(r, 4, 4 * n)
    const b = r.buf
    let s = ""
    for (let i = 0; i < n; i++, o += 4) {
        let c = b.getAt(o, "u32")
        if (c > 0xffff) throw invalid(`${w}: wstring code unit ${c} does not fit in UTF-16`)
        if (c >= 0xd800 && c < 0xe000) {
            const c2 = i + 1 < n ? b.getAt(o + 4, "u32") : 0
            if (c >= 0xdc00 || c2 < 0xdc00 || c2 >= 0xe000) throw invalid(`${w}: wstring has a lone UTF-16 surrogate at ${i}`)
            c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00)
            i++
            o += 4
        }
        s += String.fromCharCode(c)
    }
    return s
}
/** A fixed uint8[len]/byte[len] array, copied out of the input; throws InvalidArgument if truncated. */
export function readFixedBytes(r: CdrReader, len: number): Buffer {
    const o = rAt(r, 1, len)
    return r.buf.slice(o, o + len)
}
/** One primitive of kind `k`; the element reader of `readArr`. */
function readPrim(r: CdrReader, k: K, max?: number, what?: string): any {
    switch (k) {
        case K.Bool: return readBool(r, what)
        case K.U8: return r.u8()
        case K.I8: return r.i8()
        case K.U16: return r.u16()
        case K.I16: return r.i16()
        case K.U32: return readU32(r)
        case K.I32: return r.i32()
        case K.I64: return readI64(r, what)
        case K.U64: return readU64(r, what)
        case K.F32: return r.f32()
        case K.F64: return r.f64()
        case K.Str: return readString(r, max, what)
        default: return readWstring(r, max, what)
    }
}
/**
 * An array of primitives: fixed (`len >= 0`) or a sequence bounded by `max` (when >= 0);
 * `elemMax` bounds each string. Numbers and bools are read in one loop without a call per element.
 * Throws InvalidArgument: truncated, a bound exceeded, a bad bool byte ("<what>[i]: ...") or element.
 */
export function readArr(r: CdrReader, k: K, len: number, max: number, what?: string, elemMax?: number): any[] {
    const n = len >= 0 ? len : readSeqLen(r, max, what)
    const out: any[] = []
    if (n === 0) return out
    if (k <= K.I32 || k === K.F32 || k === K.F64) {
        const size = SIZE[k]
        const o = rAt(r, size, size * n)
        const b = r.buf
        // one loop per kind (see writeArr: the watchdog counts jumps and calls)
        switch (k) {
            case K.Bool:
                for (let i = 0; i < n; i++) {
                    const x = b[o + i]
                    if (x > 1) throw invalid(`${label(what, "bool")}[${i}]: bool byte is ${x}, expected 0 or 1`)
                    out.push(x === 1)
                }
                break
            case K.U8:
                for (let i = 0; i < n; i++) out.push(b[o + i])
                break
            case K.I8:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + i, "i8"))
                break
            case K.U16:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + 2 * i, "u16"))
                break
            case K.I16:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + 2 * i, "i16"))
                break
            case K.U32:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + 4 * i, "u32"))
                break
            case K.I32:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + 4 * i, "i32"))
                break
            case K.F32:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + 4 * i, "f32"))
                break
            default:
                for (let i = 0; i < n; i++) out.push(b.getAt(o + 8 * i, "f64"))
        }
        return out
    }
    for (let i = 0; i < n; i++) out.push(readPrim(r, k, elemMax, what))
    return out
}
/** An array of messages (same `len`/`max` rules as `readArr`); throws like `readArr` and `c.decode`. */
export function readArrC<T>(r: CdrReader, c: MessageCodec<T>, len: number, max: number, what?: string): T[] {
    const n = len >= 0 ? len : readSeqLen(r, max, what)
    const out: T[] = []
    for (let i = 0; i < n; i++) out.push(c.decode(r))
    return out
}

/** Encodes `v` as a whole message (header included). */
export function encodeMessage<T>(c: MessageCodec<T>, v: T): ByteSource {
    const w = new CdrWriter()
    writeMsg(w, c, v)
    return finishMessage(w)
}

// Field codecs: the generated codecs are field tables (host/codegen/device.ts, the `__Rec` of each
// generated file), which hand an array of primitives and a wstring to one of these (kind F). Each is
// a module-level function that brings in the array or wstring code only when a codec the firmware
// makes has such a field (a table kind of its own would bring it into every firmware whose
// interfaces have one anywhere, used or not: about 3 KB for the arrays).

/**
 * A field codec (kind F): an array of primitives of kind `k` (`writeArr`'s `len`, `max`, `elemMax`).
 * An object with the four numbers (about 70 bytes of heap for each such field of each codec made),
 * not two closures over them (twice that).
 * @devsWhenUsed
 */
export class ArrayField {
    name = ""
    constructor(private k: K, private len: number, private max: number, private elemMax?: number) {}
    encode(w: CdrWriter, v: any[], what?: string) {
        writeArr(w, this.k, v, this.len, this.max, what, this.elemMax)
    }
    decode(r: CdrReader, what?: string): any[] {
        return readArr(r, this.k, this.len, this.max, what, this.elemMax)
    }
}

/**
 * A field codec (kind F): a wstring (bounded by `max` when >= 0).
 * @devsWhenUsed
 */
export class WstringField {
    name = ""
    constructor(private max: number) {}
    encode(w: CdrWriter, v: string, what?: string) {
        writeWstring(w, v, this.max, what)
    }
    decode(r: CdrReader, what?: string): string {
        return readWstring(r, this.max, what)
    }
}

/** A message codec (generated code calls this: smaller in the image than an object literal each). */
export function codec<T>(name: string, encode: (w: CdrWriter, v: T, what?: string) => void, decode: (r: CdrReader, what?: string) => T): MessageCodec<T> {
    return { name, encode, decode }
}

/** A service type descriptor (generated code calls this; `tail`: see ServiceType.tail). */
export function serviceType<Req, Res>(name: string, hash: number, request: MessageCodec<Req>, response: MessageCodec<Res>, tail?: number): ServiceType<Req, Res> {
    return { name, hash, request, response, tail }
}

/** Decodes a whole message from `buf` and checks that nothing but padding is left over. */
export function decodeMessage<T>(c: MessageCodec<T>, buf: Buffer, tail?: Bytes): T {
    const r = new CdrReader(buf, tail)
    const v = c.decode(r)
    // the whole buffer used (up to 3 bytes of padding are allowed), as CdrReader.end checks
    const extra = buf.length - r.pos
    if (extra > 3) throw invalid(`${extra} bytes left over after the message`)
    return v
}

/** Reads a whole ByteSource into one Buffer (allocates its full length: small messages only). */
export async function readAll(src: ByteSource): Promise<Buffer> {
    return await src.read(0, src.length)
}

/** An array of `n` values made by `make` (generated defaults of long fixed arrays). */
export function arrayOf<T>(n: number, make: () => T): T[] {
    const out: T[] = []
    for (let i = 0; i < n; i++) out.push(make())
    return out
}

/** Thrown by a generated `_defaults()` whose declared int64/uint64 default the device cannot hold exactly. */
export function notExactDefault(what: string, text: string): never {
    throw notExact(what, false, text)
}
