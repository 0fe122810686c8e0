// The leading-slash rule of ROS service names, written once: `add_two_ints` and `/add_two_ints`
// name the same service, and every name the host sends, shows or compares has the slash. The
// device applies the same rule to the names it serves (createService, @robot-services/device).

/** `add_two_ints` -> `/add_two_ints`; a name with its slash is returned as it is. */
export function normalizeName(name: string): string {
  return name.startsWith("/") ? name : `/${name}`
}
