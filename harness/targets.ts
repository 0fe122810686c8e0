// Whether a benchmark figure meets its target, as the bench writes targets (bench/targets.ts,
// bench/size.ts, bench/actions.ts): "<= 1.10", ">= 5000 (in-memory device)", "== 1.0", "0",
// "8 (of 8)", "20/20", "<= 3 x idle_call_rtt_p50_ms" (a multiple of another figure of the run).

const COMPARE = /^(<=|>=|==|<|>)\s*(-?[\d.]+)(?:\s*x\s*([a-z0-9_]+))?$/

/**
 * True or false when `value` meets `target` or not; undefined when the target is not one of the
 * forms above, or names a figure the run does not have, or the value is not a number where one is
 * needed (a figure left out, null).
 */
export function meets(target: string, value: unknown, figures: Record<string, unknown>): boolean | undefined {
  // (a note in brackets says what the figure is, not what it must be)
  const t = target.replace(/\s*\(.*\)\s*$/, "").trim()
  const m = COMPARE.exec(t)
  if (!m) {
    if (/^-?[\d.]+$/.test(t)) return typeof value === "number" ? value === Number(t) : undefined
    return /^\S+$/.test(t) && typeof value === "string" ? value === t : undefined
  }
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined
  let bound = Number(m[2])
  if (m[3] !== undefined) {
    const of = figures[m[3]]
    if (typeof of !== "number" || !Number.isFinite(of)) return undefined
    // (to 12 digits: 3 x 1.2 is 3.5999999999999996 in binary, and a figure of 3.6 meets it)
    bound = Number((bound * of).toPrecision(12))
  }
  switch (m[1]) {
    case "<=":
      return value <= bound
    case ">=":
      return value >= bound
    case "<":
      return value < bound
    case ">":
      return value > bound
    default:
      return value === bound
  }
}

/**
 * The figures of a run, one line each: the key, the value, its target in `targets` (if it has one)
 * and "met" or "NOT MET" (nothing when it cannot tell), in columns of `widths` characters.
 */
export function figureLines(figures: Record<string, unknown>, targets: Record<string, string>, widths: [number, number, number]): string[] {
  return Object.entries(figures).map(([k, v]) => {
    const t = targets[k]
    const met = t === undefined ? undefined : meets(t, v, figures)
    return `${k.padEnd(widths[0])}${String(v).padEnd(widths[1])}${(t ?? "").padEnd(widths[2])}${met === undefined ? "" : met ? "met" : "NOT MET"}`.trimEnd()
  })
}
