// `npm run bench [-- [--json] [--no-heap]]`: service-call performance against the DeviceScript VM, all
// figures measured in one run on one device (test/firmware/services_fw.ts through the rig's hub).
// This file runs the parts in order and prints; each part measures in a file of its own.
// bench/jacdac.ts, the Jacdac link:
//   echo_rtt_p50_ms        raw one-packet command -> report echo (the `echo` command of rosServices)
//   call_rtt_p50/p99_ms    AddTwoInts calls, one at a time; rtt_ratio = call p50 / echo p50
//   raw_packets_per_s      8 raw echoes in flight: one report each, the runtime's send floor
//   bulk_bytes_per_s       64 KiB responses; bulk_ratio = bulk / (236 B x raw_packets_per_s)
//   small_calls_per_s      AddTwoInts with 8 callers in flight; small_calls_ratio = / raw_packets_per_s
//   idle_call_rtt_p50/p99_ms  180 AddTwoInts calls spaced 100 ms apart (the send budget not spent)
//   small_call_p99_during_bulk_ms  AddTwoInts spaced 100 ms apart (as idle) while a 256 KiB response
//                          streams (clean_256k_bytes_per_s); back_to_back_calls_per_s_during_bulk: then
//                          one at a time, back to back
// bench/footprint.ts, what the runtime costs the device:
//   runtime_bytecode_bytes bytecode of the functions defined in packages/device/src/rpc/*.ts and
//                          packages/device/src/lib/services.ts (firmware_bytecode_bytes: the whole image)
//   heap_bytes_per_inflight_call  (free heap with 0 calls held - with 6 held) / 6, where free heap
//                          (heap_free_bytes_idle with 0 held) is counted by a probe that allocates
//                          256-byte buffers until OutOfMemory, each probe on a freshly restarted
//                          program (DeviceScript has no heap API); null with --no-heap
// bench/lossy.ts:
//   lossy_calls_exactly_once   handler runs / calls over 2,000 counted calls through a modelled link
//                          with 5% loss each way (2 KB queue); must be exactly 1.0
//   lossy_bulk_ratio       256 KiB goodput through that link / clean 256 KiB goodput
// bench/floods.ts:
//   flood_restarts         program restarts (bootId changes) during LIST, POLL, oversized-CALL and
//                          garbage floods; must be 0
// bench/attack.ts:
//   flood_victim_*, mqtt_flood_victim_*, soak_*, attack_restarts   calls of well-behaved hosts while
//                          one host floods, over Jacdac and MQTT, and the long adversarial soak
// bench/size.ts (alone: `npm run bench:size`):
//   robot_function_bytes, min_firmware_function_bytes, min_mqtt_firmware_function_bytes
//                          "Function TOTAL" of the robot firmware, of one AddTwoInts over Jacdac, and of
//                          the same with the MQTT link
//   polls, busy_retries    the host client's counters over all of the above
// bench/bridge.ts:
//   bridge_*, foxglove_*   the bridge's added cost, calls/s, and bridge_victim_call_p99_ms
//                          (another client's small call while one client abuses the bridge, issue 20)
// bench/cli.ts:
//   cli_call_ms            wall time of one `robot service call /add_two_ints` (a new process: start-up, connect,
//                          discovery, the call) through a bridge in front of the VM, p50 of 10 after a warm-up;
//                          bridge_ws_call_p50_ms is the call's own round trip through that bridge
// bench/mqtt.ts, the same device over MQTT (the embedded broker):
//   mqtt_echo_rtt_p50_ms, mqtt_call_rtt_p50_ms, mqtt_rtt_ratio   raw frame echo vs AddTwoInts, one at a time
//   mqtt_bulk_bytes_per_s  256 KiB responses; mqtt_bulk_vs_jacdac = / bulk_bytes_per_s
//   mqtt_upload_hosts_*, mqtt_upload_restarts   8 hosts uploading 16 KiB at the same moment
// bench/picture.ts:
//   take_picture_svga_*    an 800x600 picture from the robot firmware with the simulated camera, each link
// bench/children.ts, child processes:
//   fleet_*                bench/fleet.ts: in-memory MQTT robots on the embedded broker
//   action_*               bench/actions.ts: ROS 2 actions on the robot (accept vs a call, feedback
//                          rate over Jacdac and MQTT, exactly once under loss, cancel to motors stopped)
//   sim_start*, sim_stop_mean_ms  bench/starts.ts: `robot sim` started 20 times in a row on a loaded
//                          machine, each opening 9090 and stopped before the next (issue 17)
// bench/targets.ts: the table printed without --json.
import { connect } from "../packages/host/src/client/node"
import { mqttTransport } from "../packages/host/src/client/mqtt"
import { startBroker } from "../packages/host/src/mqtt/broker"
import { startRig } from "../packages/host/src/sim/rig"
import { jacdacFlood, mqttFlood, soak } from "./attack"
import { benchBridge } from "./bridge"
import { childFigures } from "./children"
import { cliCallFigure } from "./cli"
import { floodRestarts } from "./floods"
import { heapFigures, runtimeBytecode } from "./footprint"
import { linkFigures, streamFigures } from "./jacdac"
import { lossyFigures } from "./lossy"
import { mqttFigures, mqttUploadHosts } from "./mqtt"
import { pictureFigures } from "./picture"
import { sizeFigures } from "./size"
import { targetTable, targetsNotMet } from "./targets"

