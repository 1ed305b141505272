import path from "node:path";
import Fastify from "fastify";
import type { ServiceSchema } from "moleculer";
import { z } from "zod";
import { version as PACKAGE_VERSION } from "../package.json";
import { systemClock } from "../src/platform/clock/clock";
import { TokenSigner } from "../src/platform/gateway/jwt";
import { Guard, type GuardRuleSet } from "../src/platform/guard/guard";
import { DegradeRule, FlowRule, ParamRule } from "../src/platform/guard/guard.domain";
import { MemoryKv } from "../src/platform/kv/memory.kv";
import { Metrics } from "../src/platform/observability/metrics";
import { action } from "../src/platform/runtime/action";
import { benchNode, operator, wrk, stopBenchNode } from "./support";

const HUGE = 1e12;
const WARM_UP_SECONDS = 3;

/** Ten rules on one resource, none of which refuses: what every admitted call pays. */
function tenRules(resource: string): GuardRuleSet {
  return {
    flow: [
      FlowRule.parse({ resource, count: HUGE }),
      FlowRule.parse({ resource, count: HUGE, behavior: "WARM_UP" }),
      FlowRule.parse({ resource, count: HUGE }),
      FlowRule.parse({ resource, grade: "CONCURRENCY", count: HUGE }),
    ],
    degrade: [
      DegradeRule.parse({ resource, grade: "ERROR_RATIO", count: 0.9, timeWindow: 10 }),
      DegradeRule.parse({ resource, grade: "SLOW_REQUEST_RATIO", count: 1000, timeWindow: 10 }),
      DegradeRule.parse({ resource, grade: "ERROR_COUNT", count: HUGE, timeWindow: 10 }),
    ],
    param: [
      ParamRule.parse({ resource, param: "meta.user.id", count: HUGE }),
      ParamRule.parse({ resource, param: "params.itemId", count: HUGE }),
    ],
    system: [{ maxConcurrency: HUGE }],
  };
}

/** (1) The guard engine alone: enter + exit with ten rules active, against the same loop with none. */
export function guardOverhead(calls = 2_000_000) {
  const guard = new Guard(systemClock, new MemoryKv(systemClock, "b:"), new Metrics(false), () => 0);
  guard.load(tenRules("bench.quote"));
  const subjects = Array.from({ length: 1000 }, (_, i) => ({ params: { itemId: i % 97 }, meta: { user: { id: i } } }));
  const run = (resource: string) => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) {
      if (!guard.applies(resource, true)) continue;
      guard.enter(resource, subjects[i % 1000], true).exit(false);
    }
    return Number(process.hrtime.bigint() - started) / calls;
  };
  run("bench.quote");
  return { rules: 10, nsPerCall: Math.round(run("bench.quote")) };
}

const helloService = (): ServiceSchema => ({
  name: "hello",
  settings: { routes: [{ method: "GET", path: "/api/bench/hello", action: "hello.say", auth: "user" }] },
  actions: { say: action(z.object({}), async () => ({ hello: "world" })) },
});

async function load(url: string, connections: number, seconds: number, token?: string) {
  const auth = token ? ["-H", `authorization: Bearer ${token}`] : [];
  return wrk<{ requests: number; seconds: number; p50ms: number; p99ms: number; non2xx: number }>(["-t1", `-c${connections}`, `-d${seconds}s`, ...auth, "-s", path.join(__dirname, "get-load.lua"), url]).then((r) => ({
    ...r,
    requestsPerSecond: Math.round(r.requests / r.seconds),
  }));
}

/** The services of a gateway node as deployed (deploy/compose: gateway-1, gateway-2). */
const GATEWAY_GROUP = ["gateway", "identity", "tenant", "permission", "profile", "config", "release"];

