// The embedded MQTT broker (aedes) with the access rules of docs/mqtt.md: a robot user `<name>`
// may publish only `robots/<name>/out/+`, `robots/<name>/pong/+` and `robots/<name>/online`, and
// subscribe only `robots/<name>/in/+` and `robots/<name>/echo/+`; host users may use `robots/#`.
// Without users it takes anonymous clients (each may use `robots/#`) and listens on loopback only.
// A publish outside a client's rules closes that client's connection (aedes' way; mosquitto drops
// the message instead); a subscription outside them is refused in the SUBACK (0x80) and gets nothing.
import * as net from "node:net"
import { timingSafeEqual } from "node:crypto"
import type { Aedes, AedesOptions, Client } from "aedes" with { "resolution-mode": "import" }
import { isLoopback } from "../bridge/guard"
import { ROBOT_NAME } from "../client/mqtt"

/** A user of the broker: a robot (its name is the user name) or a host (the bridge, the CLI). */
export interface BrokerUser {
  name: string
  password: string
  role: "robot" | "host"
}

export interface StartBrokerOptions {
  /** Address to listen on (default 127.0.0.1). Anything but loopback needs `users`. */
  host?: string
  /** TCP port (default 1883; 0 picks a free one). */
  port?: number
  /** Who may connect. None: anonymous clients, loopback only. */
  users?: BrokerUser[]
  /** Told of connections, refusals and denied topics (one line each). */
  log?: (line: string) => void
  /** Bytes held for one client that does not read before messages to it are dropped (default MAX_QUEUED_BYTES). */
  maxQueuedBytes?: number
}

/**
 * What the broker holds for a client that does not read (bytes), like mosquitto's
 * `max_queued_bytes` (docs/mqtt.md): past it, QoS 0 messages to that client are dropped (counted in
 * the log) instead of waiting. aedes waits for a slow client's socket to drain before delivering
 * anything else (up to its `concurrency`, 100 messages, then every client stalls until its
 * drainTimeout, 60 s): one host that stops reading would stall the robot's answers to every host.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024

/** A refused publish or subscription. */
export interface Denial {
  clientId: string
  user: string | undefined
  action: "publish" | "subscribe"
  topic: string
}

export interface EmbeddedBroker {
  /** `mqtt://host:port` */
  readonly url: string
  readonly host: string
  readonly port: number
  /** Clients connected now. */
  clientCount(): number
  /** Fires on every refused publish or subscription. */
  onDenied(listener: (d: Denial) => void): () => void
  /** Bytes the broker holds for client `clientId` (written to its socket, not yet taken by it); 0 if unknown. */
  queuedBytes(clientId: string): number
  /** Disconnects every client and stops listening. */
  close(): Promise<void>
}

/** Largest message the broker passes to a robot's `in/` or `echo/` topic (the largest frame any robot announces, plus slack). */
export const MAX_ROBOT_MESSAGE = 16384

type Role = { kind: "robot"; name: string } | { kind: "host" }

/** True when MQTT topic filter `sub` only matches topics that `acl` matches too. */
export function filterWithin(sub: string, acl: string): boolean {
  const s = sub.split("/")
  const a = acl.split("/")
  for (let i = 0; i < a.length; i++) {
    const al = a[i]!
    if (al === "#") return true
    const sl = s[i]
    if (sl === undefined) return false
    if (sl === "#") return false
    if (al === "+") continue
    if (sl === "+" || sl !== al) return false
  }
  return s.length === a.length
}

/** The topics a role may publish to and subscribe to (MQTT filters; `robots/#` for hosts). */
export function rulesFor(role: Role): { publish: string[]; subscribe: string[] } {
  if (role.kind === "host") return { publish: ["robots/#"], subscribe: ["robots/#"] }
  const r = `robots/${role.name}`
  return { publish: [`${r}/out/+`, `${r}/pong/+`, `${r}/online`], subscribe: [`${r}/in/+`, `${r}/echo/+`] }
}

/**
 * aedes writes each delivery in its own turn of the event loop (a setImmediate per message): keep
 * the socket corked until the end of the turn, so what one client gets in a turn (a host's answers
 * from many robots) goes out in one write instead of one system call per message.
 */
function coalesceWrites(socket: net.Socket) {
  const write = socket.write.bind(socket) as (...a: unknown[]) => boolean
  let corked = false
  socket.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true
      socket.cork()
      setImmediate(() => {
        corked = false
        socket.uncork()
      })
    }
    return write(...args)
  }) as typeof socket.write
}

/**
 * QoS 0 deliveries to `client` never wait for its socket: past `max` bytes held for it they are
 * dropped (one log line per run of drops). Its own socket's buffer is then the whole queue.
 */
function boundQueue(client: Client, max: number, log: (line: string) => void) {
  type Deliver = (packet: unknown, cb: () => void) => void
  const c = client as unknown as { deliver0: Deliver; conn: net.Socket }
  const deliver = c.deliver0
  let dropped = 0
  c.deliver0 = (packet, cb) => {
    if (c.conn.writableLength > max) {
      if (dropped++ === 0) log(`client ${client.id} does not read: ${c.conn.writableLength} bytes held, dropping messages to it`)
      setImmediate(cb)
      return
    }
    if (dropped) log(`client ${client.id} reads again (${dropped} messages dropped)`)
    dropped = 0
    // (done at once, not when its socket drains: a slow client must not hold up the others)
    deliver(packet, () => {})
    setImmediate(cb)
  }
}

function passwordOk(given: Buffer | undefined, want: string): boolean {
  if (!given) return false
  const b = Buffer.from(want)
  return given.length === b.length && timingSafeEqual(given, b)
}

