import { etcdClient } from "../runtime/etcd";
import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { cleanEngines, engines, eventually, testConfig } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import type { OutboxTables } from "../outbox/outbox";
import { createPlatform, type Platform } from "../runtime/platform";
import type { ServiceHost } from "../runtime/service-host";
import { type Leadership, SingleNodeElection } from "./election";

let platform: Platform | undefined;
const hosts: ServiceHost<OutboxTables>[] = [];
const leaderships: Leadership[] = [];
afterEach(async () => {
  for (const l of leaderships.splice(0)) await l.resign();
  for (const h of hosts.splice(0)) await h.stop();
  if (platform) {
    await platform.close();
    await cleanEngines(platform.config);
    platform = undefined;
  }
});

describe("single-node election", () => {
  it("leads from the start and keeps the progress it is given", async () => {
    const election = new SingleNodeElection();
    const l = election.campaign("engine");
    const heard: boolean[] = [];
    l.onChange((leading) => heard.push(leading));
    await Promise.resolve();
    expect(l.leading).toBe(true);
    expect(heard).toEqual([true]);
    expect(await l.saveProgress({ a: 3 })).toBe(true);
    expect(await l.saveProgress({ b: 1 })).toBe(true);
    expect(await election.campaign("engine").loadProgress()).toEqual({ a: 3, b: 1 });
    expect(await election.campaign("other").loadProgress()).toEqual({});
  });
});

describe.skipIf(!engines.etcd)("etcd election", () => {
  async function start() {
    platform = await createPlatform(testConfig(), { clock: new ManualClock(), processMetrics: false });
    return platform;
  }
  const campaign = (p: Platform, candidate: string) => {
    const l = p.election.campaign("pair", candidate);
    leaderships.push(l);
    return l;
  };

  it("elects one leader, fences the progress of a deposed one, and hands over on resignation", async () => {
    const p = await start();
    const x = campaign(p, "x");
    await eventually(async () => x.leading);
    const y = campaign(p, "y");
    await new Promise((r) => setTimeout(r, 300));
    expect(y.leading).toBe(false);
    expect(await x.saveProgress({ "events:A": 5 })).toBe(true);
    expect(await y.saveProgress({ "events:A": 1 })).toBe(false);
    expect(await y.loadProgress()).toEqual({ "events:A": 5 });

    // Resigning hands over at once: well within the 2 s a lapsed lease would take.
    await x.resign();
    await eventually(async () => y.leading, 3000);
    expect(x.leading).toBe(false);

    // Someone else removes y's key (as etcd does when its lease lapses): y may no longer write, and
    // stops leading; alone in the election, it campaigns again and leads again.
    const etcd = etcdClient(p.config.etcdUrl!);
    await etcd.delete().prefix(`bazaar/${p.config.namespace}/election/pair/`).exec();
    etcd.close();
    expect(await y.saveProgress({ "events:A": 9 })).toBe(false);
    expect(y.leading).toBe(false);
    expect(await y.loadProgress()).toEqual({ "events:A": 5 });
    await eventually(async () => y.leading, 5000);
  });

  it("publishes replicas' identical events once: a standby drops what its leader published and continues after it", async () => {
    const p = await start();
    const seen: { id: string; position: number }[] = [];
    const sub = await p.stream.consume({ durable: "watch", subject: "pair.events", handler: async (m) => void seen.push({ id: m.id, position: m.seq }) });
    const x = campaign(p, "x");
    await eventually(async () => x.leading);
    const y = campaign(p, "y");
    const replica = async (name: string, leadership: Leadership) => {
      const host = p.host<OutboxTables>(name, {});
      host.publishWhileLeading(leadership);
      hosts.push(host);
      await host.start();
      return host;
    };
    const hx = await replica("replica_x", x);
    const hy = await replica("replica_y", y);
    const write = (host: ServiceHost<OutboxTables>, from: number, to: number) =>
      host.tx(async (_trx, emit) => {
        for (let i = from; i <= to; i++) emit("pair.events", { i }, `e-${i}`, { key: "events:A", seq: i });
      });
    const outboxOf = async (host: ServiceHost<OutboxTables>) => (await (host.db as Kysely<OutboxTables>).selectFrom("outbox").select("event_id").execute()).length;

    await write(hx, 1, 5);
    await write(hy, 1, 5);
    await eventually(async () => seen.length === 5);
    // The standby learns its leader's progress and empties its outbox of what went out.
    await eventually(async () => (await outboxOf(hy)) === 0, 5000);

    // The leader falls behind (its 6..7 are out; 8..9 it never computes), then goes away.
    await write(hy, 6, 9);
    await write(hx, 6, 7);
    await eventually(async () => seen.length === 7);
    await x.resign();
    await eventually(async () => seen.length === 9, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.map((s) => s.id)).toEqual(Array.from({ length: 9 }, (_, i) => `e-${i + 1}`));
    expect(await y.loadProgress()).toEqual({ "events:A": 9 });
    await sub.stop();
  });
});
