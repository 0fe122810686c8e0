// `robot doctor` (host/cli/doctor.ts) against the simulated robot: the real firmware in the VM with
// the simulated hardware, through the real host client. The same steps run on a board.
import { after, before, describe, test } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startSimulatedRobot, type SimulatedRobot } from "../../host/sim/robot"
import { adler32, runDoctor, type StepResult } from "../../host/cli/doctor"

const byStep = (rs: StepResult[]) => Object.fromEntries(rs.map((r) => [r.step, r]))

describe("robot doctor on the simulated robot", { timeout: 180000 }, () => {
  let robot: SimulatedRobot
  before(async () => {
    robot = await startSimulatedRobot({ hardware: { charge: 0.8 } })
  })
  after(async () => {
    await robot?.close()
  })

  test("every step passes, the register steps are skipped with the reason, and the output says so", async () => {
    const lines: string[] = []
    const rs = byStep(await runDoctor(robot.node!, { yes: true, print: (l) => lines.push(l) }))
    const expectVerdict = (step: string, v: string) => assert.equal(rs[step]?.verdict, v, `${step}: ${JSON.stringify(rs[step])}\n${lines.join("\n")}`)
    expectVerdict("link and protocol", "PASS")
    assert.match(rs["link and protocol"]!.detail, /protocol version \d+/)
    expectVerdict("services and type hashes", "PASS")
    expectVerdict("ArduChip and OV2640", "SKIP")
    assert.match(rs["ArduChip and OV2640"]!.detail, /simulator has no ArduChip/)
    expectVerdict("one capture (160x120)", "PASS")
    assert.match(rs["one capture (160x120)"]!.detail, /first 0xff 0xd8, last 0xff 0xd9, decoded on the host: 160x120/)
    expectVerdict("same frame in chunks and in one read", "PASS")
    expectVerdict("servo sweep", "PASS")
    expectVerdict("motor left", "PASS")
    expectVerdict("motor right", "PASS")
    expectVerdict("battery", "PASS")
    assert.match(rs["battery"]!.detail, /^\d\.\d\d V/)
    expectVerdict("PWM budget", "PASS")
    assert.ok(lines.some((l) => l.startsWith("PASS  servo sweep: ")), lines.join("\n"))
    // the motors really ran: the simulated hardware saw the drive, and they are stopped again
    assert.equal(robot.hardware.state().leftSpeed, 0)
  })

  test("the motors wait for a yes; a no skips them", async () => {
    const asked: string[] = []
    const rs = byStep(
      await runDoctor(robot.node!, {
        print: () => {},
        confirm: async (q) => {
          asked.push(q)
          return false
        },
      }),
    )
    assert.equal(asked.length, 1)
    assert.match(asked[0]!, /wheels will turn/)
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

  test("adler32 matches zlib's known answer", () => {
    assert.equal(adler32(new TextEncoder().encode("Wikipedia")), 0x11e60398)
  })
})
