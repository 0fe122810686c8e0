#!/usr/bin/env node
// Entry point of the `robot` CLI: registers tsx so the TypeScript host code runs as is.
"use strict"
require("tsx/cjs")
require("../host/cli/main.ts")
