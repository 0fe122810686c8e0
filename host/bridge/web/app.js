// Dashboard of the robot bridge: plain JavaScript, no build step. It lists the services
// (GET /api/services), builds a form from each request's typedefs, calls through the rosbridge
// WebSocket (call_service), and follows the bridge topics /robot_bridge/state (banner) and
// /robot_bridge/calls (log). A token, when the bridge needs one, comes from the page's ?token=.
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
      ws.send(JSON.stringify({ op: "subscribe", topic: "/robot_bridge/state" }))
      ws.send(JSON.stringify({ op: "subscribe", topic: "/robot_bridge/calls" }))
      loadServices()
    }
    ws.onclose = () => {
      setPill($("#bridge-state"), "bridge: disconnected", false)
      showBanner("The bridge is not reachable; reconnecting…", "error")
      for (const [, p] of pending) p.reject(new Error("bridge connection lost"))
      pending.clear()
      setTimeout(connectWs, 1000)
    }
    ws.onmessage = (ev) => {
      let m
      try {
        // integers beyond 2^53 (int64) would lose digits as JS numbers: keep them as digit strings
        m = JSON.parse(String(ev.data).replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'))
      } catch {
        return
      }
      if (m.op === "service_response") {
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
  function callService(service, args) {
    const id = `dashboard:${nextId++}`
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error("the bridge is not connected"))
      pending.set(id, { resolve, reject })
      ws.send(JSON.stringify({ op: "call_service", id, service, args }))
    })
  }

  // ---- robot state banner
  let lastState
  let restartTimer
  function onState(s) {
    setPill($("#robot-state"), `robot: ${s.state}`, s.state === "connected")
    if (s.state === "disconnected") showBanner("Robot disconnected: calls fail with 'unavailable' until it is back.", "error")
    else if (s.state === "connecting" || s.restarting) showBanner("Robot restarting or connecting…", "warn")
    else if (s.restarted) {
      showBanner("Robot restarted: calls that were running were failed.", "info")
      clearTimeout(restartTimer)
      restartTimer = setTimeout(hideBanner, 4000)
    } else hideBanner()
    const names = (s.services || []).map((x) => x.name + x.type).join()
    if (lastState && names !== lastState) loadServices()
    lastState = names
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
  async function loadServices() {
    const res = await fetch("/api/services", { headers: token ? { authorization: `Bearer ${token}` } : {} })
    const body = await res.json()
    const box = $("#services")
    box.replaceChildren()
    if (!res.ok) {
      box.append(el("p", { class: "muted", text: `cannot list services: ${body.code}: ${body.message}` }))
      return
    }
    if (!body.services.length) box.append(el("p", { class: "muted", text: `no services (robot ${body.state})` }))
    for (const s of body.services) box.append(serviceCard(s))
  }

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
        showValues(result, m.values, ms)
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
        input = el("input", { id, name: id, type: "checkbox" })
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
  function showValues(box, values, ms) {
    const images = []
    const shown = JSON.parse(JSON.stringify(values), function (key, v) {
      if (v && typeof v === "object" && typeof v.format === "string" && typeof v.data === "string") {
        const fmt = v.format.split(/[;\s]/)[0].toLowerCase()
        if (fmt === "jpeg" || fmt === "jpg" || fmt === "png") images.push({ fmt: fmt === "png" ? "png" : "jpeg", data: v.data })
        return { ...v, data: `<${Math.floor((v.data.length * 3) / 4)} bytes>` }
      }
      return v
    })
    box.className = "result ok"
    box.replaceChildren(el("div", { class: "muted", text: `ok in ${ms} ms` }), el("pre", { class: "values", text: JSON.stringify(shown, null, 2) }))
    for (const im of images) box.append(el("img", { class: "picture", alt: "picture from the robot", src: `data:image/${im.fmt};base64,${im.data}` }))
  }
  function showError(box, text, ms) {
    box.className = "result error"
    box.replaceChildren(el("pre", { class: "error-text", text: ms ? `${text} (${ms} ms)` : text }))
  }

  // ---- call log (every call through the bridge, from any client)
  function onCallLog(c) {
    const tbody = $("#log tbody")
    const tr = el(
      "tr",
      { class: c.ok ? "ok" : "err" },
      el("td", { text: new Date(c.time).toLocaleTimeString() }),
      el("td", { text: c.service }),
      el("td", { text: c.via }),
      el("td", { text: String(c.ms) }),
      el("td", { text: c.ok ? "ok" : `${c.code}: ${c.message}` }),
    )
    tbody.prepend(tr)
    while (tbody.children.length > 200) tbody.lastChild.remove()
  }

  connectWs()
})()
