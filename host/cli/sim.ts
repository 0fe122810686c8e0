// `robot sim`: not implemented yet.
import type { Command } from "commander"

export function registerSim(program: Command): void {
  program
    .command("sim")
    .description("NOT IMPLEMENTED YET")
    .allowUnknownOption()
    .action(() => {
      console.error("robot sim: not implemented yet")
      process.exitCode = 2
    })
}
