import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";
import { ORDER_STATUSES } from "./order.domain";

const tid = z.string().min(1).max(40);
const id = z.string().min(1).max(40);
const status = z.enum(ORDER_STATUSES as [string, ...string[]]).optional();
const sku = z.string().trim().min(1).max(64);

export const OrderContract = {
  /** Cart-less checkout: the items are held for the tenant's payment timeout. Needs an Idempotency-Key. */
  create: z.object({
    tenantId: tid,
    items: z.array(z.object({ sku, quantity: z.number().int().min(1).max(10_000) })).min(1).max(50),
    address: z.object({
      name: z.string().trim().min(1).max(100),
      line1: z.string().trim().min(1).max(200),
      city: z.string().trim().min(1).max(100),
      postcode: z.string().trim().min(1).max(20),
      country: z.string().trim().length(2).toUpperCase(),
    }),
  }),
  /** A flash sale's order for an admitted attempt (the flash service's call; not routed). */
  createFlash: z.object({
    tenantId: tid,
    buyerId: z.number().int().positive(),
    attemptId: z.string().min(1).max(80),
    sku,
    quantity: z.number().int().min(1).max(10_000),
    warehouse: z.string().min(1).max(32),
    price: z.number().int().min(0),
  }),
  /** Orders by id across tenants, for reconciliation (not routed); unknown ids are left out. */
  byIds: z.object({ orders: z.array(z.object({ tenantId: tid, id })).max(1000) }),
  mine: z.object({ status, ...pageInput }),
  get: z.object({ id }),
  cancel: z.object({ id }),
  complete: z.object({ id }),
  tenantOrders: z.object({ tid, status, ...pageInput }),
  tenantOrder: z.object({ tid, id }),
  ship: z.object({ tid, id }),
  /** Tenant staff refund a paid order; stock not yet shipped goes back on the shelf. */
  refund: z.object({ tid, id, reason: z.string().trim().min(1).max(500) }),
  tick: z.object({}),
};

export interface OrderView {
  id: string;
  tenantId: string;
  buyerId: number;
  status: string;
  items: { sku: string; warehouse: string; quantity: number; price: number }[];
  total: number;
  address: Record<string, string>;
  payBy: string;
  cancelReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export const OrderEvents = {
  created: "commerce.order.created",
  paid: "commerce.order.paid",
  cancelled: "commerce.order.cancelled",
  shipped: "commerce.order.shipped",
  completed: "commerce.order.completed",
  refunded: "commerce.order.refunded",
} as const;

/** A refunded order: the payment to return, and whether its goods are still here to restock. */
export interface OrderRefunded extends OrderHold {
  paymentId: string;
  restock: boolean;
  reason: string;
  /** The order had been paid (a refund of a payment that arrived after cancelling was never spent). */
  orderWasPaid: boolean;
}

export interface OrderCreated {
  orderId: string;
  tenantId: string;
  buyerId: number;
  total: number;
  at: number;
}

/** What inventory needs from an order event: whose hold, in which tenant. */
export interface OrderHold {
  orderId: string;
  tenantId: string;
  reservationId: string;
  buyerId: number;
  total: number;
}

export const orderRoutes: RouteDef[] = [
  { method: "POST", path: "/api/commerce/orders", action: "order.create", auth: "user", status: 201 },
  { method: "GET", path: "/api/commerce/orders", action: "order.mine", auth: "user" },
  { method: "GET", path: "/api/commerce/orders/:id", action: "order.get", auth: "user" },
  { method: "POST", path: "/api/commerce/orders/:id/cancel", action: "order.cancel", auth: "user" },
  { method: "POST", path: "/api/commerce/orders/:id/complete", action: "order.complete", auth: "user" },
  { method: "GET", path: "/api/commerce/tenants/:tid/orders", action: "order.tenantOrders", auth: "user", permission: "orders:read" },
  { method: "GET", path: "/api/commerce/tenants/:tid/orders/:id", action: "order.tenantOrder", auth: "user", permission: "orders:read" },
  { method: "POST", path: "/api/commerce/tenants/:tid/orders/:id/ship", action: "order.ship", auth: "user", permission: "orders:ship" },
  { method: "POST", path: "/api/commerce/tenants/:tid/orders/:id/refund", action: "order.refund", auth: "user", permission: "orders:refund" },
];
