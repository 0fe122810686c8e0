// Robots on WiFi, end to end: three robot firmwares in three DeviceScript VMs (each with its own
// simulated hardware and camera: packages/host/src/sim/fleet.ts), connected with their own credentials to a real
// mosquitto run with the config and ACL of docs/mqtt.md, and the host's fleet (packages/host/src/mqtt/fleet.ts:
// directory + FleetNode) calling them as /robotN/<service>. Then: a group call with one robot
// gone, that robot rebooting, and the broker killed and restarted under all of them.
import assert from "node:assert/strict"
import { after, before, describe, test } from "node:test"
import { AddTwoInts, GetState, TakePicture } from "../../packages/host/src/gen/interfaces"
import { ServiceError } from "../../packages/host/src/client/errors"
import type { MqttNode } from "../../packages/host/src/client/mqtt"
import { openMqttFleet, type MqttFleet } from "../../packages/host/src/mqtt/fleet"
import { startSimFleet, type SimFleet } from "../../packages/host/src/sim/fleet"
import { runDoctor } from "../../packages/host/src/cli/doctor"
import { startMosquitto, until, type Mosquitto } from "./mqtt_helpers"

const NAMES = ["robot1", "robot2", "robot3"]
const USERS = [{ name: "bridge", password: "bridge-secret" }, ...NAMES.map((name) => ({ name, password: `${name}-secret` }))]

describe("three VM robots on mosquitto (MQTT)", () => {
  let broker: Mosquitto
  let sims: SimFleet
  let f: MqttFleet
  before(async () => {
    broker = await startMosquitto(USERS)
    sims = await startSimFleet({ robots: 3, mqttUrl: broker.url, credentials: (name) => ({ user: name, pass: `${name}-secret` }), echoVm: process.env.RS_ECHO_VM === "1" })
    f = await openMqttFleet({ url: broker.url, username: "bridge", password: "bridge-secret" })
    await f.directory.waitFor({ names: NAMES, timeoutMs: 30000 })
    await until(() => f.fleet.knownServices().filter((s) => s.name.endsWith("/get_state")).length === 3, "every robot's services", 30000)
  })
  after(async () => {
    await f?.close()
    await sims?.close()
    await broker?.close()
  })

  const bootOf = (name: string) => (f.fleet.robot(name) as MqttNode).limits?.bootId

  test("each robot answers over MQTT under its own name, in parallel; a picture comes back whole", async () => {
    const sums = await Promise.all(NAMES.map((n, i) => f.fleet.createClient(AddTwoInts, `/${n}/add_two_ints`).call({ a: BigInt(i), b: 40n }, { timeoutMs: 10000 })))
    assert.deepEqual(sums, [{ sum: 40n }, { sum: 41n }, { sum: 42n }])
    for (const n of NAMES) {
      const st = await f.fleet.createClient(GetState, `/${n}/get_state`).call({}, { timeoutMs: 10000 })
      assert.ok(st.battery_voltage > 5, `${n}: battery ${st.battery_voltage}`)
    }
    // the frames of each robot come from its own camera: SVGA over MQTT, whole
    const pic = await f.fleet.createClient(TakePicture, "/robot2/take_picture").call({ resolution: 3, quality: 80 }, { timeoutMs: 30000 })
    assert.equal(pic.width, 800)
    assert.equal(pic.height, 600)
    const d = pic.image.data
    assert.ok(d[0] === 0xff && d[1] === 0xd8 && d[d.length - 2] === 0xff && d[d.length - 1] === 0xd9, "a whole JPEG")
    assert.ok(sims.robots[1]!.hardware.state().frames >= 1, "robot2's own camera took it")
    assert.equal(sims.robots[0]!.hardware.state().frames, 0, "robot1's camera did not")
  })

  test("robot doctor runs every bring-up step over MQTT", async () => {
    const lines: string[] = []
    const results = await runDoctor(f.fleet.robot("robot1")!, { yes: true, print: (l) => lines.push(l), timeoutMs: 20000 })
    const failed = results.filter((r) => r.verdict === "FAIL")
    assert.deepEqual(failed, [], lines.join("\n"))
    assert.ok(results.filter((r) => r.verdict === "PASS").length >= 6, lines.join("\n"))
  })

  test("a group call with one robot gone: its row says offline at once, the others answer; it reboots and serves again", async () => {
    const boot3 = bootOf("robot3")
    await sims.robots[2]!.vm.kill() // the robot loses power: mosquitto publishes its will
    await until(() => f.fleet.robots().find((r) => r.name === "robot3")?.online === false, "robot3 offline", 20000)
    const t0 = performance.now()
    const rows = await Promise.all(
      f.fleet.matchRobots("robot*").map(async (robot) => {
        try {
          return { robot, ok: true, st: await f.fleet.createClient(GetState, `/${robot}/get_state`).call({}, { timeoutMs: 10000 }) }
        } catch (e) {
          return { robot, ok: false, error: e as ServiceError }
        }
      }),
    )
    const ms = performance.now() - t0
    assert.deepEqual(
      rows.map((r) => [r.robot, r.ok]),
      [
        ["robot1", true],
        ["robot2", true],
        ["robot3", false],
      ],
    )
    const off = rows[2]!.error!
    assert.equal(off.code, "unavailable")
    assert.match(off.message, /robot3 offline/)
    assert.ok(ms < 3000, `the group call took ${ms} ms: the offline row must not wait for a timeout`)

    await sims.restart("robot3") // power back: same flash, so the same name, broker and credentials
    await until(() => f.fleet.robots().find((r) => r.name === "robot3")?.online === true, "robot3 online again", 30000)
    const sum = await f.fleet.createClient(AddTwoInts, "/robot3/add_two_ints").call({ a: 1n, b: 2n }, { timeoutMs: 15000 })
    assert.deepEqual(sum, { sum: 3n })
    assert.notEqual(bootOf("robot3"), boot3, "a new program (new bootId)")
  })

  test("the broker killed and restarted: every robot comes back by itself, with the same program", async () => {
    const boots = NAMES.map(bootOf)
    await broker.kill()
    await until(() => f.fleet.robots().every((r) => !r.online), "every robot offline (the host lost the broker)", 20000)
    await assert.rejects(f.fleet.createClient(AddTwoInts, "/robot1/add_two_ints").call({ a: 1n, b: 1n }, { timeoutMs: 5000 }), (e: ServiceError) => e.code === "unavailable")
    broker = await startMosquitto(USERS, broker.port)
    await until(() => f.fleet.robots().filter((r) => r.online).length === 3, "every robot online again", 60000)
    const sums = await Promise.all(NAMES.map((n) => f.fleet.createClient(AddTwoInts, `/${n}/add_two_ints`).call({ a: 20n, b: 22n }, { timeoutMs: 15000 })))
    assert.deepEqual(sums, [{ sum: 42n }, { sum: 42n }, { sum: 42n }])
    assert.deepEqual(NAMES.map(bootOf), boots, "no robot restarted")
    for (const r of sims.robots) assert.equal(r.vm.log.filter((l) => /panic|OutOfMemory|InfiniteLoop/i.test(l)).length, 0, `${r.name}: ${r.vm.log.slice(-10).join("\n")}`)
  })
})
