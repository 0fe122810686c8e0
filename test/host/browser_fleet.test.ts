// The dashboard in front of a fleet (packages/host/src/client/fleet.ts), in real headless Chromium
// (/usr/bin/chromium via playwright-core): the robot picker with live online/offline marks, and the
// cockpit and service forms working on the picked robot's namespaced services (/robot2/...).
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { test } from "node:test"
import { chromium } from "playwright-core"
import { demoFleet, demoMemoryNode } from "../../packages/host/src/demo/demo"
import type { MemoryNode } from "../../packages/host/src/demo/memory"
import { FleetNode } from "../../packages/host/src/client/fleet"
import { startBridge } from "../../packages/host/src/bridge/server"
import { Drive, GetState, serviceTypes, Trigger } from "../../packages/host/src/gen/interfaces"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
const skip = !fs.existsSync(CHROMIUM) && !process.env.CI && `${CHROMIUM} missing (apt-get install chromium)`

/** get_state, drive and stop on a demo node, with a battery level that tells the robots apart. */
function makeRobotLike(node: MemoryNode, battery: number) {
  const robot = { left: 0, right: 0, drives: 0, stops: 0 }
  node.addService(GetState, "/get_state", () => ({
    uptime_ms: 1000n,
    battery_voltage: 8,
    battery_percentage: battery,
    left_speed: robot.left,
    right_speed: robot.right,
    drive_remaining_ms: 0,
    pan_angle: 0,
    led_on: false,
    button_pressed: false,
    free_heap: 1000,
    calls_served: 0,
    calls_failed: 0,
    last_error: "",
  }))
  node.addService(Drive, "/drive", (req) => {
    robot.drives++
    robot.left = req.left
    robot.right = req.right
    return { stop_at_ms: 0n }
  })
  node.addService(Trigger, "/stop", () => {
    robot.stops++
    robot.left = robot.right = 0
    return { success: true, message: "stopped" }
  })
  return robot
}

