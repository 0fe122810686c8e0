// The embedded MQTT broker (aedes) with the access rules of docs/mqtt.md "Access control". A
// client's identity is its user name (with users) or, anonymous on loopback, the user name it gives
// or else its client id; the identity is a robot's name or a host's id, the last level of its
// topics. A robot `<name>` may publish only `robots/<name>/out/+`, `robots/<name>/pong/+` and
// `robots/<name>/online`, and subscribe only `robots/<name>/in/+` and `robots/<name>/echo/+`; a host
// `<h>` may publish only `robots/+/in/<h>` and `robots/+/echo/<h>`, and subscribe only
// `robots/+/out/<h>`, `robots/+/pong/<h>` and `robots/+/online`. So no host reads or touches another
// host's calls, and only a robot speaks for itself (its presence, its answers). Anonymous
// identities are both (one cannot tell a robot from a host without users).
// The client id a broker keys connections by is the identity too (mosquitto's
// `use_username_as_clientid`): nobody can take over another identity's connection (which would also
// make the broker publish that client's will, e.g. a robot's `offline`). With users a second
// connection of the same user replaces the first (it is the same party); anonymous, a second client
// that claims an identity in use is refused (identifier rejected), since anyone could claim it.
// A publish outside a client's rules closes that client's connection (aedes' way; mosquitto drops
// the message instead); a subscription outside them is refused in the SUBACK (0x80) and gets nothing.
import * as net from "node:net"
import { Readable } from "node:stream"
import { timingSafeEqual } from "node:crypto"
import type { Aedes, AedesOptions, AuthenticateError, Client } from "aedes" with { "resolution-mode": "import" }
import { AddressCount, isLoopback } from "../net/addresses"
import { HOST_ID } from "../client/mqttlink"
import { ROBOT_NAME } from "../client/names"
import { MAX_MQTT_FRAME } from "../gen/wire"

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
  /** Bytes per second one host may send one robot (default HOST_RATE_BYTES_PER_S). */
  hostRateBytesPerS?: number
  /** Robots' presences the broker keeps at most (retained `robots/<name>/online`; default MAX_RETAINED). */
  maxRetained?: number
}

/**
 * What the broker holds for a client that does not read (bytes), like mosquitto's
 * `max_queued_bytes` (docs/mqtt.md): past it, QoS 0 messages to that client are dropped (counted in
 * the log) instead of waiting, but for each sender's floor (SENDER_FLOOR_BYTES, boundQueue). aedes
 * waits for a slow client's socket to drain before delivering anything else (up to its
 * `concurrency`, 100 messages, then every client stalls until its drainTimeout, 60 s): one host
 * that stops reading would stall the robot's answers to every host.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024
/**
 * What one host may have waiting in a robot's queue at the broker (bytes of its messages on
 * `robots/<name>/in/<host>` and `echo/<host>` not yet handed to the robot's socket); past it that
 * host's messages to that robot are dropped (logged when a run of drops starts, at most every
 * 10 s). A host keeps far less than this in flight (its calls' windows), so only a flooding host is
 * cut back, and the robot's queue has room for the others: before, a host flooding a robot that read
 * slowly filled the queue to MAX_QUEUED_BYTES and the broker dropped every host's messages alike
 * (mqtt_queues "a host flooding a robot that reads slowly"). More than 16 flooding hosts still
 * filled it: SENDER_FLOOR_BYTES.
 */
export const HOST_SHARE_BYTES = 64 * 1024
/**
 * The same the other way: what one robot may have waiting in a host's queue (bytes of its messages
 * on `robots/<name>/...` not yet handed to the host's socket). A robot's answers to a host are
 * bounded by its window (a few frames), so only a flooding robot is cut back; its rate is not
 * bounded (a response streams as fast as the host reads). Before, one robot flooding the topics a
 * fleet's host reads filled that host's queue to MAX_QUEUED_BYTES and the broker dropped every
 * robot's messages to it alike (mqtt_broker_hostile "a robot floods the topics a host reads"). More
 * than 16 flooding robots (16 x 64 KiB is MAX_QUEUED_BYTES) still filled it: SENDER_FLOOR_BYTES.
 */
export const ROBOT_SHARE_BYTES = 64 * 1024
/**
 * What one host may send one robot per second by default (bytes, in bursts of up to
 * HOST_SHARE_BYTES; `hostRateBytesPerS`, `--broker-host-rate`). Past it, that host's messages to
 * that robot are dropped (the protocol recovers what a well-behaved host loses). The queue bound
 * above is not enough where the robot's connection buffers much: on loopback the kernel took
 * megabytes of a flood the VM could not handle as fast, and another host's frames waited behind
 * them for seconds. A host flooding the VM robot at 512 KiB/s of frames packed with LISTs still
 * failed others' calls; at 128 KiB/s they were answered (mqtt_device "a host that sends as fast as
 * the broker takes it"). A robot slower than the VM needs a lower figure. A host's calls rarely
 * come near it: a 16 KiB upload is one burst.
 */
export const HOST_RATE_BYTES_PER_S = 128 * 1024
const TO_ROBOT = /^robots\/[^/]+\/(?:in|echo)\/([^/]+)$/
/** a robot's own topics (its answers, presence, status): their second level is its name */
const FROM_ROBOT = /^robots\/([^/]+)\//

