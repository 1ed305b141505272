/**
 * What a consumer's handlers gather in one transaction — a batch of messages — to do once, just
 * before it commits (`beforeCommit`): `of(trx)` is the transaction's gathering, made on first use;
 * `take(trx)` hands it over once and forgets it (undefined when nothing was gathered). Keyed weakly
 * by the transaction, so one that rolls back leaves nothing behind.
 */
export class PerTransaction<B> {
  private readonly gathered = new WeakMap<object, B>();

  constructor(private readonly fresh: () => B) {}

  of(trx: object): B {
    let b = this.gathered.get(trx);
    if (!b) this.gathered.set(trx, (b = this.fresh()));
    return b;
  }

  take(trx: object): B | undefined {
    const b = this.gathered.get(trx);
    if (b) this.gathered.delete(trx);
    return b;
  }
}