/**
 * Starts the broker; resolves once it listens. Throws before listening when `host` is not loopback
 * and no users are given, when a robot user's name is not a robot name, and when the port is
 * taken (naming it).
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? "127.0.0.1"
  const users = options.users ?? []
  const log = options.log ?? (() => {})
  if (!users.length && !isLoopback(host)) {
    throw new Error(
      `refusing to run an MQTT broker on ${host} without users: anyone who can reach this address could call the robots' services. ` +
        `Give robot and host users (name, password), or listen on 127.0.0.1.`,
    )
  }
  const byName = new Map<string, BrokerUser>()
  for (const u of users) {
    if (u.role === "robot" && !ROBOT_NAME.test(u.name)) throw new Error(`MQTT user '${u.name}': a robot's user name is its name, 1-32 characters of A-Z a-z 0-9 _ -`)
    if (!u.password) throw new Error(`MQTT user '${u.name}': empty password`)
    if (byName.has(u.name)) throw new Error(`MQTT user '${u.name}' given twice`)
    byName.set(u.name, u)
  }
  /** each client's rules, worked out once when it connects */
  const rules = new WeakMap<Client, { publish: string[]; subscribe: string[] }>()
  const userOf = new WeakMap<Client, string>()
  const denied = new Set<(d: Denial) => void>()
  const deny = (client: Client | null, action: Denial["action"], topic: string) => {
    const d: Denial = { clientId: client?.id ?? "", user: client ? userOf.get(client) : undefined, action, topic }
    log(`denied: ${d.user ?? "anonymous"} (${d.clientId}) may not ${action} ${topic}`)
    for (const l of [...denied]) l(d)
  }
  const rulesOf = (client: Client | null) => (client ? rules.get(client) : undefined)

  const opts: AedesOptions = {
    authenticate(client, username, password, done) {
      if (!users.length) {
        rules.set(client, rulesFor({ kind: "host" }))
        return done(null, true)
      }
      const u = username === undefined ? undefined : byName.get(username)
      if (!u || !passwordOk(password, u.password)) {
        log(`refused a client (${client.id}): ${username === undefined ? "no user name" : `bad user name or password for '${username}'`}`)
        const e = Object.assign(new Error("bad user name or password"), { returnCode: username === undefined ? 5 : 4 })
        return done(e as Parameters<typeof done>[0], null)
      }
      rules.set(client, rulesFor(u.role === "robot" ? { kind: "robot", name: u.name } : { kind: "host" }))
      userOf.set(client, u.name)
      done(null, true)
    },
    authorizePublish(client, packet, done) {
      // a robot takes frames of at most its HELLO's maxRecord (3072 on the firmware); a much bigger
      // message reaches the VM's firmware as one buffer and can run its heap out
      if (/^robots\/[^/]+\/(in|echo)\//.test(packet.topic) && packet.payload.length > MAX_ROBOT_MESSAGE) {
        deny(client, "publish", packet.topic)
        return done(new Error(`message of ${packet.payload.length} bytes to ${packet.topic} is over ${MAX_ROBOT_MESSAGE}`))
      }
      if (rulesOf(client)?.publish.some((f) => filterWithin(packet.topic, f))) return done(null)
      deny(client, "publish", packet.topic)
      done(new Error(`not allowed to publish ${packet.topic}`))
    },
    authorizeSubscribe(client, sub, done) {
      if (rulesOf(client)?.subscribe.some((f) => filterWithin(sub.topic, f))) return done(null, sub)
      deny(client, "subscribe", sub.topic)
      done(null, null) // refused in the SUBACK, the connection stays
    },
  }
  const aedesModule = require("aedes") as typeof import("aedes", { with: { "resolution-mode": "import" } })
  const aedes: Aedes = await aedesModule.Aedes.createBroker(opts)
  aedes.on("clientError", (client, e) => log(`client ${client.id}: ${e.message}`))
  const maxQueued = options.maxQueuedBytes ?? MAX_QUEUED_BYTES
  const clients = new Map<string, Client>()
  aedes.on("client", (client) => {
    clients.set(client.id, client)
    boundQueue(client, maxQueued, log)
  })
  aedes.on("clientDisconnect", (client) => {
    if (clients.get(client.id) === client) clients.delete(client.id)
  })

  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.setNoDelay(true)
    coalesceWrites(socket)
    aedes.handle(socket)
  })
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      aedes.close()
      if (e.code === "EADDRINUSE") reject(new Error(`port ${options.port ?? 1883} on ${host} is in use (another MQTT broker, e.g. mosquitto, running?): pick another port`))
      else if (e.code === "EADDRNOTAVAIL") reject(new Error(`${host} is not an address of this machine: pick another host`))
      else if (e.code === "EACCES") reject(new Error(`no permission to listen on port ${options.port ?? 1883} of ${host}: pick a port above 1023`))
      else reject(e)
    })
    server.listen(options.port ?? 1883, host, () => {
      server.removeAllListeners("error")
      const a = server.address()
      resolve(typeof a === "object" && a ? a.port : (options.port ?? 1883))
    })
  })
  server.on("error", (e) => log(`broker server error: ${e.message}`))
  const shownHost = host.includes(":") ? `[${host}]` : host
  log(`MQTT broker listening on mqtt://${shownHost}:${port}${users.length ? ` with ${users.length} user(s)` : " (anonymous, loopback only)"}`)
  let closed = false
  return {
    url: `mqtt://${shownHost}:${port}`,
    host,
    port,
    clientCount: () => aedes.connectedClients,
    queuedBytes: (id) => (clients.get(id)?.conn as net.Socket | undefined)?.writableLength ?? 0,
    onDenied(listener) {
      denied.add(listener)
      return () => denied.delete(listener)
    },
    async close() {
      if (closed) return
      closed = true
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await serverClosed
    },
  }
}
