/**
 * One queue per working tree: work on the same tree runs one piece at a time, in arrival order, whatever branch it
 * is about. Every use of a clone (checkout, edit, commit, push, and the ancestry answers) goes through it, because a
 * clone has one HEAD, one index and one set of remote-tracking refs for all its branches.
 */
export class TreeLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `work` once everything queued before it for `key` has ended (well or not). */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.tails.set(key, next);
    void next
      .finally(() => {
        if (this.tails.get(key) === next) this.tails.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  /** Whether anything is queued or running for `key`. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
