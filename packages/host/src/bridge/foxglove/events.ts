// Service introspection on Foxglove (REP-2012, issue 19): with `robot bridge --introspect`, a
// channel `<service>/_service_event` (`<pkg>/srv/<Name>_Event`, in JSON) for every service the
// robot lists whose type the bridge knows, carrying the REQUEST_SENT and RESPONSE_RECEIVED events of
// every call the bridge makes (calls/pipeline.ts `onServiceEvent`), from any front end: the same
// events rosbridge publishes on those topics.
import { SERVICE_EVENT_SUFFIX, type CallPipeline } from "../../calls/pipeline"
import { serviceEventDefinitions } from "../../calls/rosapi"
import type { Clients } from "./clients"
import type { Channel } from "./feeds"
import { JsonChannels, jsonChannel } from "./jsonchannels"

interface EventFeed {
  service: string
  channel: Channel
}

export class EventFeeds {
  private readonly set: JsonChannels<EventFeed>
  private readonly off: () => void

  constructor(
    private readonly pipeline: CallPipeline,
    clients: Clients,
    /** the channel id of a topic (Feeds.idOf: one numbering for every channel) */
    private readonly idOf: (topic: string) => number,
  ) {
    this.set = new JsonChannels(clients)
    this.off = pipeline.onServiceEvent((ev) => this.set.publish(this.set.find((f) => f.service === ev.service), ev.msg))
  }

  get channels(): Channel[] {
    return this.set.channels
  }

  has(channelId: number): boolean {
    return this.set.has(channelId)
  }

  /** Channels for the services the robot lists now (none without --introspect); those gone are unadvertised. */
  sync(): void {
    const p = this.pipeline
    const want = new Map<string, EventFeed>()
    if (p.introspect && p.node.state === "connected") {
      for (const s of p.services) {
        const type = p.registry[s.type]
        if (!type) continue
        const topic = `${s.name}${SERVICE_EVENT_SUFFIX}`
        want.set(topic, { service: s.name, channel: jsonChannel(this.idOf(topic), topic, serviceEventDefinitions(type)) })
      }
    }
    this.set.set(want)
  }

  close(): void {
    this.off()
  }
}
