// The short-to-full rule of ROS type names, written once: ros2 takes `example_interfaces/AddTwoInts`
// for `example_interfaces/srv/AddTwoInts`, and the kind (msg, srv, action) says which part goes in.

/** The kinds of ROS interface types: the middle part of a full name. */
export type TypeKind = "msg" | "srv" | "action"

/**
 * `pkg/Name` -> `pkg/<kind>/Name`; `pkg/<any kind>/Name` is returned as it is. A leading `/` is
 * dropped; a name of any other shape comes back as given (without the slash), to fail a lookup.
 */
export function fullTypeName(t: string, kind: TypeKind): string {
  const p = t.replace(/^\//, "").split("/")
  return p.length === 2 ? `${p[0]}/${kind}/${p[1]}` : p.join("/")
}
