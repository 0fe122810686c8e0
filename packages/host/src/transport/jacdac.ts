// jacdac-ts, typed. Its package.json "exports" map has no "types" condition, so nodenext resolution
// cannot find the shipped declarations from `import ... from "jacdac-ts"`: load the runtime with
// require() and type it with those declarations. `jd.X` for values, `JD.X` for types.
import type * as JD from "../../../../node_modules/jacdac-ts/dist/types/src/jacdac"

export type { JD }
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const jd: typeof JD = require("jacdac-ts")
