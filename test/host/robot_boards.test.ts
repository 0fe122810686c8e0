// Every board file in boards/ is checked against the DeviceScript board rules (host/sim/boardcheck.ts):
// `$schema`, required keys, GPIOs valid for the chip, no GPIO used twice, and the robot's parts.
import { test, describe } from "node:test"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { validateBoardFile } from "../../host/sim/boardcheck"

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
    expectErr(check("dup_pin", (b) => (b.$services[0].pin1 = 14)), "dup_pin", /GPIO14 is used twice/))
  test("two labels on one GPIO", () =>
    expectErr(check("dup_label", (b) => (b.pins.EXTRA = 21)), "dup_label", /GPIO21 has two labels/))
  test("native USB pin", () =>
    expectErr(check("usb_pin", (b) => (b.$services[2].pin = 19)), "usb_pin", /GPIO19 is reserved on esp32s3/))
  test("flash pin", () => expectErr(check("flash_pin", (b) => (b.pins.CAM_CS = 30)), "flash_pin", /GPIO30 is reserved/))
  test("GPIO that does not exist on the S3", () =>
    expectErr(check("no_gpio", (b) => (b.pins.LED_STATUS = 22)), "no_gpio", /GPIO22 is not a usable I\/O pin on esp32s3/))
  test("battery on a pin without ADC1", () =>
    expectErr(check("bat_adc", (b) => (b.pins.BAT_SENSE = 38)), "bat_adc", /BAT_SENSE: GPIO38 has no ADC/))
  test("unknown pin label", () =>
    expectErr(check("bad_label", (b) => (b.i2c.pinSDA = "NOPE")), "bad_label", /'NOPE' is not a label/))
  test("missing robot part", () =>
    expectErr(check("no_servo", (b) => b.$services.splice(2, 1)), "no_servo", /'servo' service named 'servoPan'/))
  test("motor without pin1", () =>
    expectErr(check("no_pin1", (b) => delete b.$services[1].pin1), "no_pin1", /motorRight\.pin1 is required/))
  test("a labelled GPIO used by number (the DeviceScript build refuses it)", () =>
    expectErr(check("by_number", (b) => (b.$services[0].pin1 = 15)), "by_number", /GPIO15 is labelled MOTOR_L_IN1 in pins; refer to it as "MOTOR_L_IN1"/))
  test("missing camera pin label", () =>
    expectErr(check("no_cs", (b) => delete b.pins.CAM_CS), "no_cs", /needs the pin label 'CAM_CS'/))
  test("not JSON", () => {
    const file = path.join(tmp, "garbage.board.json")
    fs.writeFileSync(file, "{ nope")
    expectErr(validateBoardFile(file), "garbage", /not valid JSON/)
  })
})
