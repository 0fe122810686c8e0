// harness/targets.ts: how the bench reads its targets, so that its table and its JSON say which
// are met.
import { test } from "node:test"
import assert from "node:assert/strict"
import { figureLines, meets } from "../../harness/targets"

test("meets: each form of target the bench writes", () => {
  const figures = { idle_call_rtt_p50_ms: 1.2, mqtt_call_rtt_p50_ms: 0.96 }
  assert.equal(meets("<= 1.10", 1.013, figures), true)
  assert.equal(meets("<= 1.10", 1.2, figures), false)
  assert.equal(meets(">= 0.90", 0.922, figures), true)
  assert.equal(meets(">= 5000 (in-memory device)", 4999, figures), false)
  assert.equal(meets("== 1.0", 1, figures), true)
  assert.equal(meets("== 1", 0.99, figures), false)
  assert.equal(meets("< 500", 500, figures), false)
  assert.equal(meets("0", 0, figures), true)
  assert.equal(meets("0", 1, figures), false)
  assert.equal(meets("8 (of 8)", 8, figures), true)
  assert.equal(meets("20/20", "20/20", figures), true)
  assert.equal(meets("20/20", "19/20", figures), false)
  assert.equal(meets("<= 3 x idle_call_rtt_p50_ms", 3.6, figures), true)
  assert.equal(meets("<= 3 x idle_call_rtt_p50_ms", 3.61, figures), false)
  assert.equal(meets("<= 3 x mqtt_call_rtt_p50_ms", 6.25, figures), false)
})

test("meets: undefined when it cannot tell (no such figure, no value, a target it does not read)", () => {
  assert.equal(meets("<= 3 x no_such_figure", 1, {}), undefined)
  assert.equal(meets("<= 1.10", null, {}), undefined)
  assert.equal(meets("<= 1.10", "1.0", {}), undefined)
  assert.equal(meets("fast enough", 1, {}), undefined)
})

test("figureLines: each figure with its target and whether it is met, nothing where there is no target", () => {
  const figures = { a_ratio: 1.2, b_ms: 2, note: "x" }
  assert.deepEqual(figureLines(figures, { a_ratio: "<= 1.10", b_ms: "<= 3 x a_ratio" }, [8, 5, 16]), ["a_ratio 1.2  <= 1.10         NOT MET", "b_ms    2    <= 3 x a_ratio  met", "note    x"])
})
