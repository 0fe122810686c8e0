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
