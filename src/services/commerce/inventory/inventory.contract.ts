import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";

const tid = z.string().min(1).max(40);
const sku = z.string().trim().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-'");
const warehouse = z.string().trim().min(1).max(32).regex(/^[a-z0-9_-]+$/, "lower-case letters, digits, '_' or '-'");
const items = z
  .array(z.object({ sku, quantity: z.number().int().min(1).max(1_000_000), warehouse: warehouse.optional() }))
  .min(1)
  .max(100);

export const InventoryContract = {
  createProduct: z.object({ tid, sku, name: z.string().trim().min(1).max(200), price: z.number().int().min(0).max(1_000_000_000_000) }),
  listProducts: z.object({ tid, ...pageInput }),
  getProduct: z.object({ tid, sku }),
  setStock: z.object({ tid, sku, quantity: z.number().int().min(0).max(1_000_000_000), warehouse: warehouse.default("main") }),
  movements: z.object({ tid, sku, ...pageInput }),
  /**
   * Reservation branches (called by the coordinator; the reservation id is `<gid>:<branch id>`):
   * `reserve` holds the items for `ttlSeconds`, `confirm` makes the hold the order's, `release` gives
   * it back. Then `sell` (paid) or `unhold` (cancelled), by reservation id.
   */
  reserve: z.object({ tenantId: tid, items, ttlSeconds: z.number().int().min(1).max(7 * 86_400).default(900) }),
  confirm: z.object({ tenantId: tid }),
  release: z.object({ tenantId: tid }),
  sell: z.object({ tenantId: tid, reservationId: z.string().min(1).max(160) }),
  unhold: z.object({ tenantId: tid, reservationId: z.string().min(1).max(160) }),
  /**
   * Allocation branches (a flash sale's stock): `allocate` moves available units of a SKU from `from`
   * to the campaign's own warehouse, `keepAllocation` confirms, `returnAllocation` moves them back.
   */
  allocate: z.object({ tenantId: tid, sku, quantity: z.number().int().min(1).max(1_000_000_000), from: warehouse.default("main"), to: warehouse }),
  keepAllocation: z.object({ tenantId: tid }),
  returnAllocation: z.object({ tenantId: tid }),
  /** The sweep: expired holds go back to stock. */
  tick: z.object({}),
};

export interface StockView {
  warehouse: string;
  onHand: number;
  reserved: number;
  available: number;
}

export interface ProductView {
  sku: string;
  name: string;
  price: number;
  stock: { onHand: number; reserved: number; available: number };
  warehouses: StockView[];
  createdAt: string;
}

export interface ReservationView {
  reservationId: string;
  status: string;
  items: { sku: string; warehouse: string; quantity: number; price: number }[];
  expiresAt: string;
}

export const inventoryRoutes: RouteDef[] = [
  { method: "POST", path: "/api/commerce/tenants/:tid/products", action: "inventory.createProduct", auth: "user", status: 201, permission: "products:write" },
  { method: "GET", path: "/api/commerce/tenants/:tid/products", action: "inventory.listProducts", auth: "user", permission: "products:read" },
  { method: "GET", path: "/api/commerce/tenants/:tid/products/:sku", action: "inventory.getProduct", auth: "user", permission: "products:read" },
  { method: "PUT", path: "/api/commerce/tenants/:tid/stock/:sku", action: "inventory.setStock", auth: "user", permission: "stock:write" },
  { method: "GET", path: "/api/commerce/tenants/:tid/stock/:sku/movements", action: "inventory.movements", auth: "user", permission: "stock:read" },
];
