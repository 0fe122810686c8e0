// `npm run bench:idl [-- [--json] [--sizes 2500,5000,10000,20000]]` (bench/idlscale.ts): the interface loader
// (loadSources, packages/host/src/idl/load.ts) on generated sets of growing size, one shape at a time,
// then (after the first) the hashes of the set read (each is taken on first read). Per shape and size:
// the median wall time of 3 loads, and the loader's steps (loaderWork), which do not depend on the
// machine. About a minute here (2 cores), most of it reading the hashes of 'hub'.
// Shapes: wide (independent types, one package), chains (100 deep), diamonds (packages of 12 types
// each holding the next one twice), packages (a std_msgs/geometry_msgs-like base, each package a chain
// of 8 messages on it, a service and an action), comments (40 comment lines and 10 constants per
// file), hub (a quarter of the set are small types one type holds, the rest hold that type), ring
// (one cycle through the whole set: refused, a diagnostic per type). Not part of `npm run bench`.
// docs/benchmarks.md "Interface loading at scale (stop 34)".
import { IdlError, loaderWork, loadSources, type SourceFile } from "../packages/host/src/idl/load"

const file = (f: string, text: string): SourceFile => ({ root: "r", file: f, text })

const SHAPES: Record<string, (n: number) => SourceFile[]> = {
  wide: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, "int32 a\nfloat64 b\nstring c\n")),
  chains: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, (i % 100 === 99 ? "" : `M${i + 1} next\n`) + "int32 v\n")),
  diamonds: (n) =>
    Array.from({ length: 12 * Math.ceil(n / 12) }, (_, i) => file(`p${Math.floor(i / 12)}/msg/M${i % 12}.msg`, i % 12 === 11 ? "int32 leaf\n" : `M${(i % 12) + 1} a\nM${(i % 12) + 1} b\n`)),
  packages: (n) => {
    const out = [
      file("builtin_interfaces/msg/Time.msg", "int32 sec\nuint32 nanosec\n"),
      file("unique_identifier_msgs/msg/UUID.msg", "uint8[16] uuid\n"),
      file("std_msgs/msg/Header.msg", "builtin_interfaces/Time stamp\nstring frame_id\n"),
      file("geometry_msgs/msg/Point.msg", "float64 x\nfloat64 y\nfloat64 z\n"),
      file("geometry_msgs/msg/Quaternion.msg", "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n"),
      file("geometry_msgs/msg/Pose.msg", "Point position\nQuaternion orientation\n"),
      file("geometry_msgs/msg/PoseWithCovariance.msg", "Pose pose\nfloat64[36] covariance\n"),
      file("geometry_msgs/msg/PoseWithCovarianceStamped.msg", "std_msgs/Header header\nPoseWithCovariance pose\n"),
    ]
    for (let p = 0; out.length < n; p++) {
      for (let j = 0; j < 8; j++) out.push(file(`pkg${p}/msg/T${j}.msg`, `std_msgs/Header header\ngeometry_msgs/PoseWithCovarianceStamped pose\n${j > 0 ? `T${j - 1} prev\n` : ""}int32 v\n`))
      out.push(file(`pkg${p}/srv/Get.srv`, "T7 req\n---\nT7 res\nbool ok\n"))
      out.push(file(`pkg${p}/action/Go.action`, "T3 goal\n---\nT7 result\n---\ngeometry_msgs/Pose feedback\n"))
    }
    return out
  },
  comments: (n) =>
    Array.from({ length: n }, (_, i) =>
      file(`p/msg/M${i}.msg`, "# a comment line that explains the field below it at some length\n".repeat(40) + Array.from({ length: 10 }, (_, k) => `int32 C${k}=${k}\n`).join("") + (i % 50 === 49 ? "" : `M${i + 1} next\n`) + "string s 'x'\n"),
    ),
  hub: (n) => {
    const w = Math.floor(n / 4)
    const out = Array.from({ length: w }, (_, i) => file(`base/msg/B${i}.msg`, "float64 x\nfloat64 y\n"))
    out.push(file("base/msg/Hub.msg", Array.from({ length: w }, (_, i) => `B${i} b${i}\n`).join("")))
    for (let i = 0; out.length < n; i++) out.push(file(`p${i % 20}/msg/T${i}.msg`, "base/Hub hub\nint32 v\n"))
    return out
  },
  ring: (n) => Array.from({ length: n }, (_, i) => file(`p/msg/M${i}.msg`, `M${(i + 1) % n} next\n`)),
}

const json = process.argv.includes("--json")
const sizesArg = process.argv.indexOf("--sizes")
const sizes = (sizesArg >= 0 ? (process.argv[sizesArg + 1] ?? "") : "2500,5000,10000,20000").split(",").map(Number)

/** One load of `files`: wall ms and steps; then, when `hashes`, reading every hash, likewise. */
function once(files: SourceFile[], hashes: boolean): { ms: number; steps: number; hashMs: number; hashSteps: number } {
  const s0 = loaderWork.steps
  const t0 = performance.now()
  let set
  try {
    set = loadSources(files)
  } catch (e) {
    if (!(e instanceof IdlError)) throw e
  }
  const t1 = performance.now()
  const s1 = loaderWork.steps
  let sum = 0
  if (set && hashes) for (const t of [...set.messages.values(), ...set.services.values(), ...set.actions.values()]) sum += t.hash32 & 1
  if (sum < 0) throw new Error("unreachable")
  return { ms: t1 - t0, steps: s1 - s0, hashMs: performance.now() - t1, hashSteps: loaderWork.steps - s1 }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const rows: { shape: string; types: number; load_ms: number; load_steps: number; hashes_ms: number; hash_steps: number }[] = []
for (const [shape, make] of Object.entries(SHAPES)) {
  for (const n of sizes) {
    const files = make(n)
    const runs = [once(files, true), once(files, false), once(files, false)]
    const row = {
      shape,
      types: files.length,
      load_ms: Math.round(median(runs.map((r) => r.ms))),
      load_steps: runs[0]!.steps,
      hashes_ms: Math.round(runs[0]!.hashMs),
      hash_steps: runs[0]!.hashSteps,
    }
    rows.push(row)
    if (!json) console.log(`${shape.padEnd(9)} ${String(row.types).padStart(6)} types  load ${String(row.load_ms).padStart(6)} ms ${String(row.load_steps).padStart(9)} steps  every hash ${String(row.hashes_ms).padStart(6)} ms ${String(row.hash_steps).padStart(10)} steps`)
  }
}
if (json) console.log(JSON.stringify(rows, null, 1))