test("dashboard with a fleet: pick robot 2, its cockpit and forms call /robot2/...; robot 1 going offline shows in the picker at once", { skip }, async () => {
  const fleet = demoFleet(3)
  const r1 = fleet.robot("robot1") as MemoryNode
  const r2 = makeRobotLike(fleet.robot("robot2") as MemoryNode, 42)
  const r3 = makeRobotLike(fleet.robot("robot3") as MemoryNode, 77)
  const bridge = await startBridge({ node: fleet, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes, token: "fleet-token" })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  try {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on("pageerror", (e) => errors.push(e.message))
    await page.goto(`${bridge.url}/?token=fleet-token`)
    // the picker: every robot with its mark; the first online robot is picked
    await page.waitForFunction(() => document.querySelectorAll("#robot-picker .robot").length === 3)
    assert.deepEqual(await page.locator("#robot-picker .robot").evaluateAll((bs) => bs.map((b) => [b.getAttribute("data-robot"), b.getAttribute("data-online")])), [
      ["robot1", "true"],
      ["robot2", "true"],
      ["robot3", "true"],
    ])
    assert.equal(await page.getAttribute('#robot-picker [data-robot="robot1"]', "aria-pressed"), "true")
    await page.waitForSelector('.service[data-service="/robot1/add_two_ints"] form')
    assert.equal(await page.textContent("#robot-state"), "robot1: online")
    // robot1 (the plain demo node) has no get_state: no state panel
    assert.ok(await page.locator("#state-panel").isHidden())

    // pick robot 2: its services only, its state in the cockpit, ?robot= in the address
    await page.click('#robot-picker [data-robot="robot2"]')
    await page.waitForSelector('.service[data-service="/robot2/add_two_ints"] form')
    assert.equal(await page.locator('.service[data-service^="/robot1/"]').count(), 0)
    assert.equal(await page.locator('.service[data-service^="/robot3/"]').count(), 0)
    assert.equal(await page.getAttribute('#robot-picker [data-robot="robot2"]', "aria-pressed"), "true")
    assert.match(page.url(), /[?&]robot=robot2/)
    assert.match(page.url(), /[?&]token=fleet-token/)
    await page.waitForFunction(() => document.querySelector("#battery-text")?.textContent?.startsWith("42 %"))

    // add_two_ints through robot 2's form
    const ati = page.locator('.service[data-service="/robot2/add_two_ints"]')
    await ati.locator('input[name="a"]').fill("2")
    await ati.locator('input[name="b"]').fill("40")
    await ati.locator("button").click()
    await ati.locator(".result.ok pre").waitFor()
    assert.match((await ati.locator(".result pre").textContent()) ?? "", /"sum": 42/)

    // the drive pad and the camera work on robot 2
    await page.locator("body").click({ position: { x: 5, y: 5 } })
    await page.keyboard.press("ArrowUp")
    await page.waitForFunction(() => document.querySelector("#state-left")?.textContent === "0.5")
    assert.deepEqual([r2.drives, r3.drives], [1, 0])
    await page.click("#stop")
    await page.waitForFunction(() => document.querySelector("#state-left")?.textContent === "0")
    assert.deepEqual([r2.stops, r3.stops], [1, 0])
    await page.click("#camera-shot")
    await page.waitForFunction(() => {
      const i = document.querySelector<HTMLImageElement>("#camera-img")
      return !!i && i.complete && i.naturalWidth === 320
    })
    await page.waitForFunction(() => Array.from(document.querySelectorAll("#log tbody td:nth-child(2)")).some((td) => td.textContent === "/robot2/take_picture"))
    const logged = await page.locator("#log tbody td:nth-child(2)").allTextContents()
    assert.ok(logged.includes("/robot2/add_two_ints") && logged.includes("/robot2/drive"), logged.join(" "))
    assert.ok(!logged.some((s) => s.startsWith("/robot3/") || s.startsWith("/robot1/")), logged.join(" "))

    // robot 2 restarts: the banner says so
    ;(fleet.robot("robot2") as MemoryNode).restart()
    await page.waitForSelector('#banner[data-kind="info"]')
    assert.match((await page.textContent("#banner")) ?? "", /robot2 restarted/)
    await page.waitForSelector('#robot-picker [data-robot="robot2"][data-online="true"]')
    await page.waitForSelector("#banner.hidden", { state: "attached" })

    // robot 1 goes offline: its mark changes at once; robot 2 stays picked, no banner for it
    r1.disconnect()
    await page.waitForSelector('#robot-picker [data-robot="robot1"][data-online="false"]')
    assert.equal(await page.textContent('#robot-picker [data-robot="robot1"] .mark'), "offline")
    assert.equal(await page.getAttribute('#robot-picker [data-robot="robot2"]', "aria-pressed"), "true")
    assert.ok(await page.locator("#banner").isHidden())
    // picking the offline robot says so
    await page.click('#robot-picker [data-robot="robot1"]')
    await page.waitForSelector('#banner[data-kind="error"]')
    assert.match((await page.textContent("#banner")) ?? "", /robot1 is offline/)
    assert.equal(await page.textContent("#robot-state"), "robot1: offline")
    assert.ok(await page.locator("#cockpit").isHidden())
    // it comes back, and a new robot appears in the picker
    r1.connectNow()
    await page.waitForSelector('.service[data-service="/robot1/add_two_ints"] form')
    await page.waitForSelector("#banner.hidden", { state: "attached" })
    fleet.add("robot4", demoMemoryNode())
    await page.waitForSelector('#robot-picker [data-robot="robot4"][data-online="true"]')

    // the bridge goes away: nothing is known about any robot, so none is shown online (issue 17)
    await bridge.close()
    await page.waitForFunction(() => document.querySelector("#bridge-state")?.textContent === "bridge: disconnected")
    const marks = await page.locator("#robot-picker .robot").evaluateAll((bs) => bs.map((b) => [b.getAttribute("data-robot"), b.getAttribute("data-online"), b.querySelector(".mark")?.textContent]))
    assert.deepEqual(marks, [
      ["robot1", "unknown", "unknown"],
      ["robot2", "unknown", "unknown"],
      ["robot3", "unknown", "unknown"],
      ["robot4", "unknown", "unknown"],
    ])
    await page.screenshot({ path: "/tmp/dashboard-issue17-fleet-bridge-down.png" })
    assert.deepEqual(errors, [])
  } finally {
    await browser.close()
    await bridge.close()
    await fleet.close()
  }
})

test("dashboard with a fleet: no robot yet, then robots as they come; ?robot= picks the robot at load; a single robot has no picker and unprefixed names", { skip }, async () => {
  const fleet = new FleetNode("the test fleet")
  const bridge = await startBridge({ node: fleet, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes })
  const single = demoMemoryNode()
  const one = await startBridge({ node: single, host: "127.0.0.1", port: 0, typeRegistry: serviceTypes })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  try {
    const page = await browser.newPage()
    await page.goto(`${bridge.url}/`)
    await page.waitForSelector('#banner[data-kind="warn"]')
    assert.match((await page.textContent("#banner")) ?? "", /No robot has appeared yet/)
    assert.match((await page.textContent("#robot-picker")) ?? "", /no robot has appeared yet/)
    fleet.add("robot1", demoMemoryNode())
    fleet.add("robot2", demoMemoryNode())
    await page.waitForSelector('.service[data-service="/robot1/add_two_ints"] form')
    assert.equal(await page.getAttribute('#robot-picker [data-robot="robot1"]', "aria-pressed"), "true")
    assert.ok(await page.locator("#banner").isHidden())

    await page.goto(`${bridge.url}/?robot=robot2`)
    await page.waitForSelector('.service[data-service="/robot2/take_picture"] form')
    assert.equal(await page.getAttribute('#robot-picker [data-robot="robot2"]', "aria-pressed"), "true")
    assert.equal(await page.locator('.service[data-service^="/robot1/"]').count(), 0)

    await page.goto(`${one.url}/`)
    await page.waitForSelector('.service[data-service="/add_two_ints"] form')
    assert.ok(await page.locator("#robot-picker").isHidden())
    assert.equal(await page.textContent("#robot-state"), "robot: connected")
  } finally {
    await browser.close()
    await bridge.close()
    await one.close()
    await fleet.close()
    await single.close()
  }
})
