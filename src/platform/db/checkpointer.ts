import { statSync } from "node:fs";
import { Worker } from "node:worker_threads";

/**
 * How often the checkpointer copies what the WALs gained into their database files. A page written
 * many times between two checkpoints is copied once: every 100 ms, the governance pipeline spent 5 %
 * more CPU a case (same-core pairs) on copies of its hot pages and on syncs.
 */
const CHECKPOINT_EVERY_MS = 1000;

/**
 * A file's WAL is handed to the checkpointer once it reaches this size (SQLite's own default point,
 * 1,000 pages): an idle node, or one that writes little, runs no extra thread.
 */
const WAL_BYTES_TO_WATCH = 4 * 1024 * 1024;

/** How often the WALs not handed over yet are measured. */
const MEASURE_EVERY_MS = 1000;

/**
 * Pages a WAL may reach before the service's own connection checkpoints it after all: only if the
 * checkpointer stopped keeping up (about 40 MB).
 */
export const AUTOCHECKPOINT_BACKSTOP_PAGES = 10_000;

// Plain JavaScript run as the worker's whole program: no loader needed whatever runs the parent.
const PROGRAM = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const files = new Map();
parentPort.on("message", ({ op, file }) => {
  if (op === "watch" && !files.has(file)) {
    const db = new Database(file, { fileMustExist: true });
    db.pragma("synchronous = NORMAL");
    files.set(file, db);
  } else if (op === "forget") {
    files.get(file)?.close();
    files.delete(file);
  }
});
setInterval(() => {
  for (const db of files.values()) {
    // Passive: copies what no reader still needs, never waits for the writer nor holds it up. A
    // failure leaves the pages in the WAL for the next round (or the writer's own backstop).
    try { db.pragma("wal_checkpoint(PASSIVE)"); } catch {}
  }
}, workerData.everyMs);
`;

let worker: Worker | undefined;

function checkpointer(): Worker {
  if (!worker) {
    worker = new Worker(PROGRAM, { eval: true, workerData: { driver: require.resolve("better-sqlite3"), everyMs: CHECKPOINT_EVERY_MS } });
    // A process with nothing else to do exits; its files are checkpointed when their last connection closes.
    worker.unref();
    worker.on("error", () => {
      // Its files go back to being measured: the next thread is handed them again.
      worker = undefined;
      for (const file of watched) unwatched.add(file);
      watched.clear();
    });
  }
  return worker;
}

/**
 * WAL checkpoints of an embedded SQLite file, on a thread of their own. A checkpoint copies the WAL's
 * pages into the database file and syncs both (what keeps the file whole through a power cut with
 * `synchronous = NORMAL`); on the event loop it was a 4–5 ms stall about once a second per busy
 * database, a sixth of the embedded store's commit time. The worker holds a connection of its own to
 * each file whose WAL has grown past 4 MB (measured every second; the thread starts with the first);
 * the service's connection keeps automatic checkpoints only as a backstop.
 */
export function checkpointInBackground(file: string): () => void {
  unwatched.add(file);
  if (!measuring) {
    measuring = setInterval(handOverGrownWals, MEASURE_EVERY_MS);
    measuring.unref();
  }
  return () => {
    unwatched.delete(file);
    if (watched.delete(file)) worker?.postMessage({ op: "forget", file });
  };
}

/** Files whose WAL is measured, not yet handed to the thread; and those handed to it. */
const unwatched = new Set<string>();
const watched = new Set<string>();
let measuring: NodeJS.Timeout | undefined;

function handOverGrownWals(): void {
  for (const file of unwatched) {
    let size = 0;
    try {
      size = statSync(`${file}-wal`).size;
    } catch {
      // No WAL yet: nothing written since it was opened.
    }
    if (size < WAL_BYTES_TO_WATCH) continue;
    unwatched.delete(file);
    watched.add(file);
    checkpointer().postMessage({ op: "watch", file });
  }
}
