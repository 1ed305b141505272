import { Etcd3 } from "etcd3";

/** A client for `BAZAAR_ETCD_URL`: comma-separated endpoints, `http://`, `etcd://` or `etcd3://`. */
export function etcdClient(url: string): Etcd3 {
  return new Etcd3({ hosts: url.split(",").map((h) => h.trim().replace(/^etcd3?:\/\//, "http://")) });
}
