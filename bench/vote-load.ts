import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { reportWhenDone } from "./load-report";

/**
 * The load process of the vote benchmark: replays prepared votes (each seat once) against the
 * gateway with autocannon and prints its summary as JSON.
 */
const [url, file, connections] = process.argv.slice(2);
const votes = JSON.parse(readFileSync(file, "utf8")) as { token: string; caseId: string; decision: string }[];
let next = 0;

const instance = autocannon(
  {
    url,
    connections: Number(connections ?? 32),
    amount: votes.length,
    requests: [
      {
        method: "POST",
        setupRequest: (req) => {
          const v = votes[next++ % votes.length];
          return {
            ...req,
            path: `/api/governance/cases/${v.caseId}/votes`,
            headers: { "content-type": "application/json", authorization: `Bearer ${v.token}` },
            body: JSON.stringify({ decision: v.decision }),
          };
        },
      },
    ],
  },
  (err) => {
    if (err) throw err;
  },
);
reportWhenDone(instance);
