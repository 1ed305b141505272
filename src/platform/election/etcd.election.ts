import type { Etcd3, Lease } from "etcd3";
import { etcdClient } from "../runtime/etcd";
import type { Logger } from "pino";
import type { Election, Leadership } from "./election";

/** Lease length: a dead leader is replaced within about this long (etcd's floor is 2 s with default ticks). */
const LEASE_TTL_SECONDS = 2;
/** A leader counts itself deposed this long before its lease could expire, so terms never overlap. */
const FENCE_MARGIN_MS = 400;

/**
 * Lease election on etcd (the recipe of etcd's own `concurrency` package): each candidate puts a key
 * under the election prefix bound to its lease; the oldest key (lowest create revision) leads; the
 * others each watch the key just ahead of theirs. A dead leader's lease expires, its key goes, and the
 * next in line leads. Progress is written in one transaction with a check that our key still exists.
 */
export class EtcdElection implements Election {
  private readonly client: Etcd3;
  private readonly leaderships: EtcdLeadership[] = [];

  constructor(
    url: string,
    private readonly namespace: string,
    private readonly logger: Logger,
  ) {
    this.client = etcdClient(url);
  }

  campaign(name: string, candidate: string): Leadership {
    const leadership = new EtcdLeadership(this.client, `bazaar/${this.namespace}/election/${name}/`, `bazaar/${this.namespace}/progress/${name}`, candidate, this.logger.child({ election: name }));
    this.leaderships.push(leadership);
    leadership.start();
    return leadership;
  }

  async close(): Promise<void> {
    for (const l of this.leaderships.splice(0)) await l.resign();
    this.client.close();
  }
}

class EtcdLeadership implements Leadership {
  private elected = false;
  /** performance.now() after which this process may no longer act as leader without a renewal. */
  private validUntil = 0;
  private key?: string;
  private createRevision?: string;
  private lease?: Lease;
  private stopped = false;
  private endTerm?: () => void;
  private fence?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly listeners: ((leading: boolean) => void)[] = [];

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly progressKey: string,
    private readonly candidate: string,
    private readonly logger: Logger,
  ) {}

  get leading(): boolean {
    return this.elected && performance.now() < this.validUntil;
  }

  onChange(listener: (leading: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.term();
      } catch (err) {
        if (!this.stopped) this.logger.warn({ err }, "election term ended with an error; campaigning again");
      }
      this.setElected(false);
      await this.lease?.revoke().catch(() => undefined);
      this.lease = undefined;
      if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** One candidacy: a lease and a key, waiting in line, then leading until the lease is lost or we resign. */
  private async term(): Promise<void> {
    const ended = new Promise<void>((resolve) => (this.endTerm = resolve));
    const lease = this.client.lease(LEASE_TTL_SECONDS);
    this.lease = lease;
    let firedAt = performance.now();
    lease.on("keepaliveFired", () => (firedAt = performance.now()));
    lease.on("keepaliveSucceeded", (res) => this.renewed(firedAt, Number(res.TTL)));
    lease.on("lost", (err) => {
      this.logger.warn({ err: err.message }, "election lease lost");
      this.depose();
    });
    const grantedAt = performance.now();
    const id = await lease.grant();
    this.renewed(grantedAt, LEASE_TTL_SECONDS);
    this.key = this.prefix + id;
    const put = await this.client.put(this.key).value(this.candidate).lease(id).exec();
    this.createRevision = put.header.revision;
    if (!(await Promise.race([this.waitInLine(put.header.revision, ended), ended.then(() => false)]))) return;
    this.setElected(true);
    await ended;
  }

  /** Resolves true once no key older than ours remains (watching the one just ahead), false if the term ends first. */
  private async waitInLine(revision: string, ended: Promise<void>): Promise<boolean> {
    for (;;) {
      if (this.stopped) return false;
      const ahead = await this.client
        .getAll()
        .prefix(this.prefix)
        .maxCreateRevision(String(BigInt(revision) - 1n))
        .sort("Create", "Descend")
        .limit(1)
        .exec();
      if (ahead.kvs.length === 0) return true;
      const watcher = await this.client.watch().key(ahead.kvs[0].key.toString()).startRevision(String(BigInt(ahead.header.revision) + 1n)).only("delete").create();
      try {
        const gone = new Promise<void>((resolve, reject) => {
          watcher.once("delete", () => resolve());
          watcher.once("error", reject);
        });
        await Promise.race([gone, ended]);
      } finally {
        await watcher.cancel();
      }
    }
  }

  /** A renewal sent at `sentAt` keeps the lease until sentAt + ttl at the earliest (etcd got it later). */
  private renewed(sentAt: number, ttlSeconds: number): void {
    if (ttlSeconds <= 0) return;
    this.validUntil = sentAt + ttlSeconds * 1000 - FENCE_MARGIN_MS;
    if (this.elected) this.armFence();
  }

  /** Without another renewal the leadership lapses at validUntil: the term ends then, and listeners hear it. */
  private armFence(): void {
    clearTimeout(this.fence);
    this.fence = setTimeout(() => {
      if (!this.leading) this.depose();
    }, Math.max(0, this.validUntil - performance.now()) + 1);
  }

  /** Stops leading at once (listeners hear it now), then ends the term; the loop campaigns again. */
  private depose(): void {
    this.setElected(false);
    this.endTerm?.();
  }

  private setElected(elected: boolean): void {
    if (this.elected === elected) return;
    this.elected = elected;
    if (elected) this.armFence();
    else clearTimeout(this.fence);
    this.logger.info({ candidate: this.candidate, leading: elected }, elected ? "leading" : "not leading");
    for (const l of this.listeners) l(elected);
  }

  async loadProgress(): Promise<Record<string, number>> {
    const value = await this.client.get(this.progressKey).string();
    return value ? (JSON.parse(value) as Record<string, number>) : {};
  }

  async saveProgress(progress: Record<string, number>): Promise<boolean> {
    const { key, createRevision } = this;
    if (!this.leading || !key || !createRevision) return false;
    const result = await this.client.if(key, "Create", "==", createRevision).then(this.client.put(this.progressKey).value(JSON.stringify(progress))).commit();
    if (!result.succeeded) {
      this.logger.warn("progress refused: this process no longer holds the leadership");
      this.depose();
      return false;
    }
    return true;
  }

  async resign(): Promise<void> {
    this.stopped = true;
    this.endTerm?.();
    await this.running;
  }
}
