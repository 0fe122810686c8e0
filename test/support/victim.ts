// The well-behaved client of the abuse tests: calls made one after another while an attack runs,
// timed, so that a test can bound what the attack did to others WHILE it ran (not only after).

/** Makes one call after another (2 ms apart) until `stop()`; the latencies and when each ended. */
export function callLoop(once: () => Promise<{ result: boolean; values: unknown }>) {
  const ms: number[] = []
  const ends: number[] = []
  const failures: string[] = []
  let running = true
  const done = (async () => {
    while (running) {
      const t = performance.now()
      const r = await once()
      ms.push(performance.now() - t)
      ends.push(performance.now())
      if (!r.result) failures.push(String(r.values))
      await new Promise((res) => setTimeout(res, 2))
    }
  })()
  return {
    ms,
    ends,
    failures,
    async stop() {
      running = false
      await done
    },
  }
}

export const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0)

/** `callLoop` of `add` (an AddTwoInts client): 2 + 3 with a 5 s timeout, each call's failure kept as its message. */
export function addLoop(add: { call(req: { a: bigint; b: bigint }, o: { timeoutMs: number }): Promise<{ sum: bigint }> }) {
  return callLoop(async () => {
    const r = await add.call({ a: 2n, b: 3n }, { timeoutMs: 5000 }).then(
      (x) => x.sum,
      (e: Error) => e.message,
    )
    return { result: r === 5n, values: r }
  })
}
