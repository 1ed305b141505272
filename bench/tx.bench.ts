import { randomUUID } from "node:crypto";
import { bankService } from "../test/support/bank";
import { benchNode, stopBenchNode } from "./support";

/**
 * Coordinator throughput: sagas of three steps (debit, credit, credit) run to COMMITTED, and TCC
 * transactions of three branches (freeze on three accounts) tried and committed, `inFlight` at a
 * time. Runs on whatever BAZAAR_DB_URL names (SQLite files when unset).
 */
export async function coordinator(count = 2000, inFlight = 32) {
  const { node } = await benchNode({ bank: bankService });
  const { broker, platform } = node;
  const accounts = Array.from({ length: 16 }, () => `bench-${randomUUID().slice(0, 8)}`);
  for (const account of accounts) await broker.call("bank.open", { account, balance: 1_000_000_000 });
  const pick = (n: number, k: number) => accounts[(n * 3 + k) % accounts.length];

  const run = async (one: (n: number) => Promise<void>) => {
    let next = 0;
    const cpuBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) await one(next++);
      }),
    );
    return { started, cpuBefore };
  };
  const committed = async (kind: string) => {
    const metric = platform.metrics.registry.getSingleMetric("bazaar_tx_committed_total");
    const values = (await metric!.get()).values;
    return values.find((v) => v.labels.kind === kind)?.value ?? 0;
  };
  const finish = async (kind: string, from: { started: bigint; cpuBefore: NodeJS.CpuUsage }) => {
    while ((await committed(kind)) < count) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - from.started) / 1e9;
    const cpu = process.cpuUsage(from.cpuBefore);
    return { perSecond: Math.round(count / seconds), cpuMsPer: Math.round(((cpu.user + cpu.system) / 1000 / count) * 100) / 100 };
  };

  const sagas = await run(async (n) => {
    await broker.call("tx.saga", {
      gid: `saga-${randomUUID()}`,
      wait: true,
      steps: [
        { action: "bank.debit", compensate: "bank.credit", payload: { account: pick(n, 0), amount: 2 } },
        { action: "bank.credit", compensate: "bank.debit", payload: { account: pick(n, 1), amount: 1 } },
        { action: "bank.credit", compensate: "bank.debit", payload: { account: pick(n, 2), amount: 1 } },
      ],
    });
  });
  const saga = await finish("SAGA", sagas);

  const tccs = await run(async (n) => {
    const gid = `tcc-${randomUUID()}`;
    for (let k = 0; k < 3; k++)
      await broker.call("tx.tryBranch", { gid, initiator: "bench", action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: pick(n, k), amount: 1 } });
    await broker.call("tx.commit", { gid });
  });
  const tcc = await finish("TCC", tccs);
  await stopBenchNode(node);
  return { engine: process.env.BAZAAR_DB_URL ? new URL(process.env.BAZAAR_DB_URL).protocol.replace(":", "") : "sqlite", count, inFlight, branches: 3, sagasPerSecond: saga.perSecond, cpuMsPerSaga: saga.cpuMsPer, tccPerSecond: tcc.perSecond, cpuMsPerTcc: tcc.cpuMsPer };
}