/** A refused publish or subscription. */
export interface Denial {
  /** the identity the broker gave the client (its user name, or anonymous its client id) */
  identity: string
  /** the user name it authenticated with (undefined: anonymous) */
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
  /** TCP connections open now, let in or not yet (a client's CONNECT not sent or being checked). */
  connectionCount(): number
  /** Fires on every refused publish or subscription. */
  onDenied(listener: (d: Denial) => void): () => void
  /** Bytes the broker holds for client `clientId` (written to its socket, not yet taken by it); 0 if unknown. */
  queuedBytes(clientId: string): number
  /**
   * Hosts whose sending to robot `clientId` the broker keeps an account of now (about 100 bytes each:
   * what each has waiting and its rate's tokens); 0 if unknown.
   */
  sendersHeld(clientId: string): number
  /** Disconnects every client and stops listening. */
  close(): Promise<void>
}

/**
 * The largest retained message the broker keeps (bytes). Only a robot's presence is retained
 * (`robots/<name>/online`: "online", or "offline" as its will); any other retained publish, or a
 * larger one, is refused. The broker keeps a retained message for every later subscriber, so without
 * this 40 anonymous robot names announcing 200 KB each had all 40 (8 MB) kept and handed to each
 * later subscriber (mqtt_queues.test.ts "retained messages").
 */
export const MAX_RETAINED_BYTES = 64
const PRESENCE = /^robots\/[^/]+\/online$/
/**
 * Robots' presences the broker keeps at most (`maxRetained`): a fleet is far fewer robots, and
 * each costs the broker about 1 KB. Anonymous, any local process may take ever new identities and
 * announce a presence under each: 5,000 held 5 MiB, without end (mqtt_broker_hostile "presences
 * announced under ever new anonymous identities"). Past it a new robot's presence is refused like
 * a publish outside the rules; a presence kept may be updated, and an empty one removes it.
 */
export const MAX_RETAINED = 10000

/**
 * Largest message the broker passes to a robot's `in/` or `echo/` topic: the protocol's
 * MAX_MQTT_FRAME (protocol/protocol.json; the largest frame any robot announces, 4,096, plus
 * slack), which hosts keep to (client/mqtt.ts MQTT_MAX_FRAME).
 */
export const MAX_ROBOT_MESSAGE = MAX_MQTT_FRAME

/**
 * Whom a client speaks for: a robot (its name), a host (its host id), or, anonymous, an identity
 * that may be either (without users nothing tells them apart).
 */
export type Role = { kind: "robot"; name: string } | { kind: "host"; id: string } | { kind: "anonymous"; id: string }

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

/**
 * The topics a role may publish to and subscribe to (MQTT filters), docs/mqtt.md "Access control".
 * The identity is checked by the caller (ROBOT_NAME / HOST_ID): it holds no `/`, `+` or `#`.
 */
export function rulesFor(role: Role): { publish: string[]; subscribe: string[] } {
  const robot = (n: string) => ({ publish: [`robots/${n}/out/+`, `robots/${n}/pong/+`, `robots/${n}/online`], subscribe: [`robots/${n}/in/+`, `robots/${n}/echo/+`] })
  const host = (h: string) => ({ publish: [`robots/+/in/${h}`, `robots/+/echo/${h}`], subscribe: [`robots/+/out/${h}`, `robots/+/pong/${h}`, "robots/+/online"] })
  if (role.kind === "robot") return robot(role.name)
  if (role.kind === "host") return host(role.id)
  const r = robot(role.id)
  const h = host(role.id)
  return { publish: [...r.publish, ...h.publish], subscribe: [...r.subscribe, ...h.subscribe] }
}

/**
 * A test for topic names (no wildcards: aedes refuses them in a PUBLISH before asking) against
 * `filters`, split once: every message a client publishes goes through it, about 5 times faster
 * than `filterWithin` on each filter.
 */
export function topicMatcher(filters: string[]): (topic: string) => boolean {
  const fs = filters.map((f) => f.split("/"))
  return (topic) => {
    const t = topic.split("/")
    next: for (const f of fs) {
      const last = f.length - 1
      if (f.length !== t.length && !(f[last] === "#" && t.length >= last)) continue
      for (let i = 0; i < f.length; i++) {
        const a = f[i]!
        if (a === "#") return true
        if (a !== "+" && a !== t[i]) continue next
      }
      return true
    }
    return false
  }
}

interface ClientRules {
  publish: (topic: string) => boolean
  subscribe: string[]
}

