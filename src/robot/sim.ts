// Simulated hardware: DeviceScript client roles that bind to servers the host runs on the same
// Jacdac bus (packages/host/src/sim/hardware.ts, jacdac-ts MotorServer, ServoServer, ... as `devs add sim`
// does). Roles bind by service class, in role-name order: motorLeft binds to the first motor the
// host announces, motorRight to the second; the host also sets the bindings explicitly through
// the role manager. The camera is the custom `robotCamera` service (services/robotcamera.md).
import * as ds from "@devicescript/core"
import { FrameSource, frameSize } from "../drivers/arducam"
import { ServiceError, Status } from "@robot-services/device"
import { CameraPart, Hardware, Part, Picture } from "./hardware"

// (each wait for the host is a loop of its own, polling every 2 ms: a shared wait taking its
// condition as a closure cost a function per condition in the image)

/** How long a call waits for a part's role to bind (about a second after the program starts). */
const BIND_WAIT_MS = 2500

/** Waits up to BIND_WAIT_MS for the role to bind to a server, then throws Unavailable. */
async function requireBound(role: ds.Role, name: string) {
    const deadline = ds.millis() + BIND_WAIT_MS
    while (!role.isBound) {
        if (ds.millis() > deadline)
            throw new ServiceError(
                Status.Unavailable,
                `${name} is not connected: no simulated ${name} on the bus (start the host side with \`robot sim\`)`
            )
        await ds.sleep(2)
    }
}

/**
 * One simulated part: a role and the register it is driven and read by (one class for every part
 * kind: smaller code than one per kind); `enable`: the role's `enabled` register, written true once
 * before the first value (motors, the servo).
 */
class SimPart implements Part {
    private enabled: boolean
    constructor(private role: ds.Role, private name: string, private reg: ds.Register<number>, private enable?: ds.Register<boolean>) {}
    async write(v: number) {
        await requireBound(this.role, this.name)
        if (!this.enabled) {
            if (this.enable) await this.enable.write(true)
            this.enabled = true
        }
        await this.reg.write(v)
    }
    async read() {
        await requireBound(this.role, this.name)
        return await this.reg.read()
    }
}

// robotCamera wire codes (services/robotcamera.md).
const CMD_CAPTURE = 0x80
const CMD_READ = 0x81
const REP_CAPTURED = 0x82
const REP_CHUNK = 0x83
/** Bytes the device asks for per `read` command; the host answers with chunks of 224 bytes. */
const WINDOW = 1792
const CHUNK = 224

/** Client of the host's robotCamera server. One capture at a time; reads are serialized. */
export class SimCamera implements CameraPart {
    // (fields without an initializer are set before they are read: an initializer is code; the
    // window's fields and the lock are also used by the module functions below: not an API)
    token = 0
    capturedToken = -1
    capturedStatus: number
    capturedSize: number
    // Read window: bytes [winOff, winOff + winLen) of picture winToken (-1: none; the fields after
    // it are only read once a window was set up), of which the first winFill have come (chunks are
    // taken in order only: after a lost one, the rest of that answer is asked for again)
    winToken = -1
    winOff: number
    winLen: number
    winBuf: Buffer = Buffer.alloc(WINDOW)
    winFill: number
    busy: boolean
    /** Longest wait for one answer before the request is sent again. */
    retryMs = 250
    /** Attempts per request before giving up with Unavailable. */
    attempts = 8

    constructor(public role: ds.RobotCamera) {
        const self = this
        // the host's reports: CAPTURED answers a capture, CHUNK fills the read window. Taken as the
        // role's `_report`, which the role's packet handler calls with each report, instead of
        // `role.report().subscribe(...)`: no DeviceScript emitter in the image (docs/benchmarks.md)
        ;(role as any)._report = { emit: (pkt: ds.Packet) => {
            const code = pkt.serviceCommand & 0xfff
            const d = pkt.payload
            if (code === REP_CAPTURED && d.length >= 8) {
                if (d.getAt(0, "u16") !== self.token) return
                self.capturedStatus = d.getAt(2, "u16")
                self.capturedSize = d.getAt(4, "u32")
                self.capturedToken = self.token
            } else if (code === REP_CHUNK && d.length >= 8) {
                const token = d.getAt(0, "u16")
                const flags = d.getAt(2, "u16")
                const off = d.getAt(4, "u32")
                if (token !== self.winToken) return
                if ((flags & 1) !== 0) {
                    self.winToken = -2 // picture gone on the host
                    return
                }
                const rel = off - self.winOff
                if (rel !== self.winFill || rel >= self.winLen) return
                const n = Math.min(d.length - 8, self.winLen - rel)
                self.winBuf.blitAt(rel, d, 8, n)
                self.winFill += n
            }
        } }
    }

    async probe() {
        return [0, 0]
    }

