import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdClient } from "../runtime/etcd";
import { publish } from "./config.domain";
import { EtcdConfigStore } from "./config.etcd.store";

const url = process.env.BAZAAR_ETCD_URL;
const namespace = `t${randomBytes(5).toString("hex")}`;

describe.skipIf(!url)("the config centre's etcd store", () => {
  let store: EtcdConfigStore;
  const a = { namespace: "test", group: "shop", key: "limits" };
  const draft = (value: unknown, at: number) => ({ value: JSON.stringify(value), authorId: 1, author: "op", action: "RELEASE", grayTags: null, rollbackOf: null, createdAt: at });

  beforeAll(async () => {
    store = new EtcdConfigStore(url!, namespace);
    await store.start();
  });

  afterAll(async () => {
    await store.stop();
    const etcd = etcdClient(url!);
    await etcd.delete().prefix(`bazaar/${namespace}/`).exec();
    etcd.close();
  });

  it("gives concurrent writers one version each, none lost, and lists them newest first", async () => {
    const written = await Promise.all(Array.from({ length: 12 }, (_, i) => store.append(a, draft({ n: i }, 1000 + i), (s, v) => publish(s, v, { kind: "release" }))));
    expect([...written].sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect((await store.entry(a))?.state).toEqual({ releasedVersion: 12, grayVersion: null, grayTags: [] });
    const history = await store.history(a, 5);
    expect(history.map((v) => v.version)).toEqual([12, 11, 10, 9, 8]);
    const eleventh = await store.version(a, 11);
    expect(eleventh).toMatchObject({ version: 11, author: "op", action: "RELEASE" });
    expect(await store.version(a, 99)).toBeUndefined();
  });

  it("keeps a gray version apart from the released one", async () => {
    const v = await store.append(a, { ...draft({ gray: true }, 2000), action: "GRAY", grayTags: ["canary"] }, (s, version) => publish(s, version, { kind: "gray", tags: ["canary"] }));
    expect((await store.entry(a))?.state).toEqual({ releasedVersion: 12, grayVersion: v, grayTags: ["canary"] });
    expect((await store.version(a, v))?.grayTags).toEqual(["canary"]);
  });

  it("registers a schema once and replaces it when it changes", async () => {
    expect(await store.schema("shop", "nothing")).toBeUndefined();
    await store.registerSchema("shop", "limits", "shop", '{"type":"object"}', 1);
    await store.registerSchema("shop", "limits", "shop", '{"type":"object"}', 2);
    expect(await store.schema("shop", "limits")).toBe('{"type":"object"}');
    await store.registerSchema("shop", "limits", "shop", '{"type":"array"}', 3);
    expect(await store.schema("shop", "limits")).toBe('{"type":"array"}');
  });
});
