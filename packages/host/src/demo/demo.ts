// Host-side demo services for the in-memory node (packages/host/src/demo/memory.ts): what the bridge tests,
// the benchmark and `robot bridge --memory` serve when no robot is attached, and a fleet of such
// nodes (`robot bridge --memory --robots N`). Not a robot: the picture is a gradient drawn on the
// host and JPEG-encoded with jpeg-js (packages/host/src/demo/demo_camera.js), in a worker thread: a large
// picture takes a few hundred ms of CPU, which in the bridge's event loop delayed every other
// client's calls by seconds while one client asked for pictures (issue 20).
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { ServiceError } from "../client/errors"
import { FleetNode } from "../client/fleet"
import { AddTwoInts, TakePicture, Trigger, SetBool } from "../gen/interfaces"
import { MemoryNode } from "./memory"

const RESOLUTIONS: [number, number][] = [[160, 120], [320, 240], [640, 480], [800, 600], [1024, 768], [1280, 1024], [1600, 1200]]

const CAMERA_FILE = path.join(__dirname, "demo_camera.js")
// eslint-disable-next-line @typescript-eslint/no-require-imports
const camera = require(CAMERA_FILE) as { drawJpeg(width: number, height: number, quality: number, frame: number): Uint8Array }

/**
 * A small JPEG (a colour gradient with a frame counter band), `width` x `height`, encoded in the
 * calling thread (it blocks it: 150-300 ms at 1600 x 1200). Services use {@link DemoCamera}.
 */
export function demoJpeg(width: number, height: number, quality: number, frame = 0): Uint8Array {
  return camera.drawJpeg(width, height, quality, frame)
}

interface Shot {
  id: number
  width: number
  height: number
  quality: number
  frame: number
  signal: AbortSignal | undefined
  resolve(bytes: Uint8Array): void
  reject(e: Error): void
}

/**
 * The demo robots' camera: one worker thread taking one picture at a time, as a camera does, so
 * pictures cost the bridge's event loop nothing but their answer. Pictures wait their turn in
 * order; one whose call was given up (its signal aborted) is dropped before it is taken. The worker
 * starts with the first picture and does not keep the process alive; if it fails, the pictures it
 * held fail with `internal` and the next one starts a new worker.
 */
export class DemoCamera {
  private worker: Worker | undefined
  private readonly queue: Shot[] = []
  private busy: Shot | undefined
  private nextId = 1

  /** A JPEG, as {@link demoJpeg}; rejects with the signal's reason when it is aborted first. */
  take(width: number, height: number, quality: number, frame: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<Uint8Array>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, width, height, quality, frame, signal, resolve, reject })
      this.pump()
    })
  }

  /** Pictures waiting (the one being taken not counted). */
  get waiting(): number {
    return this.queue.length
  }

  private pump() {
    if (this.busy) return
    let shot: Shot | undefined
    while ((shot = this.queue.shift())) {
      if (!shot.signal?.aborted) break
      shot.reject(shot.signal.reason instanceof Error ? shot.signal.reason : new ServiceError("cancelled", "call cancelled"))
    }
    if (!shot) {
      this.worker?.unref()
      return
    }
    this.busy = shot
    const w = this.start()
    w.ref()
    w.postMessage({ id: shot.id, width: shot.width, height: shot.height, quality: shot.quality, frame: shot.frame })
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const w = new Worker(CAMERA_FILE, { workerData: "robot-services demo camera" })
    this.worker = w
    w.on("message", (m: { id: number; bytes?: Uint8Array; error?: string }) => {
      const shot = this.busy
      if (!shot || shot.id !== m.id) return
      this.busy = undefined
      if (m.bytes) shot.resolve(m.bytes)
      else shot.reject(new ServiceError("internal", `the demo camera failed: ${m.error}`))
      this.pump()
    })
    const fail = (why: string) => {
      if (this.worker !== w) return
      this.worker = undefined
      const shot = this.busy
      this.busy = undefined
      shot?.reject(new ServiceError("internal", `the demo camera stopped: ${why}`))
      this.pump()
    }
    w.on("error", (e) => fail(e.message))
    w.on("exit", (code) => fail(`its worker exited (${code})`))
    return w
  }
}

/** The camera every demo robot of this process shares (one worker however many robots). */
export const demoCamera = new DemoCamera()

/**
 * A MemoryNode with `/add_two_ints`, `/take_picture` (JPEG from jpeg-js), `/fail` (a Trigger
 * whose handler throws: `internal`), and `/set_led` (SetBool).
 */
export function demoMemoryNode(): MemoryNode {
  let frame = 0
  let led = false
  const node = new MemoryNode()
  node.addService(AddTwoInts, "/add_two_ints", (req) => ({ sum: BigInt.asIntN(64, req.a + req.b) }))
  node.addService(TakePicture, "/take_picture", async (req, ctx) => {
    const r = RESOLUTIONS[req.resolution]
    if (!r) throw new ServiceError("invalid_argument", `resolution ${req.resolution} is not one of RES_* (0..6)`)
    const quality = req.quality === 0 ? 80 : req.quality
    if (quality > 100) throw new ServiceError("invalid_argument", `quality ${quality} is above MAX_QUALITY (100)`)
    const [width, height] = r
    const data = await demoCamera.take(width, height, quality, frame++, ctx.signal)
    const ms = Date.now()
    return {
      image: { header: { stamp: { sec: Math.floor(ms / 1000) | 0, nanosec: (ms % 1000) * 1e6 }, frame_id: "camera" }, format: "jpeg", data },
      width,
      height,
    }
  })
  node.addService(Trigger, "/fail", () => {
    throw new Error("the demo handler always fails")
  })
  node.addService(SetBool, "/set_led", (req) => {
    led = req.data
    return { success: true, message: `led ${led ? "on" : "off"}` }
  })
  return node
}

/**
 * A FleetNode of `count` demo nodes named `robot1`..`robot<count>` (each a {@link demoMemoryNode});
 * `fleet.robot("robot2")` is robot2's MemoryNode, for tests that take it offline. Throws on a count
 * outside 1-1000.
 */
export function demoFleet(count: number): FleetNode {
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new RangeError(`robots: ${count} is not a count of 1-1000`)
  const fleet = new FleetNode(`the in-memory demo fleet`)
  for (let i = 1; i <= count; i++) fleet.add(`robot${i}`, demoMemoryNode())
  return fleet
}