function compile(r: { publish: string[]; subscribe: string[] }): ClientRules {
  return { publish: topicMatcher(r.publish), subscribe: r.subscribe }
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
 * Topic filters one client identity may hold at once. A host needs three (`robots/+/out/<h>`,
 * `robots/+/pong/<h>`, `robots/+/online`), a robot two; without a bound a client subscribing to fresh
 * filters without end grew the broker's memory without end (100,000 held 142 MiB). Past it a
 * SUBSCRIBE is refused in the SUBACK (0x80), as a filter outside the client's rules is.
 */
export const MAX_SUBSCRIPTIONS = 1024

/**
 * Subscriptions the broker keeps, in all, for sessions whose clients have left and asked for them to
 * be kept (clean session 0); past it the sessions left longest ago are dropped (their client finds no
 * session when it comes back: CONNACK's session present 0, and subscribes again). Without it every
 * such session was kept for good: 200 anonymous identities each leaving 1,000 subscriptions and 16
 * QoS 2 publishes held 130 MiB (mqtt_broker_hostile "sessions asked to be kept ... under ever new
 * anonymous identities"). The protocol's clients all use clean sessions; a host user's tool that keeps
 * one holds a few subscriptions. A client's unreleased QoS 2 publishes (at most MAX_INFLIGHT_QOS2) are
 * dropped when its connection ends, kept session or not: the protocol never publishes at QoS 2, and
 * such a publish then ends with its connection, as a clean session's does.
 */
export const MAX_KEPT_SUBSCRIPTIONS = 4096

/**
 * QoS 2 publishes one connection may have stored awaiting their PUBREL (aedes' `maxInflightInbound`);
 * one more closes the connection. aedes keeps each whole until its PUBREL, up to 1,000 by default:
 * 300 of 200 KB never released held 60 MB (mqtt_broker_hostile "QoS 2 publishes never released").
 * The protocol's clients publish at QoS 0 and 1; mosquitto's default window is 20.
 */
export const MAX_INFLIGHT_QOS2 = 16

/** Bytes of one client's input the broker parses and handles per turn of its event loop. */
const READ_SLICE = 8 * 1024

/**
 * The largest MQTT packet a client may send (bytes, fixed header included), like mosquitto's
 * `max_packet_size`: far above the protocol's frames (a robot's are at most 4,000 bytes). aedes has
 * no such bound and gathers a packet in memory until its last byte: a client announcing a publish of
 * 200 MB made the broker hold whatever of it had come (mqtt_queues.test.ts "a packet larger than
 * its bound"). A larger one closes the client's connection once its header is read.
 */
export const MAX_PACKET_BYTES = 256 * 1024

/**
 * What one client's packets may cost the broker per turn of its event loop, besides READ_SLICE
 * bytes: a packet costs 1, a SUBSCRIBE or UNSUBSCRIBE SUBSCRIBE_COST. Packets cost far more than
 * their bytes: 2,000 SUBSCRIBEs of one filter (44 KB) were handled 370 to a turn of about 100 ms,
 * and other clients' messages waited up to 190 ms in the broker (mqtt_broker_hostile "2,000
 * SUBSCRIBE packets"); 8 KiB of PINGREQs is 4,096 packets a turn, and another host's calls went
 * from 439 to 28 in 1.5 s (mqtt_broker_hostile "a flood of PINGREQs"). A host's frames are tens of
 * bytes at least (8 KiB of them, under 256), and it sends one SUBSCRIBE per robot it talks to.
 */
const PACKETS_PER_TURN = 256
const SUBSCRIBE_COST = 16

/**
 * Follows the MQTT packets in a client's byte stream (the fixed header's remaining length): how
 * many bytes of `b` may be handed over now, i.e. all of them, or up to the first packet whose cost
 * is past what is `left` of the turn (which counts down; see PACKETS_PER_TURN); -1 at the first
 * packet over `max` bytes, or a length that is no MQTT (over 4 bytes).
 */
function packetBound(max: number, tooBig: (bytes: number) => void) {
  let skip = 0
  /** header bytes of the current packet seen (0: its type byte comes next) */
  let hn = 0
  let len = 0
  let mul = 1
  return (b: Buffer, turn: { left: number }): number => {
    for (let i = 0; i < b.length; ) {
      if (skip > 0) {
        const k = Math.min(skip, b.length - i)
        skip -= k
        i += k
        continue
      }
      const x = b[i]!
      if (hn === 0) {
        // (8 SUBSCRIBE, 10 UNSUBSCRIBE)
        const cost = x >> 4 === 8 || x >> 4 === 10 ? SUBSCRIBE_COST : 1
        if (turn.left < cost) return i
        turn.left -= cost
        i++
        hn = 1
        len = 0
        mul = 1
        continue
      }
      i++
      hn++
      len += (x & 127) * mul
      mul *= 128
      if (x & 128) {
        if (hn > 4) {
          tooBig(NaN)
          return -1
        }
        continue
      }
      if (len + hn > max) {
        tooBig(len + hn)
        return -1
      }
      hn = 0
      skip = len
    }
    return b.length
  }
}

/**
 * The client of `socket` takes turns with the others. aedes reads all a socket holds (`read()`),
 * handles each packet, and when they were handled at once (a publish nobody subscribes to) reads
 * again at once: a client sending a burst of publishes held the broker's event loop until its burst
 * was through, and every other client's messages waited (200,000 small publishes held another
 * host's call for 1.3-1.5 s; mqtt_queues.test.ts "a burst of publishes"). Here aedes gets at most READ_SLICE
 * bytes of the socket per turn of the event loop; the rest waits for the next turn (and the socket,
 * once its buffer is full, for TCP to push back on the sender).
 */
function takeTurns(socket: net.Socket, within: (b: Buffer, turn: { left: number }) => number) {
  const read = socket.read.bind(socket)
  let taken = 0
  let turn = false
  const turnCost = { left: PACKETS_PER_TURN }
  socket.read = ((size?: number) => {
    if (size !== undefined && size !== null) return read(size)
    if (!turn) {
      turn = true
      setImmediate(() => {
        turn = false
        taken = 0
        turnCost.left = PACKETS_PER_TURN
        // (what was left is handed over now: no new data may come to announce it)
        if (socket.readableLength > 0 && !socket.destroyed) socket.emit("readable")
      })
    }
    if (taken >= READ_SLICE) return null
    const n = Math.min(socket.readableLength, READ_SLICE - taken)
    const buf = (n > 0 ? read(n) : read()) as Buffer | null
    if (!buf) return null
    const k = within(buf, turnCost)
    if (k < 0) {
      socket.destroy()
      return null
    }
    if (k === buf.length) {
      taken += buf.length
      return buf
    }
    // (what this turn may cost is handed over: the rest waits for the next turn)
    socket.unshift(buf.subarray(k))
    taken = READ_SLICE
    return k > 0 ? buf.subarray(0, k) : null
  }) as typeof socket.read
}

/**
 * Connections one address may have open that have not been let in yet (no CONNECT, or one still
 * being checked); one more is closed at once. Each costs the broker about 7.5 KB until aedes' connect
 * timeout (30 s): 5,000 that never sent CONNECT held 37 MiB (mqtt_queues "connections that never
 * send CONNECT"). Clients let in are not counted: with users each user has one connection (a second
 * replaces the first), and anonymous clients are this machine's own (loopback only). A real client
 * refused here tries again (the firmware and the mqtt package back off); robots that share an
 * address behind NAT share this bound while they connect, not once connected.
 */
export const MAX_PENDING_PER_ADDRESS = 128
/** The same over all addresses (a flood from many addresses). */
export const MAX_PENDING = 1024
/**
 * What every sender may have waiting in a client's queue whatever the others send (bytes): past
 * the queue's bound its messages are still taken while it holds at most this (boundQueue). One frame
 * of the protocol (MAX_ROBOT_MESSAGE: a host's frames, and a robot's, which are at most its
 * maxRecord) and its topic (`robots/<name>/out/<host>`: two identities of at most 32 characters).
 */
export const SENDER_FLOOR_BYTES = MAX_ROBOT_MESSAGE + 128
/**
 * QoS 0 deliveries to `client` never wait for its socket: past `max` bytes held for it they are
 * dropped (one log line per run of drops). Its own socket's buffer is then the whole queue. A
 * robot's input is shared between the hosts sending it: each may have HOST_SHARE_BYTES waiting and
 * send `rate` bytes/s (a token bucket of HOST_SHARE_BYTES); past either, its messages are dropped.
 * A host's input is shared between the robots sending it the same way, by ROBOT_SHARE_BYTES
 * waiting (no rate).
 *
 * Shares alone let enough senders fill the queue: more than 16 robots flooding a host that reads
 * slowly (16 x 64 KiB is MAX_QUEUED_BYTES; fewer with a smaller `maxQueuedBytes`) held it at its
 * bound, and the broker dropped every robot's messages to it alike: of a well-behaved robot's
 * answers, one every 100 ms during a flood by 24 robots, 2 of 40 reached the host; of a host's
 * messages to a robot flooded by 24 hosts, 1 of 40 (mqtt_broker_hostile "24 robots flood the topics a fleet's host reads ..." and
 * "24 hosts flood a robot that reads slowly ..."). So each sender has a floor: past `max`, a
 * message is still taken from a sender (within its share and rate) while what that sender holds
 * of the queue stays within SENDER_FLOOR_BYTES, one frame. Every sender then gets its messages in
 * whatever the others send, behind at most the queue (40 of 40 both ways). What is held for a
 * client is at most `max`, one message past it, and a floor per sender holding bytes in it, and
 * never more than a floor per client connected to the broker: 24 flooders and the polite sender
 * held 1.05 MB at most (MAX_QUEUED_BYTES and 26 floors: 1.48; 1.25-1.30 MB before the deliveries
 * taken and not yet written were counted, `pending`). The senders are bounded by the users
 * (with users, a robot's name and a host's id are its user name: one floor per robot user in a
 * host's queue, one per host user in a robot's); anonymous, by the clients on this machine
 * (loopback only). The bound by clients connected is for identities taken and left: a floor for
 * every sender, connected or not, let 2,000 anonymous identities each send a robot that did not
 * read one frame and leave, and the broker held 28 MB for it (mqtt_broker_hostile "2,000 hosts,
 * each a new anonymous identity, send a robot that does not read ...").
 *
 * The table of senders lives with the connection: one entry, about 100 bytes, per host (or robot)
 * that has sent to it lately. An entry with nothing waiting, its tokens refilled and no drop logged in
 * the last 10 s is the same as none: such entries are dropped whenever the table has doubled since
 * the last sweep (at least SENDERS_SWEEP entries). Before, every identity that ever sent stayed
 * until the robot left: 3,000 anonymous hosts sending once each left 3,000 (mqtt_broker_hostile
 * "3,000 hosts, each a new anonymous identity ...").
 */
/** the least size of a robot's table of senders at which settled entries are swept out (boundQueue) */
const SENDERS_SWEEP = 64
function boundQueue(client: Client, max: number, rate: number, connected: () => number, log: (line: string) => void): () => number {
  type Packet = { topic: string; payload: Buffer }
  type Deliver = (packet: Packet, cb: () => void) => void
  const c = client as unknown as { deliver0: Deliver; conn: net.Socket }
  const deliver = c.deliver0
  let dropped = 0
  /** per sender to this client (a host to a robot, a robot to a host): bytes waiting, tokens of its rate, drops in this run */
  const hosts = new Map<string, { held: number; dropped: number; tokens: number; at: number; loggedAt: number }>()
  /** the table's size at which settled entries are swept out next */
  let sweepAt = SENDERS_SWEEP
  // Every delivery is QoS 0 (subscriptions are granted QoS 0 at most: grantQoS0), retained messages
  // too (aedes delivers those at the QoS they were published with). A QoS 1 delivery waits for the
  // client's socket to drain, and aedes delivers a message to no one else until its subscribers'
  // deliveries are through (up to its `concurrency`, 100, at once): a client subscribed at QoS 1
  // that stopped reading stalled every client of the broker for its drainTimeout (60 s), and its
  // messages bypassed the bounds below (mqtt_broker_hostile "a client subscribed at QoS 1 ...").
  ;(c as unknown as { deliverQoS: Deliver }).deliverQoS = (packet, cb) => c.deliver0(packet, cb)
  /** drops a message as the client's queue is past `max` (one line per run of drops) */
  const full = (cb: () => void) => {
    if (dropped++ === 0) log(`client ${client.id} does not read: ${c.conn.writableLength} bytes held, dropping messages to it`)
    setImmediate(cb)
  }
  /**
   * bytes taken and not yet in the socket's buffer: aedes writes a delivery in a setImmediate, so
   * deliveries taken in one turn of the event loop were not in `writableLength` when the next was
   * judged (2,000 senders in rounds of 50: 2.05-2.10 MB held where the bound is 1.91)
   */
  let pending = 0
  c.deliver0 = (packet, cb) => {
    const queued = c.conn.writableLength + pending
    const over = queued > max
    // The sender: a host, on a robot's input topics (their last level is the host's identity), or a
    // robot, on the topics a host reads (their second level is the robot's name); the rules bind both.
    const host = TO_ROBOT.exec(packet.topic)?.[1]
    const robot = host === undefined ? FROM_ROBOT.exec(packet.topic)?.[1] : undefined
    if (over && host === undefined && robot === undefined) return full(cb)
    if (!over) {
      if (dropped) log(`client ${client.id} reads again (${dropped} messages dropped)`)
      dropped = 0
    }
    if (host === undefined && robot === undefined) {
      // (done at once, not when its socket drains: a slow client must not hold up the others)
      deliver(packet, () => {})
      setImmediate(cb)
      return
    }
    const key = host !== undefined ? `host ${host}` : `robot ${robot}`
    let h = hosts.get(key)
    const now = performance.now()
    if (!h) {
      if (hosts.size >= sweepAt) {
        for (const [id, e] of hosts)
          if (e.held === 0 && e.tokens + ((now - e.at) * rate) / 1000 >= HOST_SHARE_BYTES && now - e.loggedAt > 10000) hosts.delete(id)
        sweepAt = Math.max(SENDERS_SWEEP, 2 * hosts.size)
      }
      hosts.set(key, (h = { held: 0, dropped: 0, tokens: HOST_SHARE_BYTES, at: now, loggedAt: -Infinity }))
    }
    const size = packet.topic.length + packet.payload.length
    // (a robot's answers are not rate-bounded, only its share: a response streams as fast as the host reads)
    if (host !== undefined) h.tokens = Math.min(HOST_SHARE_BYTES, h.tokens + ((now - h.at) * rate) / 1000)
    h.at = now
    const overRate = host !== undefined && h.tokens < size
    const share = host !== undefined ? HOST_SHARE_BYTES : ROBOT_SHARE_BYTES
    // (past `max`, a sender keeps its floor, within a floor per client connected: see above)
    if (over && (h.held + size > SENDER_FLOOR_BYTES || queued > max + connected() * SENDER_FLOOR_BYTES)) return full(cb)
    if (h.held >= share || overRate) {
      // (one line when a run of drops starts, at most every 10 s: a flood goes over and under)
      if (h.dropped++ === 0 && now - h.loggedAt > 10000) {
        h.loggedAt = now
        const to = host !== undefined ? `robot ${client.id}` : `host ${client.id}`
        log(
          h.held >= share
            ? `${key} holds ${h.held} bytes of ${to}'s queue (at most ${share}): dropping its messages to it`
            : `${key} sends ${to} more than ${rate} bytes/s: dropping its messages to it`,
        )
      }
      setImmediate(cb)
      return
    }
    h.dropped = 0
    if (host !== undefined) h.tokens -= size
    h.held += size
    const entry = h
    // (aedes calls back once the socket took the message: at once, or when it drains)
    deliver(packet, () => {
      entry.held -= size
    })
    // (after the setImmediate in which aedes writes it: those run in the order they were queued)
    pending += size
    setImmediate(() => (pending -= size))
    setImmediate(cb)
  }
  return () => hosts.size
}

/**
 * Grants every subscription of `client` QoS 0 (MQTT 3.1.1 lets a server grant less than asked, and
 * says so in the SUBACK): the protocol's clients all subscribe at QoS 0 (docs/mqtt.md), and a QoS 1
 * or 2 subscription would have the broker wait for that client's acknowledgements and socket (see
 * boundQueue). Done on the parsed SUBSCRIBE before aedes handles it, so the SUBACK tells the truth.
 * The same pass turns the filters past MAX_FILTERS_PER_SUBSCRIBE into ones authorizeSubscribe refuses.
 */
function grantQoS0(client: Client) {
  const parser = (client as unknown as { _parser: import("node:events").EventEmitter })._parser
  parser.prependListener("packet", (p: { cmd: string; subscriptions?: { qos: number; topic: string }[] }) => {
    if (p.cmd !== "subscribe") return
    const subs = p.subscriptions ?? []
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i]!
      s.qos = 0
      // (refused in authorizeSubscribe, each in the SUBACK: see MAX_FILTERS_PER_SUBSCRIBE)
      // (each its own: aedes answers identical filters of one SUBSCRIBE once)
      if (i >= MAX_FILTERS_PER_SUBSCRIBE) s.topic = OVER_FILTERS + i
    }
  })
}

