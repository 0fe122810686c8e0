// The Jacdac link of the record protocol (protocol v2, docs/protocol.md): the `rosServices` server
// (services/rosservices.md) takes `frame` commands and hands them to the runtime's record parser
// (rpc/runtime.ts) with this link's sender, which answers with `frame_out` reports. A peer of the
// MQTT link (net/mqtt.ts): each registers its senders with the runtime, neither imports the other.
import * as ds from "@devicescript/core"
import { cfg, errText } from "./core"
import { links, noop, parse, startRuntime } from "./runtime"
import { Sender } from "./sender"
import { Limit } from "../gen/wire"

type DsServer = typeof ds & {
    _onServerPacket(pkt: ds.Packet): Promise<void>
    _serverSend(serviceIndex: number, pkt: ds.Packet): Promise<void>
}
const dss = ds as DsServer

// The Jacdac server, without @devicescript/server (its Server class compiles every method, and
// sendEvent pulls in a SequentialWorker: about 1.7 KB of code the robot never runs). The packets in
// and out are those of its `startServer` with one server: service 0 is the control service (its
// announce report every 500 ms, the identity registers), service 1 is rosServices (command
// `frame`, action `echo`, instanceName `rosServices_0`); statusCode reads [0, 0]; anything else
// is answered "not implemented". Handlers by packet name (`set_<name>`: a register write).
let handlers: any[]
/** the control service's restart counter (announce flags) */
let restarts = 1

/** this link's sender (set once the link is started) */
let out: Sender

function statusCode() {
    return [0, 0]
}
/** the product identifier, for both the product and the bootloader register (one function, not two) */
function product() {
    return 0x355724dd
}

/**
 * Starts the Jacdac link (once) and the runtime under it: its sender (236-byte packets, the
 * runtime's 20 ms send slot, a window of four packets), the server and its announce every 500 ms.
 * `createService` calls it.
 */
export function startJacdacLink() {
    if (out) return
    out = new Sender(Limit.JacdacPayload, null, 20, cfg.window)
    links.push(out)
    startRuntime()
    const spec = ds.RosServices.spec.lookup("frameOut")
    out.send = async (p: Buffer, n: number) => {
        await dss._serverSend(1, spec.encode(n === p.length ? p : p.slice(0, n)))
    }
    handlers = [
        {
            announce: () => {
                if (restarts < ds.ControlAnnounceFlags.RestartCounterSteady) restarts++
                // flags, packet count, reserved, then the class of each service after the control
                return [restarts | ds.ControlAnnounceFlags.SupportsACK, 0, 0, ds.RosServices.spec.classIdentifier]
            },
            noop: noop,
            identify: noop,
            reset: () => {
                ds.reboot()
            },
            setStatusLight: noop,
            deviceDescription: () => "DeviceScript user-provided servers",
            productIdentifier: product,
            bootloaderProductIdentifier: product,
            firmwareVersion: () => ds._dcfgString("@version"),
            uptime: () => ds.millis() * 1000,
            statusCode,
            set_statusCode: noop,
        },
        {
            /** Command `frame`: run by the dispatcher in a fresh fiber for every host packet. */
            frame: async (data: Buffer) => {
                parse(data, 0, data ? data.length : 0, out)
            },
            /** Action `echo`: the raw one-packet round trip (link diagnostics and the benchmark). */
            echo: (data: Buffer) => data,
            statusCode,
            set_statusCode: noop,
            instanceName: () => ds.RosServices.spec.name + "_0",
        },
    ]
    dss._onServerPacket = onServerPacket
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
            await dss._serverSend(0, ds.Control.spec.lookup("announce").response.encode(handlers[0].announce()))
        } catch (e) {
            console.log("rosservices: announce: " + errText(e))
        }
    }
}

/** every packet for the server; nothing escapes it (an exception here would restart the program) */
async function onServerPacket(pkt: ds.Packet) {
    try {
        if (pkt.isReport) return
        const i = pkt.serviceIndex
        const h = handlers[i]
        if (!h) return
        ;(i ? ds.RosServices.spec : ds.Control.spec).assign(pkt)
        const sp = pkt.spec
        if (sp) {
            const m = h[(pkt.isRegSet ? "set_" : "") + sp.name]
            if (m) {
                if (pkt.isRegSet) {
                    await m(pkt.decode())
                    return
                }
                if (pkt.isRegGet) {
                    const r = await m()
                    if (r !== undefined) {
                        await dss._serverSend(i, sp.encode(r))
                        return
                    }
                } else if (pkt.isAction) {
                    const v = await m(pkt.decode())
                    if (sp.response) await dss._serverSend(i, sp.response.encode(v))
                    return
                }
            }
        }
        await dss._serverSend(i, pkt.notImplemented())
    } catch (e) {
        console.log("rosservices: packet: " + errText(e))
    }
}

