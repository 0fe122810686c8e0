// The simulated camera: a jacdac-ts server for the `robotCamera` service (services/robotcamera.md)
// that renders a real JPEG (jpeg-js) of a small scene showing the robot's state: what the pan
// servo points at (a ring of numbered posts around the robot), a frame counter, the two motor
// speeds as bars, the LED and the battery. Two pictures therefore differ, and a test can decode
// them and read the state back.
import * as fs from "node:fs"
import * as path from "node:path"
import * as jpeg from "jpeg-js"
import { jd, type JD } from "../transport/jacdac"

/** robotCamera service class and packet codes (services/robotcamera.md). */
export const SRV_ROBOT_CAMERA = 0x1e2f7a41
export const CMD_CAPTURE = 0x80
export const CMD_READ = 0x81
export const REPORT_CAPTURED = 0x82
export const REPORT_CHUNK = 0x83
/** Payload bytes per chunk report (8-byte header + data <= 236). */
export const CHUNK_SIZE = 224
/** Pictures kept for reading, by token. */
const KEEP = 4

/** What the scene shows; read from the simulated hardware at capture time. */
export interface SceneState {
  panAngle: number
  leftSpeed: number
  rightSpeed: number
  ledOn: boolean
  /** battery charge 0..1 */
  charge: number
}

export interface RenderOptions extends SceneState {
  width: number
  height: number
  /** JPEG quality 1..100 */
  quality: number
  frame: number
}

// ---- drawing ---------------------------------------------------------------------------------

type RGB = readonly [number, number, number]

class Canvas {
  readonly px: Buffer
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.px = Buffer.alloc(w * h * 4, 255)
  }
  rect(x0: number, y0: number, w: number, h: number, c: RGB) {
    const xa = Math.max(0, Math.floor(x0))
    const ya = Math.max(0, Math.floor(y0))
    const xb = Math.min(this.w, Math.floor(x0 + w))
    const yb = Math.min(this.h, Math.floor(y0 + h))
    for (let y = ya; y < yb; y++) {
      let i = (y * this.w + xa) * 4
      for (let x = xa; x < xb; x++, i += 4) {
        this.px[i] = c[0]
        this.px[i + 1] = c[1]
        this.px[i + 2] = c[2]
        this.px[i + 3] = 255
      }
    }
  }
  circle(cx: number, cy: number, r: number, c: RGB) {
    for (let y = Math.floor(cy - r); y <= cy + r; y++)
      for (let x = Math.floor(cx - r); x <= cx + r; x++)
        if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) this.rect(x, y, 1, 1, c)
  }
  /** Text in the 5x7 font below, `scale` pixels per font dot. */
  text(x: number, y: number, s: string, scale: number, c: RGB) {
    for (const ch of s.toUpperCase()) {
      const g = FONT[ch] ?? FONT["?"]!
      for (let row = 0; row < 7; row++)
        for (let col = 0; col < 5; col++)
          if ((g[row]! >> (4 - col)) & 1) this.rect(x + col * scale, y + row * scale, scale, scale, c)
      x += 6 * scale
    }
  }
}

// A 5x7 font: each glyph is 7 rows of 5 bits (bit 4 = leftmost dot).
const FONT: Record<string, number[]> = {
  "0": [14, 17, 19, 21, 25, 17, 14],
  "1": [4, 12, 4, 4, 4, 4, 14],
  "2": [14, 17, 1, 2, 4, 8, 31],
  "3": [31, 2, 4, 2, 1, 17, 14],
  "4": [2, 6, 10, 18, 31, 2, 2],
  "5": [31, 16, 30, 1, 1, 17, 14],
  "6": [6, 8, 16, 30, 17, 17, 14],
  "7": [31, 1, 2, 4, 8, 8, 8],
  "8": [14, 17, 17, 14, 17, 17, 14],
  "9": [14, 17, 17, 15, 1, 2, 12],
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  D: [28, 18, 17, 17, 17, 18, 28],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  R: [30, 17, 17, 30, 20, 18, 17],
  T: [31, 4, 4, 4, 4, 4, 4],
  V: [17, 17, 17, 17, 17, 10, 4],
  "+": [0, 4, 4, 31, 4, 4, 0],
  "-": [0, 0, 0, 31, 0, 0, 0],
  ".": [0, 0, 0, 0, 0, 12, 12],
  ":": [0, 12, 12, 0, 12, 12, 0],
  " ": [0, 0, 0, 0, 0, 0, 0],
  "?": [14, 17, 1, 2, 4, 0, 4],
}

/** Hue (0..360) to RGB, full saturation and value. */
function hue(h: number): RGB {
  const k = (n: number) => (n + h / 60) % 6
  const f = (n: number) => Math.round(255 * (1 - Math.max(0, Math.min(k(n), 4 - k(n), 1))))
  return [f(5), f(3), f(1)]
}

