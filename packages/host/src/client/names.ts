// The leading-slash rule of ROS service names, written once: `add_two_ints` and `/add_two_ints`
// name the same service, and every name the host sends, shows or compares has the slash. The
// device applies the same rule to the names it serves (createService, @robot-services/device).
// And the robot-name rule, written once too.
import { ServiceError } from "./errors"

/** `add_two_ints` -> `/add_two_ints`; a name with its slash is returned as it is. */
export function normalizeName(name: string): string {
  return name.startsWith("/") ? name : `/${name}`
}

/**
 * A robot's name as the host tools take it: 1-32 of [A-Za-z0-9_-]. It is the topic root
 * `robots/<name>/` and the first segment of a namespaced service name (docs/mqtt.md); the device
 * accepts more (any 1-32 characters but `/`, `+` and `#`), which the host tools do not name.
 */
export const ROBOT_NAME = /^[A-Za-z0-9_-]{1,32}$/

/** Throws `invalid_argument` for a name outside {@link ROBOT_NAME}. */
export function checkRobotName(name: string): void {
  if (!ROBOT_NAME.test(name)) throw new ServiceError("invalid_argument", `robot name '${name}': 1-32 characters of A-Z a-z 0-9 _ -`)
}

/** Splits `/rover1/take_picture` (or `rover1/take_picture`) into robot `rover1` and service `/take_picture`; undefined when it names no robot. */
export function splitRobotName(full: string): { robot: string; service: string } | undefined {
  const n = full.startsWith("/") ? full.slice(1) : full
  const i = n.indexOf("/")
  if (i <= 0 || i === n.length - 1) return undefined
  const robot = n.slice(0, i)
  if (!ROBOT_NAME.test(robot)) return undefined
  return { robot, service: n.slice(i) }
}
