// What the parts of bench/run.ts measure with: percentiles, one timed call, and a rate.

/** The `p`th percentile of `xs` (the value at that rank, not interpolated). */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

/** ms that `f` took */
export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await f()
  return performance.now() - t
}

/** runs `workers` loops of `f` for `ms`; returns completions per second */
export async function rate(workers: number, ms: number, f: () => Promise<unknown>): Promise<number> {
  let done = 0
  const end = performance.now() + ms
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) {
        await f()
        done++
      }
    }),
  )
  return done / ((performance.now() - t0) / 1000)
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