/**
 * (2) The gateway with JWT auth, ten guard rules on the route and ten on its action, and gray routing
 * (a header rule, a 10 % user share and weights, decided per request), against a bare
 * Fastify hello endpoint, both loaded the same way from another process. The gateway node runs the
 * services a deployed gateway node runs, plus the hello service it calls. Both servers stay up and
 * rounds alternate between them: the VM drifts by tens of percent over a minute, so a ratio is taken
 * within a round and the median of the rounds reported. (A node started anew each round measured
 * slower each time: the old instances' closures left the JIT's caches polymorphic.)
 */
export async function gatewayVersusBare(connections = 32, seconds = 6, rounds = 5) {
  const gatewayNode = await startGateway();
  const bare = Fastify();
  bare.get("/hello", async () => ({ hello: "world" }));
  await bare.listen({ port: 0, host: "127.0.0.1" });
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as { port: number }).port}/hello`;
  try {
    // Measured warm: the first seconds of load are the JIT's, not the steady state's.
    await load(gatewayNode.url, connections, WARM_UP_SECONDS, gatewayNode.token);
    await load(bareUrl, connections, WARM_UP_SECONDS);
    const results = [];
    for (let round = 0; round < rounds; round++) {
      const gateway = await withCpu(() => load(gatewayNode.url, connections, seconds, gatewayNode.token));
      const bareFastify = await withCpu(() => load(bareUrl, connections, seconds));
      results.push({
        gateway,
        bareFastify,
        ratio: Math.round((gateway.requestsPerSecond / bareFastify.requestsPerSecond) * 100) / 100,
        // By this process's CPU per answered request: steadier than throughput on a shared VM.
        cpuRatio: Math.round((bareFastify.cpuMicrosPerRequest / gateway.cpuMicrosPerRequest) * 100) / 100,
      });
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    return { connections, seconds, rounds: results, medianRatio: median(results.map((r) => r.ratio)), medianCpuRatio: median(results.map((r) => r.cpuRatio)) };
  } finally {
    await bare.close();
    await gatewayNode.stop();
  }
}

/** The gateway node with its rules and routing in force; answers its hello URL and a user's token. */
async function startGateway() {
  const { node } = await benchNode({ hello: helloService }, {}, GATEWAY_GROUP);
  const route = tenRules("GET /api/bench/hello");
  const act = tenRules("hello.say");
  for (const [key, value] of [
    ["flow-rules", [...route.flow, ...act.flow]],
    ["degrade-rules", [...route.degrade, ...act.degrade]],
    ["param-rules", [...route.param, ...act.param]],
    ["system-rules", route.system],
    ["routing", { stable: PACKAGE_VERSION, rules: [{ header: "x-bazaar-canary", equals: "1", lane: "next" }, { userPercent: 10, lane: "next" }, { weights: { [PACKAGE_VERSION]: 100 } }] }],
  ] as const) {
    // The node's agent registers the guard's schemas with the centre just after start.
    const group = key === "routing" ? "release" : "guard";
    const put = () => node.broker.call("config.put", { namespace: node.platform.config.namespace, group, key, value }, operator);
    for (let attempt = 0; ; attempt++) {
      try {
        await put();
        break;
      } catch (err) {
        if (attempt > 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  while (!node.platform.guard.applies("hello.say", false) || node.platform.routing.value.rules.length === 0) await new Promise((r) => setTimeout(r, 20));
  const token = await TokenSigner.fromConfig(node.platform.config).sign({ id: 1, username: "bench", roles: ["user"] }, 3600, Date.now());
  return { url: `${node.url}/api/bench/hello`, token, stop: () => stopBenchNode(node) };
}

/** A load run with the CPU this process (the server under load) spent per answered request. */
async function withCpu<R extends { requests: number }>(run: () => Promise<R>): Promise<R & { cpuMicrosPerRequest: number; userMicrosPerRequest: number }> {
  const before = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(before);
  const per = (micros: number) => Math.round(micros / Math.max(1, result.requests));
  // User time apart: the kernel's share (system time) is the sockets', the same for any server.
  return { ...result, cpuMicrosPerRequest: per(used.user + used.system), userMicrosPerRequest: per(used.user) };
}