/**
 * Filters one SUBSCRIBE may have granted; the rest of it are refused in the SUBACK (0x80), as a
 * filter outside the client's rules is. aedes handles a SUBSCRIBE's filters all at once: 10 clients
 * each sending one SUBSCRIBE of 1,000 filters (each within its rules) held another host's calls up
 * to 450-930 ms on this machine, 1,563 ms in CI (mqtt_broker_hostile "sessions asked to be kept ...
 * under ever new anonymous identities"). The protocol's clients send one filter per SUBSCRIBE.
 */
export const MAX_FILTERS_PER_SUBSCRIBE = 64
/** what a filter past MAX_FILTERS_PER_SUBSCRIBE is turned into (with its index): valid filters no rule allows */
const OVER_FILTERS = "$over/filters/"

/** The parts of aedes's persistence (aedes-persistence's in-memory store) this broker uses: aedes's
 * types do not declare the field. */
type Persistence = {
  createRetainedStreamCombi(patterns: string[]): NodeJS.ReadableStream
  cleanSubscriptions(client: { id: string }): Promise<unknown>
  cleanIncoming?(client: { id: string }): Promise<unknown>
}
const persistenceOf = (aedes: Aedes) => (aedes as unknown as { persistence: Persistence }).persistence

/**
 * A SUBSCRIBE makes aedes send the client every retained message its filters match (MQTT 3.1.1
 * [MQTT-3.8.4-3], again for a filter it holds): for `robots/+/online`, every robot's presence. The
 * same SUBSCRIBE sent 2,000 times at once (44 KB) had 2,000 replays of 1,000 presences under way
 * (56 MB to send, the heap up 200 MB), and another host's calls waited up to 874 ms
 * (mqtt_broker_hostile "the same SUBSCRIBE to robots/+/online sent 2,000 times"). Here a filter's
 * replay is not started again for a client while one of it for that client is under way: that one
 * sends the same messages. aedes emits `subscribe` and then, in the same turn, asks its
 * persistence for the replay's stream: the listener tells the stream whose it is.
 */
