// A RobotNode over a rosbridge connection, for the host code written against RobotNode (the action
// client, packages/host/src/client/action.ts): each typed call becomes one call_service with the
// bridge's JSON rules (calls/json.ts) and its response is read back into codec values. The bridge
// serves an action's four `_action/` services as plain services, so `robot action` works through
// a bridge on this one code path, the same as on a direct link. What rosbridge cannot carry is said
// here: no push of restarts or list changes (a goal lost to a restart fails on its next watch call).
import type { Client, NodeState, RobotNode, ServiceInfo } from "../client/api"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { ServiceError } from "../client/errors"
import { normalizeName } from "../client/names"
import { fromJson, toJson } from "../calls/json"
import type { ServiceDescriptor } from "../runtime/types"
import { listedWithTypes, type RosbridgeClient } from "./rosclient"

/** How often `waitForService` asks the bridge again for a service it does not list yet (ms). */
const POLL_MS = 250

export function rosbridgeNode(client: RosbridgeClient, options: { timeoutMs: number }): RobotNode {
  const typeOf = async (name: string): Promise<string> =>
    ((await client.call("/rosapi/service_type", { service: name }, { timeoutMs: options.timeoutMs })) as { type: string }).type
  return {
    state: "connected" as NodeState,
    // (the rosbridge client is closed by its owner, not through this node)
    closed: false,
    onStateChange: () => () => {},
    onServicesChanged: () => () => {},
    async listServices() {
      const reply = (await client.call("/rosapi/services", {}, { timeoutMs: options.timeoutMs })) as { services: string[]; types?: unknown }
      // rosapi gives no type hash: 0 (the bridge checks the hash when it calls the robot)
      const listed = listedWithTypes(reply)
      if (listed) return listed.map((s): ServiceInfo => ({ ...s, hash32: 0 }))
      return Promise.all(reply.services.map(async (name): Promise<ServiceInfo> => ({ name, type: await typeOf(name), hash32: 0 })))
    },
    createClient<Req, Res>(type: ServiceDescriptor<Req, Res>, serviceName: string): Client<Req, Res> {
      const name = normalizeName(serviceName)
      return {
        serviceName: name,
        type,
        async waitForService(o = {}) {
          const end = performance.now() + (o.timeoutMs ?? DEFAULT_TIMEOUT_MS)
          for (;;) {
            const t = await typeOf(name)
            if (t === type.fullName) return
            if (t !== "") throw new ServiceError("type_mismatch", `${name} is ${t}, not ${type.fullName}`, name)
            if (performance.now() > end) throw new ServiceError("deadline_exceeded", `the bridge does not list ${name}`, name)
            await new Promise((r) => setTimeout(r, POLL_MS))
          }
        },
        async call(request, o = {}) {
          // expectType: the bridge refuses the call (type_mismatch) if the service has another type
          const values = await client.call(name, toJson(type.request, request), { timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS, onProgress: o.onProgress, expectType: type.fullName })
          return fromJson(type.response, values)
        },
      }
    },
    async close() {},
  }
}
