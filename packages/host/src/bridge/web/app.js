// Dashboard of the robot bridge: plain JavaScript, no build step. It lists the services
// (GET /api/services), builds a form from each request's typedefs, calls through the rosbridge
// WebSocket (call_service), and follows the bridge topics /robot_bridge/state (banner) and
// /robot_bridge/calls (log). When the robot has them, a cockpit on top: the state panel (get_state
// polled one call at a time), the camera with a live mode and a progress bar, and a drive pad with
// a STOP button. When the bridge serves a fleet (the state message has `robots`), a robot picker
// (online/offline, live) chooses the robot whose namespaced services (/robot2/...) the cockpit and
// the service list work on; ?robot= picks one at load. Above the services, an action panel per
// action (GET /api/actions): a goal form, Send goal (POST /api/actions/<name>), live status and
// feedback (the goal's server-sent events, read with fetch so the token goes in a header), a
// progress bar where the feedback allows one (see `progressOf`), the result, and Cancel. A token,
// when the bridge needs one, comes from the page's ?token=.
"use strict"
;(() => {
  const token = new URLSearchParams(location.search).get("token") || ""
  const $ = (sel) => document.querySelector(sel)
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v
      else if (v !== undefined && v !== null) e.setAttribute(k, v)
    }
    for (const k of kids) if (k) e.append(k)
    return e
  }

  // ---- WebSocket (rosbridge v2)
  let ws
  let nextId = 1
  const pending = new Map()
  function connectWs() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/${token ? `?token=${encodeURIComponent(token)}` : ""}`
    ws = new WebSocket(url)
    ws.onopen = () => {
      setPill($("#bridge-state"), "bridge: connected", true)
      // errors of calls the lost bridge failed are stale now
      for (const id of ["#camera-error", "#state-error", "#drive-error"]) $(id).textContent = ""
      ws.send(JSON.stringify({ op: "subscribe", topic: "/robot_bridge/state" }))
      ws.send(JSON.stringify({ op: "subscribe", topic: "/robot_bridge/calls" }))
      loadServices()
    }
    ws.onclose = () => {
      setPill($("#bridge-state"), "bridge: disconnected", false)
      // without the bridge nothing is known about the robot
      const r = $("#robot-state")
      r.textContent = "robot: unknown (no bridge)"
      r.className = "pill unknown"
      // nor about a fleet's robots: none is shown online (or offline) until the bridge says again
      if (robots) {
        robots = robots.map((x) => ({ ...x, online: undefined }))
        renderPicker()
      }
      showBanner("The bridge is not reachable; reconnecting…", "error")
      for (const [, p] of pending) p.reject(new Error("bridge connection lost"))
      pending.clear()
      setTimeout(connectWs, 1000)
    }
    ws.onmessage = (ev) => {
      let m
      try {
        m = parseExact(ev.data)
      } catch {
        return
      }
      if (m.op === "service_progress") {
        const p = pending.get(m.id)
        if (p && p.onProgress) p.onProgress(m.received, m.total)
      } else if (m.op === "service_response") {
        const p = pending.get(m.id)
        if (p) {
          pending.delete(m.id)
          p.resolve(m)
        }
      } else if (m.op === "publish" && m.topic === "/robot_bridge/state") onState(m.msg)
      else if (m.op === "publish" && m.topic === "/robot_bridge/calls") onCallLog(m.msg)
      else if (m.op === "status" && m.id && pending.has(m.id)) {
        pending.get(m.id).reject(new Error(m.msg))
        pending.delete(m.id)
      }
    }
  }
  function callService(service, args, onProgress) {
    const id = `dashboard:${nextId++}`
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error("the bridge is not connected"))
      pending.set(id, { resolve, reject, onProgress })
      const msg = { op: "call_service", id, service, args }
      if (onProgress) msg.progress = true
      ws.send(JSON.stringify(msg))
    })
  }

  // ---- robot state banner (and, for a fleet, the robot picker)
  let lastState
  let restartTimer
  // a fleet: its robots as the bridge last said, and the one picked (null: a single robot)
  let robots = null
  let picked = new URLSearchParams(location.search).get("robot")
  function onState(s) {
    if (Array.isArray(s.robots)) return onFleetState(s)
    robots = null
    $("#robot-picker").classList.add("hidden")
    setPill($("#robot-state"), `robot: ${s.state}`, s.state === "connected")
    if (s.state === "disconnected") showBanner("Robot disconnected: calls fail with 'unavailable' until it is back.", "error")
    else if (s.state === "connecting" || s.restarting) showBanner("Robot restarting or connecting…", "warn")
    else if (s.restarted) {
      showBanner("Robot restarted: calls that were running were failed.", "info")
      clearTimeout(restartTimer)
      restartTimer = setTimeout(hideBanner, 4000)
    } else hideBanner()
    servicesMayHaveChanged(s)
  }
  function servicesMayHaveChanged(s) {
    const names = (s.services || []).map((x) => x.name + x.type).join()
    if (lastState && names !== lastState) loadServices()
    lastState = names
  }

  function onFleetState(s) {
    // the first fleet message may come after the service list was drawn for a single robot
    const first = robots === null
    robots = s.robots
    const before = picked
    if (!robots.some((r) => r.name === picked)) picked = (robots.find((r) => r.online) || robots[0] || {}).name || null
    renderPicker()
    showPickedState(s.restarted && s.robot === picked)
    if (picked !== before || first) pickChanged()
    servicesMayHaveChanged(s)
  }
  function renderPicker() {
    const nav = $("#robot-picker")
    nav.classList.remove("hidden")
    nav.replaceChildren(
      ...robots.map((r) => {
        const b = el(
          "button",
          { type: "button", class: "robot", "data-robot": r.name, "data-online": onlineText(r, "true", "false"), "aria-pressed": String(r.name === picked), title: `${r.name}: ${onlineText(r, "online", "offline")}` },
          el("span", { class: "dot", "aria-hidden": "true" }),
          el("span", { class: "name", text: r.name }),
          el("span", { class: "mark", text: onlineText(r, "online", "offline") }),
        )
        b.addEventListener("click", () => pick(r.name))
        return b
      }),
    )
    if (!robots.length) nav.append(el("span", { class: "muted", text: "no robot has appeared yet" }))
  }
  // a robot's presence: `yes`, `no`, or "unknown" while the bridge is away
  const onlineText = (r, yes, no) => (r.online === undefined ? "unknown" : r.online ? yes : no)
  function showPickedState(restarted) {
    const r = robots && robots.find((x) => x.name === picked)
    if (!r) {
      const pill = $("#robot-state")
      pill.textContent = "robots: none yet"
      pill.className = "pill bad"
      return showBanner("No robot has appeared yet: robots show up here as they connect.", "warn")
    }
    setPill($("#robot-state"), `${r.name}: ${r.online ? "online" : "offline"}`, r.online)
    if (!r.online) showBanner(`${r.name} is offline: its calls fail with 'unavailable' until it is back.`, "error")
    else if (restarted) {
      showBanner(`${r.name} restarted: calls that were running were failed.`, "info")
      clearTimeout(restartTimer)
      restartTimer = setTimeout(hideBanner, 4000)
    } else if ($("#banner").dataset.kind !== "info") hideBanner()
  }
  function pick(name) {
    if (name === picked) return
    picked = name
    const q = new URLSearchParams(location.search)
    q.set("robot", name)
    history.replaceState(null, "", `${location.pathname}?${q}`)
    renderPicker()
    showPickedState(false)
    pickChanged()
  }
  // another robot: the cockpit forgets what it showed of the last one
  function pickChanged() {
    $("#camera-live").checked = false
    $("#camera-img").classList.add("hidden")
    $("#camera-img").removeAttribute("src")
    $("#camera-progress").value = 0
    for (const id of ["#camera-progress-text", "#fps", "#state-rate", "#state-error", "#camera-error", "#drive-error"]) $(id).textContent = ""
    for (const id of ["#battery-text", "#state-left", "#state-right", "#state-pan", "#state-led", "#state-button", "#state-uptime"]) $(id).textContent = "–"
    $("#battery").value = 0
    if (servicesBody) showServices(servicesBody)
    else loadServices()
  }
  function showBanner(text, kind) {
    const b = $("#banner")
    b.textContent = text
    b.className = `banner ${kind === "error" ? "" : kind}`
    b.dataset.kind = kind
  }
  function hideBanner() {
    const b = $("#banner")
    b.className = "banner hidden"
    b.textContent = ""
    delete b.dataset.kind
  }
  function setPill(e, text, ok) {
    e.textContent = text
    e.className = `pill ${ok ? "ok" : "bad"}`
  }

  // ---- services and forms
  // the last GET /api/services answer (a fleet's: every online robot's, namespaced)
  let servicesBody = null
  const authHeaders = () => (token ? { authorization: `Bearer ${token}` } : {})
  async function loadServices() {
    loadActions()
    const res = await fetch("/api/services", { headers: authHeaders() })
    const body = await res.json()
    if (!res.ok) {
      servicesBody = null
      $("#services").replaceChildren(el("p", { class: "muted", text: `cannot list services: ${body.code}: ${body.message}` }))
      return
    }
    servicesBody = body
    showServices(body)
  }
  function showServices(body) {
    const box = $("#services")
    box.replaceChildren()
    // a fleet: the picked robot's services only (/robot2/add_two_ints); the cockpit uses them too
    const prefix = robots && picked ? `/${picked}` : ""
    // an action's own services (<name>/_action/send_goal, ...) are its panel's business, as ROS 2 hides them
    const services = (robots ? body.services.filter((s) => s.name.startsWith(`${prefix}/`)) : body.services).filter((s) => !ACTION_SERVICE.test(s.name))
    if (robots) {
      const r = robots.find((x) => x.name === picked)
      box.append(el("h2", { text: picked ? `Services of ${picked}` : "Services" }))
      if (!services.length) box.append(el("p", { class: "muted", text: !r ? "no robot has appeared yet" : r.online ? `no services listed by ${picked} yet` : `${picked} is offline` }))
    } else if (!services.length) box.append(el("p", { class: "muted", text: `no services (robot ${body.state})` }))
    for (const s of services) box.append(serviceCard(s))
    setupCockpit(services, prefix)
    if (actionsBody) showActions(actionsBody)
  }

  // ---- actions: one panel per action, each following its latest goal
  const ACTION_SERVICE = /\/_action\/(send_goal|cancel_goal|get_result|watch)$/
  let actionsBody = null
  // the goal streams being read, by action name: a new goal of the same panel (or a new list) ends the old one's
  const following = new Map()
  async function loadActions() {
    try {
      const res = await fetch("/api/actions", { headers: authHeaders() })
      actionsBody = res.ok ? await res.json() : null
    } catch {
      actionsBody = null
    }
    showActions(actionsBody)
  }
  function showActions(body) {
    const box = $("#actions")
    const prefix = robots && picked ? `/${picked}/` : "/"
    const actions = body ? body.actions.filter((a) => a.name.startsWith(prefix)) : []
    // a panel stays as it is (its goal, feedback and result) while its action does
    const kept = new Map([...box.querySelectorAll(".action")].map((c) => [c.dataset.action, c]))
    box.replaceChildren()
    box.classList.toggle("hidden", !actions.length)
    if (!actions.length) return
    box.append(el("h2", { text: "Actions" }))
    for (const a of actions) {
      const old = kept.get(a.name)
      box.append(old && old.dataset.type === a.type ? old : actionCard(a))
    }
    for (const [name, ac] of following) if (!actions.some((a) => a.name === name)) (ac.abort(), following.delete(name))
  }

  // The progress rule, first that fits (no bar when none does); values taken as absolute:
  //  1. a numeric feedback field named as a numeric goal field: feedback / goal (e.g. distance);
  //  2. a feedback field `<x>_remaining` beside another `<x>_...` one: done / (done + remaining)
  //     (DriveDistance: distance_traveled, distance_remaining);
  //  3. a count, the goal's `count` field or else its only numeric field, against the feedback's only
  //     array (its length) or else its only integer field (Fibonacci: sequence.length / order; Scan:
  //     pictures_taken / count).
  const NUMERIC = /^(u?int(8|16|32|64)|byte|char|float32|float64)$/
  function progressOf(goal, fb, goalTd, fbTd) {
    const num = (v) => (typeof v === "number" ? Math.abs(v) : typeof v === "string" && /^-?\d+(\.\d*)?$/.test(v) ? Math.abs(Number(v)) : undefined)
    const clamp = (x) => Math.max(0, Math.min(1, x))
    if (!fb || typeof fb !== "object" || !goalTd || !fbTd) return undefined
    const fields = (td, test) => td.fieldnames.filter((n, i) => td.fieldarraylen[i] === -1 && test.test(td.fieldtypes[i]))
    for (const k of fields(fbTd, NUMERIC)) {
      const want = num(goal[k])
      if (want && num(fb[k]) !== undefined) return clamp(num(fb[k]) / want)
    }
    for (const k of fields(fbTd, NUMERIC)) {
      if (!k.endsWith("_remaining")) continue
      const done = fields(fbTd, NUMERIC).find((o) => o !== k && o.startsWith(k.slice(0, -"remaining".length)))
      const d = done && num(fb[done])
      const left = num(fb[k])
      if (d !== undefined && left !== undefined && d + left > 0) return clamp(d / (d + left))
    }
    const goalNums = fields(goalTd, NUMERIC)
    const count = goalTd.fieldnames.includes("count") ? num(goal.count) : goalNums.length === 1 ? num(goal[goalNums[0]]) : undefined
    if (!count) return undefined
    const arrays = fbTd.fieldnames.filter((n, i) => fbTd.fieldarraylen[i] !== -1)
    if (arrays.length === 1 && Array.isArray(fb[arrays[0]])) return clamp(fb[arrays[0]].length / count)
    const ints = fields(fbTd, INT)
    if (arrays.length === 0 && ints.length === 1 && num(fb[ints[0]]) !== undefined) return clamp(num(fb[ints[0]]) / count)
    return undefined
  }

  function actionCard(a) {
    const card = el("div", { class: "service action", "data-action": a.name, "data-type": a.type })
    card.append(el("h3", { text: a.name }), el("div", { class: "type", text: a.type }))
    if (!a.known) {
      card.append(el("p", { class: "muted", text: "the bridge has no definition of this action type" }))
      return card
    }
    const defs = new Map(a.goal.map((t) => [t.type, t]))
    const form = el("form", { "data-action": a.name })
    const readers = buildFields(form, a.goal[0], defs, "")
    const send = el("button", { type: "submit", class: "send", text: "Send goal" })
    const cancel = el("button", { type: "button", class: "cancel", text: "Cancel", disabled: "" })
    form.append(el("div", { class: "buttons" }, send, cancel))
    const status = el("span", { class: "goal-status", text: "no goal" })
    const bar = el("progress", { max: "1", value: "0", class: "hidden" })
    const pct = el("span", { class: "muted" })
    const feedback = el("pre", { class: "feedback hidden" })
    const picture = el("img", { class: "picture hidden", alt: "picture in the goal's feedback" })
    const result = el("div", { class: "result" })
    card.append(form, el("div", { class: "goal-row" }, el("span", { class: "muted", text: "goal" }), status, bar, pct), feedback, picture, result)
    let goalId = null
    const setStatus = (name) => {
      status.textContent = name
      status.dataset.status = name
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault()
      let goal
      try {
        goal = readers()
      } catch (e) {
        return showError(result, `invalid input: ${e.message}`)
      }
      const prev = following.get(a.name)
      if (prev) prev.abort()
      goalId = null
      cancel.disabled = true
      bar.classList.add("hidden")
      pct.textContent = ""
      feedback.classList.add("hidden")
      picture.classList.add("hidden")
      result.className = "result"
      result.replaceChildren()
      setStatus("sending…")
      const t0 = performance.now()
      let body
      try {
        const res = await fetch(`/api/actions${a.name}`, { method: "POST", headers: { ...authHeaders(), "content-type": "application/json" }, body: JSON.stringify(goal) })
        body = parseExact(await res.text())
        if (!res.ok) {
          setStatus("error")
          return showError(result, `${body.code}: ${body.message}`)
        }
      } catch (e) {
        setStatus("error")
        return showError(result, e.message)
      }
      if (!body.accepted) return setStatus("rejected")
      goalId = body.goal_id
      cancel.disabled = false
      const ac = new AbortController()
      following.set(a.name, ac)
      const onEvent = (kind, d) => {
        if (kind === "status") setStatus(d.status_name)
        else if (kind === "feedback") {
          feedback.classList.remove("hidden")
          // a picture in the feedback (Scan's) is shown, its bytes not printed
          const { shown, images } = forDisplay(roundFloats(d.feedback, a.feedback))
          feedback.textContent = JSON.stringify(shown)
          if (images.length) {
            picture.classList.remove("hidden")
            picture.src = `data:image/${images[0].fmt};base64,${images[0].data}`
          }
          const p = progressOf(goal, d.feedback, a.goal[0], a.feedback[0])
          if (p !== undefined) {
            bar.classList.remove("hidden")
            bar.value = p
            pct.textContent = `${Math.round(p * 100)} %`
          }
        } else if (kind === "result") {
          setStatus(d.status_name)
          cancel.disabled = true
          const ms = (performance.now() - t0).toFixed(0)
          if (d.error) showError(result, `${d.status_name}: ${d.error}`, ms)
          else {
            showValues(result, roundFloats(d.result, a.result), ms)
            result.firstChild.textContent = `${d.status_name} in ${ms} ms`
          }
          if (d.status_name === "succeeded" && !bar.classList.contains("hidden")) ((bar.value = 1), (pct.textContent = "100 %"))
        } else if (kind === "error") {
          setStatus("lost")
          cancel.disabled = true
          showError(result, `${d.code}: ${d.message}`)
        }
      }
      try {
        await readEvents(`/api/actions${a.name}/goals/${goalId}/events`, ac.signal, onEvent)
      } catch (e) {
        if (!ac.signal.aborted) showError(result, `following the goal: ${e.message}`)
      } finally {
        if (following.get(a.name) === ac) following.delete(a.name)
      }
    })
    cancel.addEventListener("click", async () => {
      if (!goalId) return
      cancel.disabled = true
      try {
        const res = await fetch(`/api/actions${a.name}/goals/${goalId}/cancel`, { method: "POST", headers: authHeaders() })
        const b = await res.json()
        if (!res.ok) showError(result, `cancel: ${b.code}: ${b.message}`)
        else if (!b.canceling) showError(result, `cancel: the robot did not cancel the goal (return code ${b.return_code})`)
      } catch (e) {
        showError(result, `cancel: ${e.message}`)
      }
    })
    return card
  }

  // Reads a server-sent event stream (fetch, so that the token travels in a header), calling
  // onEvent(kind, data) for each event, until the stream ends.
  async function readEvents(url, signal, onEvent) {
    const res = await fetch(url, { headers: authHeaders(), signal })
    if (!res.ok) {
      const b = await res.json()
      throw new Error(`${b.code}: ${b.message}`)
    }
    const reader = res.body.getReader()
    const dec = new TextDecoder()
    let buf = ""
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buf += dec.decode(value, { stream: true })
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const lines = buf.slice(0, i).split("\n")
        buf = buf.slice(i + 2)
        const kind = (lines.find((l) => l.startsWith("event: ")) || "").slice(7)
        const data = lines.find((l) => l.startsWith("data: "))
        if (kind && data) onEvent(kind, parseExact(data.slice(6)))
      }
    }
  }
  // integers beyond 2^53 (int64) would lose digits as JS numbers: keep them as digit strings
  const parseExact = (text) => JSON.parse(String(text).replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'))

  const INT = /^(u?int(8|16|32|64)|byte|char)$/
  function serviceCard(s) {
    const card = el("div", { class: "service", "data-service": s.name })
    card.append(el("h3", { text: s.name }), el("div", { class: "type", text: s.type }))
    if (!s.known) {
      card.append(el("p", { class: "muted", text: "the bridge has no definition of this type" }))
      return card
    }
    const defs = new Map(s.request.map((t) => [t.type, t]))
    const form = el("form", { "data-service": s.name })
    const root = s.request[0]
    const readers = buildFields(form, root, defs, "")
    const result = el("div", { class: "result" })
    form.append(el("button", { type: "submit", text: "Call" }))
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault()
      result.className = "result"
      result.replaceChildren(el("span", { class: "muted", text: "calling…" }))
      let args
      try {
        args = readers()
      } catch (e) {
        return showError(result, `invalid input: ${e.message}`)
      }
      const t0 = performance.now()
      try {
        const m = await callService(s.name, args)
        const ms = (performance.now() - t0).toFixed(1)
        if (!m.result) return showError(result, String(m.values), ms)
        showValues(result, roundFloats(m.values, s.response), ms)
      } catch (e) {
        showError(result, e.message)
      }
    })
    if (root && root.constnames.length) {
      card.append(el("div", { class: "hint", text: root.constnames.map((n, i) => `${n}=${root.constvalues[i]}`).join("  ") }))
    }
    card.append(form, result)
    return card
  }

  // Adds inputs for `td` to `parent`; returns a function that reads them into a request object.
  function buildFields(parent, td, defs, prefix) {
    const readers = []
    if (!td) return () => ({})
    td.fieldnames.forEach((name, i) => {
      const type = td.fieldtypes[i]
      const arr = td.fieldarraylen[i]
      const id = `${prefix}${name}`
      const nested = defs.get(type)
      if (nested && arr === -1) {
        const fs = el("fieldset", {}, el("legend", { text: `${name} (${type})` }))
        parent.append(fs)
        const read = buildFields(fs, nested, defs, `${id}.`)
        readers.push((o) => (o[name] = read()))
        return
      }
      const label = el("label", { for: id, text: name })
      let input
      if (arr !== -1) {
        const hint = type === "uint8" ? "base64 or [1, 2, 3]" : `JSON array of ${type}`
        input = el("input", { id, name: id, placeholder: hint, "data-type": `${type}[]` })
        readers.push((o) => {
          const v = input.value.trim()
          if (v === "") return
          o[name] = type === "uint8" && !v.startsWith("[") ? v : JSON.parse(v)
        })
      } else if (type === "bool") {
        input = el("input", { id, name: id, type: "checkbox", class: "check" })
        readers.push((o) => (o[name] = input.checked))
      } else if (INT.test(type) || type.startsWith("float")) {
        input = el("input", { id, name: id, inputmode: "decimal", placeholder: td.examples[i] || "0", "data-type": type })
        readers.push((o) => {
          const v = input.value.trim()
          if (v === "") return
          if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new Error(`${id}: '${v}' is not a number`)
          // int64 travels as a digit string so no digit is lost; the bridge reads it exactly
          o[name] = /64$/.test(type) && /^-?\d+$/.test(v) ? v : Number(v)
        })
      } else {
        input = el("input", { id, name: id, placeholder: type, "data-type": type })
        readers.push((o) => {
          if (input.value !== "") o[name] = input.value
        })
      }
      parent.append(label, input)
    })
    return () => {
      const o = {}
      for (const r of readers) r(o)
      return o
    }
  }

  // Pictures (a CompressedImage: {format, data}) are shown as <img>; their bytes are not printed.
  function forDisplay(values) {
    const images = []
    const shown = JSON.parse(JSON.stringify(values), function (key, v) {
      if (v && typeof v === "object" && typeof v.format === "string" && typeof v.data === "string") {
        const fmt = v.format.split(/[;\s]/)[0].toLowerCase()
        if (fmt === "jpeg" || fmt === "jpg" || fmt === "png") images.push({ fmt: fmt === "png" ? "png" : "jpeg", data: v.data })
        return { ...v, data: `<${Math.floor((v.data.length * 3) / 4)} bytes>` }
      }
      return v
    })
    return { shown, images }
  }
  function showValues(box, values, ms) {
    const { shown, images } = forDisplay(values)
    box.className = "result ok"
    box.replaceChildren(el("div", { class: "muted", text: `ok in ${ms} ms` }), el("pre", { class: "values", text: JSON.stringify(shown, null, 2) }))
    for (const im of images) box.append(el("img", { class: "picture", alt: "picture from the robot", src: `data:image/${im.fmt};base64,${im.data}` }))
  }
  function showError(box, text, ms) {
    box.className = "result error"
    box.replaceChildren(el("pre", { class: "error-text", text: ms ? `${text} (${ms} ms)` : text }))
  }

  // float32 values arrive as the double nearest the float (8.20757007598877): shown with the 7
  // significant digits a float32 has (8.20757)
  function roundFloats(values, tds) {
    const defs = new Map((tds || []).map((t) => [t.type, t]))
    const walk = (v, td) => {
      if (!td || !v || typeof v !== "object") return v
      const out = Array.isArray(v) ? [] : {}
      for (const [k, x] of Object.entries(v)) {
        const i = td.fieldnames.indexOf(k)
        const type = i >= 0 ? td.fieldtypes[i] : ""
        const one = (e) => (type === "float32" && typeof e === "number" ? Number(e.toPrecision(7)) : defs.has(type) ? walk(e, defs.get(type)) : e)
        out[k] = Array.isArray(x) ? x.map(one) : one(x)
      }
      return out
    }
    return walk(values, tds && tds[0])
  }
  const f32 = (x, unit = "") => (typeof x === "number" ? `${Number(x.toPrecision(7))}${unit}` : "–")

  // ---- cockpit: state panel, camera, drive pad
  let cockpit = null
  // `services` are one robot's; `prefix` its namespace (`/robot2`, or "" for a single robot)
  function setupCockpit(services, prefix) {
    const byType = (t) => services.find((s) => s.type === t && s.known)
    const next = {
      state: byType("robot_interfaces/srv/GetState"),
      camera: byType("robot_interfaces/srv/TakePicture"),
      drive: byType("robot_interfaces/srv/Drive"),
      stop: services.find((s) => s.name === `${prefix}/stop` && s.type === "std_srvs/srv/Trigger"),
    }
    if (cockpit) cockpit.stopLoops()
    cockpit = { ...next, polling: false, live: false, stopLoops() { this.polling = false; this.live = false } }
    $("#cockpit").classList.toggle("hidden", !next.state && !next.camera && !next.drive)
    $("#state-panel").classList.toggle("hidden", !next.state)
    $("#camera-panel").classList.toggle("hidden", !next.camera)
    $("#drive-panel").classList.toggle("hidden", !next.drive)
    $("#stop").classList.toggle("hidden", !next.drive && !next.stop)
    if (next.state) pollState(cockpit)
    if (next.camera) setupCamera(next.camera)
  }

  // get_state one call at a time, as fast as the link answers (at most 5 per second)
  async function pollState(c) {
    c.polling = true
    let n = 0
    let t0 = performance.now()
    while (c.polling && cockpit === c) {
      const started = performance.now()
      try {
        const m = await callService(c.state.name, {})
        if (!m.result) throw new Error(String(m.values))
        showState(m.values)
        $("#state-error").textContent = ""
        n++
      } catch (e) {
        $("#state-error").textContent = `get_state: ${e.message}`
        await sleep(1000)
      }
      const now = performance.now()
      if (now - t0 >= 2000) {
        $("#state-rate").textContent = `${((n * 1000) / (now - t0)).toFixed(1)} Hz`
        n = 0
        t0 = now
      }
      await sleep(Math.max(0, 200 - (performance.now() - started)))
    }
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
  function showState(v) {
    const pct = Number(v.battery_percentage)
    $("#battery").value = Math.max(0, Math.min(100, pct))
    // as a person reads a battery: whole percent, volts to 10 mV (not 89.94155% 8.218948 V)
    const volts = Number(v.battery_voltage)
    $("#battery-text").textContent = `${Number.isFinite(pct) ? Math.round(pct) : "–"} % ${Number.isFinite(volts) ? volts.toFixed(2) : "–"} V`
    $("#state-left").textContent = f32(v.left_speed)
    $("#state-right").textContent = f32(v.right_speed)
    $("#state-pan").textContent = f32(v.pan_angle, "°")
    $("#state-led").textContent = v.led_on ? "on" : "off"
    $("#state-button").textContent = v.button_pressed ? "pressed" : "released"
    $("#state-uptime").textContent = `${(Number(v.uptime_ms) / 1000).toFixed(1)} s`
  }

  function setupCamera(svc) {
    const sel = $("#camera-res")
    if (!sel.options.length) {
      ;["160x120", "320x240", "640x480", "800x600", "1024x768", "1280x1024", "1600x1200"].forEach((t, i) => sel.append(el("option", { value: String(i), text: t })))
      sel.value = "1"
    }
    $("#camera-shot").onclick = () => takePicture(svc).catch(() => {})
    $("#camera-live").onchange = (ev) => {
      if (ev.target.checked) liveLoop(svc)
      else if (cockpit) cockpit.live = false
    }
  }
  async function takePicture(svc) {
    const bar = $("#camera-progress")
    const text = $("#camera-progress-text")
    bar.value = 0
    text.textContent = ""
    try {
      const m = await callService(svc.name, { resolution: Number($("#camera-res").value) }, (received, total) => {
        bar.value = total ? received / total : 0
        text.textContent = `${(received / 1024).toFixed(1)}/${(total / 1024).toFixed(1)} KiB`
      })
      if (!m.result) throw new Error(String(m.values))
      const img = m.values.image
      const fmt = String(img.format).toLowerCase().startsWith("png") ? "png" : "jpeg"
      const el = $("#camera-img")
      el.src = `data:image/${fmt};base64,${img.data}`
      el.classList.remove("hidden")
      $("#camera-error").textContent = ""
    } catch (e) {
      $("#camera-error").textContent = `take_picture: ${e.message}`
      throw e
    }
  }
  async function liveLoop(svc) {
    const c = cockpit
    if (!c || c.live) return
    c.live = true
    $("#camera-panel").dataset.live = "on"
    let frames = 0
    let t0 = performance.now()
    while (c.live && cockpit === c && $("#camera-live").checked) {
      try {
        await takePicture(svc)
        frames++
      } catch {
        await sleep(1000)
      }
      const now = performance.now()
      if (now - t0 >= 1000) {
        $("#fps").textContent = `${((frames * 1000) / (now - t0)).toFixed(1)} fps`
        frames = 0
        t0 = now
      }
    }
    c.live = false
    $("#camera-panel").dataset.live = "off"
    // no frames, no rate: "1.7 fps" must not stay after live mode ends
    $("#fps").textContent = ""
  }

  // drive pad: each press is one short drive; the robot stops by itself when it ends
  const PRESS_MS = 300
  const DIRS = { up: [1, 1], down: [-1, -1], left: [-1, 1], right: [1, -1] }
  const KEYS = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right" }
  async function drive(dir) {
    if (!cockpit || !cockpit.drive) return
    const k = Number($("#drive-speed").value)
    const [l, r] = DIRS[dir]
    const btn = document.querySelector(`.pad [data-dir="${dir}"]`)
    btn.classList.add("active")
    try {
      const m = await callService(cockpit.drive.name, { left: l * k, right: r * k, duration_ms: PRESS_MS })
      $("#drive-error").textContent = m.result ? "" : `drive: ${m.values}`
    } catch (e) {
      $("#drive-error").textContent = `drive: ${e.message}`
    } finally {
      setTimeout(() => btn.classList.remove("active"), PRESS_MS)
    }
  }
  async function stopMotors() {
    if (!cockpit) return
    try {
      const m = cockpit.stop ? await callService(cockpit.stop.name, {}) : await callService(cockpit.drive.name, { left: 0, right: 0, duration_ms: 1 })
      $("#drive-error").textContent = m.result ? "" : `stop: ${m.values}`
    } catch (e) {
      $("#drive-error").textContent = `stop: ${e.message}`
    }
  }
  document.querySelectorAll(".pad [data-dir]").forEach((b) => b.addEventListener("click", () => drive(b.dataset.dir)))
  $("#stop").addEventListener("click", stopMotors)
  document.addEventListener("keydown", (ev) => {
    const t = ev.target
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT") && t.type !== "range") return
    if (ev.key === " " || ev.key === "Escape") {
      if (cockpit && (cockpit.drive || cockpit.stop)) {
        ev.preventDefault()
        stopMotors()
      }
      return
    }
    const dir = KEYS[ev.key]
    if (!dir || !cockpit || !cockpit.drive || ev.repeat) return
    ev.preventDefault()
    drive(dir)
  })

  // ---- call log (every call through the bridge, from any client)
  function onCallLog(c) {
    const tbody = $("#log tbody")
    // repeated successful calls from one client (the state panel's polling, live pictures) fold
    // into one row with a count, so they do not push everything else out
    const key = `${c.service}|${c.via}|${c.client}`
    const top = tbody.firstElementChild
    if (c.ok && top && top.dataset.key === key) {
      const n = Number(top.dataset.count) + 1
      top.dataset.count = String(n)
      top.children[0].textContent = new Date(c.time).toLocaleTimeString()
      top.children[3].textContent = String(c.ms)
      top.children[4].textContent = `ok ×${n}`
      return
    }
    const tr = el(
      "tr",
      { class: c.ok ? "ok" : "err" },
      el("td", { text: new Date(c.time).toLocaleTimeString() }),
      el("td", { text: c.service }),
      el("td", { text: c.via }),
      el("td", { text: String(c.ms) }),
      el("td", { text: c.ok ? "ok" : `${c.code}: ${c.message}` }),
    )
    if (c.ok) {
      tr.dataset.key = key
      tr.dataset.count = "1"
    }
    tbody.prepend(tr)
    while (tbody.children.length > 200) tbody.lastChild.remove()
  }

  // the sticky header (with STOP) is as tall as its wrapped content: whatever is scrolled into view
  // or focused lands below it
  const header = document.querySelector("header")
  const padTop = () => (document.documentElement.style.scrollPaddingTop = `${header.getBoundingClientRect().height + 8}px`)
  new ResizeObserver(padTop).observe(header)
  padTop()

  connectWs()
})()
