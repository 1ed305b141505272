import type { ServiceBroker, ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../test/support/harness";
import type { Platform } from "../runtime/platform";
import { LANE_HEADER } from "./lane";

/** What the consumer saw: the message's lane header, and the lane a call it made arrived with. */
const seen: { header?: string; calledIn?: string }[] = [];

function producer(platform: Platform): ServiceSchema {
  const host = platform.host("lane-producer", {});
  return {
    name: "laneProducer",
    actions: {
      emit: { handler: () => host.tx(async (_trx, emit) => emit("lane.test.happened", { at: 1 })) },
    },
    started: () => host.start(),
    stopped: () => host.stop(),
  };
}

function consumer(platform: Platform): ServiceSchema {
  const host = platform.host("lane-consumer", {});
  let broker: ServiceBroker;
  host.consume("lane.test.happened", async (_trx, message) => {
    // A call without a context, as consumers make them: the lane must come along anyway.
    const calledIn = await broker.call<string | undefined, object>("laneConsumer.whoami", {});
    seen.push({ header: message.headers[LANE_HEADER], calledIn });
  });
  return {
    name: "laneConsumer",
    actions: { whoami: { handler: (ctx: { meta: { lane?: string } }) => ctx.meta.lane } },
    started() {
      broker = this.broker;
      return host.start();
    },
    stopped: () => host.stop(),
  };
}

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity"], extra: { laneProducer: producer, laneConsumer: consumer } });
});
afterAll(() => sys?.stop());

describe("release lanes through the stream", () => {
  it("go with an event into its message's headers, and on into the calls its consumer makes", async () => {
    await sys.call("laneProducer.emit", {}, { lane: "1.1.0" });
    await sys.call("laneProducer.emit", {});
    await eventually(async () => seen.length === 2);
    expect(seen).toEqual([{ header: "1.1.0", calledIn: "1.1.0" }, { header: undefined, calledIn: undefined }]);
  });
});
