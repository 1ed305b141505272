import type { Etcd3, Namespace } from "etcd3";
import { etcdClient } from "../runtime/etcd";
import type { EntryState } from "./config.domain";
import { type Address, type ConfigStore, NO_ENTRY, type StoredVersion } from "./config.store";

/** An entry as etcd keeps it: what nodes run, and the last version number written (versions count per key). */
interface EntryDoc extends EntryState {
  lastVersion: number;
  updatedAt: number;
}

/** Version numbers padded so that etcd's key order is version order. */
const versionKey = (v: number) => String(v).padStart(10, "0");

/**
 * The config centre in etcd (the optional store): under `bazaar/<namespace>/config/`, an entry key per
 * value (what nodes run), a key per version, a key per registered schema. A write is one etcd
 * transaction that commits only if the entry is unchanged since it was read (its mod revision): two
 * operators writing at once both get a version, neither overwrites the other.
 */
export class EtcdConfigStore implements ConfigStore {
  private readonly client: Etcd3;
  private readonly kv: Namespace;

  constructor(url: string, systemNamespace: string) {
    this.client = etcdClient(url);
    this.kv = this.client.namespace(`bazaar/${systemNamespace}/config/`);
  }

  async start(): Promise<void> {
    // Fail at start, not on the first request, when etcd cannot be reached.
    await this.kv.get("probe").string();
  }

  async stop(): Promise<void> {
    this.client.close();
  }

  private entryKey = (a: Address) => `entries/${a.namespace}/${a.group}/${a.key}`;
  private versionsPrefix = (a: Address) => `versions/${a.namespace}/${a.group}/${a.key}/`;

  async schema(group: string, key: string) {
    const doc = await this.kv.get(`schemas/${group}/${key}`).json();
    return (doc as { schema: string } | null)?.schema;
  }

  async registerSchema(group: string, key: string, owner: string, schema: string, now: number) {
    if ((await this.schema(group, key)) === schema) return;
    await this.kv.put(`schemas/${group}/${key}`).value(JSON.stringify({ owner, schema, updatedAt: now }));
  }

  async entry(a: Address) {
    const doc = (await this.kv.get(this.entryKey(a)).json()) as EntryDoc | null;
    return doc ? { state: { releasedVersion: doc.releasedVersion, grayVersion: doc.grayVersion, grayTags: doc.grayTags }, updatedAt: doc.updatedAt } : undefined;
  }

  async version(a: Address, version: number) {
    return ((await this.kv.get(this.versionsPrefix(a) + versionKey(version)).json()) as StoredVersion | null) ?? undefined;
  }

  async history(a: Address, limit: number) {
    const found = await this.kv.getAll().prefix(this.versionsPrefix(a)).sort("Key", "Descend").limit(limit).exec();
    return found.kvs.map((kv) => JSON.parse(kv.value.toString()) as StoredVersion);
  }

  async append(a: Address, draft: Omit<StoredVersion, "version">, next: (state: EntryState, version: number) => EntryState): Promise<number> {
    const key = this.entryKey(a);
    for (;;) {
      const read = await this.kv.get(key).exec();
      const current = read.kvs[0];
      const doc = current ? (JSON.parse(current.value.toString()) as EntryDoc) : undefined;
      const version = (doc?.lastVersion ?? 0) + 1;
      const state = next(doc ?? NO_ENTRY, version);
      const entry: EntryDoc = { releasedVersion: state.releasedVersion, grayVersion: state.grayVersion, grayTags: state.grayTags, lastVersion: version, updatedAt: draft.createdAt };
      const written = await this.kv
        // A key that does not exist has mod revision 0.
        .if(key, "Mod", "==", current ? current.mod_revision : 0)
        .then(this.kv.put(this.versionsPrefix(a) + versionKey(version)).value(JSON.stringify({ ...draft, version })), this.kv.put(key).value(JSON.stringify(entry)))
        .commit();
      if (written.succeeded) return version;
    }
  }
}
