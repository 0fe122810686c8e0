// Several robots as one RobotNode, addressed ROS-style by namespace: robot `rover1`'s service
// `/take_picture` is `/rover1/take_picture` here. The fleet owns no transport: it is fed named
// RobotNodes (one per robot: MQTT nodes from a broker directory, client/mqttdir.ts `directoryFleet`,
// or any RobotNode) and follows their state and service lists, so the bridge, rosapi, the Foxglove
// front end and the CLI work on many robots without knowing there are several. What it adds to the
// RobotNode shape is the `Fleet` interface (client/api.ts): presence (`robots()`,
// `onRobotsChanged`) and robot-name globs (`matchRobots`); group calls are
// packages/host/src/calls/group.ts.
import type { CallOptions, Client, Fleet, NodeState, RobotNode, RobotStatus, ServiceInfo } from "./api"
import { ServiceError } from "./errors"
import type { ServiceDescriptor } from "../runtime/types"
import { DEFAULT_TIMEOUT_MS } from "./calls"
import { checkRobotName, normalizeName, splitRobotName } from "./names"
import { Paced } from "./core"

/** The node as a fleet (it has the `Fleet` methods), or undefined for a single robot. */
export function fleetOf(node: RobotNode): (RobotNode & Fleet) | undefined {
  const f = node as Partial<Fleet>
  return typeof f.robots === "function" && typeof f.onRobotsChanged === "function" && typeof f.matchRobots === "function" ? (node as RobotNode & Fleet) : undefined
}

interface Member {
  name: string
  node: RobotNode
  services: ServiceInfo[] | undefined
  off: (() => void)[]
  listing: boolean
  /** bumped by every pushed list and state change: a list asked for before is then stale */
  gen: number
}

// ---- robot-name globs
//
// One matcher for every robot-name glob (the bridge's `?robots=`, group calls, `robot mqtt call
// --robots`). Not a RegExp: a glob of `*` repeated and a letter that does not match made V8's
// backtracking take seconds per name (issue 20). This one walks the name once per star restart:
// at most (name length + 1) x (glob length + 1) steps, whatever the glob.

/** At most this many characters in one glob, and this many globs in a comma-separated list. */
export const MAX_GLOB_CHARS = 64
export const MAX_GLOBS = 8

/** The characters a robot-name glob may use: a robot name's, and `*` `?` `[` `]` `!`. */
const ROBOT_GLOB = /^[A-Za-z0-9_*?!\[\]-]+$/

/** One position of a compiled glob: any run (`*`), any one character (`?`), one of a set, a literal. */
type GlobToken =
  | { kind: "star" }
  | { kind: "one" }
  | { kind: "set"; negated: boolean; ranges: [number, number][] }
  | { kind: "lit"; code: number }

/** A compiled glob: `test(name)` is true when the whole name matches. */
export interface GlobMatcher {
  readonly glob: string
  test(name: string): boolean
}

/**
 * Compiles a shell-style glob: `*` any characters (none too), `?` one, `[abc]` / `[a-c]` / `[!a]`
 * one of a set (or not of it; a `]` right after `[` or `[!` is a member, a `[` with no `]` after it is
 * literal); everything else literal (`.` too). Matching is case-sensitive and takes at most
 * (name length + 1) x (glob length + 1) steps. Throws `invalid_argument` for a range written
 * backwards (`[z-a]`).
 */
export function globMatcher(glob: string): GlobMatcher {
  const tokens: GlobToken[] = []
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!
    if (ch === "*") {
      // `**` is `*`: a run of stars is one
      if (tokens[tokens.length - 1]?.kind !== "star") tokens.push({ kind: "star" })
      continue
    }
    if (ch === "?") {
      tokens.push({ kind: "one" })
      continue
    }
    if (ch === "[") {
      const negated = glob[i + 1] === "!"
      const first = i + (negated ? 2 : 1)
      const close = glob.indexOf("]", first + 1)
      if (first < glob.length && close > 0) {
        const body = glob.slice(first, close)
        const ranges: [number, number][] = []
        for (let k = 0; k < body.length; k++) {
          const lo = body.charCodeAt(k)
          if (body[k + 1] === "-" && k + 2 < body.length) {
            const hi = body.charCodeAt(k + 2)
            if (hi < lo) throw new ServiceError("invalid_argument", `glob ${JSON.stringify(glob)}: the range ${body.slice(k, k + 3)} is backwards (write ${body[k + 2]}-${body[k]})`)
            ranges.push([lo, hi])
            k += 2
          } else ranges.push([lo, lo])
        }
        tokens.push({ kind: "set", negated, ranges })
        i = close
        continue
      }
    }
    tokens.push({ kind: "lit", code: glob.charCodeAt(i) })
  }
  const compiled = compile(tokens)
  return { glob, test: (name) => matchCompiled(compiled, name) }
}

