// The Jacdac link of the record protocol (protocol v2, docs/protocol.md): the `rosServices` server
// (services/rosservices.md) takes `frame` commands and hands them to the runtime's frame parser
// (rpc/runtime.ts) with this link's sender, which answers with `frame_out` reports. A peer of the
// MQTT link (net/mqtt.ts): each registers its senders with the runtime, neither imports the other.
import * as ds from "@devicescript/core"
import { links, logError } from "./core"
import { parse, startRuntime } from "./runtime"
import { Sender } from "./sender"
import { Limit } from "../gen/wire"

type DsServer = typeof ds & {
    _onServerPacket(pkt: ds.Packet): Promise<void>
    _serverSend(serviceIndex: number, pkt: ds.Packet): Promise<void>
}
// (`(ds as DsServer).x` where the two are used: a member of `ds` is 2 bytes of code, a module
// variable holding `ds` and its field 4, and the variable is set at start-up)

// The Jacdac server, without @devicescript/server (its Server class compiles every method, and
// sendEvent pulls in a SequentialWorker: about 1.7 KB of code the robot never runs). The packets in
// and out are those of its `startServer` with one server: service 0 is the control service (its
// announce report every 500 ms, the identity registers), service 1 is rosServices (command
// `frame`, action `echo`, instanceName `rosServices_0`); statusCode reads [0, 0]; anything else
// is answered "not implemented". The packets are told apart by name in `onServerPacket`, not by tables of handler functions (each function costs the image a 16-byte header:
// the tables cost about 130 bytes more).
/** the control service's restart counter (announce flags) */
let restarts = 1

/** this link's sender (set once the link is started) */
let out: Sender

/** the control service's announce: flags, packet count, reserved, then the class of each service after the control */
function announcement(): any[] {
    if (restarts < ds.ControlAnnounceFlags.RestartCounterSteady) restarts++
    return [restarts | ds.ControlAnnounceFlags.SupportsACK, 0, 0, ds.RosServices.spec.classIdentifier]
}

/**
 * Starts the Jacdac link (once) and the runtime under it: its sender (236-byte packets, the
 * runtime's 20 ms send slot, a window of four packets), the server and its announce every 500 ms.
 * `createService` calls it.
 */
export function startJacdacLink() {
    if (out) return
    // (the upload window: request bytes a host may send beyond what the device acknowledged)
    out = new Sender(Limit.JacdacPayload, null, 20, 944)
    links.push(out)
    startRuntime()
    const spec = ds.RosServices.spec.lookup("frameOut")
    // (the sender's packets are exactly the payload here: no room before it)
    out.send = async (p: Buffer) => {
        await (ds as DsServer)._serverSend(1, spec.encode(p))
    }
    ;(ds as DsServer)._onServerPacket = onServerPacket
    beat.start()
}

/**
 * The control service's announce every 500 ms, in a fiber of its own (not setInterval: see tick in
 * rpc/runtime.ts). Nothing escapes it.
 */
async function beat() {
    while (true) {
        await ds.sleep(500)
        try {
            await (ds as DsServer)._serverSend(0, ds.Control.spec.lookup("announce").response.encode(announcement()))
        } catch (e) {
            logError("announce", e)
        }
    }
}

/**
 * every packet for the server (run by the runtime in a fiber of its own for each); nothing escapes
 * it (an exception here would restart the program)
 */
async function onServerPacket(pkt: ds.Packet) {
    try {
        if (pkt.isReport) return
        const i = pkt.serviceIndex
        if (i > 1) return
        let sv: ds.ServiceSpec = ds.Control.spec
        if (i === 1) sv = ds.RosServices.spec
        sv.assign(pkt)
        const sp = pkt.spec
        // the answer, sent at the end (one send for every kind: unset, "not implemented")
        let r: ds.Packet
        if (sp) {
            const name = sp.name
            if (pkt.isRegSet) {
                // (status_code, of both services: written, ignored)
                if (name === "statusCode") return
            } else if (pkt.isRegGet) {
                // the register's value (undefined: not implemented)
                let v: any
                if (name === "statusCode") v = [0, 0]
                else if (i === 1) {
                    if (name === "instanceName") v = ds.RosServices.spec.name + "_0"
                }
                // (the product identifier for both the product and the bootloader register: one
                // search, no other control register's name is part of this string)
                else if ("productIdentifier bootloaderProductIdentifier".indexOf(name) >= 0) v = 0x355724dd
                else if (name === "deviceDescription") v = "DeviceScript user-provided servers"
                else if (name === "firmwareVersion") v = ds._dcfgString("@version")
                else if (name === "uptime") v = ds.millis() * 1000
                if (v !== undefined) r = sp.encode(v)
            } else if (pkt.isAction) {
                if (i === 1) {
                    // command `frame`: records for the runtime's parser
                    // (its one field is `data: bytes`: the payload itself, always a Buffer, is
                    // what decode() gives, or undefined for an empty one: either way "empty frame")
                    if (name === "frame") {
                        const d = pkt.payload
                        parse(d, 0, d.length, out)
                        return
                    }
                    // action `echo`: the raw one-packet round trip (link diagnostics and the benchmark)
                    if (name === "echo") r = sp.response.encode(pkt.decode())
                } else {
                    if (name === "announce") r = sp.response.encode(announcement())
                    // (reset, noop, identify, set_status_light: no report)
                    if (name === "reset") {
                        ds.reboot()
                        return
                    }
                    // (one search for the three: no other control command's name is part of
                    // this string, and "announce" and "reset" are answered above)
                    if ("noop identify setStatusLight".indexOf(name) >= 0) return
                }
            }
        }
        if (!r) r = pkt.notImplemented()
        await (ds as DsServer)._serverSend(i, r)
    } catch (e) {
        logError("packet", e)
    }
}

