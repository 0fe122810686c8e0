// Several robots as one RobotNode, addressed ROS-style by namespace: robot `rover1`'s service
// `/take_picture` is `/rover1/take_picture` here. The fleet owns no transport: it is fed named
// RobotNodes (one per robot: MQTT nodes from a broker directory, or any RobotNode) and follows
// their state and service lists, so the bridge, rosapi, the Foxglove front end and the CLI work
// on many robots without knowing there are several. Presence (`robots()`, `onRobotsChanged`) and
// group calls (`matchRobots` + one call per robot) are the only additions to the RobotNode shape.
import type { CallOptions, Client, NodeState, RobotNode, ServiceInfo } from "./api"
import { ServiceError } from "./errors"
import type { ServiceDescriptor } from "../runtime/types"

/** Robot names: the first segment of a namespaced service name (docs/mqtt.md). */
export const ROBOT_NAME = /^[A-Za-z0-9_-]{1,32}$/

/** One robot as the fleet sees it. */
export interface RobotStatus {
  name: string
  online: boolean
  /** the robot's own service names (without the namespace), when listed */
  services: ServiceInfo[] | undefined
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

/** Splits `/rover1/take_picture` into robot `rover1` and service `/take_picture`. */
export function splitRobotName(full: string): { robot: string; service: string } | undefined {
  const n = full.startsWith("/") ? full.slice(1) : full
  const i = n.indexOf("/")
  if (i <= 0 || i === n.length - 1) return undefined
  const robot = n.slice(0, i)
  if (!ROBOT_NAME.test(robot)) return undefined
  return { robot, service: n.slice(i) }
}

/** Shell-style: `*` any characters, `?` one, `[abc]`/`[a-c]`/`[!a]` one of a set; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let re = ""
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!
    const close = ch === "[" ? glob.indexOf("]", i + 2) : -1
    if (ch === "*") re += ".*"
    else if (ch === "?") re += "."
    else if (close > 0) {
      const set = glob.slice(i + 1, close).replace(/\\/g, "\\\\").replace(/\]/g, "\\]")
      re += set.startsWith("!") ? `[^${set.slice(1)}]` : `[${set}]`
      i = close
    } else re += ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&")
  }
  return new RegExp(`^${re}$`)
}

export class FleetNode implements RobotNode {
  private readonly members = new Map<string, Member>()
  private readonly stateListeners = new Set<(s: NodeState, i: { restarted: boolean; robot?: string }) => void>()
  private readonly servicesListeners = new Set<(s: ServiceInfo[]) => void>()
  private readonly robotsListeners = new Set<(r: RobotStatus[]) => void>()
  private closed = false
  private lastState: NodeState = "connecting"

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
    if (!ROBOT_NAME.test(name)) throw new ServiceError("invalid_argument", `robot name ${JSON.stringify(name)}: use 1-32 of A-Z a-z 0-9 _ -`)
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
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((m) => ({ name: m.name, online: m.node.state === "connected", services: m.services?.slice() }))
  }

  /** The node of robot `name`, if it is a member. */
  robot(name: string): RobotNode | undefined {
    return this.members.get(name)?.node
  }

  /** Names of the robots whose name matches `glob` (`rover*`), online or not, in name order. */
  matchRobots(glob: string): string[] {
    const re = globToRegExp(glob)
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
    for (const r of this.robots()) {
      if (!r.online || !r.services) continue
      for (const s of r.services) out.push({ ...s, name: `/${r.name}${s.name}` })
    }
    return out
  }

  /**
   * Every online robot's services, namespaced. Waits up to `timeoutMs` (default 10000) for robots
   * that are online but have not listed yet; rejects with `unavailable` when no robot is online.
   */
  async listServices(options: { timeoutMs?: number } = {}): Promise<ServiceInfo[]> {
    const timeoutMs = options.timeoutMs ?? 10000
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
    const full = serviceName.startsWith("/") ? serviceName : "/" + serviceName
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
        const timeoutMs = options.timeoutMs ?? 10000
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
    const list = this.knownServices()
    for (const f of [...this.servicesListeners]) safe(() => f(list))
  }

  private emitRobots() {
    const r = this.robots()
    for (const f of [...this.robotsListeners]) safe(() => f(r))
  }
}

function safe(f: () => void) {
  try {
    f()
  } catch (e) {
    console.error("fleet listener failed:", e)
  }
}
