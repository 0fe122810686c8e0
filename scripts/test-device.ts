// Runs every DeviceScript test file (test/device/*.test.ts) in the DeviceScript VM, one at a time,
// each under the shared devs lock: `flock /tmp/devs.lock npx devs run <file> --test --test-self-exit`.
// A file passes when devs exits 0 AND the VM reported at least one test and no error (a file that
// runs zero tests is a failure, not a pass). Prints one line per file, then `N passed, N failed`;
// exits 1 if anything failed.
//
// Usage: node --import tsx scripts/test-device.ts [name-filter...]   (npm run test:device)
//   name-filter: only files whose name contains one of the given strings
//   DEVICE_TEST_TIMEOUT_MS: per file (default 300000); DEVICE_TEST_T: per-test timeout for `devs -T`
// The byte-exact host/device agreement test (test/support/agreement.ts) is generated and run by
// test/host/agreement.test.ts, not here.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const REPO = path.resolve(__dirname, "..")
const DIR = path.join(REPO, "test", "device")

export interface FileResult {
  file: string
  ok: boolean
  tests?: number
  errors?: number
  detail: string
  output: string
}

/** Runs one DeviceScript test file in the VM under the devs lock. */
export function runDeviceTestFile(file: string, opts: { timeoutMs?: number; testTimeoutMs?: number } = {}): FileResult {
  const rel = path.relative(REPO, file)
  const args = ["/tmp/devs.lock", "npx", "devs", "run", rel, "--test", "--test-self-exit"]
  if (opts.testTimeoutMs) args.push("-T", String(opts.testTimeoutMs))
  const r = spawnSync("flock", args, { cwd: REPO, encoding: "utf8", timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 })
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`
  // strip colour codes before matching the VM's summary line
  const plain = output.replace(/\u001b\[[0-9;]*m/g, "")
  const m = /tests: (\d+), pass: (\d+), error: (\d+)/.exec(plain)
  const tests = m ? Number(m[1]) : undefined
  const errors = m ? Number(m[3]) : undefined
  let detail: string
  let ok = false
  if (r.error) detail = `could not run devs: ${r.error.message}`
  else if (r.signal) detail = `killed by ${r.signal} (timeout ${opts.timeoutMs ?? 300_000} ms?)`
  else if (!m) detail = `exit ${r.status}, no test summary (compile error or crash)`
  else if (tests === 0) detail = "ran zero tests"
  else if (r.status !== 0 || errors !== 0) detail = `${errors} of ${tests} tests failed (exit ${r.status})`
  else {
    ok = true
    detail = `${tests} tests`
  }
  return { file: rel, ok, tests, errors, detail, output: plain }
}

/** The lines worth showing from a failed run: errors, exceptions, messages, and the last few lines. */
function failureExcerpt(output: string): string {
  const lines = output.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("npm warn"))
  const keep = lines.filter((l) => /error|Exception|message:|failed|PANIC|verification/i.test(l))
  const tail = lines.slice(-8)
  return [...new Set([...keep.slice(0, 30), ...tail])].map((l) => `    ${l}`).join("\n")
}

function main(): number {
  const filters = process.argv.slice(2)
  if (!fs.existsSync(DIR)) {
    console.error(`no ${path.relative(process.cwd(), DIR)} directory`)
    return 1
  }
  const files = fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith(".test.ts"))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort()
    .map((f) => path.join(DIR, f))
  if (files.length === 0) {
    console.error(`no device test files${filters.length ? ` matching ${filters.join(", ")}` : ""} in test/device`)
    return 1
  }
  const timeoutMs = Number(process.env.DEVICE_TEST_TIMEOUT_MS ?? 300_000)
  const testTimeoutMs = process.env.DEVICE_TEST_T ? Number(process.env.DEVICE_TEST_T) : undefined
  let passed = 0
  let failed = 0
  for (const f of files) {
    const t0 = Date.now()
    const r = runDeviceTestFile(f, { timeoutMs, testTimeoutMs })
    const secs = ((Date.now() - t0) / 1000).toFixed(1)
    if (r.ok) {
      passed++
      console.log(`PASS ${r.file} (${r.detail}, ${secs} s)`)
    } else {
      failed++
      console.log(`FAIL ${r.file}: ${r.detail} (${secs} s)\n${failureExcerpt(r.output)}`)
    }
  }
  console.log(`${passed} passed, ${failed} failed`)
  return failed > 0 ? 1 : 0
}

if (require.main === module) process.exit(main())
