// The service types the CLI and the bridge know, by full name: the built-in set (the interfaces of
// this repository's robot, packages/host/src/gen/interfaces.ts: std_srvs, example_interfaces,
// robot_interfaces) overlaid with the project's own interfaces (devs.json `interfaces`), read from
// the .srv/.msg files at run time. A user's project needs no generated host code for
// `robot service call` or `robot bridge`: the descriptors are built here from the same parsed
// definitions and hashes the generator writes into code (codegen/host.ts).
import * as path from "node:path"
import type { InterfaceSet } from "../idl/types"
import { definitionsOf, loadInterfaces } from "../idl/load"
import { messageDescriptor, serviceDescriptor, type ServiceDescriptor } from "../runtime/index"
import { findConfig, loadConfig } from "../config"

export type ServiceTypes = { readonly [fullName: string]: ServiceDescriptor<any, any> }

/** Service descriptors for every service of `set`, built as the generated host code builds them. */
export function descriptorsOf(set: InterfaceSet): Record<string, ServiceDescriptor<any, any>> {
  const out: Record<string, ServiceDescriptor<any, any>> = {}
  const message = (fullName: string) => {
    const m = set.messages.get(fullName)
    if (!m) throw new Error(`unknown message type ${fullName}`)
    return messageDescriptor<any>(m.fullName, m.hash, definitionsOf(m.fullName, set.messages))
  }
  for (const s of set.services.values()) {
    out[s.fullName] = serviceDescriptor(s.fullName, s.hash, s.hash32, s.text, message(s.request.fullName), message(s.response.fullName))
  }
  return out
}

let cached: { key: string; types: ServiceTypes } | undefined

/**
 * The built-in service types overlaid with those of the project around `cwd` (the nearest
 * devs.json's `interfaces`; none when there is no devs.json). Loaded once per process and directory.
 * Throws ConfigError for a bad devs.json and IdlError (compiler-style diagnostics) for a bad
 * interface file: a typo in a .srv is reported, never silently ignored.
 */
export function projectServiceTypes(cwd = process.cwd()): ServiceTypes {
  const file = findConfig(cwd)
  const key = file ?? ""
  if (cached && cached.key === key) return cached.types
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const builtin = (require("../gen/interfaces") as typeof import("../gen/interfaces")).serviceTypes
  let types: ServiceTypes = builtin
  if (file) {
    const { config, dir } = loadConfig(file)
    const roots = config.interfaces.map((r) => path.resolve(dir, r))
    types = { ...builtin, ...descriptorsOf(loadInterfaces(roots)) }
  }
  cached = { key, types }
  return types
}
