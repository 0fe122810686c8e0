// The robot's service list as the call pipeline holds it: cached, kept fresh (pushed lists, a
// refresh on connect, one more question when a call names a service it lacks), the changes told to
// listeners, and, when the node is a fleet of robots (packages/host/src/client/fleet.ts), their
// presence: which robots there are, which are online, and the errors that name them.
import type { Fleet, NodeState, RobotNode, RobotStatus, ServiceInfo } from "../client/api"
import { ServiceError } from "../client/errors"
import { fleetOf } from "../client/fleet"
import { normalizeName, splitRobotName } from "../client/names"
import { actionsOf } from "../runtime/action"

/** The robot's state as the bridge publishes it (`/robot_bridge/state`, `GET /api/state`). */
export interface StateMessage {
  state: NodeState
  restarted: boolean
  restarting: boolean
  services: { name: string; type: string }[]
  /** Only when the node is a fleet: every robot, online or not, in name order (`robotEntries`). */
  robots?: RobotStatus[]
  /** Only with `restarted` on a fleet: the robot that restarted. */
  robot?: string
}

/** What changed (`onChange`). `robot` names the robot of a fleet that restarted. */
export interface ChangeEvent {
  restarted: boolean
  servicesChanged: boolean
  /** a fleet's robot list or a robot's presence changed */
  robotsChanged?: boolean
  robot?: string
}

export class ServiceList {
  /** The robot's services as last listed or pushed. */
  services: ServiceInfo[] = []
  /** False until a list arrived since the robot last connected. */
  haveList = false
  restarting = false
  /** Set when the node is a fleet of robots (client/fleet.ts `fleetOf`). */
  readonly fleet: Fleet | undefined
  private robotsKey = ""
  private online = new Map<string, boolean>()
  private refreshing: Promise<ServiceInfo[]> | undefined
  private listGen = 0
  private lastAsked = -Infinity
  private readonly offs: (() => void)[] = []
  private readonly changeListeners = new Set<(why: ChangeEvent) => void>()

  /**
   * `log`: the robot's state changes and a fleet's presence. `stale`: called when the clients made
   * for the listed services must be made anew (a pushed list, a restart), before the change is told.
   */
  constructor(
    readonly node: RobotNode,
    private readonly log: (line: string) => void = () => {},
    stale: () => void = () => {},
  ) {
    this.fleet = fleetOf(node)
    this.offs.push(
      node.onServicesChanged((list) => {
        this.listGen++
        this.services = list
        this.haveList = true
        stale()
        this.emitChange(false, true)
      }),
      node.onStateChange((state, info) => {
        // a fleet names the robot behind the event (packages/host/src/client/fleet.ts)
        const robot = (info as { robot?: string }).robot
        this.restarting = state === "connecting"
        if (state !== "connected") this.haveList = false
        if (info.restarted) stale()
        if (!this.fleet) this.log(`robot ${state}${info.restarted ? " (restarted)" : ""}`)
        else if (info.restarted) this.log(`robot ${robot ?? "?"} restarted`)
        this.emitChange(info.restarted, false, false, info.restarted ? robot : undefined)
        if (state === "connected") this.refresh(5000).catch(() => {})
      }),
    )
    const fleet = this.fleet
    if (fleet) {
      const now = this.robotEntries() ?? []
      this.robotsKey = robotsKey(now)
      this.online = new Map(now.map((r) => [r.name, r.online]))
      this.offs.push(
        fleet.onRobotsChanged(() => {
          // a fleet tells the same news more than once (robots, then services): pass on what differs
          const now = this.robotEntries() ?? []
          const k = robotsKey(now)
          if (k === this.robotsKey) return
          for (const r of now) if (this.online.get(r.name) !== r.online) this.log(`robot ${r.name} ${r.online ? "online" : "offline"}`)
          for (const n of this.online.keys()) if (!now.some((r) => r.name === n)) this.log(`robot ${n} left`)
          this.online = new Map(now.map((r) => [r.name, r.online]))
          this.robotsKey = k
          this.emitChange(false, false, true)
        }),
      )
    }
    if (node.state === "connected") this.refresh(5000).catch(() => {})
  }

  /**
   * The fleet's robots (name order) as the bridge shows them, `services` always there (empty while
   * a robot is offline or has not listed) with names and types only; undefined for a single robot.
   */
  robotEntries(): RobotStatus[] | undefined {
    return this.fleet?.robots().map((r) => ({ name: r.name, online: r.online, services: (r.services ?? []).map((s) => ({ name: s.name, type: s.type })) }))
  }

