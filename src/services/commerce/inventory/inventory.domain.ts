/**
 * Stock per SKU and warehouse, pure: what each movement does to a level, when it is refused (stock
 * is never negative, never below what is reserved), and the reservation state machine. No I/O.
 */

export interface Level {
  onHand: number;
  reserved: number;
}

export type MovementKind = "SET" | "RESERVE" | "RELEASE" | "EXPIRE" | "SELL" | "RETURN" | "TRANSFER_OUT" | "TRANSFER_IN";

export type Refusal = { code: "INSUFFICIENT_STOCK" | "STOCK_BELOW_RESERVED"; message: string };

export const available = (l: Level): number => l.onHand - l.reserved;

/**
 * The level after a movement of `quantity` (for SET, the new on-hand count), or the refusal.
 * RESERVE holds stock, RELEASE and EXPIRE give a hold back, SELL turns a hold into a sale, RETURN puts
 * sold goods (refunded before they left) back on the shelf. TRANSFER_OUT takes available stock to
 * another warehouse (a flash sale's allocation), TRANSFER_IN receives it.
 */
export function move(level: Level, kind: MovementKind, quantity: number): Level | Refusal {
  switch (kind) {
    case "SET":
      if (quantity < level.reserved)
        return { code: "STOCK_BELOW_RESERVED", message: `${level.reserved} are reserved; on-hand stock cannot go below that` };
      return { onHand: quantity, reserved: level.reserved };
    case "RESERVE":
      if (available(level) < quantity) return { code: "INSUFFICIENT_STOCK", message: `${available(level)} available, ${quantity} asked` };
      return { onHand: level.onHand, reserved: level.reserved + quantity };
    case "RELEASE":
    case "EXPIRE":
      return { onHand: level.onHand, reserved: Math.max(0, level.reserved - quantity) };
    case "SELL":
      return { onHand: level.onHand - quantity, reserved: Math.max(0, level.reserved - quantity) };
    case "RETURN":
    case "TRANSFER_IN":
      return { onHand: level.onHand + quantity, reserved: level.reserved };
    case "TRANSFER_OUT":
      if (available(level) < quantity) return { code: "INSUFFICIENT_STOCK", message: `${available(level)} available, ${quantity} asked` };
      return { onHand: level.onHand - quantity, reserved: level.reserved };
  }
}

export function isRefusal(r: Level | Refusal): r is Refusal {
  return "code" in r;
}

/**
 * RESERVED: tried, the transaction undecided. CONFIRMED: the transaction committed the hold (an order
 * stands on it); it stays held until sold, released, or expired. SOLD, RELEASED, EXPIRED are final.
 */
export type ReservationStatus = "RESERVED" | "CONFIRMED" | "SOLD" | "RELEASED" | "EXPIRED";

const NEXT: Record<ReservationStatus, readonly ReservationStatus[]> = {
  RESERVED: ["CONFIRMED", "RELEASED", "EXPIRED"],
  CONFIRMED: ["SOLD", "RELEASED", "EXPIRED"],
  SOLD: [],
  RELEASED: [],
  EXPIRED: [],
};

/** A hold not yet sold or returned: it still takes stock. */
export function isHeld(status: ReservationStatus): boolean {
  return status === "RESERVED" || status === "CONFIRMED";
}

export function canTransition(from: ReservationStatus, to: ReservationStatus): boolean {
  return NEXT[from].includes(to);
}

/** Merges lines naming the same SKU and warehouse, in a stable order (locks are then taken in one order). */
export function normaliseItems(items: readonly { sku: string; quantity: number; warehouse?: string }[]): { sku: string; warehouse: string; quantity: number }[] {
  const merged = new Map<string, { sku: string; warehouse: string; quantity: number }>();
  for (const item of items) {
    const warehouse = item.warehouse ?? "main";
    const key = `${item.sku}\u0000${warehouse}`;
    const line = merged.get(key);
    if (line) line.quantity += item.quantity;
    else merged.set(key, { sku: item.sku, warehouse, quantity: item.quantity });
  }
  return [...merged.values()].sort((a, b) => (a.sku === b.sku ? a.warehouse.localeCompare(b.warehouse) : a.sku.localeCompare(b.sku)));
}
