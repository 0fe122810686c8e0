// A bare rosbridge client for the tests and the benchmarks that time another client's calls: one
// WebSocket, calls matched by id, no roslib in the timing.
import WebSocket from "ws"

/**
 * A bare rosbridge client (one WebSocket, calls matched by id): no roslib in the timing, for tests
 * and benchmarks that measure how long calls take. `call` resolves with the service_response; a
 * connection that closes answers what waits with `result: false`.
 */
export async function rawRosClient(url: string): Promise<{ call(service: string, args: unknown): Promise<{ result: boolean; values: any }>; close(): void }> {
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  const waiting = new Map<string, (m: any) => void>()
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString())
    const w = waiting.get(m.id)
    if (w) {
      waiting.delete(m.id)
      w(m)
    }
  })
  ws.on("close", () => {
    for (const w of waiting.values()) w({ result: false, values: "the bridge closed the connection" })
    waiting.clear()
  })
  let n = 0
  return {
    call(service, args) {
      const id = `raw${n++}`
      return new Promise((resolve) => {
        waiting.set(id, resolve)
        ws.send(JSON.stringify({ op: "call_service", id, service, args }))
      })
    },
    close: () => ws.close(),
  }
}
