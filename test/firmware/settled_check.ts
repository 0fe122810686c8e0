// A model-based check of a session's settled-seq bookkeeping (packages/device/src/rpc/core.ts: settle,
// ackTo, isGone and the private compact; docs/protocol.md "Sessions and exactly-once"), run in the
// DeviceScript VM: the device code reads past the end of its range list (undefined there) and uses
// Array.insert, which only the VM runs as the device does. test/host/settled_ranges.test.ts writes a
// DeviceScript test that calls `checkSeeds` with its seeds and steps, runs it, and reads the lines
// this prints (each starts "SETTLED ").
//
// The model is the plain meaning: a floor (every seq <= floor settled; it takes in floor + 1 while
// that is settled) and the sorted list of settled seqs above it; "overflow" is more than RANGES
// maximal runs of settled seqs above the floor. One seed is one session's life: a fresh Session, then
// up to `steps` settle or ackTo calls drawn by that seed, until a settle answers overflow (the
// runtime then gives the session up). After every call the device's floor and ranges must be the
// model's floor and runs, settle's answer the model's, and isGone the model's around the call and at
// floor + 1 (at the end of the session also on every range's edges, 0, 1 and 2^32 - 1). The calls
// aim at the ranges as they are (the device's, checked equal to the model's after the last call).
//
// The VM is slow (about 1.5 ms a call here, model and checks included): the host test picks the
// seeds and steps so that the whole file stays near 15 s.
import * as ds from "@devicescript/core"
import type { Session } from "@robot-services/device/src/rpc/core"

/** the functions under test: core.ts's, or a changed copy's (the host test's mutants) */
export interface Bookkeeping {
    settle: (s: Session, seq: number) => boolean
    ackTo: (s: Session, ack: number) => void
    isGone: (s: Session, seq: number) => boolean
}

/** ranges kept above the floor before a session is given up (docs/protocol.md: 24) */
const RANGES = 24
/** seqs are u32 on the wire */
const U32_MAX = 4294967295
const EXTREMES = [0, 1, 2, 2147483646, 2147483647, 2147483648, 2147483649, 4294967294, 4294967295]
/** the shapes a seed's session takes (seed % 6): where seqs fall, how often the host acks */
const SHAPES = ["dense", "wide", "comb", "high", "sparse", "mid"]

/** xorshift32: a seed's draws, the same on every run */
class Rng {
    x: number
    constructor(seed: number) {
        this.x = (seed ^ 0x5bd1e995) | 0
        if (this.x === 0) this.x = 1
        for (let i = 0; i < 8; i++) this.next()
    }
    next() {
        let x = this.x
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        this.x = x
        // (31 bits: in the VM, (x >>> 0) % 8 of x = -1579999415 is -7, not 1 as in JavaScript)
        return x >>> 1
    }
    /** 0 <= r < n */
    below(n: number) {
        return this.next() % n
    }
}

/** the model: what the bookkeeping means */
class Model {
    floor = 0
    /** settled seqs above the floor, ascending */
    above: number[] = []
}

// (the model is written for the VM's speed: a push costs about 8 us there, a read of an element
// about 1 us, so it finds by halving, grows its list by one push and cuts it with slice)

/** the index of the first seq >= `seq` in m.above (its length if none) */
function firstAtLeast(m: Model, seq: number) {
    let lo = 0
    let hi = m.above.length
    while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (m.above[mid] < seq) lo = mid + 1
        else hi = mid
    }
    return lo
}

function settledIn(m: Model, seq: number) {
    if (seq <= m.floor) return true
    const i = firstAtLeast(m, seq)
    return i < m.above.length && m.above[i] === seq
}

/** the floor takes in floor + 1, floor + 2… while they are settled */
function absorb(m: Model) {
    let i = 0
    while (i < m.above.length && m.above[i] === m.floor + 1) {
        m.floor = m.above[i]
        i++
    }
    if (i > 0) m.above = m.above.slice(i)
}

function modelSettle(m: Model, seq: number) {
    if (settledIn(m, seq)) return
    const a = m.above
    a.push(seq)
    let i = a.length - 1
    while (i > 0 && a[i - 1] > seq) {
        a[i] = a[i - 1]
        i--
    }
    a[i] = seq
    absorb(m)
}

