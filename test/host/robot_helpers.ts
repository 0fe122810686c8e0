// Helpers shared by the robot's host tests (not a test file itself).
import * as jpeg from "jpeg-js"

/** Decodes a JPEG to RGBA. Throws if it is not a JPEG. */
export function decode(buf: Uint8Array) {
  return jpeg.decode(buf, { useTArray: true, formatAsRGBA: true })
}

/** Average [r, g, b] of the w x h box at (x, y) of a decoded RGBA image. */
export function avg(img: { width: number; data: Uint8Array }, x: number, y: number, w: number, h: number): number[] {
  const s = [0, 0, 0]
  for (let j = y; j < y + h; j++)
    for (let i = x; i < x + w; i++) for (let k = 0; k < 3; k++) s[k]! += img.data[(j * img.width + i) * 4 + k]!
  return s.map((v) => v / (w * h))
}
