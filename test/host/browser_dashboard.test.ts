// The dashboard in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// it lists the services, calls add_two_ints through the generated form, takes a picture and sees
// it rendered as an image, logs the calls, and shows a banner when the robot disconnects.
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { test } from "node:test"
import { chromium } from "playwright-core"
import { startFixture } from "./bridge_helpers"
import { startBridge } from "../../packages/host/src/bridge/server"
import { Drive, GetState, Trigger, serviceTypes } from "../../packages/host/src/gen/interfaces"

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
  const robot = { left: 0, right: 0, led: true, button: false, volts: 8.20757, percent: 76.5, drives: [] as { left: number; right: number; duration_ms: number }[], stops: 0, gets: 0 }
  return {
    robot,
    async start() {
      const f = await startFixture()
      f.node.addService(GetState, "/get_state", () => {
        robot.gets++
        return {
          uptime_ms: 5000n,
          // 8.20757 is not a float32: it arrives as 8.20757007598877 and must be shown as 8.20757
          battery_voltage: robot.volts,
          battery_percentage: robot.percent,
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
    // state panel: polled values; the battery as a person reads it (whole percent, volts to 10 mV)
    await page.waitForFunction(() => document.querySelector("#battery-text")?.textContent === "77 % 8.21 V")
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

/** The rectangles of `a` and `b` overlap (by more than half a pixel each way). */
const OVERLAP = `(a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5`

for (const width of [1280, 420]) {
  test(`dashboard at ${width} px (issue 17): camera error gone when the bridge is back, fps cleared, STOP covers nothing, log columns keep their width, battery as a person reads it`, { skip: !fs.existsSync(CHROMIUM) && !process.env.CI && `${CHROMIUM} missing (apt-get install chromium)` }, async () => {
    const fx = cockpitFixture()
    fx.robot.percent = 89.94155
    fx.robot.volts = 8.218948
    const f = await fx.start()
    f.node.addService(Trigger, "/long_error", () => {
      throw new Error(`a long message ${"with many words and a_very_long_identifier_without_spaces ".repeat(12)}`)
    })
    let bridge = f.bridge
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    try {
      const page = await browser.newPage({ viewport: { width, height: 800 } })
      const errors: string[] = []
      page.on("pageerror", (e) => errors.push(e.message))
      await page.goto(`${bridge.url}/`)
      await page.waitForSelector('.service[data-service="/long_error"] form')

      // battery: 90 %, 8.22 V (not 89.94155% 8.218948 V)
      await page.waitForFunction(() => document.querySelector("#battery-text")?.textContent === "90 % 8.22 V")

      // live mode on, then off: the frame rate goes with it
      await page.selectOption("#camera-res", "0")
      await page.check("#camera-live")
      await page.waitForFunction(() => /^\d+\.\d fps$/.test(document.querySelector("#fps")?.textContent ?? ""))
      await page.uncheck("#camera-live")
      await page.waitForSelector('#camera-panel[data-live="off"]', { state: "attached" })
      assert.equal(await page.textContent("#fps"), "")

      // long errors in the call log, among ordinary calls
      const le = page.locator('.service[data-service="/long_error"]')
      for (let i = 0; i < 3; i++) {
        await le.locator("button").click()
        await le.locator(".result.error").waitFor()
        await page.locator('.service[data-service="/add_two_ints"] button').click()
      }
      await page.waitForFunction(() => Array.from(document.querySelectorAll("#log tbody td:last-child")).filter((td) => /long message/.test(td.textContent ?? "")).length >= 3)
      const cols = await page.evaluate(() =>
        Array.from(document.querySelectorAll("#log tbody tr")).map((tr) =>
          Array.from(tr.children).map((td) => {
            const r = document.createRange()
            r.selectNodeContents(td)
            return { text: td.textContent, width: td.getBoundingClientRect().width, lines: r.getClientRects().length }
          }),
        ),
      )
      for (const row of cols) {
        // time, service, via and ms stay on one line each; the result keeps a readable width
        for (const c of row.slice(0, 4)) assert.ok(c.lines <= 1, `'${c.text}' is broken over ${c.lines} lines (${c.width} px wide) at ${width} px`)
        assert.ok(row[4]!.width >= 120, `the result column is ${row[4]!.width} px wide at ${width} px`)
      }
      const sideways = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth])
      assert.ok(sideways[0]! <= sideways[1]!, `page is ${sideways[0]} px wide in a ${sideways[1]} px window`)

      // the STOP button never covers a form field, a Call button or a result cell of the log: each
      // brought into view (top, middle or bottom of the window) is clear of it
      const covered = await page.evaluate((overlapSrc) => {
        const overlap = eval(overlapSrc) as (a: DOMRect, b: DOMRect) => boolean
        const stop = document.querySelector("#stop")!
        const out: string[] = []
        const targets = Array.from(document.querySelectorAll<HTMLElement>(".service input, .service button, #log tbody td:last-child"))
        for (const t of targets)
          for (const block of ["start", "center", "end"] as const) {
            t.scrollIntoView({ block, inline: "nearest" })
            if (overlap(t.getBoundingClientRect(), stop.getBoundingClientRect())) out.push(`${t.tagName} ${t.getAttribute("name") ?? t.textContent?.slice(0, 30)} (${block})`)
          }
        return out
      }, OVERLAP)
      assert.deepEqual(covered.slice(0, 5), [], `${covered.length} elements under STOP at ${width} px`)
      // and STOP is on screen wherever the page is scrolled
      for (const y of [0, 600, 100000]) {
        await page.evaluate((yy) => window.scrollTo(0, yy), y)
        const r = await page.locator("#stop").boundingBox()
        assert.ok(r && r.y >= 0 && r.y + r.height <= 800, `STOP off screen at scroll ${y}: ${JSON.stringify(r)}`)
      }
      await page.evaluate(() => window.scrollTo(0, 0))
      await page.screenshot({ path: `/tmp/dashboard-issue17-${width}.png`, fullPage: true })

      // the bridge goes away: a picture fails under the camera; the bridge comes back: the error goes
      const port = bridge.port
      await bridge.close()
      await page.waitForFunction(() => document.querySelector("#bridge-state")?.textContent === "bridge: disconnected")
      await page.click("#camera-shot")
      await page.waitForFunction(() => /take_picture: /.test(document.querySelector("#camera-error")?.textContent ?? ""))
      bridge = await startBridge({ node: f.node, host: "127.0.0.1", port, typeRegistry: serviceTypes })
      await page.waitForFunction(() => document.querySelector("#bridge-state")?.textContent === "bridge: connected", undefined, { timeout: 15000 })
      await page.waitForFunction(() => document.querySelector("#battery-text")?.textContent === "90 % 8.22 V")
      assert.equal(await page.textContent("#camera-error"), "")
      assert.equal(await page.textContent("#state-error"), "")
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
      await bridge.close()
      await f.node.close()
    }
  })
}
