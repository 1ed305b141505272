import { currentLane, withLane } from "../release/lane";

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Calls made in the same turn of the event loop, run as one: the first waits a turn for company (as
 * a group commit does), then `run` gets the items, at most `max` at a time, and answers one result per
 * item, in order. Each caller gets its own result; a `run` that throws fails the calls of its batch.
 * Calls of different release lanes never share a batch, and each batch runs in its lane.
 */
export function batching<I, O>(run: (items: I[]) => Promise<O[]>, max: number): (item: I) => Promise<O> {
  let waiting = new Map<string | undefined, Waiting<I, O>[]>();
  let scheduled = false;

  async function runBatch(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await run(batch.map((w) => w.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} answered ${results.length} results`);
      batch.forEach((w, i) => w.resolve(results[i]));
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }

  function flush(): void {
    scheduled = false;
    const lanes = waiting;
    waiting = new Map();
    for (const [lane, all] of lanes) for (let i = 0; i < all.length; i += max) void withLane(lane, () => runBatch(all.slice(i, i + max)));
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      const lane = currentLane();
      const list = waiting.get(lane);
      if (list) list.push({ item, resolve, reject });
      else waiting.set(lane, [{ item, resolve, reject }]);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
