// `robot gen`: not implemented yet.
import type { Command } from "commander"

export function registerGen(program: Command): void {
  program
    .command("gen")
    .description("NOT IMPLEMENTED YET")
    .allowUnknownOption()
    .action(() => {
      console.error("robot gen: not implemented yet")
      process.exitCode = 2
    })
}
