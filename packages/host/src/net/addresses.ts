// Client addresses, for the servers that face the network (the bridge, the embedded broker):
// which ones only this machine can reach, one spelling per address, and a count per address with a
// bound (connections open, connections not yet past their handshake) that says once per episode
// when an address goes past it.

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1"
}

/** An IPv4 address as IPv4 whether it came on an IPv4 or an IPv6 socket. */
export function foldAddress(a = "unknown"): string {
  return a.startsWith("::ffff:") ? a.slice(7) : a
}

/** Why `AddressCount.take` refused: the address holds its bound, or all addresses hold the total. */
export type Refused = "address" | "total"

/**
 * How many of something each address holds (each taken until its `release`): at most `max` per
 * address and `maxTotal` for all together. `take` refuses past either bound and calls
 * `over(address)` (or `over(undefined)` for the total) the first time it refuses since that
 * count was last under its bound: a log line per episode, not per refusal.
 */
export class AddressCount {
  private readonly n = new Map<string, number>()
  private readonly refused = new Set<string>()
  private all = 0
  private allRefused = false

  constructor(
    readonly max: number,
    private readonly over: (address: string | undefined) => void,
    readonly maxTotal = Infinity,
  ) {}

  /** what all addresses hold together */
  get total(): number {
    return this.all
  }

  /** One more for `address` (folded): its release (call once), or which bound refused it. */
  take(address: string | undefined): (() => void) | Refused {
    if (this.all >= this.maxTotal) {
      if (!this.allRefused) {
        this.allRefused = true
        this.over(undefined)
      }
      return "total"
    }
    this.allRefused = false
    const a = foldAddress(address)
    const n = this.n.get(a) ?? 0
    if (n >= this.max) {
      if (!this.refused.has(a)) {
        this.refused.add(a)
        this.over(a)
      }
      return "address"
    }
    this.n.set(a, n + 1)
    this.all++
    let held = true
    return () => {
      if (!held) return
      held = false
      this.all--
      const left = (this.n.get(a) ?? 1) - 1
      if (left > 0) this.n.set(a, left)
      else this.n.delete(a)
      if (left < this.max) this.refused.delete(a)
    }
  }
}
