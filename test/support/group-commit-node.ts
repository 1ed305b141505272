import { openServiceDb } from "../../src/platform/db/db";
import { GroupCommit } from "../../src/platform/db/group-commit";
import { groupCommitMigrations, type GroupCommitTables } from "./group-commit-tables";

/**
 * A writer for the group-commit crash test, run as a child process: workers insert transactions of
 * two rows each through one GroupCommit and print `acked <id>` once a transaction is answered, until
 * the parent kills the process.
 */
async function main() {
  const sdb = await openServiceDb<GroupCommitTables>({ dataDir: process.argv[2], namespace: "crash" }, "groupcommit", groupCommitMigrations);
  const group = GroupCommit.onFile(sdb.db);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const id = next++;
      await group.run(async (trx) => {
        await trx.insertInto("pairs").values({ id: `${id}`, half: 1 }).execute();
        await trx.insertInto("pairs").values({ id: `${id}`, half: 2 }).execute();
      });
      process.stdout.write(`acked ${id}\n`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