function modelAck(m: Model, ack: number) {
    if (ack <= m.floor) return
    m.floor = ack
    m.above = m.above.slice(firstAtLeast(m, ack + 1))
    absorb(m)
}

/**
 * How many maximal runs of settled seqs there are above the model's floor; negated minus one
 * (so < 0) when the device's floor or ranges are not the model's floor and runs. One pass.
 */
function runsAgainst(s: Session, m: Model) {
    const a = m.above
    const g = s.gone
    let same = s.floor === m.floor
    let k = 0
    let i = 0
    while (i < a.length) {
        let j = i
        while (j + 1 < a.length && a[j + 1] === a[j] + 1) j++
        if (g[k] !== a[i] || g[k + 1] !== a[j]) same = false
        k += 2
        i = j + 1
    }
    if (k !== g.length) same = false
    return same ? k >> 1 : -(k >> 1) - 1
}

/** the model's runs [lo, hi, lo, hi…] (for messages) */
function runsOf(m: Model): number[] {
    const r: number[] = []
    for (const x of m.above) {
        if (r.length > 0 && r[r.length - 1] === x - 1) r[r.length - 1] = x
        else {
            r.push(x)
            r.push(x)
        }
    }
    return r
}

function show(floor: number, g: number[]) {
    let t = `floor ${floor} ranges [`
    for (let i = 0; i < g.length; i += 2) t += (i > 0 ? " " : "") + g[i] + "-" + g[i + 1]
    return t + "]"
}

/** what the run saw, for the host to check that every case came up */
class Coverage {
    sessions = 0
    steps = 0
    settles = 0
    /** settle of a seq already settled: in a range or at/below the floor */
    dups = 0
    /** settle of seq 0 or 1, or a seq at or above 2^31 */
    seqZeroOne = 0
    high = 0
    /** a new seq that extends the range before it only / the range after it only / joins two ranges */
    joinPrev = 0
    joinNext = 0
    joinBoth = 0
    /** a new seq that joins the first range / the last range; one before every range / after every range */
    joinFirst = 0
    joinLast = 0
    newFirst = 0
    newLast = 0
    /** a new seq at floor + 1 (the floor takes it in, and the range after it if it touches) */
    toFloor = 0
    /** a settle that left exactly RANGES ranges (true), and one that made RANGES + 1 (false) */
    at24 = 0
    overflow = 0
    acks = 0
    ackBelow = 0
    ackInside = 0
    ackRangeEnd = 0
    ackBetween = 0
    ackBeyond = 0
}

function coverageLine(c: Coverage) {
    // (a template takes only a few values in DeviceScript: the compiler fails an assertion on more)
    return (
        `sessions=${c.sessions} steps=${c.steps} settles=${c.settles} dups=${c.dups} seqZeroOne=${c.seqZeroOne} high=${c.high} ` +
        `joinPrev=${c.joinPrev} joinNext=${c.joinNext} joinBoth=${c.joinBoth} toFloor=${c.toFloor} at24=${c.at24} overflow=${c.overflow} ` +
        `joinFirst=${c.joinFirst} joinLast=${c.joinLast} newFirst=${c.newFirst} newLast=${c.newLast} ` +
        `acks=${c.acks} ackBelow=${c.ackBelow} ackInside=${c.ackInside} ackRangeEnd=${c.ackRangeEnd} ackBetween=${c.ackBetween} ackBeyond=${c.ackBeyond}`
    )
}

function clamp(seq: number) {
    return seq < 0 ? 0 : seq > U32_MAX ? U32_MAX : seq
}

/**
 * A seq for settle: a case aimed at the ranges (`aim` in 100: a duplicate, the seq after or before a
 * range, the one seq between two ranges, floor + 1, an extreme, a seq 2^20 above), else a draw from
 * the window above the floor, or in the comb shapes from its even offsets (singletons: many ranges)
 */
