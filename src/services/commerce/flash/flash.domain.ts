/**
 * Flash sale rules, pure: campaign validity, the admission decision the kv script makes (and its
 * Lua twin mirrors), the settle-time check the database makes as the final authority, and the
 * campaign's counts. No I/O.
 */

export type AdmissionRefusalCode = "NOT_STARTED" | "ENDED" | "SOLD_OUT" | "LIMIT_REACHED";
export type AttemptStatus = "QUEUED" | "ORDERED" | "REJECTED";

export interface CampaignWindow {
  startsAt: number;
  endsAt: number;
  perUserLimit: number;
}

export interface AdmissionState {
  /** Units the front gate may still admit; null when the campaign is not warmed into the kv. */
  remaining: number | null;
  /** Units this buyer already holds in the campaign. */
  used: number;
}

export type Admission = { admitted: true } | { admitted: false; code: AdmissionRefusalCode | "NOT_WARM" };

/**
 * Whether an attempt for `quantity` units gets in, checked in this order: the window, the stock, the
 * buyer's limit. Sold out wins over the limit: nobody should be told to buy less when there is nothing.
 */
export function admit(window: CampaignWindow, state: AdmissionState, quantity: number, now: number): Admission {
  if (now < window.startsAt) return { admitted: false, code: "NOT_STARTED" };
  if (now >= window.endsAt) return { admitted: false, code: "ENDED" };
  if (state.remaining === null) return { admitted: false, code: "NOT_WARM" };
  if (state.remaining < quantity) return { admitted: false, code: "SOLD_OUT" };
  if (state.used + quantity > window.perUserLimit) return { admitted: false, code: "LIMIT_REACHED" };
  return { admitted: true };
}

export const REFUSAL_MESSAGES: Record<AdmissionRefusalCode, string> = {
  NOT_STARTED: "the sale has not started yet",
  ENDED: "the sale has ended",
  SOLD_OUT: "sold out",
  LIMIT_REACHED: "you have reached this sale's per-buyer limit",
};

export interface CampaignInput {
  price: number;
  stock: number;
  startsAt: number;
  endsAt: number;
  perUserLimit: number;
}

export type CampaignProblem = { field: keyof CampaignInput; message: string };

/** What is wrong with a campaign as asked, or null. Creating one that has already ended is pointless. */
export function campaignProblem(c: CampaignInput, now: number): CampaignProblem | null {
  if (c.endsAt <= c.startsAt) return { field: "endsAt", message: "endsAt must be after startsAt" };
  if (c.endsAt <= now) return { field: "endsAt", message: "the campaign would already be over" };
  if (c.perUserLimit > c.stock) return { field: "perUserLimit", message: "perUserLimit cannot exceed the campaign's stock" };
  return null;
}

export interface SettleState {
  stock: number;
  /** Units of the campaign in orders that still stand. */
  taken: number;
  /** Units the buyer holds in orders that still stand. */
  userUnits: number;
  perUserLimit: number;
}

/**
 * The database's word when an admitted attempt reaches it: the front gate can be wrong only after
 * the kv lost its state (an embedded restart, a flushed Redis), and then the database refuses what
 * would oversell or break the buyer's limit.
 */
export function settleRefusal(state: SettleState, quantity: number): "SOLD_OUT" | "LIMIT_REACHED" | null {
  if (state.taken + quantity > state.stock) return "SOLD_OUT";
  if (state.userUnits + quantity > state.perUserLimit) return "LIMIT_REACHED";
  return null;
}

export interface CampaignCounts {
  stock: number;
  admitted: number;
  ordered: number;
  remaining: number;
}

/**
 * The campaign as buyers and staff see it. `remaining` is the front gate's count (the kv), or, when
 * the kv holds none, what the database says is left; `admitted` is what the gate has let through and
 * not given back.
 */
export function countsOf(stock: number, taken: number, kvRemaining: number | null): CampaignCounts {
  const remaining = kvRemaining ?? stock - taken;
  return { stock, admitted: stock - remaining, ordered: taken, remaining };
}

/** Attempt ids carry their campaign's id, so the kv keys of both share one Redis Cluster slot. */
export function attemptIdFor(campaignId: string, unique: string): string {
  return `${campaignId}.${unique}`;
}

export function campaignOfAttempt(attemptId: string): string | null {
  const dot = attemptId.indexOf(".");
  return dot > 0 ? attemptId.slice(0, dot) : null;
}
