import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { isUniqueViolation, partialTerm, skippingTaken } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, requireRole, requireUser } from "../../../platform/runtime/action";
import { AppError, conflict, notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { crashPoint } from "../../../platform/runtime/faults";
import { RecentReads } from "../../../platform/runtime/recent-reads";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { type SoleBranch, soleBranch } from "../../../platform/tx/tx.client";
import { PerTransaction } from "../../../platform/runtime/per-transaction";
import { fromUnits, toUnits } from "../account/account.domain";
import { type MatchingCommand, type MatchingEvent, type MatchingOutcome, MatchingSubjects } from "../matching/matching.contract";
import { type OrderView, TradingContract as C, tradingRoutes } from "./trading.contract";
import { endedStatus, grid, isRefusal, notionalOf, OPEN, type SymbolSpec, specProblem } from "./trading.domain";
import type { Insertable, Selectable } from "kysely";
import type { z } from "zod";
import type { AccountContract } from "../account/account.contract";
import { IN_ENTRY, type TradingDb, tradingMigrations, type TradingTables } from "./trading.store";

type OrderRow = Selectable<TradingTables["orders"]>;
type AccountJournal = z.input<typeof AccountContract.postAll>["journals"][number];

/** An order whose entry never finished (its node died between freeze and log) is taken back after this long. */
const PENDING_TIMEOUT_MS = 60_000;
const SWEEP_MS = 10_000;
/** How long a symbol's status is trusted from the cache. */
const STATUS_RECHECK_MS = 1_000;
const SYMBOL_STATUS_CHANGED = "trading.symbol.status";
/** A user's cancel of an order still in entry: it ends CANCELLED rather than REJECTED. */
const CANCELLED_IN_ENTRY = "CANCELLED_IN_ENTRY";

/**
 * Order entry (exchange-api): symbols on a tick/lot grid, orders validated onto it, funds frozen by the
 * account service as a one-participant TCC (the order row is the decision: PENDING until its command is
 * on the log, VOIDING while an order that never got there gives its freeze back), cancels onto the log;
 * then, from the engine's events, trades settled into accounts (each once, by its sequence), order
 * status and fills kept, and what an ended order no longer needs unfrozen.
 */
export function tradingService(platform: Platform): ServiceSchema {
  const host = platform.host<TradingTables>("trading", tradingMigrations);
  const { clock } = platform;
  const sweeper = new Sweeper(() => rollBackStalled(), SWEEP_MS, host.logger, "stalled order entry");
  let broker: ServiceBroker;
  let freeze: SoleBranch;

  // A symbol's grid and fees never change once created; only its status does.
  const grids = new Map<string, SymbolSpec>();
  /** Each symbol with its status: a halt made through another instance applies here within STATUS_RECHECK_MS (at once, by its broadcast). */
  const symbols = new RecentReads<string, SymbolSpec & { status: string }>(clock, STATUS_RECHECK_MS);

  /** The symbol's grid and fees (cached: they never change). */
  async function gridOf(db: TradingDb, symbol: string): Promise<SymbolSpec> {
    const known = grids.get(symbol);
    if (known) return known;
    const { status: _, ...fixed } = existing(symbol, await findSpec(db, symbol));
    grids.set(symbol, fixed);
    return fixed;
  }

  /** The symbol with its status, from the cache while the status is recent. */
  async function current(symbol: string): Promise<SymbolSpec & { status: string }> {
    return existing(symbol, await symbols.get(symbol, () => findSpec(host.db, symbol)));
  }

  function existing<S>(symbol: string, found: S | undefined): S {
    if (found === undefined) throw notFound("SYMBOL_NOT_FOUND", `no symbol ${symbol}`);
    return found;
  }

  /** The symbol as stored now, status included. */
  async function findSpec(db: TradingDb, symbol: string): Promise<(SymbolSpec & { status: string }) | undefined> {
    const s = await db.selectFrom("symbols").selectAll().where("symbol", "=", symbol).executeTakeFirst();
    if (!s) return undefined;
    return {
      symbol: s.symbol,
      base: s.base,
      quote: s.quote,
      baseDecimals: Number(s.base_decimals),
      quoteDecimals: Number(s.quote_decimals),
      tickUnits: BigInt(s.tick_units),
      lotUnits: BigInt(s.lot_units),
      minNotionalUnits: BigInt(s.min_notional_units),
      makerFeeBps: Number(s.maker_fee_bps),
      takerFeeBps: Number(s.taker_fee_bps),
      status: s.status,
    };
  }

  function view(o: OrderRow, s: SymbolSpec): OrderView {
    const filled = BigInt(o.filled_lots);
    const price = BigInt(o.price_ticks);
    return {
      orderId: Number(o.id),
      clientOrderId: o.client_order_id,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      timeInForce: o.tif,
      price: price === 0n ? null : fromUnits(price * s.tickUnits, s.quoteDecimals),
      quantity: fromUnits(BigInt(o.quantity_lots) * s.lotUnits, s.baseDecimals),
      filledQuantity: fromUnits(filled * s.lotUnits, s.baseDecimals),
      // Quote units per whole base unit, rounded down to the quote's precision.
      averagePrice: filled === 0n ? null : fromUnits((BigInt(o.filled_notional) * 10n ** BigInt(s.baseDecimals)) / (filled * s.lotUnits), s.quoteDecimals),
      // A VOIDING order's outcome is decided; only its freeze is still on the way back.
      status: o.status === "VOIDING" ? (o.reason === CANCELLED_IN_ENTRY ? "CANCELLED" : "REJECTED") : o.status,
      reason: o.reason,
      createdAt: iso(Number(o.created_at)),
    };
  }

  const gidOf = (orderId: number) => `xorder:${orderId}`;

  const freezeOf = (o: Pick<OrderRow, "user_id" | "freeze_asset" | "freeze_units">) => ({ userId: Number(o.user_id), asset: o.freeze_asset, amount: String(o.freeze_units) });

  /**
   * Takes back an order that has not reached the log: claims it (only while PENDING — a NEW order is on
   * the log and keeps its freeze) and gives its freeze back. Answers whether it was still in entry: once
   * claimed, its outcome is decided, and a freeze the account cannot give back now the sweeper gives back.
   */
  async function abandon(orderId: number, reason: string): Promise<boolean> {
    const claimed = await host.db
      .updateTable("orders")
      .set({ status: "VOIDING", reason, updated_at: clock.now() })
      .where("id", "=", orderId)
      .where("status", "=", "PENDING")
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) === 0) return false;
    await finishVoiding(orderId).catch((err) => host.logger.warn({ err, orderId }, "freeze not given back yet; the sweeper will"));
    return true;
  }

  /** The freeze of a VOIDING order given back (or its late arrival refused), then the order ended. */
  async function finishVoiding(orderId: number): Promise<void> {
    const o = await host.db.selectFrom("orders").selectAll().where("id", "=", orderId).where("status", "=", "VOIDING").executeTakeFirst();
    if (!o) return;
    crashPoint("trading.order.voiding");
    await freeze.cancel(gidOf(orderId), freezeOf(o));
    await host.db
      .updateTable("orders")
      .set({ status: o.reason === CANCELLED_IN_ENTRY ? "CANCELLED" : "REJECTED", updated_at: clock.now() })
      .where("id", "=", orderId)
      .where("status", "=", "VOIDING")
      .execute();
  }

  /** `abandon` on a failure path, answering the original failure (an order it cannot claim now stays PENDING for the sweeper). */
  async function abandonAfter(err: unknown, orderId: number, reason: string): Promise<never> {
    await abandon(orderId, reason).catch((cause) => host.logger.warn({ err: cause, orderId }, "order entry not rolled back yet; the sweeper will"));
    throw err;
  }

  async function rollBackStalled(): Promise<number> {
    const now = clock.now();
    const stalled = await host.db.selectFrom("orders").select("id").where(partialTerm(IN_ENTRY)).where("status", "=", "PENDING").where("created_at", "<", now - PENDING_TIMEOUT_MS).limit(100).execute();
    for (const o of stalled) await abandon(Number(o.id), "ENTRY_TIMEOUT");
    const voiding = await host.db.selectFrom("orders").select("id").where(partialTerm(IN_ENTRY)).where("status", "=", "VOIDING").where("updated_at", "<", now - SWEEP_MS).limit(100).execute();
    for (const o of voiding) await finishVoiding(Number(o.id));
    return stalled.length + voiding.length;
  }

  const insertOrder = host.prepare(
    (
      db,
      $: { userId: number; symbol: string; side: OrderRow["side"]; type: OrderRow["type"]; tif: string; ticks: string; lots: string; freezeAsset: string; freezeUnits: string; clientOrderId: string | null; now: number },
    ) =>
      host.store.returningId(
        db.insertInto("orders").values({
          user_id: $.userId,
          symbol: $.symbol,
          side: $.side,
          type: $.type,
          tif: $.tif,
          price_ticks: $.ticks,
          quantity_lots: $.lots,
          filled_lots: "0",
          filled_notional: "0",
          freeze_asset: $.freezeAsset,
          freeze_units: $.freezeUnits,
          status: "PENDING",
          reason: null,
          client_order_id: $.clientOrderId,
          created_at: $.now,
          updated_at: $.now,
        }),
      ),
  );
  /** An order in entry goes on the log: only while nothing has taken it back. */
  const entered = host.prepare((db, $: { id: number; now: number }) => db.updateTable("orders").set({ status: "NEW", updated_at: $.now }).where("id", "=", $.id).where("status", "=", "PENDING"));
  /** A batch's trades, each once: one recorded before (a batch handled again) is skipped. */
  const addTrades = host.prepare((db, $: { rows: Insertable<TradingTables["trades"]>[] }) => skippingTaken(db, db.insertInto("trades").values($.rows)));
  const orderById = host.prepare((db, $: { id: number }) => host.store.forUpdate(db.selectFrom("orders").selectAll().where("id", "=", $.id)));
  const saveOrder = host.prepare((db, $: { id: number; filled: string; notional: string; status: OrderRow["status"]; reason: string | null; now: number }) =>
    db.updateTable("orders").set({ filled_lots: $.filled, filled_notional: $.notional, status: $.status, reason: $.reason, updated_at: $.now }).where("id", "=", $.id),
  );

  /**
   * What the engine's events do to this service, gathered per transaction (a consumer's whole batch)
   * and written just before it commits: each order read once and written once however many events
   * touch it, the trades in one insert, the accounts' settlements and releases in one call.
   */
  interface Batch {
    orders: Map<number, OrderRow>;
    changed: Set<OrderRow>;
    trades: Insertable<TradingTables["trades"]>[];
    journals: AccountJournal[];
  }
  const batches = new PerTransaction<Batch>(() => ({ orders: new Map(), changed: new Set(), trades: [], journals: [] }));

  async function orderIn(trx: TradingDb, b: Batch, id: number): Promise<OrderRow | undefined> {
    let o = b.orders.get(id);
    if (!o) {
      o = await orderById.first(trx, { id });
      if (o) b.orders.set(id, o);
    }
    return o;
  }

  async function writeBatch(trx: TradingDb): Promise<void> {
    const b = batches.take(trx);
    if (!b) return;
    const now = clock.now();
    for (const o of b.changed) await saveOrder.run(trx, { id: Number(o.id), filled: o.filled_lots, notional: o.filled_notional, status: o.status, reason: o.reason, now });
    if (b.trades.length > 0) await addTrades.run(trx, { rows: b.trades });
    if (b.journals.length === 0) return;
    crashPoint("trading.settling");
    await broker.call("account.postAll", { journals: b.journals });
  }

  /** Gives back what an ended order still holds frozen: a buy's unspent quote, a sell's unsold base. */
  function release(b: Batch, o: OrderRow, s: SymbolSpec): void {
    const frozen = BigInt(o.freeze_units);
    const used = o.side === "BUY" ? BigInt(o.filled_notional) : BigInt(o.filled_lots) * s.lotUnits;
    const left = frozen - used;
    if (left > 0n) b.journals.push({ kind: "unfreeze", ref: `release:${o.id}`, userId: Number(o.user_id), asset: o.freeze_asset, amount: left.toString() });
  }

  async function onEvent(trx: TradingDb, e: MatchingEvent): Promise<void> {
    const s = await gridOf(trx, e.symbol);
    const b = batches.of(trx);
    if (e.kind === "TRADE") {
      const taker = await orderIn(trx, b, e.takerId);
      const maker = await orderIn(trx, b, e.makerId);
      if (!taker || !maker) throw new Error(`trade ${e.symbol}:${e.seq} names an order this service does not have`);
      const notional = notionalOf(s, BigInt(e.price), BigInt(e.quantity));
      const [buyer, seller] = e.takerSide === "BUY" ? [taker, maker] : [maker, taker];
      const feeOf = (o: typeof taker) => (o === taker ? s.takerFeeBps : s.makerFeeBps);
      const tradeId = `${e.symbol}:${e.seq}`;
      b.journals.push({
        kind: "settle",
        tradeId,
        base: s.base,
        quote: s.quote,
        buyerId: Number(buyer.user_id),
        sellerId: Number(seller.user_id),
        quantity: (BigInt(e.quantity) * s.lotUnits).toString(),
        notional: notional.toString(),
        buyerFeeBps: feeOf(buyer),
        sellerFeeBps: feeOf(seller),
      });
      for (const o of [taker, maker]) {
        const filled = BigInt(o.filled_lots) + BigInt(e.quantity);
        if (filled !== BigInt(o.quantity_lots)) o.status = "PARTIALLY_FILLED";
        o.filled_lots = filled.toString();
        o.filled_notional = (BigInt(o.filled_notional) + notional).toString();
        b.changed.add(o);
      }
      b.trades.push({
        id: tradeId,
        symbol: e.symbol,
        seq: e.seq,
        taker_order: e.takerId,
        maker_order: e.makerId,
        buyer_id: Number(buyer.user_id),
        seller_id: Number(seller.user_id),
        price_ticks: String(e.price),
        quantity_lots: String(e.quantity),
        notional: notional.toString(),
        at: clock.now(),
      });
    } else if (e.kind === "ENDED") {
      const o = await orderIn(trx, b, e.orderId);
      if (!o || e.reason === "UNKNOWN_ORDER" || !OPEN.includes(o.status)) return;
      o.status = endedStatus(e.reason, BigInt(o.filled_lots));
      o.reason = e.reason === "FILLED" ? null : e.reason;
      b.changed.add(o);
      release(b, o, s);
    }
  }

  async function own(userId: number, id: number) {
    const o = await host.db.selectFrom("orders").selectAll().where("id", "=", id).where("user_id", "=", userId).executeTakeFirst();
    if (!o) throw notFound("ORDER_NOT_FOUND", `no order ${id}`);
    return o;
  }

  function cancelCommand(emit: Emit, symbol: string, orderId: number) {
    const c: MatchingCommand = { kind: "CANCEL", symbol, orderId, at: clock.now() };
    emit(MatchingSubjects.commands, c);
  }

  return {
    name: "trading",
    settings: { routes: routesWithSchemas(tradingRoutes, C) },
    actions: {
      createSymbol: action(C.createSymbol, async (ctx) => {
        requireRole(ctx, "operator");
        const p = ctx.params;
        if (p.symbol !== `${p.base}-${p.quote}`) throw new AppError(400, "INVALID_SYMBOL", "symbol must be BASE-QUOTE of its assets", "symbol");
        const assets = await ctx.call<{ code: string; decimals: number }[], object>("account.listAssets", {});
        const decimalsOf = (code: string, field: string) => {
          const a = assets.find((x) => x.code === code);
          if (!a) throw new AppError(404, "ASSET_NOT_FOUND", `no asset ${code}`, field);
          return a.decimals;
        };
        const baseDecimals = decimalsOf(p.base, "base");
        const quoteDecimals = decimalsOf(p.quote, "quote");
        const units = (v: string, d: number, field: string) => {
          const u = toUnits(v, d);
          if (u === null) throw new AppError(400, "INVALID_SYMBOL", `${field} has more decimals than its asset (${d})`, field);
          return u;
        };
        const s: SymbolSpec = {
          symbol: p.symbol,
          base: p.base,
          quote: p.quote,
          baseDecimals,
          quoteDecimals,
          tickUnits: units(p.tickSize, quoteDecimals, "tickSize"),
          lotUnits: units(p.lotSize, baseDecimals, "lotSize"),
          minNotionalUnits: units(p.minNotional, quoteDecimals, "minNotional"),
          makerFeeBps: p.makerFeeBps,
          takerFeeBps: p.takerFeeBps,
        };
        const problem = specProblem(s);
        if (problem) throw new AppError(400, problem.code, problem.message, problem.field);
        try {
          await host.db
            .insertInto("symbols")
            .values({
              symbol: s.symbol,
              base: s.base,
              quote: s.quote,
              base_decimals: baseDecimals,
              quote_decimals: quoteDecimals,
              tick_units: s.tickUnits.toString(),
              lot_units: s.lotUnits.toString(),
              min_notional_units: s.minNotionalUnits.toString(),
              maker_fee_bps: s.makerFeeBps,
              taker_fee_bps: s.takerFeeBps,
              status: "TRADING",
              created_at: clock.now(),
            })
            .execute();
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict("SYMBOL_EXISTS", `symbol ${s.symbol} exists`, "symbol");
          throw err;
        }
        return { ...p, status: "TRADING" };
      }),

      setSymbolStatus: action(C.setSymbolStatus, async (ctx) => {
        requireRole(ctx, "operator");
        const { symbol, status } = ctx.params;
        const updated = await host.db.updateTable("symbols").set({ status }).where("symbol", "=", symbol).executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) throw notFound("SYMBOL_NOT_FOUND", `no symbol ${symbol}`);
        symbols.drop(symbol);
        ctx.broadcast(SYMBOL_STATUS_CHANGED, { symbol, status });
        return { symbol, status };
      }),

      listSymbols: action(C.listSymbols, async () => {
        const rows = await host.db.selectFrom("symbols").selectAll().orderBy("symbol").execute();
        return rows.map((s) => ({
          symbol: s.symbol,
          base: s.base,
          quote: s.quote,
          tickSize: fromUnits(BigInt(s.tick_units), Number(s.quote_decimals)),
          lotSize: fromUnits(BigInt(s.lot_units), Number(s.base_decimals)),
          minNotional: fromUnits(BigInt(s.min_notional_units), Number(s.quote_decimals)),
          makerFeeBps: Number(s.maker_fee_bps),
          takerFeeBps: Number(s.taker_fee_bps),
          status: s.status,
        }));
      }),

      place: action(C.place, async (ctx) => {
        const user = requireUser(ctx);
        const p = ctx.params;
        const s = await current(p.symbol);
        if (s.status !== "TRADING") throw conflict("SYMBOL_HALTED", `${p.symbol} is halted`, "symbol");
        const priceUnits = p.price === undefined ? null : toUnits(p.price, s.quoteDecimals);
        if (p.price !== undefined && priceUnits === null) throw new AppError(400, "PRICE_OFF_TICK", `price has more decimals than ${s.quote} (${s.quoteDecimals})`, "price");
        const quantityUnits = toUnits(p.quantity, s.baseDecimals);
        if (quantityUnits === null) throw new AppError(400, "QUANTITY_OFF_LOT", `quantity has more decimals than ${s.base} (${s.baseDecimals})`, "quantity");
        const g = grid(s, { side: p.side, type: p.type, priceUnits, quantityUnits });
        if (isRefusal(g)) throw new AppError(400, g.code, g.message, g.field);
        // A market buy runs as IOC up to its protection price; a market sell takes whatever is there.
        const tif = p.type === "MARKET" ? (p.side === "BUY" ? "IOC" : "GTC") : (p.timeInForce ?? "GTC");
        const now = clock.now();
        let id: number;
        try {
          // In a transaction, so that it shares a commit with the others in flight (see group-commit.ts).
          id = await host.tx((trx) => insertOrder.insertId(trx, {
            userId: user.id,
            symbol: s.symbol,
            side: p.side,
            type: p.type === "MARKET" && p.side === "BUY" ? "LIMIT" : p.type,
            tif,
            ticks: g.ticks.toString(),
            lots: g.lots.toString(),
            freezeAsset: g.freezeAsset === "BASE" ? s.base : s.quote,
            freezeUnits: g.freezeUnits.toString(),
            clientOrderId: p.clientOrderId ?? null,
            now,
          }));
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict("DUPLICATE_CLIENT_ORDER_ID", `clientOrderId ${p.clientOrderId} was used before`, "clientOrderId");
          throw err;
        }
        crashPoint("trading.order.recorded");
        const gid = gidOf(id);
        const payload = { userId: user.id, asset: g.freezeAsset === "BASE" ? s.base : s.quote, amount: g.freezeUnits.toString() };
        await freeze.try(gid, payload, ctx).catch((err) => abandonAfter(err, id, (err as { type?: string }).type ?? "FREEZE_FAILED"));
        crashPoint("trading.order.frozen");
        // The order goes on the log in the change that ends its entry: only if nothing took it back meanwhile.
        const onLog = await host
          .tx(async (trx, emit) => {
            if ((await entered.run(trx, { id, now: clock.now() })) === 0) return false;
            const command: MatchingCommand = {
              kind: "PLACE",
              symbol: s.symbol,
              orderId: id,
              account: user.id,
              side: p.side,
              type: p.type === "MARKET" && p.side === "BUY" ? "LIMIT" : p.type,
              tif: tif as "GTC" | "IOC" | "FOK" | "POST_ONLY",
              price: Number(g.ticks),
              quantity: Number(g.lots),
              at: clock.now(),
            };
            emit(MatchingSubjects.commands, command, `order-placed:${id}`);
            return true;
          })
          .catch((err) => abandonAfter(err, id, "ENTRY_FAILED"));
        if (!onLog) throw conflict("ORDER_TAKEN_BACK", `order ${id} was cancelled or timed out before it reached the book`);
        return { orderId: id, clientOrderId: p.clientOrderId ?? null, status: "NEW" };
      }),

      cancel: action(C.cancel, async (ctx) => {
        const user = requireUser(ctx);
        const o = await own(user.id, ctx.params.id);
        if (!OPEN.includes(o.status)) throw conflict(`ORDER_${o.status}`, `order ${o.id} is ${o.status.toLowerCase()}`);
        // Still in entry: taken back before it reaches the log (else it went NEW meanwhile and is cancelled there).
        if (o.status === "PENDING" && (await abandon(Number(o.id), CANCELLED_IN_ENTRY))) return { orderId: Number(o.id), status: "CANCELLED" };
        await host.tx(async (_trx, emit) => cancelCommand(emit, o.symbol, Number(o.id)));
        return { orderId: Number(o.id), status: "CANCEL_REQUESTED" };
      }),

      cancelAll: action(C.cancelAll, async (ctx) => {
        const user = requireUser(ctx);
        const open = await host.db.selectFrom("orders").select(["id", "symbol"]).where("user_id", "=", user.id).where("symbol", "=", ctx.params.symbol).where("status", "in", ["NEW", "PARTIALLY_FILLED"]).execute();
        await host.tx(async (_trx, emit) => {
          for (const o of open) cancelCommand(emit, o.symbol, Number(o.id));
        });
        return { symbol: ctx.params.symbol, cancelRequested: open.map((o) => Number(o.id)) };
      }),

      get: action(C.get, async (ctx) => {
        const o = await own(requireUser(ctx).id, ctx.params.id);
        return view(o, await gridOf(host.db, o.symbol));
      }),

      list: action(C.list, async (ctx) => {
        const user = requireUser(ctx);
        const { symbol, status, limit } = ctx.params;
        let q = host.db.selectFrom("orders").selectAll().where("user_id", "=", user.id);
        if (symbol) q = q.where("symbol", "=", symbol);
        if (status === "open") q = q.where("status", "in", [...OPEN]);
        const rows = await q.orderBy("id", "desc").limit(limit).execute();
        const specs = new Map<string, SymbolSpec>();
        for (const r of rows) if (!specs.has(r.symbol)) specs.set(r.symbol, await gridOf(host.db, r.symbol));
        return rows.map((r) => view(r, specs.get(r.symbol)!));
      }),

      myTrades: action(C.myTrades, async (ctx) => {
        const user = requireUser(ctx);
        const { symbol, limit } = ctx.params;
        let q = host.db.selectFrom("trades").selectAll().where((eb) => eb.or([eb("buyer_id", "=", user.id), eb("seller_id", "=", user.id)]));
        if (symbol) q = q.where("symbol", "=", symbol);
        const rows = await q.orderBy("at", "desc").orderBy("seq", "desc").limit(limit).execute();
        const specs = new Map<string, SymbolSpec>();
        for (const r of rows) if (!specs.has(r.symbol)) specs.set(r.symbol, await gridOf(host.db, r.symbol));
        return rows.map((t) => {
          const s = specs.get(t.symbol)!;
          return {
            tradeId: t.id,
            symbol: t.symbol,
            side: Number(t.buyer_id) === user.id ? "BUY" : "SELL",
            price: fromUnits(BigInt(t.price_ticks) * s.tickUnits, s.quoteDecimals),
            quantity: fromUnits(BigInt(t.quantity_lots) * s.lotUnits, s.baseDecimals),
            quoteQuantity: fromUnits(BigInt(t.notional), s.quoteDecimals),
            at: iso(Number(t.at)),
          };
        });
      }),

      tick: action(C.tick, () => sweeper.now()),
    },
    events: {
      [SYMBOL_STATUS_CHANGED](ctx: Context<{ symbol: string; status: string }>) {
        symbols.drop(ctx.params.symbol);
      },
    },
    created() {
      host.consume(MatchingSubjects.events, async (trx, message) => {
        for (const e of (message.data as MatchingOutcome).events) await onEvent(trx, e);
      }, { beforeCommit: writeBatch });
    },
    async started() {
      broker = this.broker;
      freeze = soleBranch(broker, { action: "account.tryFreeze", cancel: "account.cancelFreeze", tryAll: "account.tryFreezeAll" });
      await host.start();
      sweeper.start();
    },
    async stopped() {
      await sweeper.stop();
      await host.stop();
    },
  };
}
