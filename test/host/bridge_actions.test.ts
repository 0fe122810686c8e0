// Actions through the bridge's HTTP API, Foxglove channels and dashboard (issue 19), in front of
// test/firmware/actions_fw.ts in the DeviceScript VM (/fibonacci: order n gives n terms, one
// feedback every 100 ms; /action_probe counts the cancels). One VM for every test; no fixed sleeps:
// every wait is on an event (a server-sent event, a Foxglove message, a page element).
import assert from "node:assert/strict"
import * as fs from "node:fs"
import { after, before, describe, test } from "node:test"
import { chromium } from "playwright-core"
import WebSocket from "ws"
import { actionTypes, serviceTypes } from "../../packages/host/src/gen/interfaces"
import { startBridge, type Bridge } from "../../packages/host/src/bridge/server"
import { startRig, type Rig } from "../../packages/host/src/sim/rig"
import type { RobotNode } from "../../packages/host/src/client/api"
import { FleetNode } from "../../packages/host/src/client/fleet"
import { connectFoxglove } from "./foxglove_helpers"
import { actionProbe, fib } from "./actions_fixture"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]

interface Sse {
  event: string
  data: any
}

/** Reads a server-sent event stream to its end; `onEvent` sees each event as it comes. */
async function readEvents(url: string, onEvent: (e: Sse) => void = () => {}): Promise<Sse[]> {
  const res = await fetch(url)
  assert.equal(res.status, 200)
  assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/)
  const out: Sse[] = []
  let buf = ""
  const dec = new TextDecoder()
  for await (const chunk of res.body as any as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true })
    for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const lines = block.split("\n")
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7)
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6)
      if (event === undefined || data === undefined) continue
      const e = { event, data: JSON.parse(data) }
      out.push(e)
      onEvent(e)
    }
  }
  return out
}

async function post(url: string, body: unknown, method = "POST"): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}

