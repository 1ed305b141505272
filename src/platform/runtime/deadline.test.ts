import { Errors, ServiceBroker } from "moleculer";
import { afterEach, describe, expect, it } from "vitest";
import { deadlineMiddleware } from "./deadline";

const brokers: ServiceBroker[] = [];

function broker(nodeID: string, transporter?: string, defaultMs = 150) {
  const b = new ServiceBroker({ nodeID, logger: false, transporter, requestTimeout: 0, middlewares: [deadlineMiddleware(defaultMs, 10)] });
  brokers.push(b);
  return b;
}

const slow = {
  name: "slow",
  actions: {
    never: () => new Promise(() => undefined),
    quick: (ctx: { params: { n: number } }) => ctx.params.n * 2,
    refuse: () => Promise.reject(new Errors.MoleculerClientError("no", 409, "REFUSED")),
  },
};

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

describe("call deadlines on one coarse clock", () => {
  it("fails a local call that never answers with Moleculer's RequestTimeoutError, near its deadline", async () => {
    const b = broker("local");
    b.createService(slow);
    await b.start();
    const started = Date.now();
    const err = await b.call("slow.never").catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
    expect((err as Errors.RequestTimeoutError).data).toMatchObject({ action: "slow.never" });
    expect(took).toBeGreaterThanOrEqual(140);
  });

  it("honours a call's own timeout over the default", async () => {
    // A default far beyond the test's own timeout: only the call's 40 ms can end it.
    const b = broker("own", undefined, 600_000);
    b.createService(slow);
    await b.start();
    await expect(b.call("slow.never", {}, { timeout: 40 })).rejects.toBeInstanceOf(Errors.RequestTimeoutError);
  });

  it("passes answers and refusals through untouched", async () => {
    const b = broker("through");
    b.createService(slow);
    await b.start();
    await expect(b.call("slow.quick", { n: 21 })).resolves.toBe(42);
    await expect(b.call("slow.refuse")).rejects.toMatchObject({ code: 409, type: "REFUSED" });
  });

  it("times a call to another node whose handler never answers", async () => {
    const server = broker("server", "Fake");
    server.createService(slow);
    const client = broker("client", "Fake");
    await Promise.all([server.start(), client.start()]);
    await client.waitForServices("slow");
    await expect(client.call("slow.never")).rejects.toBeInstanceOf(Errors.RequestTimeoutError);
    await expect(client.call("slow.quick", { n: 2 })).resolves.toBe(4);
  });
});
