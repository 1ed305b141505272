/**
 * The leader election port (ZooKeeper in the seeds): among the processes campaigning for one name,
 * at most one leads at a time. Embedded: the single node always leads. Cluster: an etcd lease election.
 */
export interface Leadership {
  /**
   * True while this process leads and its lease is certainly still valid: a leader cut off from the
   * election store turns false before the lease can expire (fencing), so a successor never overlaps it.
   */
  readonly leading: boolean;
  /** Called with `true` on becoming leader and `false` on losing it. */
  onChange(listener: (leading: boolean) => void): void;
  /** The progress a leader recorded for its successor to continue from (key → last position). */
  loadProgress(): Promise<Record<string, number>>;
  /**
   * Records progress, fenced: written only while this process still holds the leadership. False when
   * it no longer does (nothing was written, and `leading` is false from then on).
   */
  saveProgress(progress: Record<string, number>): Promise<boolean>;
  /** Leaves the election (a successor takes over at once). */
  resign(): Promise<void>;
}

export interface Election {
  /** Joins the election for `name` as `candidate` (for logs and observers); leadership may come later. */
  campaign(name: string, candidate: string): Leadership;
  close(): Promise<void>;
}

/** One node and no one to elect: it leads from the start, and its progress lives as long as it does. */
export class SingleNodeElection implements Election {
  private readonly progress = new Map<string, Record<string, number>>();

  campaign(name: string): Leadership {
    const progress = this.progress;
    return {
      leading: true,
      onChange: (listener) => queueMicrotask(() => listener(true)),
      loadProgress: async () => ({ ...progress.get(name) }),
      saveProgress: async (p) => {
        progress.set(name, { ...progress.get(name), ...p });
        return true;
      },
      resign: async () => undefined,
    };
  }

  async close(): Promise<void> {}
}
