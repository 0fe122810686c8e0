// The service runtime under the links (protocol v2, docs/protocol.md): the frame parser (each record
// it finds goes to calls.ts `record`) and the clock. Each link imports this file and registers its
// senders in core.ts `links`: the Jacdac link (rpc/server.ts, started by createService) and the MQTT
// link (net/mqtt.ts, started by the program); this file imports neither, and neither imports the other. A record that cannot be parsed
// is answered with a (rate-limited) ERROR on the link it came from and never changes any call's state.
import * as ds from "@devicescript/core"
import { record, tick } from "./calls"
import { Out, errText } from "./core"
import { Limit } from "../gen/wire"

/** (the MQTT link's parked sessions' link: one function in the image for its four methods) */
export function noop() {}

/** the clock runs */
let ticking: boolean

/** Starts the runtime's clock (once). Each link calls it when it starts; it starts no link. */
export function startRuntime() {
    if (ticking) return
    ticking = true
    tick.start()
}

/**
 * Parses the frame in `d` from `from` to `end` (the records a host sent on `link`). Never throws:
 * a frame that breaks the parser is answered ERROR on its link, nothing else (on every link; an
 * exception escaping a Jacdac command would restart the program).
 */
export function parse(d: Buffer, from: number, end: number, link: Out) {
    try {
        // (a Jacdac frame that decodes to nothing comes with end 0: one test)
        if (end <= from) {
            link.error("empty frame", 0)
            return
        }
        let o = from
        while (o < end) {
            if (o + Limit.RecordHeader > end) {
                link.error("truncated record header", o - from)
                return
            }
            const kind = d[o]
            const len = d.getAt(o + 1, "u16")
            const b = o + Limit.RecordHeader
            if (b + len > end) {
                link.error(`record ${kind} overruns the frame`, o - from)
                return
            }
            record(kind, d, b, len, link, o - from)
            o = b + len
        }
    } catch (e) {
        link.error("frame: " + errText(e), 0)
    }
}
