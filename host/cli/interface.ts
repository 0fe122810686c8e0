// `robot interface`: not implemented yet.
import type { Command } from "commander"

export function registerInterface(program: Command): void {
  program
    .command("interface")
    .description("NOT IMPLEMENTED YET")
    .allowUnknownOption()
    .action(() => {
      console.error("robot interface: not implemented yet")
      process.exitCode = 2
    })
}