function replayOnce(aedes: Aedes) {
  const persistence = persistenceOf(aedes)
  const combi = persistence.createRetainedStreamCombi.bind(persistence)
  let subscriber: Client | undefined
  aedes.on("subscribe", (_subs, client) => (subscriber = client))
  /** per client: the filters whose replay is under way */
  const replaying = new WeakMap<Client, Set<string>>()
  persistence.createRetainedStreamCombi = (patterns) => {
    const client = subscriber
    subscriber = undefined
    if (!client) return combi(patterns)
    let running = replaying.get(client)
    if (!running) replaying.set(client, (running = new Set()))
    const fresh = patterns.filter((p) => !running.has(p))
    if (!fresh.length) return Readable.from([])
    for (const p of fresh) running.add(p)
    const stream = combi(fresh)
    let ended = false
    const end = () => {
      if (ended) return
      ended = true
      for (const p of fresh) running.delete(p)
    }
    stream.once("end", end)
    stream.once("close", end)
    stream.once("error", end)
    return stream
  }
}

/**
 * A log line as it may be shown: what clients give (client ids, user names, topics) is in many
 * lines, so control characters are escaped (a topic with a newline wrote a line of its own) and a
 * word over 64 characters is cut (a 60,000-character client id made a log line of 120,086
 * characters per connection; mqtt_broker_hostile "malformed and out-of-order packets").
 */
