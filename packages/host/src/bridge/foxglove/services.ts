// The robot's services as Foxglove `advertiseServices` (the `services` capability) and their calls, in
// `cdr` (bytes passed to the robot as they are) or `json`, every failure answered with `serviceCallFailure`
// (`<code>: <message>`, timeouts too: Foxglove clients do not time out).
import { stringify as ros2msgText } from "@foxglove/rosmsg"
import type { MessageDefinition } from "@foxglove/message-definition"
import { ServiceError } from "../../client/errors"
import type { ServiceDescriptor } from "../../runtime/types"
import type { Guard } from "../guard"
import { parseJson, stringifyJson } from "../../calls/json"
import type { CallPipeline } from "../../calls/pipeline"
import type { Clients, Conn } from "./clients"
import { OP_CLIENT_SERVICE_CALL_REQUEST, serviceCallResponse, STATUS_ERROR } from "./framing"
import { jsonSchema } from "./schema"

/** Calls go through the shared pipeline; tokens, origins and the in-flight bound through the guard. */
export interface ServiceOptions {
  pipeline: CallPipeline
  guard: Guard
  defaultTimeoutMs: number
  /** The encoding services are advertised in (calls may use either): `cdr` (ros2msg schemas, default) or `json` (JSON Schema). */
  encoding?: "cdr" | "json"
}

export interface Advertised {
  id: number
  key: string
  name: string
  type: ServiceDescriptor<any, any>
}

export class Services {
  private readonly services = new Map<number, Advertised>()
  /**
   * The advertiseServices message of every service now, as sent to each new client: written once
   * per change of the list, not per client (a schema per service each time made each new client
   * cost the bridge milliseconds, and a storm of connections held other clients' calls)
   */
  private allText: Buffer | undefined
  private readonly idOfKey = new Map<string, number>()
  private nextServiceId = 1

  constructor(
    private readonly o: ServiceOptions,
    private readonly clients: Clients,
  ) {}

  advertiseTo(c: Conn) {
    if (!this.services.size) return
    this.allText ??= Buffer.from(JSON.stringify({ op: "advertiseServices", services: [...this.services.values()].map((s) => this.describe(s)) }))
    this.clients.sendText(c, this.allText)
  }

  private describe(s: Advertised) {
    const half = (d: ServiceDescriptor<any, any>["request"]) =>
      this.o.encoding === "json"
        ? { encoding: "json", schemaName: d.fullName, schemaEncoding: "jsonschema", schema: JSON.stringify(jsonSchema(d.definitions)) }
        : { encoding: "cdr", schemaName: d.fullName, schemaEncoding: "ros2msg", schema: ros2msgText(d.definitions as MessageDefinition[]) }
    const request = half(s.type.request)
    const response = half(s.type.response)
    // requestSchema/responseSchema: the older spelling, still read by older clients
    return { id: s.id, name: s.name, type: s.type.fullName, request, response, requestSchema: request.schema, responseSchema: response.schema }
  }

  /** Advertises what the robot lists now and unadvertises what it no longer does. */
  syncServices() {
    const p = this.o.pipeline
    const want = new Map<string, { name: string; type: ServiceDescriptor<any, any> }>()
    if (p.node.state === "connected") {
      for (const s of p.services) {
        const type = p.registry[s.type]
        if (type) want.set(`${s.name}|${s.type}|${s.hash32}`, { name: s.name, type })
      }
    }
    this.unadvertiseWhere((s) => !want.has(s.key))
    const have = new Set([...this.services.values()].map((s) => s.key))
    const added: Advertised[] = []
    for (const [key, w] of want) {
      if (have.has(key)) continue
      // ids are reused only for the same name, type and schema, as the protocol allows
      let id = this.idOfKey.get(key)
      if (id === undefined) this.idOfKey.set(key, (id = this.nextServiceId++))
      const s = { id, key, name: w.name, type: w.type }
      this.services.set(id, s)
      added.push(s)
    }
    if (!added.length) return
    this.allText = undefined
    this.clients.broadcast({ op: "advertiseServices", services: added.map((s) => this.describe(s)) })
  }

  unadvertiseAll() {
    this.unadvertiseWhere(() => true)
  }

  unadvertiseWhere(which: (s: Advertised) => boolean) {
    const gone = [...this.services.values()].filter(which)
    if (!gone.length) return
    for (const s of gone) this.services.delete(s.id)
    this.allText = undefined
    this.clients.broadcast({ op: "unadvertiseServices", serviceIds: gone.map((s) => s.id) })
  }

  onBinary(c: Conn, b: Buffer) {
    const op = b[0]
    if (op !== OP_CLIENT_SERVICE_CALL_REQUEST) {
      return this.clients.status(c, STATUS_ERROR, `binary opcode ${op ?? "(empty)"} is not supported: this bridge takes service call requests (0x02) only`)
    }
    if (b.length < 13) return this.clients.status(c, STATUS_ERROR, `service call request of ${b.length} bytes: shorter than its 13-byte header`)
    const serviceId = b.readUInt32LE(1)
    const callId = b.readUInt32LE(5)
    const encLen = b.readUInt32LE(9)
    const fail = (err: ServiceError) => this.clients.sendJson(c, { op: "serviceCallFailure", serviceId, callId, message: err.message })
    if (13 + encLen > b.length) return fail(new ServiceError("invalid_argument", `the encoding name (${encLen} bytes) runs past the end of the request`))
    const encoding = b.toString("utf8", 13, 13 + encLen)
    const payload = new Uint8Array(b.buffer, b.byteOffset + 13 + encLen, b.length - 13 - encLen)
    const s = this.services.get(serviceId)
    if (!s) return fail(new ServiceError("unimplemented", `no service with id ${serviceId} (the robot's services are advertised with advertiseServices)`))
    if (encoding !== "cdr" && encoding !== "json") {
      return fail(new ServiceError("invalid_argument", `encoding '${encoding}' is not supported: use cdr or json`, s.name))
    }
    const release = this.o.guard.acquire(c.address, c)
    if (!release) return fail(new ServiceError("resource_exhausted", this.o.guard.refusal(c.address, c), s.name))
    const ac = new AbortController()
    c.calls.add(ac)
    const caller = { via: "foxglove", client: `foxglove ${c.id}`, owner: c }
    const timeoutMs = this.o.defaultTimeoutMs
    const reply = (data: Uint8Array) => this.clients.send(c, serviceCallResponse(serviceId, callId, encLen, encoding, data))
    const run = async () => {
      if (encoding === "cdr") {
        const out = await this.o.pipeline.callCdr(s.name, payload, { timeoutMs, signal: ac.signal }, caller)
        return out.ok ? reply(out.bytes) : fail(out.error)
      }
      let args: unknown
      try {
        args = payload.length === 0 ? {} : parseJson(Buffer.from(payload).toString("utf8"))
      } catch (e) {
        return fail(new ServiceError("invalid_argument", `malformed JSON: ${(e as Error).message}`, s.name))
      }
      const out = await this.o.pipeline.callJson({ service: s.name, args, timeoutMs, signal: ac.signal }, "base64", caller)
      if (out.ok) reply(Buffer.from(stringifyJson(out.values), "utf8"))
      else fail(out.error!)
    }
    run()
      .catch((e) => fail(new ServiceError("internal", (e as Error)?.message ?? String(e), s.name)))
      .finally(() => {
        release()
        c.calls.delete(ac)
      })
  }
}