function matchOne(t: GlobToken, c: number): boolean {
  switch (t.kind) {
    case "one":
      return true
    case "lit":
      return t.code === c
    case "set": {
      let inSet = false
      for (const [lo, hi] of t.ranges) if (c >= lo && c <= hi) inSet = true
      return inSet !== t.negated
    }
    default:
      return false
  }
}

/**
 * A glob compiled for the walk: per token, whether it is a star, and a flat table of the ASCII codes
 * it takes (`table[token * 128 + code]`); past ASCII the token itself is asked.
 */
interface Compiled {
  tokens: GlobToken[]
  star: Uint8Array
  table: Uint8Array
  /** tokens other than stars: the fewest characters a matching name has */
  fixed: number
  firstStar: number
  lastStar: number
}

function compile(tokens: GlobToken[]): Compiled {
  const star = new Uint8Array(tokens.length)
  const table = new Uint8Array(tokens.length * 128)
  tokens.forEach((t, i) => {
    if (t.kind === "star") star[i] = 1
    else for (let c = 0; c < 128; c++) table[i * 128 + c] = matchOne(t, c) ? 1 : 0
  })
  let lastStar = tokens.length - 1
  while (lastStar >= 0 && star[lastStar] === 0) lastStar--
  return { tokens, star, table, fixed: tokens.length - star.reduce((a, b) => a + b, 0), firstStar: star.indexOf(1), lastStar }
}

/**
 * Greedy two-pointer wildcard matching: every token but `*` takes exactly one character, so on a
 * mismatch only the last star needs to take one more character (an earlier star's choice can never
 * help: the last one covers whatever it would). No recursion, no blow-up: at most
 * (name length + 1) x (glob length + 1) steps. The parts before the first star and after the last
 * one take fixed places: they are checked first, and a name shorter than the glob's fixed characters
 * is refused without a walk (a robot name has at most 32).
 */
function matchCompiled(g: Compiled, name: string): boolean {
  const { tokens, star, table, fixed, firstStar, lastStar } = g
  const takes = (t: number, c: number): boolean => (c < 128 ? table[t * 128 + c] === 1 : matchOne(tokens[t]!, c))
  if (name.length < fixed) return false
  if (firstStar < 0) {
    if (name.length !== fixed) return false
    for (let i = 0; i < fixed; i++) if (!takes(i, name.charCodeAt(i))) return false
    return true
  }
  for (let i = 0; i < firstStar; i++) if (!takes(i, name.charCodeAt(i))) return false
  const tail = tokens.length - 1 - lastStar
  for (let i = 0; i < tail; i++) if (!takes(lastStar + 1 + i, name.charCodeAt(name.length - tail + i))) return false
  // the middle: from the first star to the last one, over what the fixed ends leave
  const end = name.length - tail
  let t = firstStar
  let n = firstStar
  let starT = -1
  let starN = 0
  while (n < end) {
    if (t <= lastStar && star[t] === 1) {
      starT = t++
      starN = n
    } else if (t <= lastStar && takes(t, name.charCodeAt(n))) {
      t++
      n++
    } else if (starT >= 0) {
      t = starT + 1
      n = ++starN
    } else return false
  }
  while (t <= lastStar && star[t] === 1) t++
  return t > lastStar
}

/**
 * A robot-name glob (`rover*`, `r?`, `robot[1-3]`) checked and compiled; `globs` may be a
 * comma-separated list (`rover1,arm*`), which matches a name any of them matches. Throws
 * `invalid_argument` naming the bad glob: empty, over {@link MAX_GLOB_CHARS} characters, more than
 * {@link MAX_GLOBS} globs, or a character a robot name cannot have (`/`, `.`, space, unicode).
 */
export function robotGlob(globs: string): GlobMatcher {
  const list = [...new Set(globs.split(",").map((g) => g.trim()))]
  if (list.length > MAX_GLOBS) throw new ServiceError("invalid_argument", `robots: ${list.length} globs; at most ${MAX_GLOBS} in one list`)
  const matchers = list.map((g) => {
    if (g.length === 0 || g.length > MAX_GLOB_CHARS || !ROBOT_GLOB.test(g)) {
      throw new ServiceError(
        "invalid_argument",
        `robots: ${JSON.stringify(g.length > 80 ? g.slice(0, 80) + "..." : g)} is not a robot name glob (1-${MAX_GLOB_CHARS} of A-Z a-z 0-9 _ - and the wildcards * ? [set])`,
      )
    }
    return globMatcher(g)
  })
  if (matchers.length === 1) return matchers[0]!
  return { glob: globs, test: (name) => matchers.some((m) => m.test(name)) }
}

