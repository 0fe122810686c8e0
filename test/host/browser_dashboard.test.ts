// The dashboard in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// it lists the services, calls add_two_ints through the generated form, takes a picture and sees
// it rendered as an image, logs the calls, and shows a banner when the robot disconnects.
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { test } from "node:test"
import { chromium } from "playwright-core"
import { startFixture } from "./bridge_helpers"

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
