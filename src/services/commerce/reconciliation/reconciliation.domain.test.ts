import { describe, expect, it } from "vitest";
import { dayOfDate, type OrderRecord, type PaymentRecord, previousDate, reconcile, type StatementLine } from "./reconciliation.domain";

const day = dayOfDate("2026-11-25")!;
const at = day.from + 3_600_000;
const payment = (id: string, extra: Partial<PaymentRecord> = {}): PaymentRecord => ({
  paymentId: id,
  orderId: `o-${id}`,
  tenantId: "t1",
  providerTxId: `tx-${id}`,
  amount: 100,
  status: "SUCCEEDED",
  succeededAt: at,
  refundedAt: null,
  ...extra,
});
const line = (id: string, extra: Partial<StatementLine> = {}): StatementLine => ({ providerTxId: `tx-${id}`, paymentId: id, kind: "PAYMENT", amount: 100, at, ...extra });
const order = (id: string, extra: Partial<OrderRecord> = {}): OrderRecord => ({ orderId: `o-${id}`, tenantId: "t1", total: 100, status: "PAID", ...extra });

describe("dates", () => {
  it("reads a UTC day and refuses what is not one", () => {
    expect(dayOfDate("2026-11-25")).toEqual({ from: Date.UTC(2026, 10, 25), to: Date.UTC(2026, 10, 26) });
    expect(dayOfDate("2026-02-30")).toBeNull();
    expect(dayOfDate("25/11/2026")).toBeNull();
    expect(previousDate(Date.UTC(2026, 0, 1, 0, 30))).toBe("2025-12-31");
  });
});

describe("reconcile", () => {
  it("finds nothing when the books agree", () => {
    const refunded = payment("b", { status: "REFUNDED", refundedAt: at + 1 });
    expect(
      reconcile(day, [line("a"), line("b"), line("b", { kind: "REFUND", at: at + 1 })], [payment("a"), refunded], [order("a", { status: "SHIPPED" }), order("b", { status: "REFUNDED" })]),
    ).toEqual([]);
  });

  it("names each kind of difference once", () => {
    const found = reconcile(
      day,
      [line("ghost"), line("cheap", { amount: 90 }), line("pending"), line("late", { at: day.to + 5 })],
      [payment("cheap"), payment("pending", { status: "CREATED", succeededAt: null }), payment("unlisted"), payment("late", { succeededAt: day.to + 5 })],
      [order("cheap"), order("unlisted", { total: 120 })],
    );
    expect(found.map((d) => [d.kind, d.ref, d.tenantId])).toEqual([
      ["AMOUNT_MISMATCH", "tx-cheap:PAYMENT", "t1"],
      ["EXTRA", "tx-unlisted:PAYMENT", "t1"],
      ["MISSING", "tx-ghost:PAYMENT", ""],
      ["ORDER_MISMATCH", "o-unlisted", "t1"],
      ["STATUS_MISMATCH", "tx-pending:PAYMENT", "t1"],
    ]);
    expect(found.find((d) => d.kind === "AMOUNT_MISMATCH")!.detail).toMatch(/90.*100/);
  });

  it("holds orders to their payments: the total, a paid state, a refund", () => {
    const found = reconcile(
      day,
      [line("a"), line("b"), line("c"), line("c", { kind: "REFUND" })],
      [payment("a"), payment("b"), payment("c", { status: "REFUNDED", refundedAt: at })],
      [order("a", { status: "PENDING_PAYMENT" }), order("c", { status: "PAID" })],
    );
    expect(found.map((d) => [d.ref, d.detail])).toEqual([
      ["o-a", expect.stringMatching(/PENDING_PAYMENT, not paid/)],
      ["o-b", expect.stringMatching(/does not exist/)],
      ["o-c", expect.stringMatching(/PAID, not refunded or cancelled/)],
    ]);
  });

  it("accepts a refund of a payment that arrived for a cancelled order, but not a capture kept for one", () => {
    const refunded = payment("r", { status: "REFUNDED", refundedAt: at });
    const kept = payment("k");
    const found = reconcile(day, [line("r"), line("r", { kind: "REFUND" }), line("k")], [refunded, kept], [order("r", { status: "CANCELLED" }), order("k", { status: "CANCELLED" })]);
    expect(found.map((d) => d.ref)).toEqual(["o-k"]);
  });

  it("is the same whatever order the inputs come in", () => {
    const statement = [line("x", { amount: 5 }), line("y"), line("z")];
    const payments = [payment("x"), payment("y"), payment("w")];
    const orders = [order("x"), order("y", { total: 1 }), order("w")];
    expect(reconcile(day, [...statement].reverse(), [...payments].reverse(), [...orders].reverse())).toEqual(reconcile(day, statement, payments, orders));
  });
});