export class FleetNode implements RobotNode, Fleet {
  private readonly members = new Map<string, Member>()
  private readonly stateListeners = new Set<(s: NodeState, i: { restarted: boolean; robot?: string }) => void>()
  private readonly servicesListeners = new Set<(s: ServiceInfo[]) => void>()
  private readonly robotsListeners = new Set<(r: RobotStatus[]) => void>()
  /** (RobotNode.closed; set by close() only) */
  closed = false
  private lastState: NodeState = "connecting"
  /**
   * The robots' and the services' listeners are told as changes come, up to NOTIFY_BURST in a row,
   * then at most once per NOTIFY_MS (client/core.ts), with the fleet as it is then: each telling
   * costs O(robots), and a robot flipping its retained presence as fast as it can told them 3,000
   * times a second.
   */
  private readonly robotsNews = new Paced(() => {
    const r = this.robots()
    for (const f of [...this.robotsListeners]) safe(() => f(r))
  })
  private readonly servicesNews = new Paced(() => {
    const list = this.knownServices()
    for (const f of [...this.servicesListeners]) safe(() => f(list))
  })

  /** `what` names the fleet in errors, e.g. `the broker mqtt://127.0.0.1:1883`. */
  constructor(readonly what = "the fleet") {}

  /** "connected" while at least one robot is, "disconnected" once closed, else "connecting". */
  get state(): NodeState {
    if (this.closed) return "disconnected"
    for (const m of this.members.values()) if (m.node.state === "connected") return "connected"
    return "connecting"
  }

  /** Adds robot `name` (replacing a node of the same name). The fleet closes it on `remove`/`close`. */
  add(name: string, node: RobotNode): void {
    checkRobotName(name)
    if (this.closed) throw new ServiceError("unavailable", `${this.what} is closed`)
    this.detach(name)
    const m: Member = { name, node, services: undefined, off: [], listing: false, gen: 0 }
    this.members.set(name, m)
    m.off.push(
      node.onStateChange((state, info) => {
        m.gen++
        if (state !== "connected") m.services = undefined
        else this.relist(m)
        this.emitState(info.restarted, name)
        this.emitRobots()
        this.emitServices()
      }),
      node.onServicesChanged((list) => {
        m.gen++
        m.services = list.slice()
        this.emitRobots()
        this.emitServices()
      }),
    )
    if (node.state === "connected") this.relist(m)
    this.emitState(false, name)
    this.emitRobots()
  }

  /** Forgets robot `name` and closes its node. */
  async remove(name: string): Promise<void> {
    const m = this.detach(name)
    if (!m) return
    this.emitState(false, name)
    this.emitRobots()
    this.emitServices()
    await m.node.close().catch(() => {})
  }

  private detach(name: string): Member | undefined {
    const m = this.members.get(name)
    if (!m) return undefined
    for (const f of m.off) f()
    this.members.delete(name)
    return m
  }

  private relist(m: Member) {
    if (m.listing) return
    m.listing = true
    const gen = m.gen
    let stale = false
    m.node
      .listServices({ timeoutMs: 15000 })
      .then((list) => {
        if (this.members.get(m.name) !== m) return
        // a list pushed (or a state change) since the question was asked is newer than this answer
        if (m.gen !== gen) {
          stale = true
          return
        }
        m.services = list.slice()
        this.emitRobots()
        this.emitServices()
      })
      .catch(() => {
        // the robot went away or is slow: its state change or its next list says more
      })
      .finally(() => {
        m.listing = false
        // the answer was stale and nothing newer came: ask again
        if (stale && !m.services && this.members.get(m.name) === m && m.node.state === "connected") this.relist(m)
      })
  }

  /** Every robot, in name order. */
  robots(): RobotStatus[] {
    return [...this.members.values()]
      .sort(byName)
      .map((m) => ({ name: m.name, online: m.node.state === "connected", services: m.services?.slice() }))
  }

  /** The node of robot `name`, if it is a member. */
  robot(name: string): RobotNode | undefined {
    return this.members.get(name)?.node
  }

  /**
   * Names of the robots whose name matches `glob` (`rover*`, or a comma-separated list; see
   * {@link robotGlob}), online or not, in name order. Throws `invalid_argument` for a bad glob.
   */
  matchRobots(glob: string): string[] {
    const re = robotGlob(glob)
    return this.robots()
      .map((r) => r.name)
      .filter((n) => re.test(n))
  }

  onRobotsChanged(listener: (robots: RobotStatus[]) => void): () => void {
    this.robotsListeners.add(listener)
    return () => this.robotsListeners.delete(listener)
  }

