// `robot service echo <name>`: `ros2 service echo` through a running bridge. The bridge publishes a
// service's events (REP-2012) on `<name>/_service_event` when it runs with --introspect; this verb
// subscribes over rosbridge and prints each event as ros2 does (YAML, `---` after each) until
// Ctrl+C, which ends it with exit status 0. A bridge without --introspect, a service the robot does
// not have, or a bridge that goes away: one line on stderr, exit status 1.
import type { Command } from "commander"
import { ServiceError } from "../client/errors"
import { normalizeName } from "../client/names"
import { SERVICE_EVENT_SUFFIX } from "../calls/pipeline"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { defaultUrl } from "./backends"
import { fail, hinted } from "./errors"
import { formatYaml } from "./format"
import { RosbridgeClient } from "./rosclient"

interface EchoOptions {
  url?: string
  token?: string
}

/** Registers `echo` under `robot service`. */
export function registerEcho(service: Command): void {
  service
    .command("echo")
    .argument("<name>", "service name, e.g. /add_two_ints")
    .description("print the service's events (requests and responses) as the bridge makes calls; the bridge must run with --introspect")
    .option("--url <url>", "bridge WebSocket URL (default ws://127.0.0.1:9090, or bridge.host/port in devs.json)")
    .option("--token <token>", "bridge token (default: $ROBOT_BRIDGE_TOKEN)")
    .action(async (name: string, o: EchoOptions) => {
      try {
        await echo(normalizeName(name), o, (text) => process.stdout.write(text))
      } catch (e) {
        fail("echo", e)
      }
    })
}

/**
 * Follows `<service>/_service_event` until SIGINT (resolves) or an error (rejects with
 * ServiceError). Checks first, with rosapi, that the topic is published, so that a bridge without
 * --introspect or an unknown service is said at once rather than waited on silently.
 */
export async function echo(service: string, o: EchoOptions, write: (text: string) => void, say: (line: string) => void = (l) => console.error(l)): Promise<void> {
  const url = o.url ?? defaultUrl()
  const client = await RosbridgeClient.connect(url, { token: o.token ?? process.env.ROBOT_BRIDGE_TOKEN })
  const topic = `${service}${SERVICE_EVENT_SUFFIX}`
  let stop: (() => void) | undefined
  try {
    const listed = (await client.call("/rosapi/topics", {}, { timeoutMs: DEFAULT_TIMEOUT_MS })) as { topics?: string[] }
    if (!(listed.topics ?? []).includes(topic)) {
      const services = ((await client.call("/rosapi/services", {}, { timeoutMs: DEFAULT_TIMEOUT_MS })) as { services?: string[] }).services ?? []
      if (services.includes(service)) {
        throw hinted(new ServiceError("unavailable", `the bridge at ${url} does not publish ${topic}`, service), "it was started without --introspect: restart it with `robot bridge --introspect` (or `robot sim --introspect`)")
      }
      throw hinted(new ServiceError("unimplemented", `no service ${service}`, service), "robot service list shows what there is")
    }
    await new Promise<void>((resolve, reject) => {
      const onSigint = () => resolve()
      process.once("SIGINT", onSigint)
      stop = () => process.off("SIGINT", onSigint)
      const off = client.subscribe(
        topic,
        (msg) => write(`${formatEvent(msg)}\n---\n`),
        (e) => {
          off()
          reject(e)
        },
      )
      // the bridge reads a connection's messages in order: once this answer is back the
      // subscription holds, and the line below tells a script it can make its calls now
      client.call("/rosapi/get_time", {}, { timeoutMs: DEFAULT_TIMEOUT_MS }).then(
        () => say(`echoing ${topic} (Ctrl+C to stop)`),
        (e: unknown) => reject(e),
      )
    })
  } finally {
    stop?.()
    client.close()
  }
}

/** One `<Name>_Event` message as `ros2 service echo` prints it (message_to_yaml). */
export function formatEvent(msg: unknown): string {
  return formatYaml(msg, "")
}
