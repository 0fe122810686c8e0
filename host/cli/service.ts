// `robot service`: not implemented yet.
import type { Command } from "commander"

export function registerService(program: Command): void {
  program
    .command("service")
    .description("NOT IMPLEMENTED YET")
    .allowUnknownOption()
    .action(() => {
      console.error("robot service: not implemented yet")
      process.exitCode = 2
    })
}
