#!/usr/bin/env node
// Entry point of the `robot` CLI: registers tsx so the TypeScript host code runs as is.
"use strict"
// jacdac-ts writes its connection chatter ("hub: connecting", "bus: disposing.") with
// console.debug; a command's output is what it prints itself. ROBOT_DEBUG=1 shows the chatter.
if (!process.env.ROBOT_DEBUG) console.debug = () => {}
require("tsx/cjs")
require("../host/cli/main.ts")
