// Every board file in boards/ is checked against the DeviceScript board rules (packages/host/src/sim/boardcheck.ts):
// `$schema`, required keys, GPIOs valid for the chip, no GPIO used twice, and the robot's parts.
import { test, describe } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { validateBoardFile } from "../../packages/host/src/sim/boardcheck"

const boardsDir = path.join(__dirname, "..", "..", "boards")
const boardFiles = fs.readdirSync(boardsDir).filter((f) => f.endsWith(".board.json"))
const devsJson = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "devs.json"), "utf8")) as { board: string }

describe("board files", () => {
  test("boards/ holds the board that devs.json names", () => {
    assert.ok(boardFiles.includes(`${devsJson.board}.board.json`), `devs.json names board '${devsJson.board}' but boards/ has ${boardFiles.join(", ")}`)
  })

  for (const f of boardFiles) {
    test(`${f} is valid`, () => {
      const errs = validateBoardFile(path.join(boardsDir, f), { robot: f === `${devsJson.board}.board.json` })
      assert.deepEqual(errs, [], errs.join("\n"))
    })
  }

  test("robot_s3 is an ESP32-S3 with the camera on SPI and I2C", () => {
    const b = JSON.parse(fs.readFileSync(path.join(boardsDir, "robot_s3.board.json"), "utf8"))
    assert.equal(b.archId, "esp32s3")
    for (const p of ["CAM_SDA", "CAM_SCL", "CAM_CS", "CAM_SCK", "CAM_MISO", "CAM_MOSI", "BAT_SENSE"]) assert.equal(typeof b.pins[p], "number", p)
    assert.equal(b.i2c.pinSDA, "CAM_SDA")
    assert.equal(b.i2c.pinSCL, "CAM_SCL")
  })
})

describe("board checker rejects broken boards, naming the file", () => {
  const base = JSON.parse(fs.readFileSync(path.join(boardsDir, "robot_s3.board.json"), "utf8"))
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "boards-"))
  const check = (name: string, mutate: (b: any) => void): string[] => {
    const b = structuredClone(base)
    mutate(b)
    const file = path.join(tmp, `${name}.board.json`)
    fs.writeFileSync(file, JSON.stringify(b))
    return validateBoardFile(file, { robot: true })
  }
  const expectErr = (errs: string[], file: string, re: RegExp) => {
    assert.ok(errs.length > 0, "expected errors")
    assert.ok(errs.every((e) => e.startsWith(`${file}.board.json: `)), errs.join("\n"))
    assert.ok(errs.some((e) => re.test(e)), `no error matching ${re} in:\n${errs.join("\n")}`)
  }

  test("missing $schema", () => expectErr(check("no_schema", (b) => delete b.$schema), "no_schema", /missing required key '\$schema'/))
  test("wrong $schema", () => expectErr(check("bad_schema", (b) => (b.$schema = "x.json")), "bad_schema", /\$schema must be/))
  test("missing devName", () => expectErr(check("no_name", (b) => delete b.devName), "no_name", /'devName'/))
  test("unknown archId", () => expectErr(check("bad_arch", (b) => (b.archId = "esp8266")), "bad_arch", /unknown archId/))
  test("GPIO used twice", () =>
    expectErr(check("dup_pin", (b) => (b.$services[0].pin = 14)), "dup_pin", /GPIO14 is used twice/))
  test("two labels on one GPIO", () =>
    expectErr(check("dup_label", (b) => (b.pins.EXTRA = 21)), "dup_label", /GPIO21 has two labels/))
  test("native USB pin", () =>
    expectErr(check("usb_pin", (b) => (b.$services[2].pin = 19)), "usb_pin", /GPIO19 is reserved on esp32s3/))
  test("flash pin", () => expectErr(check("flash_pin", (b) => (b.pins.CAM_CS = 30)), "flash_pin", /GPIO30 is reserved/))
  // GPIO 33-37 carry the octal flash/PSRAM of the N8R8/N16R8 modules (ESP32-S3 datasheet, "pins
  // used by in-package flash/PSRAM"): a board file for the S3 must never hand them out.
  for (const gpio of [33, 34, 35, 36, 37])
    test(`octal flash/PSRAM pin GPIO${gpio}`, () =>
      expectErr(check(`octal_${gpio}`, (b) => (b.pins.CAM_CS = gpio)), `octal_${gpio}`, new RegExp(`GPIO${gpio} is reserved on esp32s3`)))
  test("GPIO that does not exist on the S3", () =>
    expectErr(check("no_gpio", (b) => (b.pins.LED_STATUS = 22)), "no_gpio", /GPIO22 is not a usable I\/O pin on esp32s3/))
  test("battery on a pin without ADC1", () =>
    expectErr(check("bat_adc", (b) => (b.pins.BAT_SENSE = 38)), "bat_adc", /BAT_SENSE: GPIO38 has no ADC/))
  test("unknown pin label", () =>
    expectErr(check("bad_label", (b) => (b.i2c.pinSDA = "NOPE")), "bad_label", /'NOPE' is not a label/))
  test("missing robot part", () =>
    expectErr(check("no_servo", (b) => b.$services.splice(2, 1)), "no_servo", /'servo' service named 'servoPan'/))
  test("motor PWM without its pin", () =>
    expectErr(check("no_pin", (b) => delete b.$services[1].pin), "no_pin", /motorRight\.pin is required/))
  test("a labelled GPIO used by number (the DeviceScript build refuses it)", () =>
    expectErr(check("by_number", (b) => (b.$services[0].pin = 15)), "by_number", /GPIO15 is labelled MOTOR_L_PWM in pins; refer to it as "MOTOR_L_PWM"/))
  test("motor light bulb that is not dimmable (no PWM, so no speed control)", () =>
    expectErr(check("not_dimmable", (b) => delete b.$services[0].dimmable), "not_dimmable", /motorLeft must be "dimmable": true/))
  test("missing motor direction pin", () =>
    expectErr(check("no_dir", (b) => delete b.pins.MOTOR_R_DIR), "no_dir", /needs the pin label 'MOTOR_R_DIR'/))

  test("missing camera pin label", () =>
    expectErr(check("no_cs", (b) => delete b.pins.CAM_CS), "no_cs", /needs the pin label 'CAM_CS'/))
  test("not JSON", () => {
    const file = path.join(tmp, "garbage.board.json")
    fs.writeFileSync(file, "{ nope")
    expectErr(validateBoardFile(file), "garbage", /not valid JSON/)
  })
})

