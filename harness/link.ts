// A model of a real serial link for the tests and the benchmark (issue: "a test transport that
// models a real link"): each direction is a queue of at most `queueBytes` bytes (a USB-serial
// chip's buffer) that drops a frame arriving when it is full, drained at `bytesPerSec`; frames are
// lost, duplicated or swapped with the next one at the given probabilities. Seeded, so a failure
// can be replayed.
import type { FramePipe } from "../packages/host/src/transport/hub"

export interface LinkModel {
  /** probability that a frame is lost (0..1) */
  loss?: number
  /** probability that a frame is delivered twice */
  duplicate?: number
  /** probability that a frame is held back and delivered after the next one */
  reorder?: number
  /** bytes the queue holds; a frame that does not fit is dropped (default 2048) */
  queueBytes?: number
  /** drain rate (default 100000 B/s, about a 1 Mbaud UART) */
  bytesPerSec?: number
  seed?: number
  /** frames never duplicated or reordered (they may still be lost or overflow) */
  inOrder?: (frame: Uint8Array) => boolean
}

export interface LinkStats {
  frames: number
  lost: number
  overflowed: number
  duplicated: number
  reordered: number
}

/** A seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** One direction of the link. */
export function linkPipe(m: LinkModel, stats: LinkStats): FramePipe {
  const rand = rng(m.seed ?? 1)
  const cap = m.queueBytes ?? 2048
  const rate = m.bytesPerSec ?? 100000
  let queued = 0
  let busyUntil = 0
  let held: { f: Uint8Array; deliver: (f: Uint8Array) => void } | undefined
  const enqueue = (f: Uint8Array, deliver: (f: Uint8Array) => void) => {
    if (queued + f.length > cap) {
      stats.overflowed++
      return
    }
    queued += f.length
    const now = performance.now()
    busyUntil = Math.max(busyUntil, now) + (f.length * 1000) / rate
    setTimeout(() => {
      queued -= f.length
      deliver(f)
    }, Math.max(0, busyUntil - now))
  }
  return (f, deliver) => {
    stats.frames++
    if (rand() < (m.loss ?? 0)) {
      stats.lost++
      return
    }
    if (held) {
      const h = held
      held = undefined
      enqueue(f, deliver)
      enqueue(h.f, h.deliver)
      return
    }
    const fixed = m.inOrder?.(f) ?? false
    if (!fixed && rand() < (m.reorder ?? 0)) {
      stats.reordered++
      held = { f, deliver }
      // never hold a frame for long: the next frame, or 50 ms, releases it
      setTimeout(() => {
        if (held?.f === f) {
          held = undefined
          enqueue(f, deliver)
        }
      }, 50)
      return
    }
    enqueue(f, deliver)
    if (!fixed && rand() < (m.duplicate ?? 0)) {
      stats.duplicated++
      enqueue(f, deliver)
    }
  }
}

/**
 * Both directions of one host's cable (seeds differ per direction). The hub is a shared bus, like
 * a devtools server: command frames that other hosts send reach this host too, but they are not on
 * this host's cable, so they skip the model (a Jacdac frame's flags byte 3, bit 0: command).
 */
export function linkModel(m: LinkModel): { pipes: { in: FramePipe; out: FramePipe }; stats: { in: LinkStats; out: LinkStats } } {
  const zero = (): LinkStats => ({ frames: 0, lost: 0, overflowed: 0, duplicated: 0, reordered: 0 })
  const stats = { in: zero(), out: zero() }
  const seed = m.seed ?? 1
  // Jacdac control packets (service index 0: announces) keep their order: jacdac-ts reads an
  // announce older than the last one as a device reset and drops the device
  const control = (f: Uint8Array) => f.length > 13 && (f[13]! & 0x3f) === 0
  const fromDevice = linkPipe({ ...m, seed, inOrder: control }, stats.in)
  return {
    pipes: {
      in: (f, deliver) => ((f[3]! & 1) === 1 ? deliver(f) : fromDevice(f, deliver)),
      out: linkPipe({ ...m, seed: seed + 7919 }, stats.out),
    },
    stats,
  }
}
