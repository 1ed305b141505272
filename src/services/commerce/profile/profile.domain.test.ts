import { describe, expect, it } from "vitest";
import { EMPTY_FACTS, tagsOf } from "./profile.domain";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 25);

describe("profile tags", () => {
  it("say what behaviour shows, and nothing for a user nothing is known of but dormancy", () => {
    expect(tagsOf(EMPTY_FACTS, NOW)).toEqual(["dormant"]);
    expect(tagsOf({ ...EMPTY_FACTS, accountCreatedAt: NOW - DAY, lastActiveAt: NOW - 1000 }, NOW)).toEqual(["new", "active"]);
    expect(tagsOf({ ...EMPTY_FACTS, accountCreatedAt: NOW - 400 * DAY, lastActiveAt: NOW - 100 * DAY, ordersPaid: 2, ordersCompleted: 6 }, NOW)).toEqual(["dormant", "buyer", "loyal"]);
    expect(tagsOf({ ...EMPTY_FACTS, accountCreatedAt: NOW - 60 * DAY, lastActiveAt: NOW - 20 * DAY }, NOW)).toEqual(["trusted"]);
  });

  it("flag a recent violation, and withhold trust from anyone with one upheld", () => {
    const base = { ...EMPTY_FACTS, accountCreatedAt: NOW - 60 * DAY, lastActiveAt: NOW - DAY, violationsUpheld: 1 };
    expect(tagsOf({ ...base, lastViolationAt: NOW - 10 * DAY }, NOW)).toEqual(["active", "flagged"]);
    expect(tagsOf({ ...base, lastViolationAt: NOW - 100 * DAY }, NOW)).toEqual(["active"]);
  });
});
