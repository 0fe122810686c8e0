// The dashboard in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// it lists the services, calls add_two_ints through the generated form, takes a picture and sees
// it rendered as an image, logs the calls, and shows a banner when the robot disconnects.
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { test } from "node:test"
import { chromium } from "playwright-core"
import { startFixture } from "./bridge_helpers"
import { Drive, GetState, Trigger } from "../../host/gen/interfaces"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]

test("dashboard: form call, picture rendered, call log, disconnect banner", { skip: !fs.existsSync(CHROMIUM) && !process.env.CI && `${CHROMIUM} missing (apt-get install chromium)` }, async () => {
  const f = await startFixture({ token: "dash-token" })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  try {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on("pageerror", (e) => errors.push(e.message))
    await page.goto(`${f.bridge.url}/?token=dash-token`)
    await page.waitForSelector('.service[data-service="/add_two_ints"] form')
    assert.equal(await page.textContent("#robot-state"), "robot: connected")

    const ati = page.locator('.service[data-service="/add_two_ints"]')
    assert.equal(await ati.locator(".type").textContent(), "example_interfaces/srv/AddTwoInts")
    await ati.locator('input[name="a"]').fill("9007199254740993")
    await ati.locator('input[name="b"]').fill("4")
    await ati.locator("button").click()
    await ati.locator(".result.ok pre").waitFor()
    // the exact sum, digit for digit (a JS number would show ...996)
    assert.match((await ati.locator(".result pre").textContent()) ?? "", /"sum": "9007199254740997"/)

    const pic = page.locator('.service[data-service="/take_picture"]')
    await pic.locator('input[name="resolution"]').fill("1")
    await pic.locator("button").click()
    const img = pic.locator("img.picture")
    await img.waitFor()
    await page.waitForFunction(() => {
      const i = document.querySelector<HTMLImageElement>(".service[data-service='/take_picture'] img.picture")
      return !!i && i.complete && i.naturalWidth > 0
    })
    const size = await img.evaluate((i: HTMLImageElement) => [i.naturalWidth, i.naturalHeight])
    assert.deepEqual(size, [320, 240])
    assert.match((await pic.locator(".result pre").textContent()) ?? "", /"data": "<\d+ bytes>"/)

    const fail = page.locator('.service[data-service="/fail"]')
    await fail.locator("button").click()
    await fail.locator(".result.error").waitFor()
    assert.match((await fail.locator(".result.error").textContent()) ?? "", /internal: the demo handler always fails/)

    await page.waitForFunction(() => document.querySelectorAll("#log tbody tr").length >= 3)
    const log = await page.locator("#log tbody").textContent()
    assert.match(log ?? "", /\/take_picture/)
    assert.match(log ?? "", /internal: the demo handler always fails/)

    f.node.disconnect()
    await page.waitForSelector('#banner[data-kind="error"]')
    assert.match((await page.textContent("#banner")) ?? "", /Robot disconnected/)
    f.node.connectNow()
    await page.waitForSelector("#banner.hidden", { state: "attached" })
    f.node.restart()
    await page.waitForSelector('#banner[data-kind="info"]')
    assert.match((await page.textContent("#banner")) ?? "", /Robot restarted/)
    assert.deepEqual(errors, [])
  } finally {
    await browser.close()
    await f.close()
  }
})

/** A robot-like in-memory node: the demo services plus get_state, drive and stop with a little state. */
function cockpitFixture() {
  const robot = { left: 0, right: 0, led: true, button: false, drives: [] as { left: number; right: number; duration_ms: number }[], stops: 0, gets: 0 }
  return {
    robot,
    async start() {
      const f = await startFixture()
      f.node.addService(GetState, "/get_state", () => {
        robot.gets++
        return {
          uptime_ms: 5000n,
          // 8.20757 is not a float32: it arrives as 8.20757007598877 and must be shown as 8.20757
          battery_voltage: 8.20757,
          battery_percentage: 76.5,
          left_speed: robot.left,
          right_speed: robot.right,
          drive_remaining_ms: 0,
          pan_angle: 30,
          led_on: robot.led,
          button_pressed: robot.button,
          free_heap: 1000,
          calls_served: robot.gets,
          calls_failed: 0,
          last_error: "",
        }
      })
      f.node.addService(Drive, "/drive", (req) => {
        robot.drives.push(req)
        robot.left = req.left
        robot.right = req.right
        return { stop_at_ms: 5300n }
      })
      f.node.addService(Trigger, "/stop", () => {
        robot.stops++
        robot.left = robot.right = 0
        return { success: true, message: "stopped" }
      })
      return f
    },
  }
}

