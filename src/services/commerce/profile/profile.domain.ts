/**
 * User profiles, pure: the tags a user's behaviour earns (orders, activity, violations upheld against
 * them). Tags depend on time, so they are computed when read, from the stored facts. No I/O.
 */

const DAY = 86_400_000;

export interface ProfileFacts {
  accountCreatedAt: number | null;
  lastActiveAt: number | null;
  ordersPlaced: number;
  ordersPaid: number;
  ordersCompleted: number;
  /** Paid minus refunded, in minor units. */
  spent: number;
  violationsUpheld: number;
  lastViolationAt: number | null;
}

export type Tag = "new" | "active" | "dormant" | "buyer" | "loyal" | "flagged" | "trusted";

/**
 * - new: account under 7 days; active: seen within 7 days, dormant: not within 90;
 * - buyer: a paid order; loyal: 5 completed orders;
 * - flagged: a violation upheld against them within 90 days;
 * - trusted: account of 30 days or more, active within 30, nothing upheld against them ever.
 */
export function tagsOf(f: ProfileFacts, now: number): Tag[] {
  const tags: Tag[] = [];
  const age = f.accountCreatedAt === null ? null : now - f.accountCreatedAt;
  const idle = f.lastActiveAt === null ? null : now - f.lastActiveAt;
  if (age !== null && age < 7 * DAY) tags.push("new");
  if (idle !== null && idle <= 7 * DAY) tags.push("active");
  if (idle === null || idle > 90 * DAY) tags.push("dormant");
  if (f.ordersPaid > 0) tags.push("buyer");
  if (f.ordersCompleted >= 5) tags.push("loyal");
  if (f.lastViolationAt !== null && now - f.lastViolationAt <= 90 * DAY) tags.push("flagged");
  if (age !== null && age >= 30 * DAY && idle !== null && idle <= 30 * DAY && f.violationsUpheld === 0) tags.push("trusted");
  return tags;
}

export const EMPTY_FACTS: ProfileFacts = {
  accountCreatedAt: null,
  lastActiveAt: null,
  ordersPlaced: 0,
  ordersPaid: 0,
  ordersCompleted: 0,
  spent: 0,
  violationsUpheld: 0,
  lastViolationAt: null,
};
