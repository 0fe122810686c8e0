#!/usr/bin/env node
// Entry point of the `robot` CLI.
//
// Installed (the published @robot-services/host): the package ships compiled JavaScript in dist/
// and no sources, and this runs dist/cli/main.js. Nothing is compiled at run time.
//
// In this repository (src/ next to bin/): the host code is TypeScript; compiling it at every call
// (tsx) cost about a second per command (issue 17: every `robot service call` took 1.1-2.5 s). So
// the CLI runs a bundle of src/cli/main.ts that esbuild (tsx's own compiler) writes to the
// repository's node_modules/.cache/robot-cli/ once, and again whenever one of the files it was
// built from changed (size or modification time; checked at every call, a few milliseconds).
// Packages stay outside the bundle (loaded from node_modules as usual). `robot gen` (which loads
// generators by computed path), ROBOT_CLI_TSX=1, or a bundle that cannot be built run the sources
// through tsx as before. ROBOT_CLI_DIST=1 runs dist/ here too (after `npm run build -w
// @robot-services/host`).
"use strict"
const fs = require("node:fs")
const path = require("node:path")

// jacdac-ts writes its connection chatter ("hub: connecting", "bus: disposing.") with
// console.debug; a command's output is what it prints itself. ROBOT_DEBUG=1 shows the chatter.
if (!process.env.ROBOT_DEBUG) console.debug = () => {}

/** The repository root (the bundle's cache and the package list live there). */
const ROOT = path.join(__dirname, "..", "..", "..")
const ENTRY = path.join(__dirname, "..", "src", "cli", "main.ts")
const DIST_MAIN = path.join(__dirname, "..", "dist", "cli", "main.js")
const CACHE = path.join(ROOT, "node_modules", ".cache", "robot-cli")
const BUNDLE = path.join(CACHE, "cli.js")
const MANIFEST = path.join(CACHE, "inputs.json")
/** Bumped when the way the bundle is built changes. */
const FORMAT = 2

function runWithTsx() {
  require("tsx/cjs")
  require(ENTRY)
}

/** Fingerprint of one input file ("" when it is gone). */
function stamp(file) {
  try {
    const s = fs.statSync(file)
    return `${s.size}:${s.mtimeMs}`
  } catch {
    return ""
  }
}

/** True when the bundle exists and none of the files it was built from changed since. */
function bundleFresh() {
  let m
  try {
    m = JSON.parse(fs.readFileSync(MANIFEST, "utf8"))
  } catch {
    return false
  }
  if (m.format !== FORMAT || m.node !== process.version || !fs.existsSync(BUNDLE)) return false
  for (const [file, st] of Object.entries(m.inputs)) if (stamp(file) !== st) return false
  return true
}

/** Bundled: what `robot service call` loads. Every other package stays outside. */
const BUNDLED = new Set(["commander", "yaml", "ws", "lossless-json"])

function externals() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"))
  const all = Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.devDependencies })
  // ws's optional native helpers, and every package's subpaths (jacdac-ts/…, @scope/…)
  return [...all.filter((n) => !BUNDLED.has(n)).flatMap((n) => [n, `${n}/*`]), "bufferutil", "utf-8-validate"]
}

/**
 * Builds the bundle. `__dirname`/`__filename` keep meaning the source file's folder and name in
 * every module (host/sim/vm.ts finds the project root with them, host/bridge/http.ts the
 * dashboard's files). Written to temporary names and renamed, so a CLI started meanwhile reads
 * either the old bundle or the new one, never half of one.
 */
async function buildBundle() {
  const esbuild = require("esbuild")
  const fileOf = (p) => JSON.stringify(p)
  const result = await esbuild.build({
    entryPoints: [ENTRY],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: `node${process.versions.node.split(".")[0]}`,
    // small pure-JS packages every call loads go into the bundle (one file read instead of dozens
    // of module look-ups); the others are loaded from node_modules as usual
    external: externals(),
    outfile: BUNDLE,
    absWorkingDir: ROOT,
    sourcemap: "linked",
    sourcesContent: false,
    metafile: true,
    logLevel: "silent",
    write: false,
    plugins: [
      {
        name: "source-dirname",
        setup(build) {
          build.onLoad({ filter: /\.ts$/ }, (args) => {
            const text = fs.readFileSync(args.path, "utf8")
            const uses = /\b__(dirname|filename)\b/.test(text)
            const prefix = uses ? `var __dirname = ${fileOf(path.dirname(args.path))}, __filename = ${fileOf(args.path)};` : ""
            return { contents: prefix + text, loader: "ts" }
          })
        },
      },
    ],
  })
  // this file too: a change in how the bundle is built rebuilds it
  const inputs = { [__filename]: stamp(__filename) }
  for (const rel of Object.keys(result.metafile.inputs)) {
    const file = path.resolve(ROOT, rel)
    inputs[file] = stamp(file)
  }
  const files = [...result.outputFiles.map((f) => [f.path, f.contents]), [MANIFEST, JSON.stringify({ format: FORMAT, node: process.version, inputs })]]
  const tmp = (f) => `${f}.${process.pid}.tmp`
  for (const [f, data] of files) fs.writeFileSync(tmp(f), data)
  // the manifest last: a bundle is only taken as fresh once it is complete
  for (const [f] of files) fs.renameSync(tmp(f), f)
}

async function main() {
  if (!fs.existsSync(ENTRY) || process.env.ROBOT_CLI_DIST === "1") {
    if (!fs.existsSync(DIST_MAIN)) {
      console.error(`robot: ${DIST_MAIN} is missing: this copy of @robot-services/host was not built (npm run build -w @robot-services/host)`)
      process.exit(1)
    }
    return require(DIST_MAIN)
  }
  if (process.argv[2] === "gen" || process.env.ROBOT_CLI_TSX === "1") return runWithTsx()
  if (!bundleFresh()) {
    try {
      fs.mkdirSync(CACHE, { recursive: true })
      await buildBundle()
    } catch (e) {
      if (process.env.ROBOT_DEBUG) console.error(`robot: cannot bundle the CLI (${e && e.message}); running the sources with tsx`)
      return runWithTsx()
    }
  }
  require(BUNDLE)
}

void main()