  /** Fires on every robot state change, restart and service list change, and a fleet's presence changes. */
  onChange(listener: (why: ChangeEvent) => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  /** `robot`: the fleet's robot that restarted (with `restarted`). */
  stateMessage(restarted = false, robot?: string): StateMessage {
    const m: StateMessage = {
      state: this.node.state,
      restarted,
      restarting: this.restarting,
      services: this.services.map((s) => ({ name: s.name, type: s.type })),
    }
    const robots = this.robotEntries()
    if (robots) m.robots = robots
    if (restarted && robot !== undefined) m.robot = robot
    return m
  }

  /** Asks the robot for its list (an older answer never overwrites a newer push). */
  async refresh(timeoutMs: number): Promise<ServiceInfo[]> {
    const gen = this.listGen
    const ask = this.node.listServices({ timeoutMs })
    this.refreshing = ask
    let list: ServiceInfo[]
    try {
      list = await ask
    } finally {
      if (this.refreshing === ask) this.refreshing = undefined
    }
    if (gen !== this.listGen) return this.services
    const changed = key(list) !== key(this.services)
    this.services = list
    this.haveList = true
    // only a list that differs is news (a restart's state message must not be followed by a plain one)
    if (changed) this.emitChange(false, true)
    return list
  }

  /** The list, asking the robot first if none arrived since it connected. */
  async list(): Promise<ServiceInfo[]> {
    if (!this.haveList && this.node.state === "connected") await this.refresh(5000).catch(() => {})
    return this.services
  }

  /** The robot's actions (each `<name>/_action/send_goal` listed), `/rover1/fibonacci` on a fleet, with their types. */
  actions(): { name: string; type: string }[] {
    return actionsOf(this.services)
  }

  /** The service as the robot lists it, whatever its type; throws ServiceError (unavailable, unimplemented). */
  async locate(service: string): Promise<ServiceInfo> {
    const name = normalizeName(service)
    // a fleet's robot that is offline or unknown: say so at once (the list cannot have it)
    if (this.fleet) this.checkRobot(name)
    let info = this.services.find((x) => x.name === name)
    if (!info && this.node.state === "connected") {
      // the list may be stale (first call after a restart, a robot that just came): ask once, or
      // wait for the question already asked (the calls of a group call come together)
      let asking = this.refreshing
      if (!asking && performance.now() - this.lastAsked > 1000) {
        this.lastAsked = performance.now()
        asking = this.refresh(2000)
      }
      try {
        if (asking) info = (await asking).find((x) => x.name === name) ?? this.services.find((x) => x.name === name)
      } catch {
        // unimplemented or unavailable below
      }
    }
    if (!info) {
      if (this.fleet) this.checkRobot(name)
      if (this.node.state !== "connected") throw new ServiceError("unavailable", `the robot is ${this.node.state}; try again when it is connected`, name)
      if (this.fleet) {
        const split = splitRobotName(name)
        if (!split) {
          const first = this.fleet.robots()[0]?.name ?? "rover1"
          throw new ServiceError("unimplemented", `no service ${name}: this bridge serves several robots, name one (/${first}${name})`, name)
        }
        throw new ServiceError("unimplemented", `no service ${split.service} on robot ${split.robot} (robot service list shows what there is)`, name)
      }
      throw new ServiceError("unimplemented", `no service ${name} on the robot (robot service list shows what there is)`, name)
    }
    return info
  }

  /** Throws `unavailable` when `name` belongs to a robot of the fleet that is offline (`isRobotOffline`) or unknown. */
  private checkRobot(name: string) {
    const split = splitRobotName(name)
    if (!split) return
    const robots = this.fleet!.robots()
    const r = robots.find((x) => x.name === split.robot)
    if (!r) {
      const known = robots.map((x) => x.name)
      throw new ServiceError("unavailable", `no robot ${split.robot}${known.length ? ` (robots: ${known.join(", ")})` : " (no robot has appeared yet)"}`, name)
    }
    if (!r.online) throw new ServiceError("unavailable", `robot ${split.robot} is offline; try again when it is back`, name)
  }

  private emitChange(restarted: boolean, servicesChanged: boolean, robotsChanged = false, robot?: string) {
    const why: ChangeEvent = { restarted, servicesChanged }
    if (robotsChanged) why.robotsChanged = true
    if (robot !== undefined) why.robot = robot
    for (const l of [...this.changeListeners]) l(why)
  }

  /** Stops listening to the node (the node itself stays open) and drops every listener. */
  close(): void {
    for (const off of this.offs) off()
    this.changeListeners.clear()
  }
}

/**
 * True for the error of a call to a fleet's robot that is offline (`unavailable`, "robot rover1 is
 * offline; try again when it is back"): a ServiceError's code and detail, or a group call row's error.
 */
export function isRobotOffline(e: { code: string; message: string } | undefined): boolean {
  return e?.code === "unavailable" && /^robot \S+ is offline;/.test(e.message)
}

const robotsKey = (robots: RobotStatus[] | undefined) => JSON.stringify(robots ?? [])
const key = (list: ServiceInfo[]) => list.map((s) => `${s.name}|${s.type}|${s.hash32}`).join(",")