/** Camera field of view, degrees. */
export const FIELD_OF_VIEW = 60
/** Posts stand every POST_STEP degrees around the robot; post at azimuth a shows the number a. */
export const POST_STEP = 30

/**
 * Where the motor speed bars are in a `w` x `h` picture: left edges of the left and right bars,
 * their width and height, and the y of their middle (speed 0). A bar fills upwards from the middle
 * in green for forward, downwards in red for reverse, in proportion to the speed.
 */
export function motorBarLayout(w: number, h: number) {
  const s = Math.max(1, Math.floor(w / 160))
  const barW = Math.max(4, Math.round(w / 20))
  const barH = Math.round(h * 0.35)
  return { x: 4 * s, rightX: w - barW - 4 * s, mid: h - barH / 2 - 4 * s, barW, barH }
}

/**
 * Renders the scene as a JPEG. Layout: sky and ground; numbered posts at fixed azimuths seen
 * through a FIELD_OF_VIEW-wide window centred on the pan angle; top left: frame counter and pan
 * angle; bottom corners: left and right motor speed bars (green forward, red reverse, from the
 * middle); top right: LED (yellow when on) and battery gauge.
 */
export function renderScene(o: RenderOptions): Buffer {
  const { width: w, height: h } = o
  const c = new Canvas(w, h)
  const horizon = Math.round(h * 0.55)
  c.rect(0, 0, w, horizon, [120, 170, 230])
  c.rect(0, horizon, w, h - horizon, [90, 140, 70])
  // Posts in view.
  const degPerPx = FIELD_OF_VIEW / w
  for (let az = -180; az < 180; az += POST_STEP) {
    let rel = az - o.panAngle
    if (rel > 180) rel -= 360
    if (rel < -180) rel += 360
    if (Math.abs(rel) > FIELD_OF_VIEW / 2 + 10) continue
    const x = w / 2 + rel / degPerPx
    const pw = Math.max(4, Math.round(w / 16))
    const ph = Math.round(h * 0.45)
    c.rect(x - pw / 2, horizon - ph * 0.7, pw, ph, hue((az + 360) % 360))
    const label = String(az)
    const s = Math.max(1, Math.floor(pw / 12))
    c.text(x - (label.length * 6 * s) / 2, horizon - ph * 0.7 - 9 * s, label, s, [20, 20, 20])
  }
  // Centre mark.
  c.rect(w / 2 - 1, horizon - 4, 2, 8, [0, 0, 0])
  // Overlay text.
  const s = Math.max(1, Math.floor(w / 160))
  c.rect(0, 0, 14 * 6 * s + 4 * s, 20 * s, [0, 0, 0])
  c.text(2 * s, 2 * s, `FRAME ${o.frame}`, s, [255, 255, 255])
  c.text(2 * s, 11 * s, `PAN ${o.panAngle.toFixed(0)}`, s, [255, 255, 255])
  // Motor bars.
  const { x: leftX, rightX, mid, barW, barH } = motorBarLayout(w, h)
  const bar = (x: number, v: number) => {
    c.rect(x, mid - barH / 2, barW, barH, [40, 40, 40])
    const len = (Math.min(1, Math.abs(v)) * barH) / 2
    if (v >= 0) c.rect(x, mid - len, barW, len, [0, 220, 0])
    else c.rect(x, mid, barW, len, [230, 0, 0])
  }
  bar(leftX, o.leftSpeed)
  bar(rightX, o.rightSpeed)
  // LED and battery.
  const r = Math.max(3, 4 * s)
  c.circle(w - r - 4 * s, r + 4 * s, r, o.ledOn ? [255, 230, 0] : [60, 60, 60])
  const frac = Math.max(0, Math.min(1, o.charge))
  const gw = 20 * s
  c.rect(w - gw - 2 * r - 8 * s, 4 * s, gw, 5 * s, [0, 0, 0])
  c.rect(w - gw - 2 * r - 8 * s, 4 * s, Math.round(gw * frac), 5 * s, frac > 0.2 ? [0, 200, 0] : [230, 0, 0])
  const q = Math.max(1, Math.min(100, Math.round(o.quality)))
  return Buffer.from(jpeg.encode({ data: c.px, width: w, height: h }, q).data)
}

// ---- the Jacdac server -----------------------------------------------------------------------

/**
 * The robotCamera spec: the installed package's copy (dist/sim/robotcamera.md, which the package's
 * build copies from services/robotcamera.md), else this repository's services/robotcamera.md.
 */
export const CAMERA_SPEC_FILE = [path.join(__dirname, "robotcamera.md"), path.join(__dirname, "..", "..", "..", "..", "services", "robotcamera.md")].find((f) => fs.existsSync(f)) ?? path.join(__dirname, "robotcamera.md")

