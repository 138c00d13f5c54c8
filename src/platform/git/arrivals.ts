/**
 * Changes on their way to a group commit: a deployment that has read its settings knows its repository, branch and
 * author before its grant checks and Secret read are done, and says so here; the group for that key waits for what
 * is on its way before it closes, so the changes of a burst that arrive together go out in one commit and one push
 * (issue 22, item 2), instead of one commit for the first that reached Git and another for the rest.
 *
 * The wait is bounded (a deployment on its way may be slow or fail its checks): the group closes when nothing more is
 * on its way for its key, or at its deadline, whichever comes first. A lone deployment waits for nothing.
 */
export class Arrivals {
  /** Per group key, the deployments on their way. */
  private readonly coming = new Map<string, Set<string>>();
  /** Per group key, the groups waiting for them. */
  private readonly waiters = new Map<string, Set<() => void>>();

  /**
   * `id` is on its way to the group of `key`. The returned function withdraws it (its checks failed, or it will not
   * commit after all); arriving withdraws it too. Either may be called any number of times.
   */
  expect(key: string, id: string): () => void {
    let ids = this.coming.get(key);
    if (!ids) this.coming.set(key, (ids = new Set()));
    ids.add(id);
    return () => this.arrived(key, id);
  }

  /** `id` reached the group of `key` (or withdrew). */
  arrived(key: string, id: string): void {
    const ids = this.coming.get(key);
    if (!ids?.delete(id) || ids.size) return;
    this.coming.delete(key);
    for (const wake of [...(this.waiters.get(key) ?? [])]) wake();
  }

  /** How many are on their way to the group of `key` (tests, logs). */
  onTheirWay(key: string): number {
    return this.coming.get(key)?.size ?? 0;
  }

  /** Resolves once nothing is on its way to the group of `key`, or at `deadline` (epoch ms), whichever comes first. */
  settled(key: string, deadline: number): Promise<void> {
    const wait = deadline - Date.now();
    if (!this.coming.get(key)?.size || wait <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let waiting = this.waiters.get(key);
      if (!waiting) this.waiters.set(key, (waiting = new Set()));
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        if (!waiting.size && this.waiters.get(key) === waiting) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, wait);
      waiting.add(done);
    });
  }
}
