#!/usr/bin/env node
// Builds the published form of @robot-services/host: dist/ with the compiled JavaScript and type
// declarations of src/ (tsc, tsconfig.build.json), and the files src/ uses at run time that are
// not TypeScript (the dashboard, the demo camera worker, the VM's socket shim). Run by `npm pack`
// and `npm publish` (prepack) and by `npm run build -w @robot-services/host`. Exits 1 with tsc's
// diagnostics when the sources do not compile.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const { spawnSync } = require("node:child_process")

const PKG = path.join(__dirname, "..")
const SRC = path.join(PKG, "src")
const DIST = path.join(PKG, "dist")

/** Files copied as they are (relative to src/). */
const ASSETS = ["bridge/web", "demo/demo_camera.js", "sim/sockreads.cjs"]

function main() {
  fs.rmSync(DIST, { recursive: true, force: true })
  const tsc = require.resolve("typescript/bin/tsc", { paths: [PKG] })
  const r = spawnSync(process.execPath, [tsc, "-p", path.join(PKG, "tsconfig.build.json")], { stdio: "inherit" })
  if (r.status !== 0) {
    console.error("build: tsc failed")
    process.exit(1)
  }
  for (const a of ASSETS) fs.cpSync(path.join(SRC, a), path.join(DIST, a), { recursive: true })
  // the simulated camera's Jacdac spec (sim/camera.ts reads it next to itself when installed)
  fs.copyFileSync(path.join(PKG, "..", "..", "services", "robotcamera.md"), path.join(DIST, "sim", "robotcamera.md"))
  // jacdac-ts's declarations are named by a path through this repository's node_modules (its
  // "exports" map has no "types"); an installed package names the package instead
  const jd = path.join(DIST, "transport", "jacdac.d.ts")
  fs.writeFileSync(jd, fs.readFileSync(jd, "utf8").replace(/"(\.\.\/)+node_modules\/jacdac-ts\/[^"]*"/, '"jacdac-ts"'))
  console.log(`build: ${path.relative(process.cwd(), DIST) || DIST}`)
}

main()
