// The service types the CLI and the bridge know, by full name: the built-in set (the interfaces of
// this repository's robot, packages/host/src/gen/interfaces.ts: std_srvs, example_interfaces,
// robot_interfaces) overlaid with the project's own interfaces (devs.json `interfaces`, and the host
// package's built-in root after them, which their actions need), read from the .srv/.msg files at run time. A user's project needs no generated host code for
// `robot service call` or `robot bridge`: the descriptors are built here from the same parsed
// definitions and hashes the generator writes into code (codegen/host.ts). Here, below both the
// bridge and the CLI, since both resolve calls against them (the CLI's verbs take them through
// cli/types.ts).
import * as path from "node:path"
import type { InterfaceSet } from "../idl/types"
import { definitionsOf, loadProjectInterfaces } from "../idl/load"
import { actionDescriptor, messageDescriptor, serviceDescriptor, type ActionDescriptor, type ServiceDescriptor } from "../runtime/index"
import { withActionServices, type ActionTypes } from "../runtime/action"
import type { ServiceTypes } from "../runtime/types"
import { findConfig, loadConfig } from "../config"

function messageOf(set: InterfaceSet, fullName: string) {
  const m = set.messages.get(fullName)
  if (!m) throw new Error(`unknown message type ${fullName}`)
  return messageDescriptor<any>(m.fullName, m.hash, definitionsOf(m.fullName, set.messages))
}

/** The descriptor of service `s` of `set` (a .srv's, or an action's part), as the generated host code builds it. */
function serviceOf(set: InterfaceSet, s: InterfaceSet["services"] extends Map<string, infer S> ? S : never): ServiceDescriptor<any, any> {
  return serviceDescriptor(s.fullName, s.hash, s.hash32, s.text, messageOf(set, s.request.fullName), messageOf(set, s.response.fullName))
}

/** Service descriptors for every service of `set`, built as the generated host code builds them. */
export function descriptorsOf(set: InterfaceSet): Record<string, ServiceDescriptor<any, any>> {
  const out: Record<string, ServiceDescriptor<any, any>> = {}
  for (const s of set.services.values()) out[s.fullName] = serviceOf(set, s)
  return out
}

/** Action descriptors for every action of `set`, built as the generated host code builds them. */
export function actionDescriptorsOf(set: InterfaceSet): Record<string, ActionDescriptor<any, any, any>> {
  const out: Record<string, ActionDescriptor<any, any, any>> = {}
  for (const a of set.actions.values()) {
    out[a.fullName] = actionDescriptor(a.fullName, a.hash, a.hash32, a.text, {
      goal: messageOf(set, a.goal.fullName),
      result: messageOf(set, a.result.fullName),
      feedback: messageOf(set, a.feedback.fullName),
      sendGoal: serviceOf(set, a.sendGoal),
      getResult: serviceOf(set, a.getResult),
      feedbackMessage: messageOf(set, a.feedbackMessage.fullName),
    })
  }
  return out
}

let cached: { key: string; types: ServiceTypes; actions: ActionTypes; calls?: ServiceTypes } | undefined

/**
 * The built-in service types overlaid with those of the project around `cwd` (the nearest
 * devs.json's `interfaces`; none when there is no devs.json). Loaded once per process and directory.
 * Throws ConfigError for a bad devs.json and IdlError (compiler-style diagnostics) for a bad
 * interface file: a typo in a .srv is reported, never silently ignored.
 */
export function projectServiceTypes(cwd = process.cwd()): ServiceTypes {
  return project(cwd).types
}

/** The action types, built-in and the project's own, as {@link projectServiceTypes} (same cache, same errors). */
export function projectActionTypes(cwd = process.cwd()): ActionTypes {
  return project(cwd).actions
}

/**
 * What can be called on a robot: the service types of {@link projectServiceTypes} and the four
 * services each action is served as (`<A>_SendGoal`, action_msgs/srv/CancelGoal, `<A>_GetResult`,
 * `<A>_Watch`: runtime/action.ts `withActionServices`), so that the `_action/` services can be called and
 * checked like any other (`robot service call /fibonacci/_action/send_goal`, a bridge's call_service).
 */
export function projectCallTypes(cwd = process.cwd()): ServiceTypes {
  const p = project(cwd)
  p.calls ??= withActionServices(p.types, p.actions)
  return p.calls
}

function project(cwd: string): { types: ServiceTypes; actions: ActionTypes; calls?: ServiceTypes } {
  const file = findConfig(cwd)
  const key = file ?? ""
  if (cached && cached.key === key) return cached
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gen = require("../gen/interfaces") as typeof import("../gen/interfaces")
  let types: ServiceTypes = gen.serviceTypes
  let actions: ActionTypes = gen.actionTypes
  if (file) {
    const { config, dir } = loadConfig(file)
    const set = loadProjectInterfaces(config.interfaces.map((r) => path.resolve(dir, r)))
    types = { ...types, ...descriptorsOf(set) }
    actions = { ...actions, ...actionDescriptorsOf(set) }
  }
  cached = { key, types, actions }
  return cached
}
