// Service introspection on Foxglove (REP-2012, issue 19): with `robot bridge --introspect`, a
// channel `<service>/_service_event` (`<pkg>/srv/<Name>_Event`, in JSON) for every service the
// robot lists whose type the bridge knows, carrying the REQUEST_SENT and RESPONSE_RECEIVED events of
// every call the bridge makes (calls/pipeline.ts `onServiceEvent`), from any front end: the same
// events rosbridge publishes on those topics.
import { SERVICE_EVENT_SUFFIX, type CallPipeline } from "../../calls/pipeline"
import { serviceEventDefinitions } from "../../calls/rosapi"
import type { Clients } from "./clients"
import type { Channel } from "./feeds"
import { JsonChannels } from "./jsonchannels"

interface EventFeed {
  service: string
  channel: Channel
}

export class EventFeeds extends JsonChannels<EventFeed> {
  constructor(
    private readonly pipeline: CallPipeline,
    clients: Clients,
    idOf: (topic: string) => number,
  ) {
    super(clients, idOf)
    this.off = pipeline.onServiceEvent((ev) => this.publish(this.find((f) => f.service === ev.service), ev.msg))
  }

  /** the services the robot lists now whose types the bridge knows (none without --introspect) */
  protected wanted(): Map<string, EventFeed> {
    const p = this.pipeline
    const want = new Map<string, EventFeed>()
    if (!p.introspect || p.node.state !== "connected") return want
    for (const s of p.services) {
      const type = p.registry[s.type]
      if (!type) continue
      const topic = `${s.name}${SERVICE_EVENT_SUFFIX}`
      want.set(topic, { service: s.name, channel: this.channel(topic, serviceEventDefinitions(type)) })
    }
    return want
  }
}
