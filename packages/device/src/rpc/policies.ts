// The concurrency policies of createService (docs/protocol.md "Concurrency per service"):
// `createService(T, name, handler, { concurrency: serial })`. Each is a function the call table
// (calls.ts `ready`, `releaseSlot`) calls for its service; a firmware that names neither carries
// none of this file (a name tested in the call table put the code of both in every firmware).
// One handler of such a service runs at a time; the others wait in arrival order.
import { Call, Entry, remove } from "./core"
import { calls, fail, run } from "./calls"
import { CallState, Status } from "../gen/wire"

/**
 * One call at a time: the others wait in arrival order, within the budget. `c` (ready) joins the
 * queue, or (null) the running handler gave its slot back; then the queue's first call runs if the
 * slot is free.
 */
export function serial(e: Entry, c: Call) {
    const w = e.queue
    if (c) w.push(c)
    else e.running = false
    // (a read past the end is undefined; single tests: smaller code than `&&`)
    while (w[0]) {
        if (e.running) break
        const q = w[0]
        w.insert(0, -1)
        if (q.state === CallState.Queued) {
            run(q)
            // (run fails a call whose deadline passed or that was cancelled: it took no slot)
            if (!q.released) e.running = true
        }
    }
}

/**
 * A new call cancels the running one (its context turns `cancelled`) and runs after it returns;
 * calls still waiting are answered `Cancelled` "replaced by a newer call".
 */
export function latest(e: Entry, c: Call) {
    // (fail and cancel take no call out of the table: no copy of it)
    if (c)
        for (let i = 0; i < calls.length; i++) {
            const o = calls[i]
            if (o !== c)
                if (o.entry === e) {
                    if (o.state === CallState.Queued) {
                        remove(e.queue, o)
                        fail(o, Status.Cancelled, "replaced by a newer call")
                    } else if (o.state === CallState.Running) o.cancel("replaced by a newer call")
                }
        }
    // (then as serial)
    serial(e, c)
}