const json = process.argv.includes("--json")
const skipHeap = process.argv.includes("--no-heap")

function log(msg: string) {
  if (!json) console.error(msg)
}

/**
 * Everything measured on the test firmware in the VM, in the order it must run: the heap probe
 * restarts the program and the floods and the soak may, so they come after a calm program's figures.
 */
async function vmFigures(brokerUrl: string): Promise<Record<string, unknown>> {
  const rig = await startRig({ firmware: "test/firmware/services_fw.ts", mqtt: { url: brokerUrl, name: "bench" } })
  try {
    const node = rig.node
    const link = await linkFigures(node, log)
    log("bridge: rosbridge WebSocket vs the client directly, and calls/s against the in-memory device")
    const bridge = await benchBridge({ device: node, log })
    log("CLI: robot service call through a bridge, 10 runs")
    const cliCallMs = await cliCallFigure(node)
    const stream = await streamFigures(node, log)
    const lossy = await lossyFigures(rig, stream.cleanBytesPerS, log)
    // (before the floods and the heap probe, which restart the program)
    log("MQTT: echo / call round trips and 256 KiB through the broker")
    const mq = await mqttFigures(brokerUrl, "bench")
    log("MQTT: 8 hosts uploading 16 KiB at once")
    const mqUp = await mqttUploadHosts(brokerUrl, "bench", rig, 8, log)
    log("floods")
    const restarts = await floodRestarts(rig)
    // under attack (bench/attack.ts): the victims' calls during each flood, then the long soak
    const boot0 = node.limits?.bootId
    log("3 hosts calling while one floods at 1,000 frames/s over Jacdac (30 s)")
    const jf = await jacdacFlood(rig, 30)
    log("the same over MQTT (30 s)")
    const mf = await mqttFlood(() => connect({ transport: mqttTransport({ url: brokerUrl, robot: "bench" }) }), 30, mq.mqtt_max_record ?? 3072)
    const seed = Number(process.env.RS_SOAK_SEED ?? (Date.now() % 1_000_000))
    log(`adversarial soak, 120 s, seed ${seed} (replay: RS_SOAK_SEED=${seed})`)
    const sk = await soak(rig, 120, seed)
    const attackRestarts = node.limits?.bootId === boot0 ? 0 : 1
    const sizes = sizeFigures()
    const code = runtimeBytecode(rig)
    const heap = skipHeap ? { heap_bytes_per_inflight_call: null, heap_free_bytes_idle: null } : await heapFigures(rig, log, /mqtt: online/)
    return {
      ...link.figures,
      runtime_bytecode_bytes: code.runtime,
      firmware_bytecode_bytes: rig.firmware.bytecodeBytes,
      ...heap,
      ...stream.figures,
      ...lossy,
      flood_restarts: restarts,
      ...jf,
      ...mf,
      ...sk,
      attack_restarts: attackRestarts,
      ...sizes,
      polls: node.stats.polls,
      busy_retries: node.stats.busyRetries,
      ...bridge,
      cli_call_ms: cliCallMs,
      ...mq,
      ...mqUp,
      mqtt_bulk_vs_jacdac: +(mq.mqtt_bulk_bytes_per_s / link.bulkBytesPerS).toFixed(1),
    }
  } finally {
    await rig.close()
  }
}

async function main() {
  // --json: stdout carries exactly one JSON object; everything else (jacdac-ts logs too) goes to stderr
  const print = (line: string) => process.stdout.write(line + "\n")
  if (json) {
    console.log = console.error
    console.info = console.error
    console.debug = console.error
  }
  // the robot's second link: an embedded broker the VM connects to (docs/mqtt.md)
  const broker = await startBroker({ port: 0 })
  let out: Record<string, unknown>
  try {
    out = await vmFigures(broker.url)
    log("take_picture SVGA over both links (the robot firmware with simulated hardware)")
    Object.assign(out, await pictureFigures(broker.url))
  } finally {
    await broker.close()
  }
  console.error(`figures so far: ${JSON.stringify(out)}`)
  // (after the rig is closed: the children start VMs of their own)
  Object.assign(out, childFigures(log))
  if (json) print(JSON.stringify({ ...out, targets_not_met: targetsNotMet(out) }))
  else for (const line of targetTable(out)) print(line)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
