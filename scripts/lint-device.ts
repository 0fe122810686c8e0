// `npm run lint:device`: no number where the device's code asks for a truth value.
//
// DeviceScript's VM takes a number for true only when it is a nonzero whole int32 (or an
// infinity): 0.3, 1.5, 2^31 and 1e12 are false there, true in JavaScript (test/device/truth.test.ts
// shows it). So `speed || dflt` ran every speed between 0 and 1 at the default, and a time from
// `ds.millis()` tested as `until ? ...` turns false after 24.8 days of uptime. The device's code
// compares numbers explicitly (`x !== 0`, `x > 0`); this check finds any that do not, with
// typescript-eslint's `strict-boolean-expressions` over the device's sources typed by
// DeviceScript's own declarations (scripts/lint/tsconfig.device.json). Only the rule's number
// findings count: DeviceScript compiles without strictNullChecks, so its object findings (a field
// typed `T` tested for being set) do not apply.
// Usage: node --import tsx scripts/lint-device.ts [path...]   (default: the device project's sources, deviceSources)
import { ESLint } from "eslint"
import tseslint from "typescript-eslint"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"

const ROOT = join(__dirname, "..")
/** the rule's findings about numbers (its other message ids are about objects, strings, any) */
const NUMBER_FINDINGS = new Set(["conditionErrorNumber", "conditionErrorNullableNumber"])

/**
 * What the device project (scripts/lint/tsconfig.device.json) includes, as globs from the
 * repository's root, but DeviceScript's declarations and this check's own fixtures: one list, so a
 * folder added to the project is checked too.
 */
function deviceSources(): string[] {
  const project = join(__dirname, "lint", "tsconfig.device.json")
  const include: string[] = JSON.parse(readFileSync(project, "utf8")).include
  return include.map((g) => relative(ROOT, join(dirname(project), g))).filter((g) => !g.startsWith("node_modules") && !g.startsWith(join("scripts", "lint")))
}

async function main() {
  // (without DeviceScript's declarations every number would type as `any`, and nothing be found)
  const core = join(ROOT, "node_modules", "@devicescript", "core", "src", "devicescript-core.d.ts")
  if (!existsSync(core)) {
    console.error(`lint:device: ${relative(ROOT, core)} is missing: \`npm run setup\` (devicescript build) makes it`)
    process.exitCode = 1
    return
  }
  const paths = process.argv.slice(2)
  const eslint = new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ["**/*.ts"],
        languageOptions: {
          parser: tseslint.parser,
          parserOptions: { project: join(__dirname, "lint", "tsconfig.device.json"), tsconfigRootDir: ROOT },
        },
        plugins: { "@typescript-eslint": tseslint.plugin as never },
        rules: { "@typescript-eslint/strict-boolean-expressions": ["error", { allowNumber: false, allowNullableNumber: false }] },
      },
    ],
  })
  const results = await eslint.lintFiles(paths.length ? paths : deviceSources())
  let n = 0
  for (const r of results) {
    for (const m of r.messages) {
      if (m.fatal) {
        console.error(`${relative(ROOT, r.filePath)}:${m.line}:${m.column}: ${m.message}`)
        n++
      } else if (m.messageId !== undefined && NUMBER_FINDINGS.has(m.messageId)) {
        console.error(`${relative(ROOT, r.filePath)}:${m.line}:${m.column}: a number as a truth value (DeviceScript takes 0.5 or 2^31 for false): compare it, e.g. \`x !== 0\``)
        n++
      }
    }
  }
  if (n) {
    console.error(`lint:device: ${n} finding${n === 1 ? "" : "s"} in ${results.length} files`)
    process.exitCode = 1
  } else console.log(`lint:device: ${results.length} files, no number used as a truth value`)
}

void main()
