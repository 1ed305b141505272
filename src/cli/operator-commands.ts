import type { Command } from "commander";
import { ApiClient } from "../platform/gateway/client";
import { loadConfig } from "../platform/runtime/config";

interface Connection {
  url?: string;
  user: string;
  password?: string;
  namespace?: string;
}

type Call = (api: ApiClient, token: string, namespace: string) => Promise<{ status: number; body: unknown }>;

/** Options every operator command takes: which gateway, as whom. */
function withConnection(command: Command): Command {
  return command
    .option("--url <url>", "gateway to talk to (default http://127.0.0.1:<BAZAAR_PORT>)")
    .option("--user <name>", "operator account", "admin")
    .option("--password <password>", "its password (default BAZAAR_ADMIN_PASSWORD)")
    .option("--namespace <ns>", "namespace (default BAZAAR_NAMESPACE)");
}

/** Signs in as the operator, makes the call, prints the API's JSON answer; a 4xx/5xx answer exits 1. */
async function run(command: Command, call: Call): Promise<void> {
  const options = command.optsWithGlobals<Connection>();
  const settings = loadConfig();
  const api = new ApiClient(options.url ?? `http://127.0.0.1:${settings.port}`);
  const password = options.password ?? settings.adminPassword;
  if (!password) throw new Error("give the operator's password with --password or BAZAAR_ADMIN_PASSWORD");
  const { token } = await api.login(options.user, password);
  const res = await call(api, token, options.namespace ?? settings.namespace);
  process.stdout.write(`${JSON.stringify(res.body, null, 2)}\n`);
  if (res.status >= 400) process.exitCode = 1;
}

/** `bazaar node list|drain|undrain`: the release switch of a running system (blue-green, rolling). */
export function addNodeCommands(node: Command): void {
  withConnection(node.command("list").description("nodes with version, colour, zone, tags and drained state")).action((_o: unknown, command: Command) =>
    run(command, (api, token) => api.get("/api/platform/nodes", token)),
  );
  for (const verb of ["drain", "undrain"] as const)
    withConnection(
      node
        .command(`${verb} <nodeId>`)
        .description(verb === "drain" ? "stop sending the node new calls (calls in flight finish)" : "let the node take calls again"),
    ).action((nodeId: string, _o: unknown, command: Command) => run(command, (api, token) => api.post(`/api/platform/nodes/${encodeURIComponent(nodeId)}/${verb}`, {}, token)));
}

/**
 * `bazaar config get|set|history|rollback|promote`: the config centre's operator API from a shell,
 * through a running gateway, signed in as an operator.
 */
export function addConfigCommands(program: Command): void {
  const config = withConnection(program.command("config").description("read and change values in the config centre of a running system"));
  const base = (namespace: string) => `/api/platform/config/${namespace}`;

  config
    .command("get <group> <key>")
    .description("the released value, and the gray one if any")
    .action((group: string, key: string, _o: unknown, command: Command) => run(command, (api, token, ns) => api.get(`${base(ns)}/${group}/${key}`, token)));

  config
    .command("set <group> <key> <json>")
    .description("write a new version: to every node, or with --gray-tags first to nodes carrying those tags")
    .option("--gray-tags <tags>", "comma-separated node tags")
    .action((group: string, key: string, json: string, options: { grayTags?: string }, command: Command) => {
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        throw new Error(`the value is not JSON: ${json}`);
      }
      const grayTags = options.grayTags?.split(",").map((t) => t.trim()).filter(Boolean);
      return run(command, (api, token, ns) => api.put(`${base(ns)}/${group}/${key}`, grayTags ? { value, grayTags } : { value }, token));
    });

  config
    .command("history <group> <key>")
    .description("every version, newest first, with author, time and what changed")
    .option("--limit <n>", "versions to show", "50")
    .action((group: string, key: string, options: { limit: string }, command: Command) =>
      run(command, (api, token, ns) => api.get(`${base(ns)}/${group}/${key}/history?limit=${encodeURIComponent(options.limit)}`, token)),
    );

  config
    .command("rollback <group> <key> <version>")
    .description("release an earlier version's value again, as a new version")
    .action((group: string, key: string, version: string, _o: unknown, command: Command) =>
      run(command, (api, token, ns) => api.post(`${base(ns)}/${group}/${key}/rollback`, { version: Number(version) }, token)),
    );

  config
    .command("promote <group> <key>")
    .description("release the gray version to every node")
    .action((group: string, key: string, _o: unknown, command: Command) => run(command, (api, token, ns) => api.post(`${base(ns)}/${group}/${key}/promote`, {}, token)));
}

/** `bazaar reconcile --date YYYY-MM-DD`: reconciles a day now (again, if it was) and prints its report. */
export function addReconcileCommand(program: Command): void {
  withConnection(
    program
      .command("reconcile")
      .description("reconcile a UTC day: the payment provider's statement against our payments, payments against orders")
      .requiredOption("--date <date>", "the day, as YYYY-MM-DD (UTC)"),
  ).action((options: { date: string }, command: Command) =>
    run(command, (api, token) => api.post(`/api/commerce/reconciliation/${encodeURIComponent(options.date)}/run`, {}, token)),
  );
}

/** `bazaar audit ledger`: the exchange ledger's invariant, checked now; exits 1 when it does not hold. */
export function addAuditCommand(program: Command): void {
  const audit = program.command("audit").description("check invariants of a running system");
  withConnection(audit.command("ledger").description("every exchange balance of every account adds up to zero per asset; every journal balances")).action(
    (_o: unknown, command: Command) =>
      run(command, async (api, token) => {
        const res = await api.get("/api/exchange/admin/ledger/audit", token);
        return res.status === 200 && !(res.body as { ok: boolean }).ok ? { ...res, status: 409 } : res;
      }),
  );
}
