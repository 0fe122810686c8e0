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

/**
 * How many of something each address holds (each taken until its `release`), at most `max`.
 * `take` refuses past the bound and calls `over(address)` the first time an address is refused
 * since it was last under the bound (a log line per episode, not per refusal).
 */
export class AddressCount {
  private readonly n = new Map<string, number>()
  private readonly refused = new Set<string>()
  private all = 0

  constructor(
    readonly max: number,
    private readonly over: (address: string) => void,
  ) {}

  /** what all addresses hold together */
  get total(): number {
    return this.all
  }

  /** One more for `address` (folded), or undefined when it holds `max` already; release once. */
  take(address: string | undefined): (() => void) | undefined {
    const a = foldAddress(address)
    const n = this.n.get(a) ?? 0
    if (n >= this.max) {
      if (!this.refused.has(a)) {
        this.refused.add(a)
        this.over(a)
      }
      return undefined
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