    async capture(resolution: number, quality: number): Promise<Picture> {
        await requireBound(this.role, "camera")
        const wh = frameSize(resolution)
        await lock(this)
        let size = 0
        let token = 0
        try {
            this.token = (this.token + 1) & 0xffff
            token = this.token
            this.capturedToken = -1
            let ok = false
            for (let i = 0; i < this.attempts && !ok; i++) {
                await this.role.capture(token, wh[0], wh[1], quality)
                // (up to 4 x retryMs for the CAPTURED report)
                const end = ds.millis() + this.retryMs * 4
                while (!(ok = this.capturedToken === token) && ds.millis() <= end) await ds.sleep(2)
            }
            if (!ok) throw new ServiceError(Status.Unavailable, "camera: the simulated camera did not answer")
            if (this.capturedStatus !== 0)
                throw new ServiceError(Status.Internal, `camera: capture failed with status ${this.capturedStatus}`)
            size = this.capturedSize
        } finally {
            this.busy = false
        }
        const cam = this
        const jpeg: FrameSource = {
            length: size,
            read: async (offset: number, length: number) => {
                const n = Math.min(length, size - offset)
                if (n <= 0) return Buffer.alloc(0)
                const out = Buffer.alloc(n)
                let done = 0
                while (done < n) {
                    const pos = offset + done
                    await ensureWindow(cam, token, size, pos)
                    const take = Math.min(n - done, cam.winOff + cam.winLen - pos)
                    out.blitAt(done, cam.winBuf, pos - cam.winOff, take)
                    done += take
                }
                return out
            },
        }
        return { jpeg, width: wh[0], height: wh[1] }
    }
}

/** Waits for the camera's lock (one capture or window fetch at a time) and takes it. */
async function lock(cam: SimCamera) {
    while (cam.busy) await ds.sleep(2)
    cam.busy = true
}

/** Makes the window hold byte `pos` of picture `token`, fetching it from the host if needed. */
async function ensureWindow(cam: SimCamera, token: number, size: number, pos: number) {
    if (cam.winToken === token && cam.winFill === cam.winLen && pos >= cam.winOff && pos < cam.winOff + cam.winLen)
        return
    await lock(cam)
    try {
        // Windows are aligned so that resends of the same range hit the same window.
        const start = pos - (pos % WINDOW)
        cam.winToken = token
        cam.winOff = start
        cam.winLen = Math.min(WINDOW, size - start)
        cam.winFill = 0
        for (let attempt = 0; attempt < cam.attempts; attempt++) {
            // Ask again from the first missing chunk.
            const from = cam.winFill
            await cam.role.read(token, cam.winLen - from, cam.winOff + from)
            // (up to retryMs for the chunks, or the picture's end on the host)
            const end = ds.millis() + cam.retryMs
            while (cam.winFill < cam.winLen && cam.winToken === token && ds.millis() <= end) await ds.sleep(2)
            if (cam.winToken !== token)
                throw new ServiceError(Status.Unavailable, "camera: the picture is no longer on the host")
            if (cam.winFill === cam.winLen) return
        }
        cam.winToken = -1
        throw new ServiceError(Status.Unavailable, `camera: bytes at ${cam.winOff} of the picture never arrived`)
    } finally {
        cam.busy = false
    }
}

/** Creates the client roles. The host must serve them (packages/host/src/sim/hardware.ts). */
export function startSimulatedHardware(): Hardware {
    const motorLeft = new ds.Motor("motorLeft")
    const motorRight = new ds.Motor("motorRight")
    const servoPan = new ds.Servo("servoPan")
    const ledStatus = new ds.LightBulb("ledStatus")
    const buttonUser = new ds.Button("buttonUser")
    const battery = new ds.DcVoltageMeasurement("battery")
    const camera = new ds.RobotCamera("camera")
    const encoderLeft = new ds.RotaryEncoder("encoderLeft")
    const encoderRight = new ds.RotaryEncoder("encoderRight")
    return {
        kind: "simulator",
        pwmPins: 0,
        motorLeft: new SimPart(motorLeft, "motorLeft", motorLeft.speed, motorLeft.enabled),
        motorRight: new SimPart(motorRight, "motorRight", motorRight.speed, motorRight.enabled),
        encoderLeft: new SimPart(encoderLeft, "encoderLeft", encoderLeft.reading),
        encoderRight: new SimPart(encoderRight, "encoderRight", encoderRight.reading),
        servo: new SimPart(servoPan, "servoPan", servoPan.angle, servoPan.enabled),
        led: new SimPart(ledStatus, "ledStatus", ledStatus.intensity),
        userButton: new SimPart(buttonUser, "buttonUser", buttonUser.reading),
        battery: new SimPart(battery, "battery", battery.reading),
        camera: new SimCamera(camera),
        streamEncoders: async (n: number) => {
            await encoderLeft.streamingSamples.write(n)
            await encoderRight.streamingSamples.write(n)
        },
    }
}
