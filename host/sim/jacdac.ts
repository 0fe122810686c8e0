// jacdac-ts with its typings. The package ships .d.ts files, but its package.json "exports" map
// has no "types" condition, so TypeScript's nodenext resolution cannot see them from
// `import ... from "jacdac-ts"`. This module loads the runtime with require() and types it with
// the shipped declarations. Use `jd.X` for values and `JD.X` for types.
import type * as JD from "../../node_modules/jacdac-ts/dist/types/src/jacdac"

export type { JD }
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const jd: typeof JD = require("jacdac-ts")
