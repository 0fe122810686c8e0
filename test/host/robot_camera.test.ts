// The simulated camera's renderer (packages/host/src/sim/camera.ts): real JPEGs of the requested size whose
// content follows the robot's state.
import { test, describe } from "node:test"
import assert from "node:assert/strict"
import { renderScene, motorBarLayout, FIELD_OF_VIEW, type SceneState } from "../../packages/host/src/sim/camera"
import { avg, decode } from "./robot_helpers"

const base: SceneState = { panAngle: 0, leftSpeed: 0, rightSpeed: 0, ledOn: false, charge: 0.8 }
const sizes: [number, number][] = [
  [160, 120],
  [320, 240],
  [640, 480],
  [800, 600],
  [1024, 768],
  [1280, 1024],
  [1600, 1200],
]

function diffPixels(a: Uint8Array, b: Uint8Array) {
  let n = 0
  for (let i = 0; i < a.length; i += 4) if (Math.abs(a[i]! - b[i]!) + Math.abs(a[i + 1]! - b[i + 1]!) + Math.abs(a[i + 2]! - b[i + 2]!) > 60) n++
  return n
}

describe("simulated camera renderer", () => {
  for (const [w, h] of sizes) {
    test(`${w}x${h} is a JPEG that decodes to ${w}x${h}`, () => {
      const buf = renderScene({ ...base, width: w, height: h, quality: 80, frame: 1 })
      assert.equal(buf[0], 0xff)
      assert.equal(buf[1], 0xd8)
      assert.equal(buf[buf.length - 2], 0xff)
      assert.equal(buf[buf.length - 1], 0xd9)
      const img = decode(buf)
      assert.equal(img.width, w)
      assert.equal(img.height, h)
    })
  }

  test("the frame counter changes the picture", () => {
    const a = decode(renderScene({ ...base, width: 320, height: 240, quality: 90, frame: 1 }))
    const b = decode(renderScene({ ...base, width: 320, height: 240, quality: 90, frame: 2 }))
    assert.ok(diffPixels(a.data, b.data) > 10, "frames 1 and 2 look the same")
  })

  test("panning moves the scene", () => {
    const a = decode(renderScene({ ...base, width: 320, height: 240, quality: 90, frame: 1, panAngle: 0 }))
    const b = decode(renderScene({ ...base, width: 320, height: 240, quality: 90, frame: 1, panAngle: FIELD_OF_VIEW / 4 }))
    assert.ok(diffPixels(a.data, b.data) > 500, "pan 0 and pan 15 look the same")
  })

  test("motor bars: green up when forward, red down when reverse", () => {
    const w = 320
    const h = 240
    const fwd = decode(renderScene({ ...base, width: w, height: h, quality: 95, frame: 1, leftSpeed: 1, rightSpeed: -1 }))
    // Left bar: upper half green; right bar: lower half red.
    const { x, rightX, mid, barW, barH } = motorBarLayout(w, h)
    const [lr, lg] = avg(fwd, x + 2, Math.round(mid - barH / 4), barW - 4, 4)
    assert.ok(lg! > 150 && lr! < 80, `left bar should be green, got ${lr},${lg}`)
    const [rr, rg] = avg(fwd, rightX + 2, Math.round(mid + barH / 4), barW - 4, 4)
    assert.ok(rr! > 150 && rg! < 80, `right bar should be red, got ${rr},${rg}`)
  })

  test("quality changes the size", () => {
    const lo = renderScene({ ...base, width: 640, height: 480, quality: 10, frame: 1 })
    const hi = renderScene({ ...base, width: 640, height: 480, quality: 95, frame: 1 })
    assert.ok(hi.length > lo.length, `q95 ${hi.length} <= q10 ${lo.length}`)
  })
})
