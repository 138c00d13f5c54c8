// Namespaced mode (chart rbac.namespaces): the shared watches of watch.ts, one per namespace, read as one.
import { SharedWatch, WatchError, type KubeObject, type Listener, type ObjectWatch } from './watch.js';

/**
 * Namespaced mode: one shared watch per namespace of a fixed list, read as one. An object in any other namespace is
 * refused at once (FORBIDDEN, as the API server would refuse it), naming the setting to change, rather than waited for.
 */
export class NamespacedWatches<T extends KubeObject> implements ObjectWatch<T> {
  constructor(
    private readonly watches: ReadonlyMap<string, SharedWatch<T>>,
    readonly resource: string,
  ) {}

  get synced(): Promise<void> {
    return Promise.all([...this.watches.values()].map((w) => w.synced)).then(() => undefined);
  }

  get(namespace: string, name: string): T | undefined {
    return this.in(namespace).get(namespace, name);
  }

  subscribe(namespace: string, name: string, listener: Listener<T>): () => void {
    return this.in(namespace).subscribe(namespace, name, listener);
  }

  subscribeAll(listener: (key: string, obj: T | undefined) => void): () => void {
    const unsubscribes = [...this.watches.values()].map((w) => w.subscribeAll(listener));
    return () => unsubscribes.forEach((unsubscribe) => unsubscribe());
  }

  onResumed(listener: () => void): () => void {
    const unsubscribes = [...this.watches.values()].map((w) => w.onResumed(listener));
    return () => unsubscribes.forEach((unsubscribe) => unsubscribe());
  }

  private in(namespace: string): SharedWatch<T> {
    const w = this.watches.get(namespace);
    if (!w)
      throw new WatchError(
        'FORBIDDEN',
        `${this.resource} in namespace ${namespace}: the service watches only ${[...this.watches.keys()].join(', ')} (WATCH_NAMESPACES, the chart's rbac.namespaces)`,
      );
    return w;
  }
}
