import {
  AckPolicy,
  type ConsumerMessages,
  connect,
  DeliverPolicy,
  headers as natsHeaders,
  type JetStreamClient,
  type JetStreamManager,
  JSONCodec,
  type NatsConnection,
  nanos,
} from "nats";
import type { Logger } from "pino";
import { traceIdOf } from "../observability/message-tracing";
import { Pause } from "../runtime/pause";
import { type ConsumeOptions, type OutgoingMessage, type PublishOptions, RETENTION_MS, retryDelay, type Stream, type StreamMessage, type Subscription } from "./stream";

const codec = JSONCodec();
const utf8 = new TextEncoder();
/** How long a delivered message may go unacknowledged before the server hands it out again (a killed consumer's). */
const ACK_WAIT_MS = 15_000;

/** The server's answer for a consumer (or stream) that does not exist. */
function isMissing(err: unknown): boolean {
  return (err as { code?: string })?.code === "404";
}

/**
 * NATS JetStream adapter: one stream per namespace holding `<ns>.>`; a durable pull consumer per
 * (consumer name, subject) pair, because nats-server 2.9 takes one filter subject per consumer.
 * `msgID` gives publish-side dedup within the duplicate window; the inbox covers the rest.
 */
export class JetStreamStream implements Stream {
  private readonly streamName: string;
  private readonly running = new Set<ConsumerMessages>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly namespace: string,
    private readonly logger: Logger,
    private readonly replicas: number,
  ) {
    this.streamName = `BAZAAR_${namespace.toUpperCase()}`;
  }

  /** `replicas`: copies of the stream a JetStream cluster keeps (3 on a 3-node cluster survives a node's loss). */
  static async connect(url: string, namespace: string, logger: Logger, replicas = 1): Promise<JetStreamStream> {
    const nc = await connect({ servers: url, name: `bazaar-stream-${process.pid}`, maxReconnectAttempts: -1 });
    const jsm = await nc.jetstreamManager();
    const stream = new JetStreamStream(nc, nc.jetstream(), jsm, namespace, logger, replicas);
    await stream.ensureStream();
    return stream;
  }

  private async ensureStream(): Promise<void> {
    const config = {
      name: this.streamName,
      subjects: [`${this.namespace}.>`],
      duplicate_window: nanos(10 * 60_000),
      max_age: nanos(RETENTION_MS),
      num_replicas: this.replicas,
    };
    try {
      const info = await this.jsm.streams.info(this.streamName);
      if (info.config.max_age !== config.max_age || info.config.num_replicas !== config.num_replicas)
        await this.jsm.streams.update(this.streamName, { ...info.config, max_age: config.max_age, num_replicas: config.num_replicas });
    } catch {
      try {
        await this.jsm.streams.add(config);
      } catch (err) {
        // Another process created it between our look-up and our add.
        await this.jsm.streams.info(this.streamName).catch(() => {
          throw err;
        });
      }
    }
  }

  async publish(subject: string, data: unknown, options: PublishOptions): Promise<void> {
    await this.send(subject, codec.encode(data), options);
  }

  async publishAll(messages: OutgoingMessage[]): Promise<void> {
    // Pipelined on one connection, so the server stores them in this order; a failure retries the
    // whole batch, and msgID dedup drops the ones already stored.
    await Promise.all(messages.map((m) => this.send(m.subject, utf8.encode(m.json), m)));
  }

  private async send(subject: string, data: Uint8Array, options: PublishOptions): Promise<void> {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(options.headers ?? {})) h.set(k, v);
    await this.js.publish(`${this.namespace}.${subject}`, data, { msgID: options.id, headers: h });
  }

  async consume(options: ConsumeOptions): Promise<Subscription> {
    const durable = `${options.durable}__${options.subject}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const config = {
      durable_name: durable,
      filter_subject: `${this.namespace}.${options.subject}`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // A killed consumer's unacknowledged message comes back after this long.
      ack_wait: nanos(ACK_WAIT_MS),
      // One message out at a time, whichever of a service's replicas pulls it: the next is handed over
      // only once this one is acknowledged, so the log's order holds across replicas, a failure and a
      // killed process (a redelivery goes out before anything after it).
      max_ack_pending: 1,
    };
    try {
      const info = await this.jsm.consumers.info(this.streamName, durable);
      // Made by an earlier version, which let a thousand out at once.
      if (info.config.max_ack_pending !== config.max_ack_pending || info.config.ack_wait !== config.ack_wait)
        await this.jsm.consumers.update(this.streamName, durable, { max_ack_pending: config.max_ack_pending, ack_wait: config.ack_wait });
    } catch (err) {
      if (!isMissing(err)) throw err;
      await this.jsm.consumers.add(this.streamName, config);
    }
    const consumer = await this.js.consumers.get(this.streamName, durable);
    // Pulls ask for many at once (fewer requests); the server still hands over one at a time (above).
    const messages = await consumer.consume({ max_messages: 256 });
    this.running.add(messages);
    let stopping = false;
    const pause = new Pause();
    const loop = (async () => {
      for await (const m of messages) {
        if (stopping) {
          // Handed over while stopping: straight back, for whoever consumes next.
          m.nak();
          continue;
        }
        const headers: Record<string, string> = {};
        for (const [k] of m.headers ?? []) headers[k] = m.headers!.get(k);
        const message: StreamMessage = {
          id: m.headers?.get("Nats-Msg-Id") ?? String(m.seq),
          subject: m.subject.slice(this.namespace.length + 1),
          data: codec.decode(m.data),
          headers,
          seq: m.seq,
        };
        // A failed message is tried again here until it succeeds, holding back those after it, as the
        // embedded log does: handed back (nak), the next ones would be handled before it.
        for (let attempt = 0; ; attempt++) {
          try {
            // Messages come one at a time here: a batch consumer gets batches of one.
            if (options.batch) await options.batch.handler([message]);
            else await options.handler(message);
            await m.ackAck();
            break;
          } catch (err) {
            if (!stopping) {
              this.logger.warn({ err, durable, seq: m.seq, attempt, traceId: traceIdOf(headers) }, "stream handler failed; trying it again");
              // Still ours: no redelivery to a replica meanwhile.
              m.working();
              await pause.for(retryDelay(attempt));
            }
            if (stopping) {
              m.nak();
              break;
            }
          }
        }
      }
    })();
    return {
      stop: async () => {
        stopping = true;
        pause.wake();
        messages.stop();
        await loop;
        this.running.delete(messages);
      },
    };
  }

  async close(): Promise<void> {
    for (const messages of this.running) messages.stop();
    await this.nc.drain();
  }
}
