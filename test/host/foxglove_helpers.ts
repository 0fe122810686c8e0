// Foxglove WebSocket test helpers, shared by the Foxglove tests: the FoxgloveClient of
// @foxglove/ws-protocol (a client this project did not write), connected and collecting what the
// bridge advertises; one service call as a promise; waits on events, never on sleeps.
import { FoxgloveClient } from "@foxglove/ws-protocol"
import WebSocket from "ws"

export type Client = InstanceType<typeof FoxgloveClient>

/** The next `event` whose payload passes `pick` (waits on the event, no sleeps). */
export function next<T = any>(client: Client, event: string, pick: (v: any) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const on = (v: any) => {
      if (!pick(v)) return
      client.off(event as any, on)
      resolve(v)
    }
    client.on(event as any, on)
  })
}

export interface Conn {
  client: Client
  /** the client's own socket (a test can stop reading from it) */
  ws: WebSocket
  serverInfo: any
  services: Map<string, any>
  channels: any[]
}

/** Connects a FoxgloveClient and collects serverInfo, the advertised services and channels. */
export async function connectFoxglove(url: string, wantServices: number): Promise<Conn> {
  const ws = new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL])
  const client = new FoxgloveClient({ ws: ws as any })
  const services = new Map<string, any>()
  client.on("advertiseServices", (list) => {
    for (const s of list) services.set(s.name, s)
  })
  client.on("unadvertiseServices", (ids) => {
    for (const [n, s] of services) if (ids.includes(s.id)) services.delete(n)
  })
  const info = next(client, "serverInfo")
  const channels = next<any[]>(client, "advertise")
  const serverInfo = await info
  const chans = await channels
  while (services.size < wantServices) await next(client, "advertiseServices")
  return { client, ws, serverInfo, services, channels: chans }
}

let callIds = 1
/** One service call; resolves with the response or the failure message. */
export async function call(c: Conn, service: string, encoding: string, data: Uint8Array, serviceId?: number): Promise<{ ok: true; data: Uint8Array; encoding: string } | { ok: false; message: string }> {
  const s = c.services.get(service)
  const id = serviceId ?? s?.id
  const callId = callIds++
  const res = new Promise<any>((resolve) => {
    const onRes = (r: any) => {
      if (r.callId !== callId) return
      c.client.off("serviceCallResponse", onRes)
      c.client.off("serviceCallFailure", onFail)
      resolve({ ok: true, data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength), encoding: r.encoding })
    }
    const onFail = (f: any) => {
      if (f.callId !== callId) return
      c.client.off("serviceCallResponse", onRes)
      c.client.off("serviceCallFailure", onFail)
      resolve({ ok: false, message: f.message })
    }
    c.client.on("serviceCallResponse", onRes)
    c.client.on("serviceCallFailure", onFail)
  })
  c.client.sendServiceCallRequest({ serviceId: id, callId, encoding, data })
  return res
}

export const json = (v: string) => new TextEncoder().encode(v)
export const text = (b: Uint8Array) => new TextDecoder().decode(b)
