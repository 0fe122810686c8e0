// The docs name the test that proves each claim, as `<test file> "<the test's title, or its start>"`
// (`mqtt_broker_hostile "a flood of PINGREQs"`, `test/host/mqtt_device.test.ts, "8 hosts each upload
// 16 KiB"`). A test renamed or removed leaves such a citation pointing at nothing: this test reads
// every citation in the README files and docs/ and checks that the named file has a test whose
// title contains the quoted text (up to a "…" or "...", which shortens a long title).
// RS_CITATIONS=1 prints every citation it read.
import assert from "node:assert/strict"
import fs from "node:fs"
import path from "node:path"
import { test } from "node:test"

const root = path.resolve(__dirname, "../..")

/** every test file by its name without `.test.ts` */
function testFiles(): Map<string, string> {
  const out = new Map<string, string>()
  for (const dir of ["test/host", "test/device", "test/conformance"]) {
    for (const f of fs.readdirSync(path.join(root, dir))) {
      if (f.endsWith(".test.ts")) out.set(f.slice(0, -".test.ts".length), path.join(root, dir, f))
    }
  }
  return out
}

const squash = (s: string) => s.replace(/\s+/g, " ").trim().toLowerCase()

/**
 * The titles of a file's tests (`test(`, `it(`, `describe(`, `suite(`, and `title:` of the
 * conformance suite's cases), each as a matcher of a
 * quoted piece of it: a title written as a template (`${hosts} hosts each upload ...`) matches
 * whatever its placeholders become.
 */
export function titleMatchers(source: string): ((quote: string) => boolean)[] {
  const out: ((q: string) => boolean)[] = []
  const call = /(?:\b(?:test|it|describe|suite)\(\s*|\btitle:\s*)(?:"((?:\\.|[^"\\])*)"|'((?:\\.|[^'\\])*)'|`((?:\\.|[^`\\])*)`)/g
  for (const m of source.matchAll(call)) {
    const raw = m[1] ?? m[2] ?? m[3] ?? ""
    const unescaped = raw.replace(/\\(.)/g, "$1")
    const pieces = squash(unescaped).split(/\$\{[^}]*\}/)
    if (pieces.length === 1) {
      out.push((q) => pieces[0]!.includes(q))
      continue
    }
    // a quote inside an instance of the template: it starts in piece i (or at the placeholder
    // after it), spans the pieces between whole, and ends in piece j > i; the placeholders can be
    // anything, so at least 6 of the quote's characters must be the pieces' own
    out.push((q) => {
      if (pieces.some((p) => p.includes(q))) return true
      for (let i = 0; i < pieces.length; i++) {
        for (let j = i + 1; j < pieces.length; j++) {
          for (let a = 0; a <= pieces[i]!.length; a++) {
            const head = pieces[i]!.slice(a)
            if (!q.startsWith(head)) continue
            for (let b = 0; b <= pieces[j]!.length; b++) {
              const tail = pieces[j]!.slice(0, b)
              if (!q.endsWith(tail) || head.length + tail.length > q.length) continue
              let at = head.length
              let literal = head.length + tail.length
              let fits = true
              for (let k = i + 1; k < j && fits; k++) {
                const found = q.indexOf(pieces[k]!, at)
                if (found < 0 || found + pieces[k]!.length > q.length - tail.length) fits = false
                else {
                  at = found + pieces[k]!.length
                  literal += pieces[k]!.length
                }
              }
              if (fits && literal >= Math.min(6, q.length)) return true
            }
          }
        }
      }
      return false
    })
  }
  return out
}

export type Citation = { doc: string; line: number; file: string; quote: string }

/**
 * Citations in a Markdown text: a test file's name (`name`, `name.test.ts` or its path) followed
 * by one or more quoted titles (`, "a"`, `: "a" and "b"`, `("a", "b")`).
 */
export function citations(doc: string, text: string, files: Set<string>): Citation[] {
  const out: Citation[] = []
  const mention = /(?:test\/\w+\/)?\b([a-z][a-z0-9_]*)(?:\.test\.ts)?\b`?/g
  for (const m of text.matchAll(mention)) {
    const file = m[1]!
    if (!files.has(file)) continue
    let at = m.index! + m[0].length
    // the quotes that follow: separated by at most a few characters of punctuation or "and"/"or"
    const follow = /^(?:[\s,:;()]|\band\b|\bor\b|\btests?\b)+"([^"\n]*(?:\n[^"\n]*)?)"/
    for (;;) {
      const f = follow.exec(text.slice(at, at + 400))
      if (!f) break
      const quote = squash(f[1]!.split(/\s*(?:…|\.\.\.)/)[0]!)
      const line = text.slice(0, at).split("\n").length
      if (quote.length >= 6) out.push({ doc, line, file, quote })
      at += f.index + f[0].length
    }
  }
  return out
}

test("every test the docs cite by file and title exists under that title", () => {
  const files = testFiles()
  const matchers = new Map<string, ((q: string) => boolean)[]>()
  const docs = [
    "README.md",
    "packages/device/README.md",
    "packages/host/README.md",
    "test/conformance/README.md",
    ...fs.readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
  ]
  const found: Citation[] = []
  for (const doc of docs) found.push(...citations(doc, fs.readFileSync(path.join(root, doc), "utf8"), new Set(files.keys())))
  if (process.env.RS_CITATIONS) console.log(found.map((c) => `${c.doc}:${c.line} ${c.file} "${c.quote}"`).join("\n"))
  const missing: string[] = []
  for (const c of found) {
    let ms = matchers.get(c.file)
    if (!ms) matchers.set(c.file, (ms = titleMatchers(fs.readFileSync(files.get(c.file)!, "utf8"))))
    if (!ms.some((m) => m(c.quote))) missing.push(`${c.doc}:${c.line}: ${c.file} "${c.quote}"`)
  }
  // (the docs cite 83 tests this way on 2026-12-07: a reader that lost their form would pass empty)
  assert.ok(found.length >= 60, `only ${found.length} citations found: the reader has lost the docs' form`)
  assert.deepEqual(missing, [], `citations of tests that do not exist (renamed or removed?):\n${missing.join("\n")}`)
})

test("the citation reader: titles written as templates, several quotes after one file, shortened titles", () => {
  const src = 'test(`${n} hosts each upload 16 KiB at once`, ...)\nit("a flood of PINGREQs from one client", ...)'
  const ms = titleMatchers(src)
  const has = (q: string) => ms.some((m) => m(squash(q)))
  assert.ok(has("8 hosts each upload 16 KiB"))
  assert.ok(has("hosts each upload"))
  assert.ok(has("a flood of PINGREQs"))
  assert.ok(!has("9 hosts each download"))
  assert.ok(!has("a flood of PUBLISHes"))
  const cs = citations("x.md", 'see mqtt_device "a" then soak.test.ts, "first title" and "second one…" and later "not this"', new Set(["mqtt_device", "soak"]))
  assert.deepEqual(
    cs.map((c) => [c.file, c.quote]),
    [
      ["soak", "first title"],
      ["soak", "second one"],
    ],
  )
})
