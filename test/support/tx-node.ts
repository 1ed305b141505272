import { ensureAdmin } from "../../src/cli/bootstrap";
import { loadConfig } from "../../src/platform/runtime/config";
import { startNode } from "../../src/platform/runtime/system";
import { catalogue } from "../../src/services/catalog";
import { bankService, shopService } from "./bank";

/**
 * A node for fault-injection tests, run as a child process: the platform's services named in
 * BAZAAR_SERVICES plus the test participants (bank, shop), configured from the environment.
 */
async function main() {
  const config = loadConfig();
  const services = (process.env.BAZAAR_SERVICES ?? "gateway,identity,tx,bank,shop").split(",");
  const node = await startNode(config, { catalogue: { ...catalogue, bank: bankService, shop: shopService }, services });
  if (services.includes("identity")) await ensureAdmin(node.broker, config.adminPassword);
  node.platform.readiness.ready = true;
  process.on("SIGTERM", () => void node.stop().then(() => process.exit(0)));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
