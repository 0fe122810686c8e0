// Host-side demo services for the in-memory node (host/bridge/memory.ts): what the bridge tests,
// the benchmark and `robot bridge --memory` serve when no robot is attached, and a fleet of such
// nodes (`robot bridge --memory --robots N`). Not a robot: the picture is a gradient drawn on the
// host and JPEG-encoded with jpeg-js.
import * as jpeg from "jpeg-js"
import { ServiceError } from "../client/errors"
import { FleetNode } from "../client/fleet"
import { AddTwoInts, TakePicture, Trigger, SetBool } from "../gen/interfaces"
import { MemoryNode } from "./memory"

const RESOLUTIONS: [number, number][] = [[160, 120], [320, 240], [640, 480], [800, 600], [1024, 768], [1280, 1024], [1600, 1200]]

/** A small JPEG (a colour gradient with a frame counter band), `width` x `height`. */
export function demoJpeg(width: number, height: number, quality: number, frame = 0): Uint8Array {
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

/**
 * A MemoryNode with `/add_two_ints`, `/take_picture` (JPEG from jpeg-js), `/fail` (a Trigger
 * whose handler throws: `internal`), and `/set_led` (SetBool).
 */
export function demoMemoryNode(): MemoryNode {
  let frame = 0
  let led = false
  const node = new MemoryNode()
  node.addService(AddTwoInts, "/add_two_ints", (req) => ({ sum: BigInt.asIntN(64, req.a + req.b) }))
  node.addService(TakePicture, "/take_picture", (req) => {
    const r = RESOLUTIONS[req.resolution]
    if (!r) throw new ServiceError("invalid_argument", `resolution ${req.resolution} is not one of RES_* (0..6)`)
    const quality = req.quality === 0 ? 80 : req.quality
    if (quality > 100) throw new ServiceError("invalid_argument", `quality ${quality} is above MAX_QUALITY (100)`)
    const [width, height] = r
    const data = demoJpeg(width, height, quality, frame++)
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
