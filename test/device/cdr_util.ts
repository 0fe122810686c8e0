// Helpers for the device codec tests (cdr.test.ts and the generated agreement test).
import * as ds from "@devicescript/core"
import { CdrWriter, decodeMessage, encodeMessage, readAll } from "@robot-services/device/src/cdr/cdr"
import { ByteSource, MessageCodec, ServiceError, Status } from "@robot-services/device"

/** the bytes a writer produced, as lowercase hex */
export async function hexOf(w: CdrWriter): Promise<string> {
    return (await readAll(w.finish())).toString("hex")
}

export async function hexOfSource(src: ByteSource): Promise<string> {
    return (await readAll(src)).toString("hex")
}

export function fail(msg: string): never {
    throw new Error(msg)
}

export function eq(what: string, got: any, want: any) {
    if (got !== want) fail(`${what}: got ${got}, want ${want}`)
}

/** runs fn; it must throw ServiceError(InvalidArgument) whose message contains `part` */
export function throwsInvalid(what: string, fn: () => void, part: string) {
    let err: any = null
    try {
        fn()
    } catch (e) {
        err = e
    }
    if (!err) fail(`${what}: did not throw (expected "${part}")`)
    if (!(err instanceof ServiceError)) fail(`${what}: threw ${err.name}: ${err.message}, not a ServiceError`)
    const se = err as ServiceError
    if (se.code !== Status.InvalidArgument) fail(`${what}: status ${se.code}, expected InvalidArgument`)
    if (se.message.indexOf(part) < 0) fail(`${what}: message "${se.message}" does not contain "${part}"`)
}

/** NaN-aware number equality (the VM has no -0, so 0 and -0 are the same here) */
export function sameNumber(a: number, b: number): boolean {
    if (a !== a) return b !== b
    return a === b
}

/** deep equality of decoded values: NaN-aware numbers, Buffers by content, arrays and objects by element/field */
export function same(path: string, got: any, want: any) {
    if (typeof want === "number") {
        if (typeof got !== "number" || !sameNumber(got, want)) fail(`${path}: got ${got}, want ${want}`)
    } else if (want instanceof Buffer) {
        if (!(got instanceof Buffer)) fail(`${path}: got ${got}, want a Buffer`)
        const g = (got as Buffer).toString("hex")
        const w = (want as Buffer).toString("hex")
        if (g !== w) fail(`${path}: got ${g}, want ${w}`)
    } else if (Array.isArray(want)) {
        if (!Array.isArray(got)) fail(`${path}: got ${got}, want an array`)
        if (got.length !== want.length) fail(`${path}: got ${got.length} elements, want ${want.length}`)
        for (let i = 0; i < want.length; i++) same(`${path}[${i}]`, got[i], want[i])
    } else if (want && typeof want === "object") {
        if (!got || typeof got !== "object") fail(`${path}: got ${got}, want an object`)
        const wk = Object.keys(want)
        const gk = Object.keys(got)
        if (gk.length !== wk.length) fail(`${path}: got fields ${gk.join(",")}, want ${wk.join(",")}`)
        for (const k of wk) same(path ? `${path}.${k}` : k, got[k], want[k])
    } else if (got !== want) fail(`${path}: got ${got}, want ${want}`)
}

/**
 * A value both sides can hold: the device encodes `v` to exactly `expected` (hex), and decodes the
 * host's bytes `input` back to `v`. (The host test checks that the host decodes `expected` back to
 * the same value, so each side decodes the other's bytes.)
 */
export async function agreeOk<T>(c: MessageCodec<T>, v: T, input: string, expected: string) {
    await ds.sleep(0) // yield between vectors: back-to-back synchronous work trips the VM's watchdog
    const got = await hexOfSource(encodeMessage(c, v))
    if (got !== expected) {
        let i = 0
        while (i < got.length && got[i] === expected[i]) i++
        const at = i >> 1
        const from = Math.max(0, at - 8) * 2
        console.log(`device ${got}`)
        console.log(`host   ${expected}`)
        fail(`encode: device bytes differ from host bytes at byte ${at} (of ${got.length >> 1} / ${expected.length >> 1}): device ..${got.slice(from, from + 48)} host ..${expected.slice(from, from + 48)}`)
    }
    same("", decodeMessage(c, Buffer.from(input, "hex")), v)
}

/** A value the device must refuse: encode and decode (if `input` is given) throw InvalidArgument containing every part. */
export async function agreeError<T>(c: MessageCodec<T>, v: T, input: string, decodeParts: string[], encodeParts: string[]) {
    await ds.sleep(0)
    for (const p of encodeParts) throwsInvalid("encode", () => encodeMessage(c, v), p)
    if (input) for (const p of decodeParts) throwsInvalid("decode", () => decodeMessage(c, Buffer.from(input, "hex")), p)
}

/** Truncated host bytes: decode throws InvalidArgument "truncated at byte N". */
export async function agreeTruncated<T>(c: MessageCodec<T>, input: string, part: string) {
    await ds.sleep(0)
    throwsInvalid("decode", () => decodeMessage(c, Buffer.from(input, "hex")), part)
}
