// The service types the bridge knows and the request check: a type's descriptor by its full name
// (the project's services, and the four services each known action is served as), and a JSON
// request checked against one and turned into the value its codec takes. Every call's request
// passes `requestFromJson` once: in CallPipeline.callJson, or in a group call's `checkRequest`.
import { ServiceError } from "../client/errors"
import { withActionServices, type ActionTypes } from "../runtime/action"
import type { ServiceDescriptor, ServiceTypes } from "../runtime/types"
import { fromJson, ValueError, type JsonRules } from "./json"

/** A request checked against a type: the value its codec takes. */
export interface CheckedRequest {
  type: ServiceDescriptor<any, any>
  request: unknown
}

export class KnownTypes {
  /** `registry` and the four services each action is served as (runtime/action.ts `withActionServices`), by type name. */
  private readonly known: ServiceTypes

  /** `actionTypes`: their `_action/` services are known as service types too (roslib's cancelAllGoals calls `<action>/_action/cancel_goal`). */
  constructor(
    readonly registry: ServiceTypes,
    readonly actionTypes: ActionTypes = {},
  ) {
    this.known = withActionServices(registry, actionTypes)
  }

  /** The descriptor of a service type (`pkg/srv/Name`, or an action's part), or undefined when the bridge has none. */
  descriptor(typeName: string): ServiceDescriptor<any, any> | undefined {
    return Object.hasOwn(this.known, typeName) ? this.known[typeName] : undefined
  }

  /**
   * `args` checked against service type `typeName` by `rules` (requestFromJson), for a call with
   * `checked`; undefined when the bridge has no descriptor of the type. Throws `invalid_argument`.
   */
  checkRequest(typeName: string, args: unknown, service: string, rules?: JsonRules): CheckedRequest | undefined {
    const type = this.descriptor(typeName)
    return type && { type, request: requestFromJson(type, args, service, rules) }
  }
}

/**
 * The request check of every call (the front ends' and the CLI's through `callJson`, a group
 * call's through `checkRequest`): a JSON request, an object or a list in field order, turned into
 * the value the type's codec takes by `rules`; `invalid_argument` naming the field if not.
 */
export function requestFromJson(type: ServiceDescriptor<any, any>, args: unknown, service?: string, rules?: JsonRules): unknown {
  try {
    return fromJson(type.request, positional(type, args), rules)
  } catch (e) {
    if (e instanceof ValueError) throw new ServiceError("invalid_argument", e.message, service)
    throw e
  }
}

/** rosbridge also takes args as a list, in field order. */
function positional(type: ServiceDescriptor<any, any>, args: unknown): unknown {
  if (!Array.isArray(args)) return args ?? {}
  const fields = (type.request.definitions[0]?.definitions ?? []).filter((f) => !f.isConstant)
  if (args.length > fields.length) throw new ServiceError("invalid_argument", `${args.length} arguments given, ${type.fullName} request has ${fields.length} fields`)
  return Object.fromEntries(args.map((v, i) => [fields[i]!.name, v]))
}