function settleTarget(r: Rng, m: Model, g: number[], comb: boolean, aim: number, width: number): number {
    const k = r.below(100)
    if (k >= aim) return comb ? clamp(m.floor + 2 + 2 * r.below(width >> 1)) : clamp(m.floor + 1 + r.below(width))
    const n = g.length >> 1
    const j = n > 0 ? 2 * r.below(n) : 0
    const c = (k * 12) / aim
    if (c < 3) return n > 0 && r.below(2) === 0 ? g[j] + r.below(g[j + 1] - g[j] + 1) : clamp(m.floor - r.below(3))
    if (c < 5 && n > 0) return clamp(g[j + 1] + 1)
    if (c < 7 && n > 0) return g[j] - 1
    if (c < 8) {
        // the one seq between two ranges: joins both
        for (let i = 1; i + 1 < g.length; i += 2) if (g[i] + 2 === g[i + 1]) return g[i] + 1
        return clamp(m.floor + 1)
    }
    if (c < 9) return clamp(m.floor + 1)
    if (c < 11) return EXTREMES[r.below(EXTREMES.length)]
    return clamp(m.floor + 1048576 + r.below(1000))
}

/** an ack: below or at the floor, inside a range, at a range's end, just below a range, in a gap, beyond every range, in the window, or an extreme */
function ackTarget(r: Rng, m: Model, g: number[], width: number): number {
    const n = g.length >> 1
    const j = n > 0 ? 2 * r.below(n) : 0
    const k = r.below(8)
    if (k === 0) return clamp(m.floor - r.below(3))
    if (k === 1 && n > 0) return g[j] + r.below(g[j + 1] - g[j] + 1)
    if (k === 2 && n > 0) return g[j + 1]
    if (k === 3 && n > 0) return g[j] - 1
    if (k === 4 && n > 1) {
        const i = 2 * r.below(n - 1)
        return g[i + 1] + 1 + r.below(g[i + 2] - g[i + 1] - 1)
    }
    if (k === 5) return clamp((n > 0 ? g[g.length - 1] : m.floor) + 1 + r.below(width))
    if (k === 7) return EXTREMES[r.below(EXTREMES.length)]
    return clamp(m.floor + r.below(width))
}

function countAck(c: Coverage, m: Model, g: number[], ack: number) {
    c.acks++
    if (ack <= m.floor) {
        c.ackBelow++
        return
    }
    for (let i = 0; i < g.length; i += 2) {
        if (ack >= g[i] && ack < g[i + 1]) {
            c.ackInside++
            return
        }
        if (ack === g[i + 1]) {
            c.ackRangeEnd++
            return
        }
    }
    if (g.length > 0 && ack < g[g.length - 1]) c.ackBetween++
    else c.ackBeyond++
}

function countSettle(c: Coverage, m: Model, g: number[], seq: number) {
    c.settles++
    if (seq <= 1) c.seqZeroOne++
    if (settledIn(m, seq)) {
        c.dups++
        return
    }
    if (seq >= 2147483648) c.high++
    // at the ends of the list (settle reads past its end there)
    if (g.length > 0) {
        if (seq + 1 === g[0]) c.joinFirst++
        else if (seq < g[0]) c.newFirst++
        if (seq - 1 === g[g.length - 1]) c.joinLast++
        else if (seq > g[g.length - 1]) c.newLast++
    }
    if (seq === m.floor + 1) c.toFloor++
    else if (settledIn(m, seq - 1)) {
        if (settledIn(m, seq + 1)) c.joinBoth++
        else c.joinPrev++
    } else if (settledIn(m, seq + 1)) c.joinNext++
}

/** "" when the device's isGone on `probes` is the model's, else what differs */
async function compare(impl: Bookkeeping, s: Session, m: Model, probes: number[]): Promise<string> {
    for (let i = 0; i < probes.length; i++) {
        const p = probes[i]
        if ((i & 15) === 15) await ds.sleep(0)
        const w = settledIn(m, p)
        const got = impl.isGone(s, p)
        if (got !== w) return `isGone(${p}) want ${w}, got ${got} (${show(s.floor, s.gone)})`
    }
    return ""
}

/**
 * Runs seeds first … first + count - 1, each a fresh session of up to `steps` calls, against the
 * model. Prints "SETTLED result <name> ok …" or "SETTLED result <name> mismatch seed S step K: …"
 * (the first mismatch; the seeds after it are not run), then "SETTLED coverage <name> …".
 * `trace` prints every call. Returns the mismatch ("" if none).
 */
