// The table `npm run bench` prints without --json: each figure with its target (docs/benchmarks.md
// says where each target comes from).
import { figureLines, meets } from "../harness/targets"
import { ACTION_TARGETS } from "./actions"
import { SIZE_TARGETS } from "./size"

export const TARGETS: Record<string, string> = {
  rtt_ratio: "<= 1.10",
  bulk_ratio: ">= 0.90",
  small_calls_ratio: ">= 7",
  lossy_calls_exactly_once: "== 1.0",
  lossy_bulk_ratio: ">= 0.75",
  small_call_p99_during_bulk_ms: "<= 3 x idle_call_rtt_p50_ms",
  flood_restarts: "0",
  flood_victim_call_p99_ms: "<= 100",
  flood_victim_failures: "0",
  mqtt_flood_victim_call_p99_ms: "<= 3 x mqtt_call_rtt_p50_ms",
  mqtt_flood_victim_failures: "0",
  soak_victim_failures: "0",
  attack_restarts: "0",
  ...SIZE_TARGETS,
  ...ACTION_TARGETS,
  bridge_rtt_ratio: "<= 1.05",
  cli_call_ms: "< 500",
  foxglove_rtt_ratio: "<= 1.05",
  bridge_calls_per_s: ">= 5000 (in-memory device)",
  bridge_victim_call_p99_ms: "<= 3 x bridge_ws_call_p50_ms",
  mqtt_rtt_ratio: "<= 1.15",
  mqtt_bulk_bytes_per_s: ">= 1000000",
  mqtt_bulk_vs_jacdac: ">= 90",
  mqtt_upload_hosts_ok: "8 (of 8)",
  mqtt_upload_restarts: "0",
  fleet_robots: ">= 1000",
  fleet_calls_per_s: ">= 5000",
  sim_starts_ok: "20/20",
}

/** One line a figure, in the order measured, with its target where it has one and whether it is met. */
export function targetTable(figures: Record<string, unknown>): string[] {
  const lines = ["\nmetric                          value        target"]
  lines.push(...figureLines(figures, TARGETS, [32, 13, 36]))
  const missed = targetsNotMet(figures)
  lines.push("", missed.length ? `targets not met: ${missed.join(", ")}` : "every target met")
  return lines
}

/** The figures of the run that miss their targets (a target that cannot be judged is not counted). */
export function targetsNotMet(figures: Record<string, unknown>): string[] {
  return Object.keys(TARGETS).filter((k) => k in figures && meets(TARGETS[k]!, figures[k], figures) === false)
}
