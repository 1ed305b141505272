import type { ServiceBroker } from "moleculer";
import type { Counter, Gauge } from "prom-client";
import type { Metrics } from "../observability/metrics";

/** Broadcast by services, after their change commits, to every gateway: `{channel, key, data}`. */
export const PUSH_EVENT = "platform.push";

/** Sends `data` to the WebSocket clients subscribed to `channel` for `key` (e.g. "trades", "BTC-USDT"), on every gateway. */
export function push(broker: ServiceBroker, channel: string, key: string, data: unknown): void {
  broker.broadcast(PUSH_EVENT, { channel, key, data });
}

/**
 * How long until the next beat of a clock ticking every `everyMs` (on the wall clock, 1 to `everyMs`):
 * pushes paced on it leave in the same turn whichever service sends them, so the hub writes a client's
 * frames of all its topics in one go.
 */
export function untilNextBeat(everyMs: number): number {
  return everyMs - (Date.now() % everyMs);
}

/**
 * Pushes items of a busy topic as lists, at most one push per topic every `everyMs` beat: the first item
 * after a quiet spell goes out at once (alone), those that follow within the spell wait for the next
 * beat and go together, oldest first. What a thousand subscribers cost then follows the push rate, not the
 * item rate (a message per trade to every subscriber is the whole gateway's CPU at a few hundred
 * trades a second).
 */
export class PushBatcher<T> {
  private readonly topics = new Map<string, { channel: string; key: string; waiting: T[]; timer: NodeJS.Timeout }>();

  constructor(
    private readonly send: (channel: string, key: string, items: T[]) => void,
    private readonly everyMs: number,
  ) {}

  add(channel: string, key: string, item: T): void {
    const id = `${channel}|${key}`;
    const topic = this.topics.get(id);
    if (topic) {
      topic.waiting.push(item);
      return;
    }
    this.send(channel, key, [item]);
    this.topics.set(id, { channel, key, waiting: [], timer: this.quiet(id) });
  }

  /** Sends what waits; the topic stays quiet until a whole spell passes without items. */
  private quiet(id: string): NodeJS.Timeout {
    return setTimeout(() => {
      const topic = this.topics.get(id)!;
      if (topic.waiting.length === 0) {
        this.topics.delete(id);
        return;
      }
      const items = topic.waiting;
      topic.waiting = [];
      this.send(topic.channel, topic.key, items);
      topic.timer = this.quiet(id);
    }, untilNextBeat(this.everyMs));
  }

  /** Sends everything waiting now (at shutdown). */
  flush(): void {
    for (const topic of this.topics.values()) {
      clearTimeout(topic.timer);
      if (topic.waiting.length > 0) this.send(topic.channel, topic.key, topic.waiting);
    }
    this.topics.clear();
  }
}

/** The connection under a WebSocket: held back while a turn's frames are written, they leave in one system call. */
export interface PushTransport {
  cork(): void;
  uncork(): void;
}

/** What the hub needs of a socket (the `ws` WebSocket has it). */
export interface PushSocket {
  readonly bufferedAmount: number;
  send(data: string | Buffer, options?: { binary: boolean }): void;
  ping(): void;
  terminate(): void;
  close(code: number, reason: string): void;
  on(event: "message", listener: (data: Buffer | string) => void): void;
  on(event: "pong" | "close", listener: () => void): void;
}

interface Client {
  socket: PushSocket;
  transport?: PushTransport;
  topics: Set<string>;
  alive: boolean;
  /** Frames waiting for the end of this turn, and their bytes. */
  queued: Buffer[];
  queuedBytes: number;
}

const CHANNEL = /^[a-z][a-z0-9-]{0,31}$/;
const KEY = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_TOPICS = 100;
/** Clients written to in one turn of the event loop (see `PushHub.flush`). */
const FLUSH_CLIENTS = 100;

/**
 * The gateway's WebSocket fan-out: clients subscribe to (channel, key) topics and get what services
 * push to them. A client that reads too slowly is dropped rather than let its buffer grow; one that
 * stops answering pings is dropped at the next heartbeat.
 *
 * What a client is sent during one turn of the event loop is written at its end, together (pushes of
 * several topics due at the same time — a symbol's depth and trades — leave in one system call instead
 * of one each; with a thousand subscribers those calls were a seventh of the node's CPU).
 */
export class PushHub {
  private readonly clients = new Set<Client>();
  private readonly byTopic = new Map<string, Set<Client>>();
  private readonly delivered: Counter;
  private readonly dropped: Counter<"why">;
  private readonly connected: Gauge;
  /** Clients with frames queued this turn. */
  private readonly pending: Client[] = [];

