// The demo camera's picture: a colour gradient with a frame counter band, JPEG-encoded with jpeg-js.
// Plain JavaScript because it also runs as a worker thread (host/demo/demo.ts `DemoCamera`), and a
// worker started from the `robot` CLI has no TypeScript loader. Encoding a UXGA picture takes
// 150-300 ms of CPU: in the bridge's event loop that stalled every client (issue 20), so the demo
// robot takes its pictures here, off the loop, as a real camera would.
"use strict"
const { parentPort, workerData } = require("node:worker_threads")
const jpeg = require("jpeg-js")

/** A JPEG of `width` x `height` at `quality` (1-100); `frame` tints the blue channel. */
function drawJpeg(width, height, quality, frame) {
  const data = Buffer.alloc(width * height * 4)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4
      data[i] = Math.floor((255 * x) / width)
      data[i + 1] = Math.floor((255 * y) / height)
      data[i + 2] = (frame * 40) & 255
      data[i + 3] = 255
    }
  }
  return new Uint8Array(jpeg.encode({ data, width, height }, quality).data)
}

module.exports = { drawJpeg }

// as the camera's worker: one picture per message, answered with its bytes (moved, not copied)
if (workerData === "robot-services demo camera" && parentPort) {
  parentPort.on("message", (m) => {
    try {
      const bytes = drawJpeg(m.width, m.height, m.quality, m.frame)
      const copy = new Uint8Array(bytes) // a buffer of its own, so it can be transferred
      parentPort.postMessage({ id: m.id, bytes: copy }, [copy.buffer])
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) })
    }
  })
}
