import type { KvOps, KvScript } from "../../../platform/kv/kv";
import { type AdmissionRefusalCode, type AttemptStatus, admit } from "./flash.domain";

/**
 * The flash sale's front gate in the kv: one atomic script admits an attempt (window, stock, the
 * buyer's limit, the idempotency key) and records it; others settle it, give units back, and warm a
 * campaign. Each is Lua for Redis and an embedded twin; `flash.kv.test.ts` runs both.
 *
 * Every key of a campaign carries `{<campaignId>}` so a Redis Cluster keeps them in one slot.
 */
export const flashKeys = (campaignId: string) => {
  const base = `flash:{${campaignId}}`;
  return {
    stock: `${base}:stock`,
    used: (userId: number) => `${base}:used:${userId}`,
    key: (userId: number, idemKey: string) => `${base}:key:${userId}:${idemKey}`,
    /** attempt id → its record (JSON): every admitted attempt, bounded by the campaign's stock. */
    attempts: `${base}:attempts`,
    /** attempt id → admission time, until the attempt is on the stream: what a sweep republishes. */
    queued: `${base}:queued`,
  };
};

export interface AttemptRecord {
  status: AttemptStatus;
  userId: number;
  quantity: number;
  at: number;
  orderId?: string;
  reason?: string;
  /** The attempt's order was cancelled and its units went back to the campaign. */
  returned?: boolean;
}

export type AdmitAnswer = { outcome: "ADMITTED" | "DUPLICATE"; attemptId: string } | { outcome: "REFUSED"; code: AdmissionRefusalCode | "NOT_WARM" };

const ADMIT_LUA = `
local prior = redis.call('GET', KEYS[3])
if prior then return {'DUPLICATE', prior} end
local now, qty = tonumber(ARGV[1]), tonumber(ARGV[5])
if now < tonumber(ARGV[2]) then return {'REFUSED', 'NOT_STARTED'} end
if now >= tonumber(ARGV[3]) then return {'REFUSED', 'ENDED'} end
local remaining = redis.call('GET', KEYS[1])
if not remaining then return {'REFUSED', 'NOT_WARM'} end
if tonumber(remaining) < qty then return {'REFUSED', 'SOLD_OUT'} end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + qty > tonumber(ARGV[4]) then return {'REFUSED', 'LIMIT_REACHED'} end
redis.call('DECRBY', KEYS[1], qty)
redis.call('INCRBY', KEYS[2], qty)
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[8])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
redis.call('HSET', KEYS[5], ARGV[6], ARGV[1])
return {'ADMITTED', ARGV[6]}`;

/** KEYS: stock, used, key, attempts, queued. ARGV: now, startsAt, endsAt, perUserLimit, quantity, attemptId, record, ttlMs. */
export const admitScript: KvScript = {
  name: "flash_admit",
  lua: ADMIT_LUA,
  embedded(ops, [stock, used, key, attempts, queued], [now, startsAt, endsAt, limit, quantity, attemptId, record, ttlMs]) {
    const prior = ops.get(key);
    if (prior !== null) return ["DUPLICATE", prior];
    const remaining = ops.get(stock);
    const verdict = admit(
      { startsAt: Number(startsAt), endsAt: Number(endsAt), perUserLimit: Number(limit) },
      { remaining: remaining === null ? null : Number(remaining), used: Number(ops.get(used) ?? "0") },
      Number(quantity),
      Number(now),
    );
    if (!verdict.admitted) return ["REFUSED", verdict.code];
    ops.incrBy(stock, -Number(quantity));
    ops.set(used, String(ops.incrBy(used, Number(quantity))), Number(ttlMs));
    ops.set(key, attemptId, Number(ttlMs));
    ops.hset(attempts, attemptId, record);
    ops.hset(queued, attemptId, now);
    return ["ADMITTED", attemptId];
  },
};

const SETTLE_LUA = `
redis.call('HDEL', KEYS[4], ARGV[1])
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then return {'UNKNOWN'} end
if cjson.decode(rec).status ~= 'QUEUED' then return {'ALREADY'} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCRBY', KEYS[1], ARGV[4])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], ARGV[4]) end
end
return {'SETTLED'}`;

/**
 * An attempt's outcome from the order pipeline. A rejected one may give its units back (when the
 * database did not count them). Idempotent: only a QUEUED record moves.
 * KEYS: stock, used, attempts, queued. ARGV: attemptId, record, giveBack (1/0), quantity.
 */
export const settleScript: KvScript = {
  name: "flash_settle",
  lua: SETTLE_LUA,
  embedded(ops, [stock, used, attempts, queued], [attemptId, record, giveBack, quantity]) {
    ops.hdel(queued, attemptId);
    const prior = ops.hget(attempts, attemptId);
    if (prior === null) return ["UNKNOWN"];
    if ((JSON.parse(prior) as AttemptRecord).status !== "QUEUED") return ["ALREADY"];
    ops.hset(attempts, attemptId, record);
    if (giveBack === "1" && ops.exists(stock)) {
      ops.incrBy(stock, Number(quantity));
      if (ops.exists(used)) ops.incrBy(used, -Number(quantity));
    }
    return ["SETTLED"];
  },
};

/** The attempt is on the stream (durably): no sweep needs to publish it again. KEYS: queued. ARGV: attemptId. */
export const publishedScript: KvScript = {
  name: "flash_published",
  lua: "redis.call('HDEL', KEYS[1], ARGV[1]) return {'PUBLISHED'}",
  embedded(ops, [queued], [attemptId]) {
    ops.hdel(queued, attemptId);
    return ["PUBLISHED"];
  },
};

const GIVE_BACK_LUA = `
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then return {'UNKNOWN'} end
local r = cjson.decode(rec)
if r.status ~= 'ORDERED' or r.returned then return {'ALREADY'} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], r.quantity) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], r.quantity) end
return {'RETURNED'}`;

/**
 * An ordered attempt's order was cancelled: its units go back to the campaign, once.
 * KEYS: stock, used, attempts. ARGV: attemptId, record (with `returned`).
 */
export const giveBackScript: KvScript = {
  name: "flash_give_back",
  lua: GIVE_BACK_LUA,
  embedded(ops, [stock, used, attempts], [attemptId, record]) {
    const prior = ops.hget(attempts, attemptId);
    if (prior === null) return ["UNKNOWN"];
    const r = JSON.parse(prior) as AttemptRecord;
    if (r.status !== "ORDERED" || r.returned) return ["ALREADY"];
    ops.hset(attempts, attemptId, record);
    if (ops.exists(stock)) ops.incrBy(stock, r.quantity);
    if (ops.exists(used)) ops.incrBy(used, -r.quantity);
    return ["RETURNED"];
  },
};

const WARM_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'WARMED'} end
return {'WARM'}`;

/** Puts the campaign's remaining units in the kv unless they are there. KEYS: stock. ARGV: remaining, ttlMs. */
export const warmScript: KvScript = {
  name: "flash_warm",
  lua: WARM_LUA,
  embedded(ops: KvOps, [stock], [remaining, ttlMs]) {
    return [ops.setNX(stock, remaining, Number(ttlMs)) ? "WARMED" : "WARM"];
  },
};

export function admitAnswer(raw: string[]): AdmitAnswer {
  if (raw[0] === "REFUSED") return { outcome: "REFUSED", code: raw[1] as AdmissionRefusalCode | "NOT_WARM" };
  return { outcome: raw[0] as "ADMITTED" | "DUPLICATE", attemptId: raw[1] };
}
