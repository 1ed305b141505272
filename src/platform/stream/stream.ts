/**
 * The durable message log port (RocketMQ / Kafka in the seeds). At-least-once delivery to named
 * durable consumers, in publish order per subject — kept through a failing handler (its message is
 * tried again before any later one), a restart and, on a shared log, replicas of one consumer (one
 * of them has a message at a time); publishing the same id twice stores it once.
 */
export interface StreamMessage<T = unknown> {
  id: string;
  subject: string;
  data: T;
  headers: Record<string, string>;
  /** Position in the log; increases with publish order. */
  seq: number;
}

export interface PublishOptions {
  /** Deduplication key: a message published twice with one id is delivered once. */
  id: string;
  headers?: Record<string, string>;
}

export interface ConsumeOptions {
  /** Consumer name; its position survives restarts. */
  durable: string;
  subject: string;
  /** Resolves when the message is handled (then acknowledged); a throw redelivers it, backing off, before any later message. */
  handler: (message: StreamMessage) => Promise<void>;
  /**
   * Instead of `handler`: several consecutive messages at once (up to `maxBatch`, those already in the
   * log), acknowledged together when it resolves; a throw redelivers them all, as `handler`. A log that hands
   * messages over one at a time passes batches of one.
   */
  batch?: { maxBatch: number; handler: (messages: StreamMessage[]) => Promise<void> };
}

export interface Subscription {
  stop(): Promise<void>;
}

export interface OutgoingMessage extends PublishOptions {
  subject: string;
  /** The data as JSON text: the outbox keeps it so, and relays it without parsing it again. */
  json: string;
}

export interface Stream {
  publish(subject: string, data: unknown, options: PublishOptions): Promise<void>;
  /** Publishes in order; resolves when all are stored (one write for the embedded log). */
  publishAll(messages: OutgoingMessage[]): Promise<void>;
  consume(options: ConsumeOptions): Promise<Subscription>;
  close(): Promise<void>;
}

/**
 * How long the log keeps a message. Consumers are expected to keep up within it; the outbox relays in
 * seconds. Inbox rows older than this can go too: their message can no longer come back.
 */
export const RETENTION_MS = 7 * 86_400_000;

/** Redelivery backoff after a failed handler: 100 ms doubling to 5 s. */
export function retryDelay(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
}