  onStateChange(listener: (state: NodeState, info: { restarted: boolean; robot?: string }) => void): () => void {
    this.stateListeners.add(listener)
    return () => this.stateListeners.delete(listener)
  }

  onServicesChanged(listener: (services: ServiceInfo[]) => void): () => void {
    this.servicesListeners.add(listener)
    return () => this.servicesListeners.delete(listener)
  }

  /** The namespaced services of every online robot that has listed them. */
  knownServices(): ServiceInfo[] {
    const out: ServiceInfo[] = []
    for (const m of [...this.members.values()].sort(byName)) {
      if (m.node.state !== "connected" || !m.services) continue
      for (const s of m.services) out.push({ ...s, name: `/${m.name}${s.name}` })
    }
    return out
  }

  /**
   * Every online robot's services, namespaced. Waits up to `timeoutMs` (default 10000) for robots
   * that are online but have not listed yet; rejects with `unavailable` when no robot is online.
   */
  async listServices(options: { timeoutMs?: number } = {}): Promise<ServiceInfo[]> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const pending = () => [...this.members.values()].filter((m) => m.node.state === "connected" && !m.services)
    if (this.state !== "connected" || pending().length) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeoutMs)
        const offS = this.onServicesChanged(check)
        const offR = this.onRobotsChanged(check)
        function done() {
          clearTimeout(t)
          offS()
          offR()
          resolve()
        }
        const self = this
        function check() {
          if (self.state === "connected" && !pending().length) done()
        }
        check()
      })
    }
    if (this.state !== "connected") {
      const names = [...this.members.keys()]
      throw new ServiceError(
        "unavailable",
        names.length ? `no robot of ${this.what} is online (known: ${names.join(", ")})` : `no robot has appeared on ${this.what}`,
      )
    }
    return this.knownServices()
  }

  createClient<Req, Res>(type: ServiceDescriptor<Req, Res>, serviceName: string): Client<Req, Res> {
    const full = normalizeName(serviceName)
    const split = splitRobotName(full)
    const fleet = this
    // inner clients are made once per robot node (a robot re-added gets a new node)
    let inner: { node: RobotNode; client: Client<Req, Res> } | undefined
    const target = (): Client<Req, Res> => {
      if (!split) throw new ServiceError("invalid_argument", `${full}: name the robot first, e.g. /rover1${full}`, full)
      const node = fleet.members.get(split.robot)?.node
      if (!node) {
        const known = [...fleet.members.keys()]
        throw new ServiceError("unavailable", `no robot ${split.robot} on ${fleet.what}${known.length ? ` (known: ${known.join(", ")})` : ""}`, full)
      }
      if (!inner || inner.node !== node) inner = { node, client: node.createClient(type, split.service) }
      return inner.client
    }
    return {
      serviceName: full,
      type,
      async waitForService(options: { timeoutMs?: number } = {}): Promise<void> {
        const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
        const end = Date.now() + timeoutMs
        if (!split) target() // throws the naming error
        // the robot may not have appeared yet
        while (!fleet.members.has(split!.robot)) {
          const left = end - Date.now()
          if (left <= 0) throw new ServiceError("deadline_exceeded", `robot ${split!.robot} did not appear on ${fleet.what} within ${timeoutMs} ms`, full)
          await new Promise<void>((resolve) => {
            const t = setTimeout(finish, left)
            const off = fleet.onRobotsChanged(() => fleet.members.has(split!.robot) && finish())
            function finish() {
              clearTimeout(t)
              off()
              resolve()
            }
          })
        }
        await target().waitForService({ timeoutMs: Math.max(1, end - Date.now()) })
      },
      async call(request: Req, options: CallOptions = {}): Promise<Res> {
        return await target().call(request, options)
      },
    }
  }

  /** Closes every robot's node. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.robotsNews.cancel()
    this.servicesNews.cancel()
    const ms = [...this.members.values()]
    for (const m of ms) for (const f of m.off) f()
    this.members.clear()
    await Promise.all(ms.map((m) => m.node.close().catch(() => {})))
    this.emitState(false)
  }

  private emitState(restarted: boolean, robot?: string) {
    const s = this.state
    if (s === this.lastState && !restarted) return
    this.lastState = s
    for (const f of [...this.stateListeners]) safe(() => f(s, robot === undefined ? { restarted } : { restarted, robot }))
  }

  private emitServices() {
    this.servicesNews.poke()
  }

  private emitRobots() {
    this.robotsNews.poke()
  }
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

function safe(f: () => void) {
  try {
    f()
  } catch (e) {
    console.error("fleet listener failed:", e)
  }
}