describe("actions through the bridge (VM)", { timeout: 180000 }, () => {
  let rig: Rig
  let bridge: Bridge
  const cancels = async () => (await actionProbe(rig.node)).cancels
  /** watch calls in flight per goal (hex id), and the most seen at once for any goal */
  const watching = new Map<string, number>()
  let maxWatching = 0
  before(async () => {
    rig = await startRig({ firmware: "test/firmware/actions_fw.ts", echoVm: process.env.RS_ECHO_VM === "1" })
    bridge = await startBridge({ node: countWatches(rig.node), port: 0, typeRegistry: serviceTypes, actionTypes })
  })
  /** The node with its `<name>/_action/watch` calls counted per goal (everything else as it is). */
  function countWatches(node: RobotNode): RobotNode {
    const bound = (t: object, k: string | symbol) => {
      const v = Reflect.get(t, k)
      return typeof v === "function" ? v.bind(t) : v
    }
    return new Proxy(node, {
      get(t, k) {
        if (k !== "createClient") return bound(t, k)
        return (type: any, name: string) => {
          const c = t.createClient(type, name)
          if (!name.endsWith("/_action/watch")) return c
          return new Proxy(c, {
            get(ct, ck) {
              if (ck !== "call") return bound(ct, ck)
              return async (req: any, o: any) => {
                const id = Buffer.from(req.goal_id.uuid).toString("hex")
                const n = (watching.get(id) ?? 0) + 1
                watching.set(id, n)
                maxWatching = Math.max(maxWatching, n)
                try {
                  return await ct.call(req, o)
                } finally {
                  watching.set(id, watching.get(id)! - 1)
                }
              }
            },
          })
        }
      },
    })
  }
  after(async () => {
    await bridge?.close()
    await rig?.close()
  })

  test("HTTP: GET /api/actions lists the actions with their typedefs", async () => {
    const body = (await (await fetch(`${bridge.url}/api/actions`)).json()) as any
    const names = body.actions.map((a: any) => a.name).sort()
    assert.deepEqual(names, ["/fibonacci", "/fibonacci_latest", "/fibonacci_serial"])
    const f = body.actions.find((a: any) => a.name === "/fibonacci")
    assert.equal(f.type, "example_interfaces/action/Fibonacci")
    assert.equal(f.known, true)
    assert.deepEqual(f.goal[0].fieldnames, ["order"])
    assert.deepEqual(f.feedback[0].fieldnames, ["sequence"])
  })

  test("HTTP: a goal started with POST, followed with server-sent events to the end by three clients over one watch loop, its result", async () => {
    const start = await post(`${bridge.url}/api/actions/fibonacci`, { order: 8 })
    assert.equal(start.status, 200, JSON.stringify(start.body))
    assert.equal(start.body.accepted, true)
    assert.match(start.body.goal_id, /^[0-9a-f]{32}$/)
    const streams = await Promise.all([1, 2, 3].map(() => readEvents(`${bridge.url}${start.body.events}`)))
    const events = streams[0]!
    // every follower heard the same feedback and result, through one watch call at a time on the robot
    const heard = (es: Sse[]) => es.filter((e) => e.event !== "status")
    for (const o of streams.slice(1)) assert.deepEqual(heard(o), heard(events))
    assert.equal(maxWatching, 1)
    assert.ok(watching.has(start.body.goal_id))
    const held = (await (await fetch(`${bridge.url}/api/actions/fibonacci/goals`)).json()) as any
    assert.equal(held.goals.filter((g: any) => g.goal_id === start.body.goal_id).length, 1)
    const feedback = events.filter((e) => e.event === "feedback").map((e) => e.data.feedback.sequence)
    // one feedback per term from the third on, in order, none skipped (100 ms apart, a watch round trip is far shorter)
    assert.deepEqual(feedback, [3, 4, 5, 6, 7, 8].map(fib))
    assert.ok(events.some((e) => e.event === "status" && e.data.status_name === "executing"))
    const last = events[events.length - 1]!
    assert.equal(last.event, "result")
    assert.equal(last.data.status_name, "succeeded")
    assert.deepEqual(last.data.result.sequence, fib(8))
    // the result is kept for late askers; a second stream of the ended goal ends at once with it
    const r = (await (await fetch(`${bridge.url}/api/actions/fibonacci/goals/${start.body.goal_id}/result`)).json()) as any
    assert.deepEqual([r.status_name, r.result.sequence], ["succeeded", fib(8)])
    const again = await readEvents(`${bridge.url}${start.body.events}`)
    assert.deepEqual(again.map((e) => e.event), ["status", "feedback", "result"])
  })

  test("HTTP: cancel a running goal (DELETE): the robot's onCancel ran, the stream ends canceled", async () => {
    const before = await cancels()
    const start = await post(`${bridge.url}/api/actions/fibonacci/`, { order: 25 })
    assert.equal(start.status, 200, JSON.stringify(start.body))
    let sawFeedback!: () => void
    const fed = new Promise<void>((r) => (sawFeedback = r))
    const stream = readEvents(`${bridge.url}${start.body.events}`, (e) => e.event === "feedback" && sawFeedback())
    await fed
    const res = await fetch(`${bridge.url}/api/actions/fibonacci/goals/${start.body.goal_id}`, { method: "DELETE" })
    const c = (await res.json()) as any
    assert.equal(res.status, 200)
    assert.deepEqual([c.return_code, c.canceling], [0, true])
    const events = await stream
    const last = events[events.length - 1]!
    assert.deepEqual([last.event, last.data.status_name], ["result", "canceled"])
    // fewer terms than asked for
    assert.ok(events.filter((e) => e.event === "feedback").length < 23)
    assert.equal(await cancels(), before + 1)
    // cancelling it again: the goal has ended (CancelGoal ERROR_GOAL_TERMINATED), over POST .../cancel
    const again = await post(`${bridge.url}/api/actions/fibonacci/goals/${start.body.goal_id}/cancel`, {})
    assert.equal(again.status, 200)
    assert.equal(again.body.canceling, false)
  })

  test("HTTP: bad goals and unknown actions are clear 4xx errors", async () => {
    const bad = await post(`${bridge.url}/api/actions/fibonacci`, "{order: 3")
    assert.equal(bad.status, 400)
    assert.equal(bad.body.code, "invalid_argument")
    assert.match(bad.body.message, /malformed JSON/)
    const wrong = await post(`${bridge.url}/api/actions/fibonacci`, { order: "many" })
    assert.equal(wrong.status, 400)
    assert.match(wrong.body.message, /order/)
    const unknownField = await post(`${bridge.url}/api/actions/fibonacci`, { steps: 3 })
    assert.equal(unknownField.status, 400)
    assert.match(unknownField.body.message, /steps/)
    const none = await post(`${bridge.url}/api/actions/nope`, { order: 3 })
    assert.equal(none.status, 404)
    assert.deepEqual([none.body.code, none.body.message], ["unimplemented", "no action /nope on the robot (actions: /fibonacci, /fibonacci_serial, /fibonacci_latest)"])
    // the robot's onGoal refuses order 0: accepted false, not an error
    const rejected = await post(`${bridge.url}/api/actions/fibonacci`, { order: 0 })
    assert.deepEqual([rejected.status, rejected.body.accepted], [200, false])
    // a goal the robot does not know: the stream ends with the robot's error at once
    const unknown = await readEvents(`${bridge.url}/api/actions/fibonacci/goals/${"ab".repeat(16)}/events`)
    assert.deepEqual(unknown.at(-1), { event: "error", data: { code: "invalid_argument", message: `unknown goal ${"ab".repeat(16)}` } })
    const badId = await fetch(`${bridge.url}/api/actions/fibonacci/goals/xyz/events`)
    assert.equal(badId.status, 400)
    const get = await fetch(`${bridge.url}/api/actions/fibonacci`)
    assert.equal(get.status, 405)
    const notJson = await fetch(`${bridge.url}/api/actions/fibonacci`, { method: "POST", body: "{}" })
    assert.equal(notJson.status, 415)
  })

  test("HTTP on a fleet: /api/actions/rover1/fibonacci, listed with its robot, to the end", async () => {
    const fleet = new FleetNode("the test fleet")
    fleet.add("rover1", await rig.connect())
    const fb = await startBridge({ node: fleet, port: 0, typeRegistry: serviceTypes, actionTypes })
    try {
      // the fleet lists the robot's services once it has asked (polled, with a deadline)
      let list: any
      for (let i = 0; i < 100; i++) {
        list = await (await fetch(`${fb.url}/api/actions`)).json()
        if (list.actions.length) break
        await new Promise((r) => setTimeout(r, 50))
      }
      const a = list.actions.find((x: any) => x.name === "/rover1/fibonacci")
      assert.ok(a, JSON.stringify(list))
      assert.equal(a.robot, "rover1")
      // a name without a robot: its first part is taken for one, as for services
      const none = await post(`${fb.url}/api/actions/fibonacci`, { order: 3 })
      assert.deepEqual([none.status, none.body.code], [503, "unavailable"])
      assert.match(none.body.message, /^no robot fibonacci \(robots: rover1\)/)
      const start = await post(`${fb.url}/api/actions/rover1/fibonacci`, { order: 4 })
      assert.equal(start.status, 200, JSON.stringify(start.body))
      assert.equal(start.body.action, "/rover1/fibonacci")
      const events = await readEvents(`${fb.url}${start.body.events}`)
      assert.deepEqual(events.at(-1)?.data.result.sequence, fib(4))
    } finally {
      await fb.close()
      await fleet.close()
    }
  })

  test("Foxglove: the feedback and status channels carry a goal sent over HTTP", async () => {
    const c = await connectFoxglove(bridge.wsUrl, 0)
    try {
      const fb = c.channels.find((ch) => ch.topic === "/fibonacci/_action/feedback")
      const st = c.channels.find((ch) => ch.topic === "/fibonacci/_action/status")
      assert.ok(fb && st, `channels: ${c.channels.map((ch) => ch.topic)}`)
      assert.equal(fb.schemaName, "example_interfaces/action/Fibonacci_FeedbackMessage")
      assert.equal(st.schemaName, "action_msgs/msg/GoalStatusArray")
      c.client.subscribe(fb.id)
      c.client.subscribe(st.id)
      const heard: any[] = []
      let check = () => {}
      c.client.on("message", (m: any) => {
        heard.push(JSON.parse(new TextDecoder().decode(m.data)))
        check()
      })
      // the subscriptions travel on the open WebSocket before the POST does: the first feedback is 200 ms later still
      const start = await post(`${bridge.url}/api/actions/fibonacci`, { order: 6 })
      assert.equal(start.status, 200)
      const uuid = Buffer.from(start.body.goal_id, "hex").toString("base64")
      const mine = (m: any) => m.status_list?.find((s: any) => s.goal_info.goal_id.uuid === uuid)?.status
      // the status list holds the action's other goals too (the earlier tests'): this goal's end
      await new Promise<void>((resolve) => {
        check = () => heard.some((m) => mine(m) === 4) && resolve()
        check()
      })
      const feedback = heard.filter((m) => m.feedback)
      assert.deepEqual(feedback.map((f) => f.feedback.sequence), [3, 4, 5, 6].map(fib))
      assert.ok(feedback.every((f) => f.goal_id.uuid === uuid))
      const statuses = heard.map(mine).filter((x) => x !== undefined)
      assert.deepEqual([statuses[0], statuses[statuses.length - 1]], [2, 4])
    } finally {
      c.client.close()
    }
  })

  test("one tracker: a goal sent over HTTP is on rosbridge's feedback and status topics, followed by one watch loop for both", async () => {
    const ws = new WebSocket(bridge.wsUrl)
    const heard: any[] = []
    let check = () => {}
    ws.on("message", (d) => {
      heard.push(JSON.parse(String(d)))
      check()
    })
    const until = (f: () => boolean) =>
      new Promise<void>((resolve) => {
        check = () => f() && resolve()
        check()
      })
    try {
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject))
      ws.send(JSON.stringify({ op: "subscribe", topic: "/fibonacci/_action/feedback" }))
      ws.send(JSON.stringify({ op: "subscribe", topic: "/fibonacci/_action/status" }))
      // the status topic is latched: its first message says both subscriptions are in place
      await until(() => heard.some((m) => m.topic === "/fibonacci/_action/status"))
      maxWatching = 0
      const start = await post(`${bridge.url}/api/actions/fibonacci`, { order: 6 })
      assert.equal(start.status, 200, JSON.stringify(start.body))
      const uuid = Buffer.from(start.body.goal_id, "hex").toString("base64")
      const mine = (m: any) => m.topic === "/fibonacci/_action/status" && m.msg.status_list.find((s: any) => s.goal_info.goal_id.uuid === uuid)?.status
      // an HTTP follower at the same time: it and the rosbridge topics share the goal's one watch loop
      const events = await readEvents(`${bridge.url}${start.body.events}`)
      await until(() => heard.some((m) => mine(m) === 4))
      const feedback = heard.filter((m) => m.topic === "/fibonacci/_action/feedback")
      assert.ok(feedback.every((m) => m.msg.goal_id.uuid === uuid))
      assert.deepEqual(feedback.map((m) => m.msg.feedback.sequence), [3, 4, 5, 6].map(fib))
      assert.deepEqual(events.filter((e) => e.event === "feedback").map((e) => e.data.feedback.sequence), [3, 4, 5, 6].map(fib))
      assert.equal(maxWatching, 1)
    } finally {
      ws.close()
    }
  })

  test("dashboard: an action panel sends a goal, shows feedback and progress, and cancels it", { skip: !fs.existsSync(CHROMIUM) && !process.env.CI && `${CHROMIUM} missing (apt-get install chromium)` }, async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    const before = await cancels()
    try {
      const page = await browser.newPage()
      const errors: string[] = []
      page.on("pageerror", (e) => errors.push(e.message))
      await page.goto(bridge.url)
      const panel = page.locator('.action[data-action="/fibonacci"]')
      await panel.locator("form").waitFor()
      assert.equal(await panel.locator(".type").textContent(), "example_interfaces/action/Fibonacci")
      // the action's own services are not listed among the services
      assert.equal(await page.locator('.service[data-service="/fibonacci/_action/send_goal"]').count(), 0)
      await panel.locator('input[name="order"]').fill("25")
      await panel.locator("button.send").click()
      // feedback arrives and the bar moves: sequence length / order
      await page.waitForFunction(() => {
        const p = document.querySelector<HTMLProgressElement>('.action[data-action="/fibonacci"] progress')
        return !!p && p.value >= 4 / 25
      })
      assert.equal(await panel.locator(".goal-status").textContent(), "executing")
      assert.match((await panel.locator(".feedback").textContent()) ?? "", /^{"sequence":\[0,1,1,2/)
      const value = await panel.locator("progress").evaluate((p: HTMLProgressElement) => p.value)
      assert.ok(value > 0 && value < 1, `progress ${value}`)
      await panel.locator("button.cancel").click()
      await page.waitForFunction(() => document.querySelector('.action[data-action="/fibonacci"] .goal-status')?.textContent === "canceled")
      assert.equal(await panel.locator("button.cancel").isDisabled(), true)
      assert.equal(await cancels(), before + 1)
      // the goal's calls are in the call log like any other
      await page.waitForFunction(() => /_action\/cancel_goal/.test(document.querySelector("#log tbody")?.textContent ?? ""))
      assert.match((await page.locator("#log tbody").textContent()) ?? "", /\/fibonacci\/_action\/send_goal/)
      await page.screenshot({ path: "/tmp/dashboard-action.png", fullPage: true })
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
    }
  })
})