// Regression for issue 10: the old robot_s3 (two PWM pins per DRV8833 motor + the servo) needed 5
// LEDC timers on an S3 that has 4; the fifth jd_pwm_init panics the board.
describe("PWM budget (issue 10)", () => {
  const base = JSON.parse(fs.readFileSync(path.join(boardsDir, "robot_s3.board.json"), "utf8"))
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "boards-pwm-"))
  const write = (name: string, b: unknown) => {
    const file = path.join(tmp, `${name}.board.json`)
    fs.writeFileSync(file, JSON.stringify(b))
    return file
  }
  const pwmErr = (errs: string[]) => errs.filter((e) => /PWM \(LEDC\) timers/.test(e))

  test("robot_s3 runs 3 PWM pins: two motor duties and the servo", () => {
    const errs = validateBoardFile(path.join(boardsDir, "robot_s3.board.json"), { robot: true })
    assert.deepEqual(errs, [])
    // one more PWM pin started by the firmware still fits (4), a second one does not
    assert.deepEqual(pwmErr(validateBoardFile(path.join(boardsDir, "robot_s3.board.json"), { robot: true, scriptPwm: ["LED_STATUS"] })), [])
    const over = pwmErr(validateBoardFile(path.join(boardsDir, "robot_s3.board.json"), { robot: true, scriptPwm: ["LED_STATUS", "CAM_CS"] }))
    assert.equal(over.length, 1, over.join("\n"))
    assert.match(over[0]!, /^robot_s3\.board\.json: 5 PWM pins but esp32s3 has 4/)
    assert.match(over[0]!, /pins\.CAM_CS \(GPIO10, PWM started by the firmware\)/)
  })

  test("the old two-pin motors plus the servo exceed the S3's 4 timers, naming the file and every pin", () => {
    const b = structuredClone(base)
    b.$services[0] = { service: "motor", name: "motorLeft", pin1: "MOTOR_L_PWM", pin2: "MOTOR_L_DIR" }
    b.$services[1] = { service: "motor", name: "motorRight", pin1: "MOTOR_R_PWM", pin2: "MOTOR_R_DIR" }
    const errs = pwmErr(validateBoardFile(write("old_motors", b)))
    assert.equal(errs.length, 1, errs.join("\n"))
    const e = errs[0]!
    assert.match(e, /^old_motors\.board\.json: 5 PWM pins but esp32s3 has 4 PWM \(LEDC\) timers/)
    for (const p of ["motorLeft.pin1 (GPIO15)", "motorLeft.pin2 (GPIO16)", "motorRight.pin1 (GPIO17)", "motorRight.pin2 (GPIO18)", "servoPan.pin (GPIO14)"])
      assert.ok(e.includes(p), `${p} missing in ${e}`)
    assert.match(e, /out of LEDC timers/)
  })

  test("a motor with only pin1 still counts 2 (jd_pwm_init(NO_PIN) takes a timer)", () => {
    const b = structuredClone(base)
    b.$services[0] = { service: "motor", name: "motorLeft", pin1: "MOTOR_L_PWM" }
    b.$services[1] = { service: "motor", name: "motorRight", pin1: "MOTOR_R_PWM" }
    const errs = pwmErr(validateBoardFile(write("one_pin_motors", b)))
    assert.equal(errs.length, 1, errs.join("\n"))
    assert.match(errs[0]!, /5 PWM pins/)
    assert.match(errs[0]!, /motorLeft\.pin2 \(absent: jd_pwm_init\(NO_PIN\) still takes a timer\) \(no pin\)/)
  })

  test("a dimmable status LED is the 4th PWM pin (fits); a buzzer makes 5 (refused)", () => {
    const b = structuredClone(base)
    b.$services[3].dimmable = true
    assert.deepEqual(pwmErr(validateBoardFile(write("dim_led", b))), [])
    b.pins.BUZZER = 2
    b.$services.push({ service: "buzzer", name: "buzzer", pin: "BUZZER" })
    const errs = pwmErr(validateBoardFile(write("buzzer", b)))
    assert.equal(errs.length, 1)
    assert.match(errs[0]!, /ledStatus\.pin \(GPIO21\).*buzzer\.pin \(GPIO2\)/)
  })
})
