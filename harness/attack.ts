// A seeded generator of hostile host->device frames for the adversarial soak (issue 16;
// test/host/soak.test.ts and bench/attack.ts): records of every kind, valid, truncated, mutated,
// replayed and random, from many sessions (some real, some made up), packed into frames of any
// size up to the link's. Deterministic for a seed, so a failing run is replayed with the seed it
// prints.
import { AddTwoInts } from "../packages/host/src/gen/interfaces"
import { JACDAC_PAYLOAD, encodeCall, encodeCallx, encodeCancel, encodeData, encodeDone, encodeList, encodeOpen, encodePoll, rec } from "../packages/host/src/client/records"
import { Echo, Upload } from "./gen/interfaces"
import { rng } from "./link"

export interface AttackTarget {
  /** sessions the attacker really opened (its records in them reach the call table) */
  sessions: number[]
  /** the device's service list: version and the index of each name */
  listVersion: number
  index: Record<string, number>
}

export interface AttackStats {
  frames: number
  valid: number
  truncated: number
  mutated: number
  replayed: number
  random: number
}

const NAMES = {
  add: "/add_two_ints",
  echo: "/echo",
  serial: "/echo_serial",
  upload: "/upload",
  nope: "/no_such_service",
}

/**
 * Frames of at most `max` bytes (default a Jacdac payload). The attacker's echo calls always carry text "x": the test
 * firmware's modes that restart, probe the heap, add services or count runs need their own text,
 * so no mutation of them can turn into one (test/firmware/services_fw.ts).
 */
export function attackFrames(seed: number, target: AttackTarget, max = JACDAC_PAYLOAD) {
  const r = rng(seed)
  const int = (n: number) => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const stats: AttackStats = { frames: 0, valid: 0, truncated: 0, mutated: 0, replayed: 0, random: 0 }
  const history: Uint8Array[] = []
  let seq = 1 + int(1000)

  const session = () => (r() < 0.85 && target.sessions.length ? pick(target.sessions) : (r() * 0x1_0000_0000) >>> 0)
  const echoReq = () => {
    const mode = pick([0, 0, 7, 9])
    return Echo.request.encode({ delay_ms: mode === 9 ? int(400) : 0, mode, size: mode === 0 ? int(600) : 0, text: "x" })
  }

  /** one valid record */
  function record(): Uint8Array {
    const s = session()
    const q = r() < 0.7 ? seq++ : int(seq + 10)
    const head = { session: s, seq: q, ack: r() < 0.9 ? 0 : int(seq), timeoutMs: pick([0, 200, 1000, 3000, 0xffffffff]) }
    switch (int(12)) {
      case 0: {
        const req = AddTwoInts.request.encode({ a: BigInt(int(1000)), b: 1n })
        return encodeCall({ ...head, hash32: AddTwoInts.hash32, total: req.length, name: NAMES.add, data: req })
      }
      case 1: {
        const req = echoReq()
        return encodeCall({ ...head, hash32: Echo.hash32, total: req.length, name: pick([NAMES.echo, NAMES.serial]), data: req })
      }
      case 2: {
        // an upload that claims more than it sends (the rest may come as DATA, or never)
        const total = 8 + int(3000)
        const first = new Uint8Array(Math.min(total, int(120)))
        return encodeCall({ ...head, hash32: Upload.hash32, total, name: NAMES.upload, data: first })
      }
      case 3:
        // refused: no such service, a wrong type, a total over every limit
        return pick([
          encodeCall({ ...head, hash32: 1234, total: 4, name: NAMES.nope, data: new Uint8Array(4) }),
          encodeCall({ ...head, hash32: 0xdeadbeef, total: 4, name: NAMES.add, data: new Uint8Array(4) }),
          encodeCall({ ...head, hash32: Echo.hash32, total: 1 << 30, name: NAMES.echo, data: new Uint8Array(4) }),
        ])
      case 4: {
        const name = pick(["/add_two_ints", "/echo", "/upload"])
        const req = name === "/add_two_ints" ? AddTwoInts.request.encode({ a: 1n, b: 2n }) : name === "/echo" ? echoReq() : Upload.request.encode({ data: new Uint8Array(int(100)) })
        return encodeCallx({ ...head, listVersion: r() < 0.8 ? target.listVersion : int(65536), index: target.index[name] ?? 0, data: req })
      }
      case 5:
        return encodeData({ session: s, seq: int(seq + 4), offset: int(4000), data: new Uint8Array(int(200)) })
      case 6:
        return encodeCancel({ session: s, seq: int(seq + 4) })
      case 7:
        return encodePoll({ session: s, seq: int(seq + 4), have: int(2000) })
      case 8:
        return encodeDone({ session: s, seqs: Array.from({ length: 1 + int(10) }, () => int(seq + 4)) })
      case 9:
        return encodeOpen({ nonce: (r() * 0x1_0000_0000) >>> 0, version: r() < 0.9 ? 2 : int(256) })
      case 10:
        return encodeList()
      default:
        // a record of an unknown kind or with a length that lies
        return rec(int(256), new Uint8Array(int(40)))
    }
  }

  function valid(): Uint8Array {
    const parts: Uint8Array[] = []
    let n = 0
    for (let k = 1 + int(8); k > 0; k--) {
      const x = record()
      if (x.length > max) continue
      if (n + x.length > max) break
      parts.push(x)
      n += x.length
    }
    if (!parts.length) parts.push(encodeList())
    const f = new Uint8Array(parts.reduce((a, p) => a + p.length, 0))
    let o = 0
    for (const p of parts) {
      f.set(p, o)
      o += p.length
    }
    return f
  }

  /** the next frame */
  function next(): Uint8Array {
    stats.frames++
    const k = r()
    let f: Uint8Array
    if (k < 0.3) {
      stats.valid++
      f = valid()
    } else if (k < 0.5) {
      stats.truncated++
      const v = valid()
      f = v.subarray(0, 1 + int(v.length - 1))
    } else if (k < 0.75) {
      stats.mutated++
      f = valid().slice()
      for (let m = 1 + int(4); m > 0; m--) f[int(f.length)] = int(256)
    } else if (k < 0.85 && history.length) {
      stats.replayed++
      f = pick(history)
    } else {
      stats.random++
      f = new Uint8Array(1 + int(max))
      for (let i = 0; i < f.length; i++) f[i] = int(256)
    }
    if (history.length < 64) history.push(f)
    else history[int(64)] = f
    return f
  }

  return { next, stats }
}
