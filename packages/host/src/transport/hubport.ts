// The port of the simulator's hub: where `devs run` connects the VM (ws://127.0.0.1:8081, fixed in
// the DeviceScript CLI) and whose flock (/tmp/port<port>.lock) a rig holds while its VM runs. It
// lives beside the hub that listens on it (transport/hub.ts); the simulator (sim/) takes it from here.
// ROBOT_SIM_PORT moves the in-process hub, the VM's connection (sockreads.cjs redirects it) and the
// lock to another port, so that two rigs can run at once: scripts/test-host.ts runs the simulator
// tests on two ports. Unset, it is 8081, where the VS Code simulator, `devs devtools` and the CLI's
// `--devtools` default are; the real devtools server cannot move (its ports are fixed). It is a
// knob for the test suites: `robot sim` started with it set follows it (its rig does), but the
// `--devtools` default and the hints `robot sim` prints stay on 8081.

/** The environment variable that moves the simulator's hub to another port. */
export const SIM_PORT_ENV = "ROBOT_SIM_PORT"
/** devtools' port, where `devs run` connects: the hub's port unless ROBOT_SIM_PORT says otherwise. */
export const DEVTOOLS_PORT = 8081

/** The hub's port: ROBOT_SIM_PORT, or 8081. Throws on a value that is not a port number. */
export function simPort(): number {
  const v = process.env[SIM_PORT_ENV]
  if (v === undefined || v === "") return DEVTOOLS_PORT
  const n = Number(v)
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new Error(`${SIM_PORT_ENV} must be a port number (1-65535), got ${JSON.stringify(v)}`)
  return n
}

/** The flock a rig on `port` holds: /tmp/port8081.lock for the default port. */
export function portLockFile(port: number): string {
  return `/tmp/port${port}.lock`
}
