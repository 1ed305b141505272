import type { Command } from "commander";
import { ApiClient } from "../platform/gateway/client";
import { loadConfig } from "../platform/runtime/config";

interface Connection {
  url?: string;
  user: string;
  password?: string;
  namespace?: string;
}

/**
 * `bazaar config get|set|history|rollback|promote`: the config centre's operator API from a shell,
 * through a running gateway, signed in as an operator. Prints the API's JSON answer.
 */
export function addConfigCommands(program: Command): void {
  const config = program
    .command("config")
    .description("read and change values in the config centre of a running system")
    .option("--url <url>", "gateway to talk to (default http://127.0.0.1:<BAZAAR_PORT>)")
    .option("--user <name>", "operator account", "admin")
    .option("--password <password>", "its password (default BAZAAR_ADMIN_PASSWORD)")
    .option("--namespace <ns>", "config namespace (default BAZAAR_NAMESPACE)");

  const run = async (command: Command, call: (api: ApiClient, token: string, base: string) => Promise<{ status: number; body: unknown }>) => {
    const options = command.optsWithGlobals<Connection>();
    const settings = loadConfig();
    const api = new ApiClient(options.url ?? `http://127.0.0.1:${settings.port}`);
    const password = options.password ?? settings.adminPassword;
    if (!password) throw new Error("give the operator's password with --password or BAZAAR_ADMIN_PASSWORD");
    const { token } = await api.login(options.user, password);
    const res = await call(api, token, `/api/platform/config/${options.namespace ?? settings.namespace}`);
    process.stdout.write(`${JSON.stringify(res.body, null, 2)}\n`);
    if (res.status >= 400) process.exitCode = 1;
  };

  config
    .command("get <group> <key>")
    .description("the released value, and the gray one if any")
    .action((group: string, key: string, _o: unknown, command: Command) => run(command, (api, token, base) => api.get(`${base}/${group}/${key}`, token)));

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
      return run(command, (api, token, base) => api.put(`${base}/${group}/${key}`, grayTags ? { value, grayTags } : { value }, token));
    });

  config
    .command("history <group> <key>")
    .description("every version, newest first, with author, time and what changed")
    .option("--limit <n>", "versions to show", "50")
    .action((group: string, key: string, options: { limit: string }, command: Command) =>
      run(command, (api, token, base) => api.get(`${base}/${group}/${key}/history?limit=${encodeURIComponent(options.limit)}`, token)),
    );

  config
    .command("rollback <group> <key> <version>")
    .description("release an earlier version's value again, as a new version")
    .action((group: string, key: string, version: string, _o: unknown, command: Command) =>
      run(command, (api, token, base) => api.post(`${base}/${group}/${key}/rollback`, { version: Number(version) }, token)),
    );

  config
    .command("promote <group> <key>")
    .description("release the gray version to every node")
    .action((group: string, key: string, _o: unknown, command: Command) => run(command, (api, token, base) => api.post(`${base}/${group}/${key}/promote`, {}, token)));
}