test("dashboard cockpit: live state panel, camera live mode with fps and progress, drive pad with keys and STOP (issue 9)", { skip: !fs.existsSync(CHROMIUM) && !process.env.CI && `${CHROMIUM} missing (apt-get install chromium)` }, async () => {
  const fx = cockpitFixture()
  const f = await fx.start()
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  try {
    const page = await browser.newPage()
    const errors: string[] = []
    const failed: string[] = []
    page.on("pageerror", (e) => errors.push(e.message))
    page.on("response", (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`))
    await page.goto(`${f.bridge.url}/`)
    // state panel: polled values, float32 shown with float32 digits
    await page.waitForFunction(() => document.querySelector("#battery-text")?.textContent === "76.5% 8.20757 V")
    assert.equal(await page.locator("#battery").evaluate((m: HTMLMeterElement) => m.value), 76.5)
    assert.equal(await page.textContent("#state-pan"), "30°")
    assert.equal(await page.textContent("#state-led"), "on")
    assert.equal(await page.textContent("#state-button"), "released")
    fx.robot.button = true
    await page.waitForFunction(() => document.querySelector("#state-button")?.textContent === "pressed")

    // drive pad: an arrow key is one short drive forward, a button a turn; the panel follows
    await page.locator("body").click({ position: { x: 5, y: 5 } })
    await page.keyboard.press("ArrowUp")
    await page.waitForFunction(() => document.querySelector("#state-left")?.textContent === "0.5")
    assert.deepEqual(fx.robot.drives[0], { left: 0.5, right: 0.5, duration_ms: 300 })
    await page.click('.pad [data-dir="left"]')
    await page.waitForFunction(() => document.querySelector("#state-right")?.textContent === "0.5" && document.querySelector("#state-left")?.textContent === "-0.5")
    assert.deepEqual(fx.robot.drives[1], { left: -0.5, right: 0.5, duration_ms: 300 })
    // STOP is always on screen, even scrolled to the bottom
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight))
    assert.ok(await page.locator("#stop").isVisible())
    await page.click("#stop")
    await page.waitForFunction(() => document.querySelector("#state-left")?.textContent === "0")
    assert.equal(fx.robot.stops, 1)

    // camera: a big picture shows the progress bar at its end, then live mode counts frames per second
    await page.selectOption("#camera-res", "6")
    await page.click("#camera-shot")
    await page.waitForFunction(() => {
      const i = document.querySelector<HTMLImageElement>("#camera-img")
      return !!i && i.complete && i.naturalWidth === 1600
    })
    assert.equal(await page.locator("#camera-progress").evaluate((p: HTMLProgressElement) => p.value), 1)
    assert.match((await page.textContent("#camera-progress-text")) ?? "", /^(\d+\.\d)\/\1 KiB$/)
    await page.selectOption("#camera-res", "0")
    await page.check("#camera-live")
    await page.waitForFunction(() => /^\d+\.\d fps$/.test(document.querySelector("#fps")?.textContent ?? "") && parseFloat(document.querySelector("#fps")!.textContent!) > 0)
    await page.waitForFunction(() => document.querySelector<HTMLImageElement>("#camera-img")?.naturalWidth === 160)
    await page.uncheck("#camera-live")
    await page.waitForSelector('#camera-panel[data-live="off"]', { state: "attached" })
    assert.deepEqual(errors, [])
    assert.deepEqual(failed, [], "no request failed (favicon included)")
  } finally {
    await browser.close()
    await f.close()
  }
})

test("dashboard fixes (issue 9): errors wrap, no sideways scroll at 420 px, checkbox beside its label, favicon, pill when the bridge is gone", { skip: !fs.existsSync(CHROMIUM) && !process.env.CI && `${CHROMIUM} missing (apt-get install chromium)` }, async () => {
  const fx = cockpitFixture()
  const f = await fx.start()
  const long = "x".repeat(400)
  f.node.addService(Trigger, "/long_error", () => {
    throw new Error(`a long message without spaces ${long}`)
  })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  try {
    const page = await browser.newPage({ viewport: { width: 420, height: 800 } })
    await page.goto(`${f.bridge.url}/`)
    await page.waitForSelector('.service[data-service="/set_led"] form')
    // the favicon is served
    const icon = await page.evaluate(async () => (await fetch(document.querySelector<HTMLLinkElement>('link[rel="icon"]')!.href)).status)
    assert.equal(icon, 200)
    // no sideways scrolling at 420 px
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth])
    assert.ok(widths[0]! <= widths[1]!, `page is ${widths[0]} px wide in a ${widths[1]} px window`)
    // the set_led checkbox sits right beside its label
    const gap = await page.evaluate(() => {
      const label = document.querySelector('.service[data-service="/set_led"] label[for="data"]')!.getBoundingClientRect()
      const box = document.querySelector('.service[data-service="/set_led"] input[type="checkbox"]')!.getBoundingClientRect()
      return box.left - label.right
    })
    assert.ok(gap >= 0 && gap < 24, `checkbox is ${gap} px from its label`)
    // a long error wraps inside its card (the whole text visible, nothing cut off)
    const card = page.locator('.service[data-service="/long_error"]')
    await card.locator("button").click()
    await card.locator(".result.error pre").waitFor()
    const fit = await card.locator(".result.error pre").evaluate((pre) => [pre.scrollWidth, pre.clientWidth, pre.textContent!.length])
    assert.ok(fit[0]! <= fit[1]!, `error text overflows: ${fit[0]} > ${fit[1]}`)
    assert.ok(fit[2]! > 400)
    const after = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth])
    assert.ok(after[0]! <= after[1]!)
    // float32 values in a response are printed with float32 digits
    const gs = page.locator('.service[data-service="/get_state"]')
    await gs.locator("button").click()
    await gs.locator(".result.ok pre").waitFor()
    const text = (await gs.locator(".result pre").textContent()) ?? ""
    assert.match(text, /"battery_voltage": 8\.20757,/)
    assert.doesNotMatch(text, /8\.2075700/)
    // the bridge goes away: the robot pill no longer says connected
    assert.equal(await page.textContent("#robot-state"), "robot: connected")
    await f.bridge.close()
    await page.waitForFunction(() => document.querySelector("#bridge-state")?.textContent === "bridge: disconnected")
    assert.equal(await page.textContent("#robot-state"), "robot: unknown (no bridge)")
    assert.equal(await page.getAttribute("#robot-state", "class"), "pill unknown")
  } finally {
    await browser.close()
    await f.close()
  }
})
