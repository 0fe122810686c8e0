// `npm run bench:size [-- --json]`: the code size of firmwares that use the device library, from
// the "Function TOTAL" of each build's bytecode-sizes.md (the functions' bytecode: DeviceScript's
// verifier caps it at 64 KB per image, so what the library spends, a user's program cannot).
//   robot_function_bytes               this robot's firmware (src/main.ts)
//   min_firmware_function_bytes        one AddTwoInts service over Jacdac (bench/firmware/min_jacdac.ts)
//   min_mqtt_firmware_function_bytes   the same with the MQTT link (bench/firmware/min_mqtt.ts)
// The two small firmwares import a generated module with the AddTwoInts codec alone, written here
// into bench/firmware/gen/ (gitignored) from services/example_interfaces/srv/AddTwoInts.srv.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { findInterfaceFiles, loadSources } from "../packages/host/src/idl/load"
import { emitDevice } from "../packages/host/src/codegen/device"
import { figureLines } from "../harness/targets"
import { buildFirmware, ROOT } from "../packages/host/src/sim/vm"

export const SIZE_TARGETS: Record<string, string> = {
  robot_function_bytes: "<= 40000",
  min_firmware_function_bytes: "<= 10000",
  min_mqtt_firmware_function_bytes: "<= 16000",
}

/** "Function TOTAL" of a build's bytecode-sizes.md */
export function functionTotal(dir: string): number {
  const m = /(\d+)\s*\|\s*Function TOTAL/.exec(readFileSync(join(dir, "bytecode-sizes.md"), "utf8"))
  if (!m) throw new Error(`no Function TOTAL in ${dir}/bytecode-sizes.md`)
  return Number(m[1])
}

/** Writes bench/firmware/gen/interfaces.ts: the device code of AddTwoInts alone. */
function writeMinimalInterfaces(): void {
  const file = "example_interfaces/srv/AddTwoInts.srv"
  const sources = findInterfaceFiles([join(ROOT, "services")]).filter((f) => f.file === file)
  if (sources.length !== 1) throw new Error(`services/${file} not found`)
  const out = join(ROOT, "bench/firmware/gen/interfaces.ts")
  mkdirSync(join(ROOT, "bench/firmware/gen"), { recursive: true })
  writeFileSync(out, emitDevice(loadSources(sources), { sources: [`services/${file}`], outFile: out }))
}

/** Builds the three firmwares (reusing builds of unchanged sources) and returns their sizes. */
export function sizeFigures(): Record<string, number> {
  writeMinimalInterfaces()
  return {
    robot_function_bytes: functionTotal(buildFirmware("src/main.ts").dir),
    min_firmware_function_bytes: functionTotal(buildFirmware("bench/firmware/min_jacdac.ts").dir),
    min_mqtt_firmware_function_bytes: functionTotal(buildFirmware("bench/firmware/min_mqtt.ts").dir),
  }
}

if (require.main === module) {
  const out = sizeFigures()
  if (process.argv.includes("--json")) console.log(JSON.stringify(out))
  else for (const line of figureLines(out, SIZE_TARGETS, [36, 9, 12])) console.log(line)
}
