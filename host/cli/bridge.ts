// `robot bridge`: not implemented yet.
import type { Command } from "commander"

export function registerBridge(program: Command): void {
  program
    .command("bridge")
    .description("NOT IMPLEMENTED YET")
    .allowUnknownOption()
    .action(() => {
      console.error("robot bridge: not implemented yet")
      process.exitCode = 2
    })
}