export async function checkSeeds(name: string, impl: Bookkeeping, first: number, count: number, steps: number, trace: boolean): Promise<string> {
    const c = new Coverage()
    let bad = ""
    for (let seed = first; seed < first + count && !bad; seed++) {
        const r = new Rng(seed)
        const shape = seed % SHAPES.length
        const kind = SHAPES[shape]
        // comb and high: 32 even offsets above the floor, few aimed settles, few acks: 24 ranges and a 25th
        const comb = kind === "comb" || kind === "high"
        const width = kind === "dense" ? 12 : kind === "wide" ? 60 : comb ? 64 : kind === "sparse" ? 1048576 : 40
        const aim = comb ? 10 : kind === "sparse" ? 20 : 35
        const ackPct = kind === "dense" ? 15 : kind === "wide" || comb ? 4 : 10
        const s: Session = { id: 1, nonce: 0, out: undefined, floor: 0, gone: [], used: 0 }
        const m = new Model()
        c.sessions++
        if (trace) console.log(`SETTLED trace seed ${seed} shape ${kind}`)
        for (let step = 0; step < steps; step++) {
            // the ranges before the call: the model's, as the last step checked (the targets aim at them)
            const f0 = m.floor
            const g = s.gone.slice()
            let ack = true
            let p: number
            let answer = true
            if (step === 0 && kind === "high")
                // the session starts just below 2^31 or just below the largest u32
                p = r.below(2) === 0 ? 2147483648 - 30 - r.below(30) : U32_MAX - 70 - r.below(20)
            else if (step === 0 && kind === "mid") p = 1000000 + r.below(1000)
            else if (r.below(100) < ackPct) p = ackTarget(r, m, g, width)
            else {
                ack = false
                p = settleTarget(r, m, g, comb, aim, width)
            }
            if (ack) {
                countAck(c, m, g, p)
                impl.ackTo(s, p)
                modelAck(m, p)
            } else {
                countSettle(c, m, g, p)
                answer = impl.settle(s, p)
                modelSettle(m, p)
            }
            c.steps++
            const both = runsAgainst(s, m)
            const runs = both < 0 ? -both - 1 : both
            const over = runs > RANGES
            if (trace) console.log(`SETTLED trace step ${step} ${opText(ack, p, answer)}: ${show(s.floor, s.gone)}`)
            let diff = ""
            if (answer === over) diff = `want ${!over} (${runs} ranges after it), got ${answer}`
            else if (both < 0) diff = `want ${show(m.floor, runsOf(m))}, got ${show(s.floor, s.gone)}`
            else {
                // probes: around the call and the floor; at the session's end also every range's
                // edges (the ranges are the model's: checked above), 0, 1 and the largest seq
                const probes = [p - 1, p, p + 1, m.floor + 1]
                if (over || step === steps - 1) {
                    probes.push(0)
                    probes.push(1)
                    probes.push(U32_MAX)
                    const w = s.gone
                    for (let i = 0; i < w.length; i += 2) {
                        probes.push(w[i] - 1)
                        probes.push(w[i])
                        probes.push(w[i + 1])
                        probes.push(w[i + 1] + 1)
                    }
                }
                diff = await compare(impl, s, m, probes)
            }
            if (diff) {
                bad = `seed ${seed} (${kind}) step ${step} ${opText(ack, p, answer)}: ${diff}; before it ${show(f0, g)}`
                break
            }
            if (over) {
                c.overflow++
                break
            }
            if (!ack && runs === RANGES) c.at24++
            // (the VM's watchdog stops a run of some thousands of loop turns without a yield)
            await ds.sleep(0)
        }
        await ds.sleep(0)
    }
    if (bad) console.log(`SETTLED result ${name} mismatch ${bad}`)
    else console.log(`SETTLED result ${name} ok seeds ${first}..${first + count - 1} steps ${c.steps}`)
    console.log(`SETTLED coverage ${name} ${coverageLine(c)}`)
    return bad
}

function opText(ack: boolean, p: number, answer: boolean) {
    return ack ? `ackTo(${p})` : `settle(${p}) -> ${answer}`
}
