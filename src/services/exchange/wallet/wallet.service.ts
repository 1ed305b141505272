import { randomBytes } from "node:crypto";
import type { Selectable } from "kysely";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { type Address, createWalletClient, encodeFunctionData, erc20Abi, getAddress, type Hex, isAddress, keccak256, parseAbiItem, zeroAddress } from "viem";
import { HDKey, hdKeyToAccount, type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { z } from "zod";
import { type Chain, type ChainToken } from "../../../platform/chain/chain";
import { iso } from "../../../platform/clock/clock";
import { writeAudit } from "../../../platform/db/audit";
import { isUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, requireIdempotencyKey, requireRole, requireUser } from "../../../platform/runtime/action";
import { AppError, badRequest, conflict, notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import { crashPoint } from "../../../platform/runtime/faults";
import { loadSecret } from "../../../platform/runtime/secrets";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { initiator, txClient } from "../../../platform/tx/tx.client";
import { fromUnits, toUnits } from "../account/account.domain";
import { type DepositView, WalletContract as C, walletRoutes, type WithdrawalView } from "./wallet.contract";
import { afterFreeze, canMove, dayOf, forkPoint, isConfirmed, type Limits, toChainUnits, toLedgerUnits, type WithdrawalStatus, withdrawalProblem } from "./wallet.domain";
import { type WalletDb, walletMigrations, type WalletTables } from "./wallet.store";

type WithdrawalRow = Selectable<WalletTables["withdrawals"]>;

/** Blocks kept to find where a reorganised chain forks from what was scanned. */
const REORG_WINDOW = 128;
const MAX_BLOCKS_PER_SCAN = 200;
const CYCLE_MS = 1000;
/** A withdrawal whose freeze never settled (its node died mid-entry) is rolled back after this long. */
const PENDING_TIMEOUT_MS = 60_000;
const FREEZE_DECISION_MS = 15_000;
const TRANSFER = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

/** Per asset, decimal strings in the asset's unit: `{ "ETH": { approvalAbove: "1", maxPerWithdrawal: "50", dailyMax: "100" } }`. */
const LimitsConfig = z.record(z.string(), z.object({ approvalAbove: z.string(), maxPerWithdrawal: z.string(), dailyMax: z.string() }));
type LimitsConfig = z.infer<typeof LimitsConfig>;
const DEFAULT_LIMITS: LimitsConfig = {
  ETH: { approvalAbove: "1", maxPerWithdrawal: "50", dailyMax: "100" },
  USDT: { approvalAbove: "10000", maxPerWithdrawal: "100000", dailyMax: "200000" },
};

/**
 * The wallet (behind the isolated RPC zone; the only service holding keys): deposit addresses derived
 * per user from an HD seed; a scanner that follows the chain block by block (native transfers and
 * ERC-20 `Transfer` logs to our addresses), rewinds to the fork point on a reorganisation, and credits a
 * deposit to the account once it has enough confirmations; withdrawals checked (address, limits), their
 * funds frozen by TCC at entry, approved by an operator above a threshold, signed with the hot key,
 * recorded before broadcast (a restart rebroadcasts the same transaction), tracked to confirmation, then
 * paid out of the frozen funds — or the funds returned if it failed or was rejected.
 */
export function walletService(platform: Platform): ServiceSchema {
  const host = platform.host<WalletTables>("wallet", walletMigrations);
  const { clock, config } = platform;
  const limits = platform.configs.watch("wallet", "wallet", "limits", LimitsConfig, DEFAULT_LIMITS);
  const cycle = new Sweeper(() => runCycle(), CYCLE_MS, host.logger, "wallet chain cycle");
  let broker: ServiceBroker;
  let chain: Chain;
  let seed: HDKey;
  let hot: PrivateKeyAccount;
  const decimalsCache = new Map<string, number>();
  const queueAge = platform.metrics.gauge("bazaar_wallet_withdrawal_queue_age_seconds", "age of the oldest withdrawal waiting for approval, signing or confirmation (0: none)");
  const credited = platform.metrics.counter("bazaar_wallet_deposits_credited_total", "deposits credited to accounts, by asset", ["asset"]);

  const onChain = (asset: string): { decimals: number; token?: ChainToken } | undefined => {
    if (asset === chain.native.asset) return { decimals: chain.native.decimals };
    const token = chain.tokens.find((t) => t.asset === asset);
    return token && { decimals: token.decimals, token };
  };

  function supported(asset: string) {
    const c = onChain(asset);
    if (!c) throw notFound("ASSET_NOT_SUPPORTED", `the wallet does not carry ${asset}`);
    return c;
  }

  /** The asset's decimals in the ledger (the account service's), asked until it exists; undefined before. */
  async function knownDecimals(asset: string): Promise<number | undefined> {
    if (!decimalsCache.has(asset)) {
      const assets: { code: string; decimals: number }[] = await broker.call("account.listAssets", {});
      for (const a of assets) decimalsCache.set(a.code, a.decimals);
    }
    return decimalsCache.get(asset);
  }

  async function ledgerDecimals(asset: string): Promise<number> {
    const d = await knownDecimals(asset);
    if (d === undefined) throw notFound("ASSET_NOT_FOUND", `no exchange asset ${asset}`);
    return d;
  }

  async function limitsOf(asset: string, decimals: number): Promise<Limits> {
    const l = limits.value[asset];
    if (!l) throw conflict("WITHDRAWALS_DISABLED", `no withdrawal limits are set for ${asset}`, "asset");
    const units = (v: string) => toUnits(v, decimals) ?? 0n;
    return { approvalAbove: units(l.approvalAbove), maxPerWithdrawal: units(l.maxPerWithdrawal), dailyMax: units(l.dailyMax) };
  }

  function withdrawalView(w: WithdrawalRow, decimals: number): WithdrawalView {
    return {
      id: Number(w.id),
      asset: w.asset,
      address: w.address,
      amount: fromUnits(BigInt(w.amount), decimals),
      status: w.status,
      reason: w.reason,
      txHash: w.tx_hash,
      createdAt: iso(Number(w.created_at)),
    };
  }

  // ---- deposits -------------------------------------------------------------------------------

  async function addressOf(userId: number): Promise<string> {
    const found = await host.db.selectFrom("addresses").select("address").where("user_id", "=", userId).executeTakeFirst();
    if (found) return getAddress(found.address);
    try {
      return await host.tx(async (trx) => {
        // The row id is the HD index: the address is derived from it inside the same transaction.
        const index = await host.store.insertId(trx.insertInto("addresses").values({ user_id: userId, address: `pending:${userId}`, created_at: clock.now() }));
        const address = hdKeyToAccount(seed, { addressIndex: index }).address;
        await trx.updateTable("addresses").set({ address: address.toLowerCase() }).where("id", "=", index).execute();
        return address;
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return addressOf(userId);
    }
  }

  const blockHash = async (n: number) => (await chain.client.getBlock({ blockNumber: BigInt(n) })).hash;

  /** Where to continue: after the last scanned block, or after the fork point when the chain reorganised. */
  async function resumeFrom(head: number): Promise<number> {
    const top = await host.db.selectFrom("blocks").selectAll().orderBy("number", "desc").limit(1).executeTakeFirst();
    if (!top) return head;
    const last = Number(top.number);
    if (last > head || (await blockHash(last)) !== top.hash) {
      const ours = (await host.db.selectFrom("blocks").selectAll().orderBy("number", "desc").limit(REORG_WINDOW).execute()).map((b) => ({ number: Number(b.number), hash: b.hash }));
      const canonical = new Map<number, string>();
      for (const b of ours) if (b.number <= head) canonical.set(b.number, await blockHash(b.number));
      const fork = forkPoint(ours, (n) => canonical.get(n));
      if (fork === null) throw new Error(`the chain reorganised deeper than the last ${REORG_WINDOW} scanned blocks; scanning stopped for an operator`);
      await host.tx(async (trx) => {
        const lost = await trx.selectFrom("deposits").select(["id", "status"]).where("block_number", ">", fork).execute();
        const credited = lost.filter((d) => d.status === "CREDITED").map((d) => d.id);
        // Deeper than the confirmations: money was credited for a transfer the chain no longer has.
        if (credited.length) host.logger.error({ deposits: credited, fork }, "credited deposits were reorganised away");
        await trx.deleteFrom("deposits").where("block_number", ">", fork).where("status", "=", "PENDING").execute();
        await trx.deleteFrom("blocks").where("number", ">", fork).execute();
      });
      host.logger.warn({ fork, depth: last - fork }, "chain reorganised: rescanning from the fork point");
      return fork + 1;
    }
    return last + 1;
  }

  /** Scans the next blocks: native transfers and token Transfer logs to our addresses become pending deposits. */
  async function scan(head: number): Promise<void> {
    const from = await resumeFrom(head);
    const to = Math.min(head, from + MAX_BLOCKS_PER_SCAN - 1);
    if (to < from) return;
    const blocks: { number: number; hash: string }[] = [];
    const candidates: { id: string; asset: string; to: string; amount: bigint; txHash: string; blockNumber: number; blockHash: string }[] = [];
    for (let n = from; n <= to; n++) {
      const block = await chain.client.getBlock({ blockNumber: BigInt(n), includeTransactions: true });
      blocks.push({ number: n, hash: block.hash });
      for (const tx of block.transactions)
        if (tx.to && tx.value > 0n) candidates.push({ id: tx.hash, asset: chain.native.asset, to: tx.to.toLowerCase(), amount: tx.value, txHash: tx.hash, blockNumber: n, blockHash: block.hash });
    }
    if (chain.tokens.length > 0) {
      const logs = await chain.client.getLogs({ address: chain.tokens.map((t) => t.address), event: TRANSFER, fromBlock: BigInt(from), toBlock: BigInt(to) });
      for (const log of logs) {
        const token = chain.tokens.find((t) => t.address.toLowerCase() === log.address.toLowerCase());
        if (!token || !log.args.to || !log.args.value) continue;
        const n = Number(log.blockNumber);
        // A log from a block other than the one just read: the chain moved under us; the next scan sees it.
        if (blocks.find((b) => b.number === n)?.hash !== log.blockHash) return;
        candidates.push({ id: `${log.transactionHash}:${log.logIndex}`, asset: token.asset, to: log.args.to.toLowerCase(), amount: log.args.value, txHash: log.transactionHash, blockNumber: n, blockHash: log.blockHash });
      }
    }
    const ours = candidates.length
      ? new Map(
          (await host.db.selectFrom("addresses").select(["address", "user_id"]).where("address", "in", [...new Set(candidates.map((c) => c.to))]).execute()).map((a) => [a.address, Number(a.user_id)]),
        )
      : new Map<string, number>();
    const deposits: WalletTables["deposits"][] = [];
    for (const c of candidates) {
      const userId = ours.get(c.to);
      if (userId === undefined) continue;
      // A native transfer counts only if it succeeded (a reverted call can still carry value).
      if (c.asset === chain.native.asset && (await chain.client.getTransactionReceipt({ hash: c.txHash as Hex })).status !== "success") continue;
      deposits.push({ id: c.id, user_id: userId, asset: c.asset, address: c.to, amount: c.amount.toString(), tx_hash: c.txHash, block_number: c.blockNumber, block_hash: c.blockHash, status: "PENDING", created_at: clock.now(), credited_at: null });
    }
    await host.tx(async (trx) => {
      if (deposits.length) {
        const known = new Set((await trx.selectFrom("deposits").select("id").where("id", "in", deposits.map((d) => d.id)).execute()).map((d) => d.id));
        const fresh = deposits.filter((d) => !known.has(d.id));
        if (fresh.length) await trx.insertInto("deposits").values(fresh).execute();
      }
      await trx.insertInto("blocks").values(blocks).execute();
      await trx.deleteFrom("blocks").where("number", "<=", to - REORG_WINDOW).execute();
    });
  }

  /** Credits confirmed deposits, each once (the account applies a ref once; a crash between the two steps repeats harmlessly). */
  async function creditConfirmed(head: number): Promise<void> {
    const due = await host.db
      .selectFrom("deposits")
      .selectAll()
      .where("status", "=", "PENDING")
      .where("block_number", "<=", head - config.chainConfirmations + 1)
      .orderBy("block_number")
      .limit(100)
      .execute();
    for (const d of due) {
      const decimals = await knownDecimals(d.asset);
      // Held until an operator creates the asset on the exchange: then it is credited like any other.
      if (decimals === undefined || !isConfirmed(Number(d.block_number), head, config.chainConfirmations)) continue;
      const units = toLedgerUnits(BigInt(d.amount), supported(d.asset).decimals, decimals);
      if (units > 0n) await broker.call("account.credit", { ref: `deposit:${d.id}`, userId: Number(d.user_id), asset: d.asset, amount: units.toString() });
      crashPoint("wallet.deposit.credited");
      await host.db.updateTable("deposits").set({ status: "CREDITED", credited_at: clock.now() }).where("id", "=", d.id).where("status", "=", "PENDING").execute();
      credited.inc({ asset: d.asset });
      host.logger.info({ deposit: d.id, userId: Number(d.user_id), asset: d.asset }, "deposit credited");
    }
  }

  // ---- withdrawals ----------------------------------------------------------------------------

  const gidOf = (id: number) => `withdraw:${id}`;

  async function move(id: number, from: WithdrawalStatus[], to: WithdrawalStatus, set: Partial<WithdrawalRow> = {}, db: WalletDb = host.db): Promise<boolean> {
    const moved = await db
      .updateTable("withdrawals")
      .set({ ...set, status: to, updated_at: clock.now() })
      .where("id", "=", id)
      .where("status", "in", from.filter((f) => canMove(f, to)))
      .executeTakeFirst();
    return Number(moved.numUpdatedRows) > 0;
  }

  /** Refused at entry: the coordinator gives back whatever the freeze took. */
  async function rejectAtEntry(id: number, reason: string): Promise<void> {
    await initiator.abandon(host, txClient(broker, "wallet"), gidOf(id), clock.now(), async (trx) => {
      // Nothing of it stays frozen: the coordinator gives back whatever the try took.
      await move(id, ["PENDING"], "REJECTED", { reason, settled: 1 }, trx as WalletDb);
    });
  }

  async function rollBackStalled(): Promise<void> {
    const stalled = await host.db.selectFrom("withdrawals").select("id").where("status", "=", "PENDING").where("created_at", "<", clock.now() - PENDING_TIMEOUT_MS).limit(100).execute();
    for (const w of stalled) await rejectAtEntry(Number(w.id), "ENTRY_TIMEOUT");
  }

  /** The transaction that pays a withdrawal out of the hot wallet. */
  async function transferOf(w: WithdrawalRow): Promise<{ to: Address; value: bigint; data?: Hex }> {
    const c = supported(w.asset);
    const amount = toChainUnits(BigInt(w.amount), await ledgerDecimals(w.asset), c.decimals);
    const to = getAddress(w.address);
    if (!c.token) return { to, value: amount };
    return { to: c.token.address, value: 0n, data: encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [to, amount] }) };
  }

  async function broadcast(raw: Hex, id: number): Promise<void> {
    try {
      await chain.client.sendRawTransaction({ serializedTransaction: raw });
    } catch (err) {
      // Known already, or mined: tracking finds it. Anything else: tracking rebroadcasts it.
      host.logger.warn({ err: (err as Error).message.split("\n")[0], withdrawal: id }, "broadcast not accepted");
    }
  }

  /** Signs the next approved withdrawal, records it, then broadcasts it (one at a time: nonces follow the records). */
  async function sendApproved(): Promise<void> {
    const approved = await host.db.selectFrom("withdrawals").selectAll().where("status", "=", "APPROVED").orderBy("id").limit(20).execute();
    const signer = createWalletClient({ account: hot, chain: chain.chain, transport: chain.transport });
    for (const w of approved) {
      const transfer = await transferOf(w);
      const request = await signer.prepareTransactionRequest({ account: hot, chain: chain.chain, ...transfer, nonce: await chain.client.getTransactionCount({ address: hot.address, blockTag: "pending" }) });
      const raw = await signer.signTransaction(request);
      if (!(await move(Number(w.id), ["APPROVED"], "SENT", { tx_hash: keccak256(raw), raw_tx: raw }))) continue;
      crashPoint("wallet.withdrawal.recorded");
      await broadcast(raw, Number(w.id));
      host.logger.info({ withdrawal: Number(w.id), txHash: keccak256(raw) }, "withdrawal sent");
    }
  }

  /** Follows sent withdrawals to enough confirmations; rebroadcasts one the node has lost. */
  async function trackSent(head: number): Promise<void> {
    const sent = await host.db.selectFrom("withdrawals").selectAll().where("status", "=", "SENT").orderBy("id").limit(100).execute();
    for (const w of sent) {
      const receipt = await chain.client.getTransactionReceipt({ hash: w.tx_hash as Hex }).catch(() => undefined);
      if (!receipt) {
        const known = await chain.client.getTransaction({ hash: w.tx_hash as Hex }).catch(() => undefined);
        if (!known) await broadcast(w.raw_tx as Hex, Number(w.id));
        continue;
      }
      if (!isConfirmed(Number(receipt.blockNumber), head, config.chainConfirmations)) continue;
      await move(Number(w.id), ["SENT"], receipt.status === "success" ? "CONFIRMED" : "FAILED", receipt.status === "success" ? {} : { reason: "REVERTED" });
    }
  }

  /** Settles finished withdrawals with the ledger, once each: paid out of frozen funds, or the funds returned. */
  async function settleFinished(): Promise<void> {
    const finished = await host.db
      .selectFrom("withdrawals")
      .selectAll()
      .where("status", "in", ["CONFIRMED", "FAILED", "REJECTED"])
      .where("settled", "=", 0)
      .limit(100)
      .execute();
    for (const w of finished) {
      const id = Number(w.id);
      const payload = { userId: Number(w.user_id), asset: w.asset, amount: w.amount };
      if (w.status === "CONFIRMED") await broker.call("account.payOut", { ref: `withdraw:${id}`, ...payload });
      else await broker.call("account.unfreeze", { ref: `withdraw-return:${id}`, ...payload });
      await host.db.updateTable("withdrawals").set({ settled: 1 }).where("id", "=", id).execute();
    }
  }

  async function runCycle(): Promise<void> {
    const head = Number(await chain.client.getBlockNumber());
    await scan(head);
    await creditConfirmed(head);
    await trackSent(head);
    await sendApproved();
    await settleFinished();
    await rollBackStalled();
    const oldest = await host.db.selectFrom("withdrawals").select("created_at").where("status", "in", ["PENDING_APPROVAL", "APPROVED", "SENT"]).orderBy("created_at").limit(1).executeTakeFirst();
    queueAge.set(oldest ? Math.max(0, (clock.now() - Number(oldest.created_at)) / 1000) : 0);
  }

  return {
    name: "wallet",
    settings: { routes: routesWithSchemas(walletRoutes, C) },
    actions: {
      depositAddress: action(C.depositAddress, async (ctx) => {
        const user = requireUser(ctx);
        supported(ctx.params.asset);
        return { asset: ctx.params.asset, address: await addressOf(user.id) };
      }),

      deposits: action(C.deposits, async (ctx): Promise<DepositView[]> => {
        const user = requireUser(ctx);
        const rows = await host.db.selectFrom("deposits").selectAll().where("user_id", "=", user.id).orderBy("created_at", "desc").limit(100).execute();
        const out: DepositView[] = [];
        for (const d of rows) {
          const decimals = await ledgerDecimals(d.asset);
          const units = toLedgerUnits(BigInt(d.amount), supported(d.asset).decimals, decimals);
          out.push({ id: d.id, asset: d.asset, amount: fromUnits(units, decimals), txHash: d.tx_hash, blockNumber: Number(d.block_number), status: d.status });
        }
        return out;
      }),

      requestWithdrawal: action(C.requestWithdrawal, async (ctx) => {
        const user = requireUser(ctx);
        const key = requireIdempotencyKey(ctx);
        const p = ctx.params;
        const decimals = await ledgerDecimals(p.asset);
        const repeat = await host.db.selectFrom("withdrawals").selectAll().where("user_id", "=", user.id).where("idempotency_key", "=", key).executeTakeFirst();
        if (repeat) return withdrawalView(repeat, decimals);
        supported(p.asset);
        if (!isAddress(p.address, { strict: true }) || p.address.toLowerCase() === zeroAddress)
          throw badRequest("INVALID_ADDRESS", "address must be an EVM address (mixed case only with a valid checksum), not the zero address", "address");
        const units = toUnits(p.amount, decimals);
        if (units === null) throw badRequest("INVALID_AMOUNT", `amount must be a positive number with at most ${decimals} decimals`, "amount");
        const lim = await limitsOf(p.asset, decimals);
        const now = clock.now();
        const day = dayOf(now);
        let id: number;
        try {
          id = await host.tx(async (trx) => {
            // The day's lock row, taken before the sum: two requests of one user and asset on one day run one after the other.
            await host.store.insertIfAbsent(trx.insertInto("withdrawal_days").values({ user_id: user.id, asset: p.asset, day }));
            await host.store.forUpdate(trx.selectFrom("withdrawal_days").select("day").where("user_id", "=", user.id).where("asset", "=", p.asset).where("day", "=", day)).execute();
            const today = await trx.selectFrom("withdrawals").select(["amount", "status"]).where("user_id", "=", user.id).where("asset", "=", p.asset).where("day", "=", day).execute();
            const used = today.filter((w) => w.status !== "REJECTED" && w.status !== "FAILED").reduce((s, w) => s + BigInt(w.amount), 0n);
            const problem = withdrawalProblem(units, lim, used);
            if (problem) throw new AppError(problem.code === "DAILY_LIMIT" ? 409 : 400, problem.code, problem.message, "amount");
            return host.store.insertId(
              trx.insertInto("withdrawals").values({
                user_id: user.id,
                asset: p.asset,
                address: getAddress(p.address),
                amount: units.toString(),
                status: "PENDING",
                reason: null,
                idempotency_key: key,
                tx_hash: null,
                raw_tx: null,
                day,
                settled: 0,
                created_at: now,
                updated_at: now,
              }),
            );
          });
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          const raced = await host.db.selectFrom("withdrawals").selectAll().where("user_id", "=", user.id).where("idempotency_key", "=", key).executeTakeFirstOrThrow();
          return withdrawalView(raced, decimals);
        }
        const gid = gidOf(id);
        const tcc = txClient(broker, "wallet", FREEZE_DECISION_MS);
        try {
          await tcc.tryBranch(gid, { action: "account.tryFreeze", confirm: "account.confirmFreeze", cancel: "account.cancelFreeze", payload: { userId: user.id, asset: p.asset, amount: units.toString() } }, ctx);
        } catch (err) {
          await rejectAtEntry(id, (err as { type?: string }).type ?? "FREEZE_FAILED");
          throw err;
        }
        const next = afterFreeze(units, lim.approvalAbove);
        // The answer is the row as entry left it: read after the commit, the sender (asked below, or on
        // its own beat) may already have sent it.
        const row = await host.tx(async (trx) => {
          await initiator.commit(trx, gid, clock.now());
          await move(id, ["PENDING"], next, {}, trx);
          return trx.selectFrom("withdrawals").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
        });
        await tcc.commit(gid).catch((err) => host.logger.warn({ err, gid }, "commit not delivered to the coordinator; it will ask"));
        if (next === "APPROVED") cycle.soon();
        return withdrawalView(row, decimals);
      }),

      withdrawal: action(C.withdrawal, async (ctx) => {
        const user = requireUser(ctx);
        const w = await host.db.selectFrom("withdrawals").selectAll().where("id", "=", ctx.params.id).where("user_id", "=", user.id).executeTakeFirst();
        if (!w) throw notFound("WITHDRAWAL_NOT_FOUND", `no withdrawal ${ctx.params.id}`);
        return withdrawalView(w, await ledgerDecimals(w.asset));
      }),

      withdrawals: action(C.withdrawals, async (ctx) => {
        const user = requireUser(ctx);
        const rows = await host.db.selectFrom("withdrawals").selectAll().where("user_id", "=", user.id).orderBy("id", "desc").limit(100).execute();
        return Promise.all(rows.map(async (w) => withdrawalView(w, await ledgerDecimals(w.asset))));
      }),

      pendingWithdrawals: action(C.pendingWithdrawals, async (ctx) => {
        requireRole(ctx, "operator");
        const rows = await host.db.selectFrom("withdrawals").selectAll().where("status", "=", ctx.params.status).orderBy("id").limit(500).execute();
        return Promise.all(rows.map(async (w) => ({ ...withdrawalView(w, await ledgerDecimals(w.asset)), userId: Number(w.user_id) })));
      }),

      approve: action(C.approve, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const { id } = ctx.params;
        const moved = await host.tx(async (trx) => {
          const ok = await move(id, ["PENDING_APPROVAL"], "APPROVED", {}, trx);
          if (ok) await writeAudit(trx, { actorId: operator.id, action: "withdrawal.approve", subject: `withdrawal:${id}`, detail: {}, at: clock.now() });
          return ok;
        });
        if (!moved) throw await notAwaiting(id);
        cycle.soon();
        return { id, status: "APPROVED" };
      }),

      reject: action(C.reject, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const { id, reason } = ctx.params;
        const moved = await host.tx(async (trx) => {
          const ok = await move(id, ["PENDING_APPROVAL"], "REJECTED", { reason: `OPERATOR: ${reason}` }, trx);
          if (ok) await writeAudit(trx, { actorId: operator.id, action: "withdrawal.reject", subject: `withdrawal:${id}`, detail: { reason }, at: clock.now() });
          return ok;
        });
        if (!moved) throw await notAwaiting(id);
        cycle.soon();
        return { id, status: "REJECTED" };
      }),

      txDecision: initiator.decisionAction(host, () => clock.now()),
      tick: action(C.tick, () => cycle.now()),
    },
    async started() {
      broker = this.broker;
      chain = await platform.chain();
      seed = HDKey.fromMasterSeed(Buffer.from(loadSecret(config.walletSeed, config.dataDir, "wallet.seed", () => randomBytes(64).toString("hex")), "hex"));
      hot = privateKeyToAccount(loadSecret(config.walletHotKey, config.dataDir, "wallet.hot-key", () => `0x${randomBytes(32).toString("hex")}`) as Hex);
      await host.start();
      if (chain.dev) await fundDevHotWallet();
      host.logger.info({ hotWallet: hot.address, chainId: chain.chain.id, confirmations: config.chainConfirmations }, "wallet ready");
      cycle.start();
    },
    async stopped() {
      await cycle.stop();
      await host.stop();
    },
  };

  async function notAwaiting(id: number): Promise<AppError> {
    const w = await host.db.selectFrom("withdrawals").select("status").where("id", "=", id).executeTakeFirst();
    if (!w) return notFound("WITHDRAWAL_NOT_FOUND", `no withdrawal ${id}`);
    return conflict("NOT_AWAITING_APPROVAL", `withdrawal ${id} is ${w.status}`);
  }

  /** On the development chain only: the hot wallet gets coins and test tokens from the faucet to pay out. */
  async function fundDevHotWallet(): Promise<void> {
    if ((await chain.client.getBalance({ address: hot.address })) >= 10n ** 20n) return;
    await chain.dev!.faucet(hot.address, chain.native.asset, 1000n * 10n ** 18n);
    for (const t of chain.tokens) await chain.dev!.faucet(hot.address, t.asset, 10_000_000n * 10n ** BigInt(t.decimals));
  }
}