export function logLine(line: string): string {
  let s = line.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
  s = s.replace(/\S{65,}/g, (w) => `${w.slice(0, 48)}…(${w.length} characters)`)
  return s.length > 400 ? `${s.slice(0, 300)}…(${s.length} characters)` : s
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
  const rawLog = options.log ?? (() => {})
  const log = (line: string) => rawLog(logLine(line))
  if (!users.length && !isLoopback(host)) {
    throw new Error(
      `refusing to run an MQTT broker on ${host} without users: anyone who can reach this address could call the robots' services. ` +
        `Give robot and host users (name, password), or listen on 127.0.0.1.`,
    )
  }
  const byName = new Map<string, BrokerUser>()
  for (const u of users) {
    if (u.role === "robot" && !ROBOT_NAME.test(u.name)) throw new Error(`MQTT user '${u.name}': a robot's user name is its name, 1-32 characters of A-Z a-z 0-9 _ -`)
    if (u.role === "host" && !HOST_ID.test(u.name)) throw new Error(`MQTT user '${u.name}': a host's user name is its host id (the last level of its topics), 1-32 characters of A-Z a-z 0-9 _ -`)
    if (u.role !== "robot" && u.role !== "host") throw new Error(`MQTT user '${u.name}': role must be "robot" or "host"`)
    if (!u.password) throw new Error(`MQTT user '${u.name}': empty password`)
    if (byName.has(u.name)) throw new Error(`MQTT user '${u.name}' given twice`)
    byName.set(u.name, u)
  }
  /** each client's rules, worked out once when it connects */
  const rules = new WeakMap<Client, ClientRules>()
  const userOf = new WeakMap<Client, string>()
  /** anonymous: the client holding each identity (a second one is refused while it is connected) */
  const holders = new Map<string, Client>()
  const denied = new Set<(d: Denial) => void>()
  /** per identity: the topic filters it holds (kept across connections unless a clean session drops them) */
  const subscribed = new Map<string, Set<string>>()
  /** identities told they hold the most subscriptions (once, until they drop some) */
  const full = new Set<string>()
  /**
   * subscriptions refused per connection beyond the first, which alone is logged: a refused
   * subscription keeps the connection, and one SUBSCRIBE of 5,000 filters outside the rules made
   * 5,000 log lines (mqtt_broker_hostile "one SUBSCRIBE of 5,000 filters ..."); the count is
   * logged when the connection ends. (A refused publish ends the connection: one line each.)
   */
  const moreDenied = new WeakMap<Client, number>()
  /** clients told once that their SUBSCRIBE had too many filters */
  const overLogged = new WeakSet<Client>()
  const deny = (client: Client | null, action: Denial["action"], topic: string) => {
    const d: Denial = { identity: client?.id ?? "", user: client ? userOf.get(client) : undefined, action, topic }
    const n = client && action === "subscribe" ? moreDenied.get(client) : undefined
    if (client && action === "subscribe") moreDenied.set(client, (n ?? -1) + 1)
    if (n === undefined) log(`denied: ${d.identity} (${d.user === undefined ? "anonymous" : `user ${d.user}`}) may not ${action} ${topic}`)
    for (const l of [...denied]) l(d)
  }
  const rulesOf = (client: Client | null) => (client ? rules.get(client) : undefined)
  /** answers a CONNECT with `returnCode` (2 identifier rejected, 4 bad user name or password, 5 not authorized) */
  const refuse = (client: Client, returnCode: AuthenticateError["returnCode"], why: string, done: (e: AuthenticateError | null, ok: boolean | null) => void) => {
    log(`refused a client (${client.id}): ${why}`)
    done(Object.assign(new Error(why), { returnCode }), null)
  }

  const maxRetained = options.maxRetained ?? MAX_RETAINED
  /** the presences kept (retained), and whether the bound was logged since it was last reached */
  const presences = new Set<string>()
  let retainedFull = false
  const keepPresence = (topic: string, empty: boolean): boolean => {
    if (empty) presences.delete(topic)
    else if (!presences.has(topic)) {
      if (presences.size >= maxRetained) {
        if (!retainedFull) log(`the broker keeps ${presences.size} robots' presences (retained), at most ${maxRetained}: new ones are refused`)
        retainedFull = true
        return false
      }
      presences.add(topic)
    }
    if (presences.size < maxRetained) retainedFull = false
    return true
  }
  const opts: AedesOptions = {
    maxInflightInbound: MAX_INFLIGHT_QOS2,
    // A will of QoS 3 is a protocol violation: the connection is closed ([MQTT-3.1.2-14]). aedes
    // let it in and kept the will (mqtt_broker_hostile "malformed and out-of-order packets").
    preConnect(client, packet, done) {
      const qos = packet.will?.qos
      if (qos === undefined || (qos as number) <= 2) return done(null, true)
      log(`refused a client (${packet.clientId}): will of QoS ${qos} (MQTT allows 0-2)`)
      done(new Error(`will of QoS ${qos}`), false)
    },
    authenticate(client, username, password, done) {
      if (!users.length) {
        // anonymous: the identity is the user name given, else the client id; the first client
        // with an identity keeps it while it is connected
        const id = username || client.id
        if (!HOST_ID.test(id)) {
          return refuse(client, 2, `identity '${id}' (${username ? "user name" : "client id"}) is not 1-32 characters of A-Z a-z 0-9 _ -`, done)
        }
        const holder = holders.get(id)
        if (holder && holder !== client && !holder.closed && !(holder.conn as net.Socket).destroyed) {
          return refuse(client, 2, `identity '${id}' is in use by another connection`, done)
        }
        holders.set(id, client)
        client.id = id
        rules.set(client, compile(rulesFor({ kind: "anonymous", id })))
        return done(null, true)
      }
      const u = username === undefined ? undefined : byName.get(username)
      if (!u || !passwordOk(password, u.password)) {
        return refuse(client, username === undefined ? 5 : 4, username === undefined ? "no user name" : `bad user name or password for '${username}'`, done)
      }
      // the user name is the client id: another user cannot take this connection over
      client.id = u.name
      rules.set(client, compile(rulesFor(u.role === "robot" ? { kind: "robot", name: u.name } : { kind: "host", id: u.name })))
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
      if (packet.retain && !(PRESENCE.test(packet.topic) && packet.payload.length <= MAX_RETAINED_BYTES)) {
        deny(client, "publish", packet.topic)
        return done(new Error(`retained message of ${packet.payload.length} bytes on ${packet.topic}: only a robot's presence of at most ${MAX_RETAINED_BYTES} bytes is kept`))
      }
      if (!rulesOf(client)?.publish(packet.topic)) {
        deny(client, "publish", packet.topic)
        return done(new Error(`not allowed to publish ${packet.topic}`))
      }
      if (packet.retain && !keepPresence(packet.topic, packet.payload.length === 0)) {
        deny(client, "publish", packet.topic)
        return done(new Error(`the broker keeps at most ${maxRetained} robots' presences`))
      }
      done(null)
    },
    authorizeSubscribe(client, sub, done) {
      if (sub.topic.startsWith(OVER_FILTERS)) {
        if (client) {
          if (!overLogged.has(client)) log(`client ${client.id} sent a SUBSCRIBE of more than ${MAX_FILTERS_PER_SUBSCRIBE} filters: the rest refused`)
          overLogged.add(client)
          // (counted with the refusals logged when the connection ends)
          moreDenied.set(client, (moreDenied.get(client) ?? -1) + 1)
        }
        return done(null, null)
      }
      if (!rulesOf(client)?.subscribe.some((f) => filterWithin(sub.topic, f))) {
        deny(client, "subscribe", sub.topic)
        return done(null, null) // refused in the SUBACK, the connection stays
      }
      const held = subscribed.get(client.id) ?? new Set<string>()
      if (!held.has(sub.topic) && held.size >= MAX_SUBSCRIPTIONS) {
        if (!full.has(client.id)) log(`client ${client.id} holds ${held.size} subscriptions: further ones refused`)
        full.add(client.id)
        return done(null, null)
      }
      held.add(sub.topic)
      subscribed.set(client.id, held)
      done(null, sub)
    },
  }
  const aedesModule = require("aedes") as typeof import("aedes", { with: { "resolution-mode": "import" } })
  const aedes: Aedes = await aedesModule.Aedes.createBroker(opts)
  aedes.on("clientError", (client, e) => log(`client ${client.id}: ${e.message}`))
  replayOnce(aedes)
  const maxQueued = options.maxQueuedBytes ?? MAX_QUEUED_BYTES
  const clients = new Map<string, Client>()
  /** per client: how many hosts' accounts its queue keeps (boundQueue) */
  const senders = new WeakMap<Client, () => number>()
  /** per socket not yet let in: what gives its place among the pending back */
  const pendingOf = new WeakMap<net.Socket, () => void>()
  const persistence = persistenceOf(aedes)
  /** identities whose client left a kept session holding subscriptions, the longest gone first: how many each */
  const kept = new Map<string, number>()
  let keptTotal = 0
  let keptFull = false
  const unkeep = (id: string) => {
    keptTotal -= kept.get(id) ?? 0
    kept.delete(id)
  }
  aedes.on("client", (client) => {
    pendingOf.get(client.conn as net.Socket)?.()
    unkeep(client.id)
    // (a clean session starts with no subscriptions)
    if (client.clean) forget(client.id)
    clients.set(client.id, client)
    senders.set(client, boundQueue(client, maxQueued, options.hostRateBytesPerS ?? HOST_RATE_BYTES_PER_S, () => aedes.connectedClients, log))
  })
  aedes.on("clientDisconnect", (client) => {
    const more = moreDenied.get(client)
    if (more) log(`denied: ${client.id} had ${more} more subscriptions refused on that connection`)
    if (holders.get(client.id) === client) holders.delete(client.id)
    if (clients.get(client.id) === client) clients.delete(client.id)
    // (a clean session's subscriptions end with it; a persistent one's stay with the broker, within
    // MAX_KEPT_SUBSCRIPTIONS)
    if (client.clean) forget(client.id)
    else {
      persistence.cleanIncoming?.(client).catch(() => {})
      const n = subscribed.get(client.id)?.size ?? 0
      if (n > 0 && clients.get(client.id) === undefined) {
        unkeep(client.id)
        kept.set(client.id, n)
        keptTotal += n
        for (const [id, k] of kept) {
          if (keptTotal <= MAX_KEPT_SUBSCRIPTIONS) break
          if (!keptFull) log(`sessions kept for clients that left hold more than ${MAX_KEPT_SUBSCRIPTIONS} subscriptions: dropping those left longest ago`)
          keptFull = true
          keptTotal -= k
          kept.delete(id)
          forget(id)
          persistence.cleanSubscriptions({ id }).catch(() => {})
        }
        if (keptTotal <= MAX_KEPT_SUBSCRIPTIONS >> 1) keptFull = false
      }
    }
  })
  aedes.on("unsubscribe", (topics, client) => {
    const held = subscribed.get(client.id)
    for (const t of topics) held?.delete(t)
    full.delete(client.id)
  })
  const forget = (id: string) => {
    subscribed.delete(id)
    full.delete(id)
  }

  const sockets = new Set<net.Socket>()
  const pending = new AddressCount(
    MAX_PENDING_PER_ADDRESS,
    (a) =>
      log(
        a === undefined
          ? `refused connections: ${MAX_PENDING} have not sent CONNECT or are being let in`
          : `refused connections from ${a}: ${MAX_PENDING_PER_ADDRESS} have not sent CONNECT or are being let in (at most ${MAX_PENDING_PER_ADDRESS} per address)`,
      ),
    MAX_PENDING,
  )
  const server = net.createServer((socket) => {
    const release = pending.take(socket.remoteAddress)
    if (typeof release !== "function") {
      socket.destroy()
      return
    }
    pendingOf.set(socket, release)
    sockets.add(socket)
    socket.on("close", () => {
      sockets.delete(socket)
      release()
    })
    socket.setNoDelay(true)
    coalesceWrites(socket)
    let client: Client | undefined
    takeTurns(
      socket,
      packetBound(MAX_PACKET_BYTES, (n) => {
        const who = client?.id ? `client ${client.id}` : `a client at ${socket.remoteAddress}`
        log(isNaN(n) ? `${who} sent a packet length that is no MQTT: disconnected` : `${who} sent a packet of ${n} bytes (at most ${MAX_PACKET_BYTES}): disconnected`)
      }),
    )
    client = aedes.handle(socket)
    grantQoS0(client)
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
    connectionCount: () => sockets.size,
    queuedBytes: (id) => (clients.get(id)?.conn as net.Socket | undefined)?.writableLength ?? 0,
    sendersHeld(id) {
      const c = clients.get(id)
      return c ? (senders.get(c)?.() ?? 0) : 0
    },
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
