// Loaded into the VM's process by bench/vmprofile.ts (NODE_OPTIONS=--require): in the process that
// runs a firmware (`devs run .../bytecode-dbg.json`) only. On SIGUSR2 it reads $VMPROF_DIR/cmd:
// "start <k>" starts a CPU profile (an inspector session of the process itself; then writes
// started-<k>) and counts the program's socket writes (the VM's own hub connection aside) and their
// wall time; "stop <k>" stops both and writes <k>.cpuprofile and <k>.writes.json. A command is done
// once however often the signal comes (one kill was seen to run the handler twice). Its pid goes to
// $VMPROF_DIR/pid. VMPROF_WRITE_DELAY_US=<n>: each such write waits n microseconds first, busy (to
// show what a later answer costs the write itself on this machine: docs/benchmarks.md).
if (process.argv.some((a) => a.endsWith("bytecode-dbg.json")) && process.env.VMPROF_DIR) {
  const fs = require("node:fs")
  const net = require("node:net")
  const path = require("node:path")
  const inspector = require("node:inspector")
  const dir = process.env.VMPROF_DIR
  const delayNs = BigInt(Math.round(Number(process.env.VMPROF_WRITE_DELAY_US || 0) * 1000))
  const hubPort = Number(process.env.ROBOT_SIM_PORT || 8081)
  const session = new inspector.Session()
  session.connect()
  let writes = null
  const P = net.Socket.prototype
  const write = P.write
  P.write = function (...args) {
    if (this.remotePort === hubPort) return write.apply(this, args)
    if (delayNs > 0n) {
      const until = process.hrtime.bigint() + delayNs
      while (process.hrtime.bigint() < until);
    }
    if (!writes) return write.apply(this, args)
    const t = process.hrtime.bigint()
    const r = write.apply(this, args)
    writes.us += Number(process.hrtime.bigint() - t) / 1000
    writes.n++
    return r
  }
  let done = ""
  process.on("SIGUSR2", () => {
    let cmd
    try {
      cmd = fs.readFileSync(path.join(dir, "cmd"), "utf8").trim()
    } catch {
      return
    }
    if (cmd === done) return
    done = cmd
    const [verb, k] = cmd.split(" ")
    if (verb === "start") {
      session.post("Profiler.enable", () =>
        session.post("Profiler.setSamplingInterval", { interval: 50 }, () =>
          session.post("Profiler.start", () => {
            writes = { n: 0, us: 0 }
            fs.writeFileSync(path.join(dir, `started-${k}`), "")
          }),
        ),
      )
    } else if (verb === "stop") {
      fs.writeFileSync(path.join(dir, `${k}.writes.json`), JSON.stringify(writes))
      writes = null
      session.post("Profiler.stop", (err, r) => {
        const file = path.join(dir, `${k}.cpuprofile`)
        fs.writeFileSync(file + ".part", err ? JSON.stringify({ error: String(err) }) : JSON.stringify(r.profile))
        fs.renameSync(file + ".part", file)
      })
    }
  })
  fs.writeFileSync(path.join(dir, "pid"), String(process.pid))
}