/**
 * Makes jacdac-ts know the robotCamera service (a server needs its spec). Parses
 * services/robotcamera.md and adds it to the specs already loaded, keeping other custom ones.
 * Throws if the spec file is missing or does not parse.
 */
export function ensureCameraSpec(): void {
  if (jd.serviceSpecificationFromClassIdentifier(SRV_ROBOT_CAMERA)) return
  const text = fs.readFileSync(CAMERA_SPEC_FILE, "utf8")
  const spec = jd.parseServiceSpecificationMarkdownToJSON(text, jd.serviceMap(), CAMERA_SPEC_FILE)
  if (spec.errors?.length)
    throw new Error(`${CAMERA_SPEC_FILE}: ${spec.errors.map((e) => `${e.line}: ${e.message}`).join("; ")}`)
  if (spec.classIdentifier !== SRV_ROBOT_CAMERA)
    throw new Error(`${CAMERA_SPEC_FILE}: identifier is 0x${spec.classIdentifier.toString(16)}, camera.ts expects 0x${SRV_ROBOT_CAMERA.toString(16)}`)
  const r = jd.loadServiceSpecifications([...jd.serviceSpecifications(), spec])
  if (r.errors.length) throw new Error(`loading ${CAMERA_SPEC_FILE}: ${r.errors.map((e) => e.message).join("; ")}`)
}

/**
 * jacdac-ts server of the robotCamera service. `state()` is read at each capture. Pictures are
 * kept by token (the last KEEP) so that the device can read any range again.
 */
export class RobotCameraServer extends jd.JDServiceServer {
  /** Pictures taken so far (the frame counter drawn into the next one is frames + 1). */
  frames = 0
  /** Bytes served in chunk reports (for tests and logs). */
  bytesServed = 0
  private pictures: { token: number; jpeg: Buffer }[] = []

  constructor(private readonly state: () => SceneState) {
    ensureCameraSpec()
    super(SRV_ROBOT_CAMERA, { instanceName: "camera" })
    this.addCommand(CMD_CAPTURE, (pkt) => void this.onCapture(pkt))
    this.addCommand(CMD_READ, (pkt) => void this.onRead(pkt))
  }

  /** The last picture taken, if any. */
  lastPicture(): Buffer | undefined {
    return this.pictures[this.pictures.length - 1]?.jpeg
  }

  private async onCapture(pkt: JD.Packet) {
    const d = pkt.data
    if (d.length < 7) return
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength)
    const token = v.getUint16(0, true)
    const width = v.getUint16(2, true)
    const height = v.getUint16(4, true)
    const quality = d[6]!
    const reply = async (status: number, size: number) => {
      const out = new Uint8Array(8)
      const ov = new DataView(out.buffer)
      ov.setUint16(0, token, true)
      ov.setUint16(2, status, true)
      ov.setUint32(4, size, true)
      await this.sendPacketAsync(jd.Packet.from(REPORT_CAPTURED, out))
    }
    // A resent capture command for a picture already taken gets the same answer.
    const known = this.pictures.find((p) => p.token === token)
    if (known) return reply(0, known.jpeg.length)
    if (width < 16 || height < 16 || width > 4096 || height > 4096) return reply(1, 0)
    if (quality < 1 || quality > 100) return reply(2, 0)
    this.frames++
    const jpegBuf = renderScene({ ...this.state(), width, height, quality, frame: this.frames })
    this.pictures.push({ token, jpeg: jpegBuf })
    while (this.pictures.length > KEEP) this.pictures.shift()
    this.emit("picture", { token, width, height, size: jpegBuf.length })
    await reply(0, jpegBuf.length)
  }

  private async onRead(pkt: JD.Packet) {
    const d = pkt.data
    if (d.length < 8) return
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength)
    const token = v.getUint16(0, true)
    const length = v.getUint16(2, true)
    const offset = v.getUint32(4, true)
    const pic = this.pictures.find((p) => p.token === token)
    const header = (off: number, flags: number, n: number) => {
      const out = new Uint8Array(8 + n)
      const ov = new DataView(out.buffer)
      ov.setUint16(0, token, true)
      ov.setUint16(2, flags, true)
      ov.setUint32(4, off, true)
      return out
    }
    if (!pic) {
      await this.sendPacketAsync(jd.Packet.from(REPORT_CHUNK, header(offset, 1, 0)))
      return
    }
    const end = Math.min(pic.jpeg.length, offset + length)
    for (let off = offset; off < end; off += CHUNK_SIZE) {
      const n = Math.min(CHUNK_SIZE, end - off)
      const out = header(off, 0, n)
      out.set(pic.jpeg.subarray(off, off + n), 8)
      this.bytesServed += n
      await this.sendPacketAsync(jd.Packet.from(REPORT_CHUNK, out))
    }
  }
}
