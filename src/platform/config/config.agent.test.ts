import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigAgent } from "./config.agent";

describe("a node whose config centre is out of reach", () => {
  const broker = new ServiceBroker({ nodeID: "agent-alone", logger: false });
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const agent = new ConfigAgent(mkdtempSync(path.join(tmpdir(), "agent-")), "test", [], logger);

  afterAll(async () => {
    agent.detach();
    await broker.stop();
  });

  it("runs on the defaults and says so once, not once per key and retry", async () => {
    await broker.start();
    const handles = ["a", "b", "c"].map((key) => agent.watch("svc", "svc", key, z.number(), 7));
    agent.attach(broker);
    // The first look (after waiting up to 5 s for the centre) and two retries (1 s, then 2 s later).
    await new Promise((r) => setTimeout(r, 8_500));
    expect(handles.map((h) => h.value)).toEqual([7, 7, 7]);
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings.map((l) => l.msg)).toEqual(["config centre not reachable; running on the last known values until it is"]);
  }, 20_000);
});
