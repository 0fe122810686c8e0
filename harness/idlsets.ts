// Generated sets of interface files for the loader at scale (test/host/idl_scale.test.ts and
// bench/idlscale.ts): each shape makes a set of about `n` types, one pattern of dependencies each.
import type { SourceFile } from "../packages/host/src/idl/load"

export type Shape = (n: number) => SourceFile[]

export const file = (f: string, text: string): SourceFile => ({ root: "r", file: f, text })

/** The types every package of `packages` builds on: a std_msgs/geometry_msgs-like chain, and what actions need. */
function base(): SourceFile[] {
  return [
    file("builtin_interfaces/msg/Time.msg", "int32 sec\nuint32 nanosec\n"),
    file("unique_identifier_msgs/msg/UUID.msg", "uint8[16] uuid\n"),
    file("std_msgs/msg/Header.msg", "# a stamp and a frame\nbuiltin_interfaces/Time stamp\nstring frame_id\n"),
    file("geometry_msgs/msg/Point.msg", "float64 x\nfloat64 y\nfloat64 z\n"),
    file("geometry_msgs/msg/Quaternion.msg", "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n"),
    file("geometry_msgs/msg/Pose.msg", "Point position\nQuaternion orientation\n"),
    file("geometry_msgs/msg/PoseWithCovariance.msg", "Pose pose\nfloat64[36] covariance\n"),
    file("geometry_msgs/msg/PoseWithCovarianceStamped.msg", "std_msgs/Header header\nPoseWithCovariance pose\n"),
  ]
}

export const SHAPES: Record<string, Shape> = {
  // n independent types in one package (many files per package)
  wide: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, "int32 a\nfloat64 b\nstring c\n")),
  // chains 100 deep (the nesting bound), each type holding the next
  chains: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, (i % 100 === 99 ? "" : `M${i + 1} next\n`) + "int32 v\n")),
  // diamonds: packages of 12 types, each holding the next one twice (6,142 fields, within MAX_FIELDS)
  diamonds: (n) =>
    Array.from({ length: 12 * Math.ceil(n / 12) }, (_, i) => file(`p${Math.floor(i / 12)}/msg/M${i % 12}.msg`, i % 12 === 11 ? "int32 leaf\n" : `M${(i % 12) + 1} a\nM${(i % 12) + 1} b\n`)),
  // many packages on a shared base, each with a chain of messages, a service and an action
  packages: (n) => {
    const out = base()
    for (let p = 0; out.length < n; p++) {
      for (let j = 0; j < 8; j++) {
        out.push(file(`pkg${p}/msg/T${j}.msg`, `std_msgs/Header header\ngeometry_msgs/PoseWithCovarianceStamped pose\n${j > 0 ? `T${j - 1} prev\n` : ""}int32 v\n`))
      }
      out.push(file(`pkg${p}/srv/Get.srv`, "T7 req\n---\nT7 res\nbool ok\n"))
      out.push(file(`pkg${p}/action/Go.action`, "T3 goal\n---\nT7 result\n---\ngeometry_msgs/Pose feedback\n"))
    }
    return out
  },
  // long comments and constants, in chains of 50
  comments: (n) =>
    Array.from({ length: n }, (_, i) =>
      file(`p/msg/M${i}.msg`, "# a comment line that explains the field below it at some length\n".repeat(40) + Array.from({ length: 10 }, (_, k) => `int32 C${k}=${k}\n`).join("") + (i % 50 === 49 ? "" : `M${i + 1} next\n`) + "string s 'x'\n"),
    ),
  // hostile: a quarter of the set are distinct small types one hub holds, the rest hold the hub
  // (each of those types depends on every type of the hub: doubling the set doubles both)
  hub: (n) => {
    const w = Math.floor(n / 4)
    const out = Array.from({ length: w }, (_, i) => file(`base/msg/B${i}.msg`, "float64 x\nfloat64 y\n"))
    out.push(file("base/msg/Hub.msg", Array.from({ length: w }, (_, i) => `B${i} b${i}\n`).join("")))
    for (let i = 0; out.length < n; i++) out.push(file(`p${i % 20}/msg/T${i}.msg`, "base/Hub hub\nint32 v\n"))
    return out
  },
}

/** Shapes that must not load: each type of a cycle gets a diagnostic naming it. */
export const CYCLIC: Record<string, Shape> = {
  // one cycle through the whole set
  ring: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, `M${(i + 1) % n} next\n`)),
  // one type and many that each hold it and are held by it
  star: (n) => [file("p/msg/Hub.msg", Array.from({ length: n - 1 }, (_, i) => `S${i} s${i}\n`).join("")), ...Array.from({ length: n - 1 }, (_, i) => file(`p/msg/S${i}.msg`, "Hub back\n"))],
  // a ring whose types also hold the one after next
  braid: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, `M${(i + 1) % n} next\nM${(i + 2) % n} skip\n`)),
}
