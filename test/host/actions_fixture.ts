// What the action tests share about test/firmware/actions_fw.ts: the Fibonacci terms its goals
// compute, and its /action_probe counters.
import { Trigger } from "../../packages/host/src/gen/interfaces"
import type { RobotNode } from "../../packages/host/src/client/api"

/** The first `n` Fibonacci terms, as a goal of order `n` ends with. */
export function fib(n: number): number[] {
  const s = [0, 1]
  while (s.length < n) s.push(s[s.length - 1]! + s[s.length - 2]!)
  return s.slice(0, n)
}

/** The firmware's counters: execute runs, cancels (onCancel calls), goals finished, running now, ticks of ignored cancels. */
export interface ActionProbe {
  runs: number
  cancels: number
  finished: number
  running: number
  ticks: number
}

/** /action_probe: its counters now (a std_srvs/Trigger whose message is their JSON). */
export async function actionProbe(node: RobotNode): Promise<ActionProbe> {
  return JSON.parse((await node.createClient(Trigger, "action_probe").call({})).message) as ActionProbe
}
