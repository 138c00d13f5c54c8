/**
 * Coalesced requests to a controller (Flux's `reconcile.fluxcd.io/requestedAt`, Argo CD's refresh): many deployments
 * waiting on one object need one request written after each of them asked, not one request each. A burst of
 * deployments through one Kustomization used to write one PATCH per deployment (issue 11: 1,470 PATCH/min); now a
 * caller joins a request that has not started yet, or, while one is being written, queues the next one, which every
 * caller arriving meanwhile shares. At most one request per object is in flight and one waiting.
 *
 * Why not join the request in flight: it may have been sent before the caller's commit was pushed, and a controller
 * handling it could fetch the branch without that commit. A request that starts after the call is after the push.
 */
export class Coalescer<T> {
  private readonly running = new Map<string, Promise<T>>();
  private readonly waiting = new Map<string, Promise<T>>();

  /** The result of a run of `work` for `key` that starts after this call; `work` of a joined run is not called. */
  run(key: string, work: () => Promise<T>): Promise<T> {
    const queued = this.waiting.get(key);
    if (queued) return queued;
    const before = this.running.get(key);
    const start = (): Promise<T> => {
      this.waiting.delete(key);
      const current = work();
      this.running.set(key, current);
      const done = () => {
        if (this.running.get(key) === current) this.running.delete(key);
      };
      current.then(done, done);
      return current;
    };
    if (!before) return start();
    const next = before.then(start, start);
    this.waiting.set(key, next);
    return next;
  }
}
