// `robot doctor` (packages/host/src/cli/doctor.ts) against the simulated robot: the real firmware in the VM with
// the simulated hardware, through the real host client. The same steps run on a board.
import { after, before, describe, test } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startSimulatedRobot, type SimulatedRobot } from "../../packages/host/src/sim/robot"
import { startRig } from "../../packages/host/src/sim/rig"
import { startBroker, type EmbeddedBroker } from "../../packages/host/src/mqtt/broker"
import { adler32, mqttSettingsFromEnvFiles, runDoctor, type DoctorOptions, type StepResult } from "../../packages/host/src/cli/doctor"
import { spawn } from "node:child_process"
import { usbSerialBoard } from "../support/usbserial"
import { connect } from "../../packages/host/src/client/node"
import { serialTransport } from "../../packages/host/src/transport/serial"

const byStep = (rs: StepResult[]) => Object.fromEntries(rs.map((r) => [r.step, r]))

describe("robot doctor on the simulated robot", { timeout: 180000 }, () => {
  let robot: SimulatedRobot
  let broker: EmbeddedBroker
  before(async () => {
    // the simulated robot has MQTT settings, as a board with MQTT_URL and ROBOT_NAME would
    broker = await startBroker({ port: 0 })
    robot = await startSimulatedRobot({ hardware: { charge: 0.8 }, rig: { mqtt: { url: broker.url, name: "doc1" } } })
  })
  after(async () => {
    await robot?.close()
    await broker?.close()
  })

  /**
   * A person at the robot, played by the test: answers every question yes and records what the
   * simulated hardware showed when it was asked; presses the simulated button when told to and
   * holds it until the doctor has said what it saw (`released` settles after that). A release on a
   * 500 ms timer was missed when the machine was busy: the doctor's get_state polls, each a call
   * through the firmware, then never found it down.
   */
  const person = (lines: string[]) => {
    const asked: { question: string; ledOn: boolean }[] = []
    const presses: number[] = []
    const held: { down?: Promise<void>; released?: Promise<void> } = {}
    const opts: DoctorOptions = {
      print: (l) => {
        lines.push(l)
        if (/press the user button now/i.test(l)) {
          presses.push(Date.now())
          held.down = robot.hardware.pressButton(true)
        } else if (held.down && !held.released && /^(PASS|FAIL|SKIP) +user button/.test(l)) {
          const down = held.down
          held.released = down.then(() => robot.hardware.pressButton(false))
        }
      },
      confirm: async (question) => {
        asked.push({ question, ledOn: robot.hardware.state().ledOn })
        return true
      },
    }
    return { opts, asked, presses, held }
  }

  test("every step passes, the register steps are skipped with the reason, and the output says so", async () => {
    const lines: string[] = []
    const p = person(lines)
    const rs = byStep(await runDoctor(robot.node!, { ...p.opts, mqtt: { url: broker.url, robot: "doc1" } }))
    // (up again before the next test, which wants it up)
    await p.held.released
    const expectVerdict = (step: string, v: string) => assert.equal(rs[step]?.verdict, v, `${step}: ${JSON.stringify(rs[step])}\n${lines.join("\n")}`)
    expectVerdict("link and protocol", "PASS")
    assert.match(rs["link and protocol"]!.detail, /protocol version \d+/)
    expectVerdict("services and type hashes", "PASS")
    expectVerdict("ArduChip and OV2640", "SKIP")
    assert.match(rs["ArduChip and OV2640"]!.detail, /simulator has no ArduChip/)
    expectVerdict("one capture (160x120)", "PASS")
    assert.match(rs["one capture (160x120)"]!.detail, /starts 0xff 0xd8, FF D9 at byte \d+ of \d+, decoded on the host: 160x120/)
    expectVerdict("same frame in chunks and in one read", "PASS")
    expectVerdict("servo sweep", "PASS")
    expectVerdict("motor left", "PASS")
    expectVerdict("motor right", "PASS")
    assert.match(rs["motor left"]!.detail, /forwards at 0\.4 .* backwards at -0\.4/)
    expectVerdict("status LED", "PASS")
    expectVerdict("user button", "PASS")
    expectVerdict("WiFi and MQTT", "PASS")
    assert.match(rs["WiFi and MQTT"]!.detail, /robot doc1 answered through mqtt:\/\/127\.0\.0\.1:\d+: echo \d+ ms, get_state/)
    expectVerdict("battery", "PASS")
    assert.match(rs["battery"]!.detail, /^\d\.\d\d V/)
    expectVerdict("PWM budget", "PASS")
    assert.ok(lines.some((l) => l.startsWith("PASS  servo sweep: ")), lines.join("\n"))
    // the LED was on when the person was asked whether it is on, and off when asked whether it is off
    const led = p.asked.filter((a) => /LED/.test(a.question))
    assert.deepEqual(
      led.map((a) => a.ledOn),
      [true, false],
      JSON.stringify(p.asked),
    )
    assert.equal(p.presses.length, 1, lines.join("\n"))
    // the motors really ran: the simulated hardware saw the drive, and they are stopped again
    assert.equal(robot.hardware.state().leftSpeed, 0)
    // no hint about a stray first byte anywhere (the driver finds the dummy byte itself)
    assert.ok(!lines.some((l) => /stray first byte/.test(l)), lines.join("\n"))
  })

  test("the button step fails when nobody presses, and when the button reads pressed before it was asked for", async () => {
    const lines: string[] = []
    const quiet = await runDoctor(robot.node!, { print: (l) => lines.push(l), confirm: async () => false, buttonTimeoutMs: 500 })
    const r = byStep(quiet)["user button"]!
    assert.equal(r.verdict, "FAIL", JSON.stringify(r))
    assert.match(r.detail, /not pressed within 0\.5 s/)
    assert.match(r.hint!, /BUTTON/)
    await robot.hardware.pressButton(true)
    try {
      const stuck = byStep(await runDoctor(robot.node!, { print: () => {}, confirm: async () => false, buttonTimeoutMs: 500 }))["user button"]!
      assert.equal(stuck.verdict, "FAIL", JSON.stringify(stuck))
      assert.match(stuck.detail, /reads pressed before/)
    } finally {
      await robot.hardware.pressButton(false)
    }
  })

  test("the LED step fails when the person does not see the LED; nobody to ask: register only", async () => {
    const no = byStep(await runDoctor(robot.node!, { print: () => {}, confirm: async (q) => !/LED|wheels/.test(q), buttonTimeoutMs: 100 }))["status LED"]!
    assert.equal(no.verdict, "FAIL", JSON.stringify(no))
    assert.match(no.hint!, /LED_STATUS/)
    const alone = byStep(await runDoctor(robot.node!, { print: () => {} }))
    assert.equal(alone["status LED"]!.verdict, "PASS")
    assert.match(alone["status LED"]!.detail, /nobody was asked/)
    assert.equal(alone["user button"]!.verdict, "SKIP")
  })

  test("the WiFi/MQTT step: skipped without MQTT settings, failed with a hint when the robot does not answer there", async () => {
    const none = byStep(await runDoctor(robot.node!, { print: () => {} }))["WiFi and MQTT"]!
    assert.equal(none.verdict, "SKIP")
    assert.match(none.detail, /no MQTT_URL/)
    const gone = byStep(await runDoctor(robot.node!, { print: () => {}, mqtt: { url: broker.url, robot: "nobody", timeoutMs: 1000 } }))["WiFi and MQTT"]!
    assert.equal(gone.verdict, "FAIL", JSON.stringify(gone))
    assert.match(gone.detail, /robot nobody did not answer through mqtt:\/\/127\.0\.0\.1:\d+ within 1 s/)
    assert.match(gone.hint!, /WIFI_SSID/)
    assert.match(gone.hint!, /MQTT_URL/)
  })

  test("the MQTT settings come from .env.defaults, then .env.local (JSON text or raw), as devtools deploys them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "doctor-env-"))
    assert.equal(mqttSettingsFromEnvFiles(dir), undefined)
    fs.writeFileSync(path.join(dir, ".env.defaults"), "# comment\nROBOT_NAME=robot1\n# MQTT_URL=mqtt://commented:1883\n")
    assert.equal(mqttSettingsFromEnvFiles(dir), undefined)
    fs.writeFileSync(path.join(dir, ".env.local"), 'MQTT_URL="mqtt://10.0.0.5:1883"\nROBOT_NAME = rover2 \n')
    assert.deepEqual(mqttSettingsFromEnvFiles(dir), { url: "mqtt://10.0.0.5:1883", robot: "rover2" })
  })

  test("the motors wait for a yes; a no skips them", async () => {
    const asked: string[] = []
    const rs = byStep(
      await runDoctor(robot.node!, {
        print: () => {},
        buttonTimeoutMs: 100,
        confirm: async (q) => {
          asked.push(q)
          return false
        },
      }),
    )
    const wheels = asked.filter((q) => /wheels/.test(q))
    assert.equal(wheels.length, 1, asked.join("\n"))
    assert.match(wheels[0]!, /wheels will turn/)
    assert.equal(rs["motor left"]?.verdict, "SKIP")
    assert.equal(rs["motor right"]?.verdict, "SKIP")
  })

  test("a board over its PWM budget fails the PWM step, naming the file and the pins", async () => {
    const b = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "boards", "robot_s3.board.json"), "utf8"))
    b.$services[0] = { service: "motor", name: "motorLeft", pin1: "MOTOR_L_PWM", pin2: "MOTOR_L_DIR" }
    b.$services[3].dimmable = true
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "doctor-")), "two_pin.board.json")
    fs.writeFileSync(file, JSON.stringify(b))
    const lines: string[] = []
    const rs = byStep(await runDoctor(robot.node!, { yes: false, boardFile: file, print: (l) => lines.push(l) }))
    const r = rs["PWM budget"]!
    assert.equal(r.verdict, "FAIL")
    assert.match(r.detail, /two_pin\.board\.json/)
    assert.match(r.detail, /two_pin\.board\.json: 5 PWM pins but esp32s3 has 4 PWM \(LEDC\) timers/)
    assert.match(r.detail, /motorLeft\.pin2 \(GPIO16\)/)
    assert.ok(lines.some((l) => l.startsWith("      check: ")), lines.join("\n"))
  })

  test("`robot doctor --serial <path>` on the board's USB port (a model of it: test/support/usbserial.ts), answered by a person at the robot: every step passes but the register ones and WiFi/MQTT (skipped: no registers in the simulator, no MQTT settings)", async () => {
    const board = await usbSerialBoard(robot.rig!.hub)
    try {
      const p = spawn(process.execPath, [path.join(__dirname, "../../packages/host/bin/robot.js"), "doctor", "--serial", board.path], { cwd: path.join(__dirname, "../..") })
      let out = ""
      let err = ""
      let answered = 0
      let down: Promise<void> | undefined
      let released: Promise<void> | undefined
      p.stderr.on("data", (d) => (err += d))
      p.stdout.on("data", (d) => {
        out += d
        // the person: yes to each question as it comes; the button pressed when asked, and let go
        // once the doctor has said what it saw
        const questions = out.split("[y/N]").length - 1
        while (answered < questions) {
          answered++
          p.stdin.write("y\n")
        }
        if (!down && /press the user button now/i.test(out)) down = robot.hardware.pressButton(true)
        if (down && !released && /^(PASS|FAIL|SKIP) +user button/m.test(out)) released = down.then(() => robot.hardware.pressButton(false))
      })
      const code = await new Promise<number | null>((resolve) => p.on("close", resolve))
      await released
      // (a verdict follows a question's "[y/N] " on its line: the answer typed is not echoed)
      const verdict = (step: string) => new RegExp(`(?:^|\\] )(PASS|FAIL|SKIP) +${step.replace(/[()]/g, "\\$&")}`, "m").exec(out)?.[1]
      for (const step of ["link and protocol", "services and type hashes", "one capture (160x120)", "same frame in chunks and in one read", "servo sweep", "motor left", "motor right", "status LED", "user button", "battery", "PWM budget"])
        assert.equal(verdict(step), "PASS", `${step}\n${out}\n${err}`)
      assert.equal(verdict("ArduChip and OV2640"), "SKIP", out)
      // (this checkout's .env.defaults gives the robot no MQTT settings)
      assert.equal(verdict("WiFi and MQTT"), "SKIP", out)
      assert.equal(code, 0, `${out}\n${err}`)
      assert.ok(answered >= 3, `the person was asked ${answered} times`)
    } finally {
      await board.close()
    }
  })

  test("the board unplugged during the doctor's run: the step that finds the link gone fails naming it, with the link's hint, the rest are not run (not each failing at its 15 s deadline with a wiring hint)", async () => {
    // (before: every later step ran and failed, the first ones "unavailable ... disconnected", the
    // rest "no answer within 15000 ms", each with its wiring hint: 8 FAILs in 108 s)
    const board = await usbSerialBoard(robot.rig!.hub)
    const node = await connect({ transport: serialTransport({ path: board.path }) })
    try {
      const lines: string[] = []
      const t = Date.now()
      const rs = await runDoctor(node, {
        print: (l) => {
          lines.push(l)
          if (l.startsWith("PASS  services and type hashes")) void board.unplug()
        },
        confirm: async () => true,
        linkHint: "the link's hint",
      })
      const by = byStep(rs)
      assert.equal(by["link and protocol"]?.verdict, "PASS", lines.join("\n"))
      const failed = rs.filter((r) => r.verdict === "FAIL")
      assert.equal(failed.length, 1, lines.join("\n"))
      assert.match(failed[0]!.detail, /unavailable: transport serial .* disconnected/)
      assert.equal(failed[0]!.hint, "the link's hint")
      const after = rs.slice(rs.indexOf(failed[0]!) + 1)
      assert.ok(after.length >= 5, lines.join("\n"))
      for (const r of after) assert.match(`${r.verdict} ${r.detail}`, /^SKIP not run: the link to the robot was lost/, lines.join("\n"))
      assert.ok(Date.now() - t < 10000, `the run took ${Date.now() - t} ms`)
    } finally {
      await node.close()
      await board.close()
    }
  })

  test("adler32 matches zlib's known answer", () => {
    assert.equal(adler32(new TextEncoder().encode("Wikipedia")), 0x11e60398)
  })
})

test("robot doctor's WiFi/MQTT step on a robot that is not the example one: it reaches it through the broker and lists its services, without calling /get_state", { timeout: 120000 }, async () => {
  const broker = await startBroker({ port: 0 })
  // (the actions' test firmware: add_two_ints, a trigger and actions, no /get_state, and the MQTT link)
  const rig = await startRig({ firmware: "test/firmware/actions_fw.ts", mqtt: { url: broker.url, name: "act1" } })
  try {
    const rs = byStep(await runDoctor(rig.node, { print: () => {}, mqtt: { url: broker.url, robot: "act1" } }))
    const wifi = rs["WiFi and MQTT"]!
    assert.equal(wifi.verdict, "PASS", wifi.detail)
    assert.match(wifi.detail, /^robot act1 answered through mqtt:\/\/127\.0\.0\.1:\d+: echo \d+ ms, \d+ services listed$/)
    assert.equal(rs["battery"]!.verdict, "SKIP")
  } finally {
    await rig.close()
    await broker.close()
  }
})