  constructor(
    metrics: Metrics,
    /** Bytes a client may have queued and unsent before it is dropped. */
    private readonly maxBuffered = 1 << 20,
  ) {
    this.delivered = metrics.counter("bazaar_push_messages_total", "messages pushed to WebSocket clients", []);
    this.dropped = metrics.counter("bazaar_push_dropped_clients_total", "WebSocket clients dropped", ["why"]);
    this.connected = metrics.gauge("bazaar_push_clients", "WebSocket clients connected");
  }

  attach(socket: PushSocket, transport?: PushTransport): void {
    const client: Client = { socket, transport, topics: new Set(), alive: true, queued: [], queuedBytes: 0 };
    this.clients.add(client);
    this.connected.set(this.clients.size);
    socket.on("pong", () => {
      client.alive = true;
    });
    socket.on("close", () => this.detach(client));
    socket.on("message", (raw) => this.onMessage(client, raw));
    this.send(client, { op: "welcome", heartbeatMs: 15_000 });
  }

  publish(channel: string, key: string, data: unknown): void {
    const subscribers = this.byTopic.get(`${channel}|${key}`);
    if (!subscribers) return;
    // Encoded once for every subscriber: with a thousand of them, per-socket UTF-8 encoding was the cost.
    const payload = Buffer.from(JSON.stringify({ channel, key, data }));
    for (const client of subscribers) this.deliver(client, payload);
  }

  /** Pings every client; one that did not answer the previous ping is dropped. */
  heartbeat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        this.dropped.inc({ why: "unresponsive" });
        client.socket.terminate();
        this.detach(client);
        continue;
      }
      client.alive = false;
      client.socket.ping();
    }
  }

  get size(): number {
    return this.clients.size;
  }

  private onMessage(client: Client, raw: Buffer | string): void {
    let msg: { op?: unknown; channel?: unknown; key?: unknown };
    try {
      msg = JSON.parse(String(raw));
    } catch {
      return this.send(client, { op: "error", code: "INVALID_MESSAGE", message: "messages are JSON objects" });
    }
    const { op, channel, key } = msg ?? {};
    if (op !== "subscribe" && op !== "unsubscribe") return this.send(client, { op: "error", code: "INVALID_OP", message: "op is subscribe or unsubscribe" });
    if (typeof channel !== "string" || !CHANNEL.test(channel)) return this.send(client, { op: "error", code: "INVALID_CHANNEL", message: "channel is a lower-case name" });
    if (typeof key !== "string" || !KEY.test(key)) return this.send(client, { op: "error", code: "INVALID_KEY", message: "key is 1-64 letters, digits, '.', '_' or '-'" });
    const topic = `${channel}|${key}`;
    if (op === "subscribe") {
      if (!client.topics.has(topic) && client.topics.size >= MAX_TOPICS) return this.send(client, { op: "error", code: "TOO_MANY_TOPICS", message: `at most ${MAX_TOPICS} subscriptions` });
      client.topics.add(topic);
      if (!this.byTopic.has(topic)) this.byTopic.set(topic, new Set());
      this.byTopic.get(topic)!.add(client);
    } else {
      client.topics.delete(topic);
      this.byTopic.get(topic)?.delete(client);
    }
    this.send(client, { op: op === "subscribe" ? "subscribed" : "unsubscribed", channel, key });
  }

  private send(client: Client, message: object): void {
    this.deliver(client, Buffer.from(JSON.stringify(message)));
  }

  private deliver(client: Client, payload: Buffer): void {
    if (client.socket.bufferedAmount + client.queuedBytes + payload.length > this.maxBuffered) {
      this.dropped.inc({ why: "slow" });
      client.socket.close(1013, "too slow: messages were piling up");
      client.socket.terminate();
      this.detach(client);
      return;
    }
    if (client.queued.length === 0) {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push(client);
    }
    client.queued.push(payload);
    client.queuedBytes += payload.length;
  }

  /**
   * Writes each waiting client's frames, together — at most FLUSH_CLIENTS clients a turn, the rest on
   * the next: a thousand subscribers' writes in one go held every request behind them for ~10 ms.
   */
  flush(): void {
    const clients = this.pending.splice(0, FLUSH_CLIENTS);
    if (this.pending.length > 0) setImmediate(() => this.flush());
    for (const client of clients) {
      const frames = client.queued;
      if (frames.length === 0) continue;
      client.queued = [];
      client.queuedBytes = 0;
      client.transport?.cork();
      for (const frame of frames) client.socket.send(frame, { binary: false });
      client.transport?.uncork();
      this.delivered.inc(frames.length);
    }
  }

  private detach(client: Client): void {
    client.queued = [];
    if (!this.clients.delete(client)) return;
    for (const topic of client.topics) {
      const set = this.byTopic.get(topic);
      set?.delete(client);
      if (set?.size === 0) this.byTopic.delete(topic);
    }
    this.connected.set(this.clients.size);
  }
}
