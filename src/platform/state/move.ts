/**
 * Moves the service's state from the namespace an earlier release kept it in (PREVIOUS_STATE_NAMESPACE, set by the
 * chart on the upgrade that changes the state namespace, ADR 17) into the current one, so that nothing in flight is
 * left behind: the deployment records of the old replicas are adopted here like those of any stopped replica.
 *
 * The old replicas keep working in the old namespace until the rolling update stops them, so nothing is moved while
 * any of our Leases there is fresh (a replica's, or the observer's); after that no one writes there any more. Each
 * record is copied as it is (its owner, claim and phase unchanged) and then deleted there if it is still the version
 * that was copied. A copy that exists already here was moved before (by another replica, or before a crash): the
 * old one is only deleted. Our expired Leases there are deleted last, and once nothing of ours is left the move ends.
 */
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Lease } from '@kubernetes/client-node';
import { pooledApiClient } from '../k8s/pool.js';
import { StoreUnavailableError } from './record.js';

/** Everything the service writes carries this label: deployment and observation records, replica and observer Leases. */
export const STATE_SELECTOR = 'app.kubernetes.io/managed-by=keptn-gitops-service';

export type MoveRound =
  /** Nothing of ours is left in the old namespace. */
  | { state: 'done'; moved: number }
  /** A Lease there is still fresh: a replica (or the observer) of the earlier release is still running. */
  | { state: 'waiting'; holders: string[] }
  /** Some objects moved, others remain (changed meanwhile): the next round takes them. */
  | { state: 'moving'; moved: number; left: number };

export interface MoveLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface StateMoveOptions {
  /** Epoch ms. */
  now?: () => number;
}

export class StateMove {
  private readonly core: CoreV1Api;
  private readonly leases: CoordinationV1Api;
  private readonly now: () => number;

  constructor(
    kc: KubeConfig,
    readonly from: string,
    readonly to: string,
    opts: StateMoveOptions = {},
  ) {
    if (from === to) throw new Error(`the state is moved from one namespace to another, not within ${from}`);
    this.core = pooledApiClient(kc, CoreV1Api);
    this.leases = pooledApiClient(kc, CoordinationV1Api);
    this.now = opts.now ?? Date.now;
  }

  /** One look at the old namespace, moving what can be moved now. */
  async round(): Promise<MoveRound> {
    const leases = await this.call('list the Leases of the earlier state namespace', () =>
      this.leases.listNamespacedLease({ namespace: this.from, labelSelector: STATE_SELECTOR }),
    );
    const fresh = leases.items.filter((l) => !this.expired(l));
    if (fresh.length) return { state: 'waiting', holders: fresh.map((l) => l.spec?.holderIdentity ?? l.metadata?.name ?? '?') };
    let moved = 0;
    let left = 0;
    for (const cm of await this.configMaps()) {
      if (await this.moveOne(cm)) moved++;
      else left++;
    }
    for (const lease of leases.items) {
      const gone = await this.deleteIfUnchanged('Lease', lease.metadata?.name ?? '', lease.metadata?.resourceVersion, (name, body) =>
        this.leases.deleteNamespacedLease({ namespace: this.from, name, body }),
      );
      if (!gone) left++;
    }
    return left ? { state: 'moving', moved, left } : { state: 'done', moved };
  }

  /**
   * Rounds every `intervalMs` until nothing of ours is left in the old namespace (or `stopped()`); resolves then. API
   * trouble is logged and the next round tries again: the records stay where they are meanwhile, nothing is lost.
   */
  async untilDone(intervalMs: number, log: MoveLog, stopped: () => boolean): Promise<void> {
    let waitingLogged = false;
    while (!stopped()) {
      try {
        const round = await this.round();
        if (round.state === 'done') {
          log.info(
            { from: this.from, to: this.to, moved: round.moved },
            'state moved: nothing of the service is left in the earlier state namespace; the next helm upgrade removes its rights there',
          );
          return;
        }
        if (round.state === 'waiting' && !waitingLogged) {
          waitingLogged = true;
          log.info({ from: this.from, holders: round.holders }, 'state move waits for the replicas of the earlier release to stop');
        }
      } catch (err: unknown) {
        log.warn({ err, from: this.from, to: this.to }, 'state move failed this round; the records stay where they are until the next');
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs).unref());
    }
  }

  private async configMaps(): Promise<V1ConfigMap[]> {
    const items: V1ConfigMap[] = [];
    let next: string | undefined;
    do {
      const page = await this.call('list the records of the earlier state namespace', () =>
        this.core.listNamespacedConfigMap({
          namespace: this.from,
          labelSelector: STATE_SELECTOR,
          limit: 250,
          ...(next ? { _continue: next } : {}),
        }),
      );
      items.push(...page.items);
      next = page.metadata?._continue || undefined;
    } while (next);
    return items;
  }

  /** True when the record is here and no longer there. */
  private async moveOne(cm: V1ConfigMap): Promise<boolean> {
    const name = cm.metadata?.name ?? '';
    const copy: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        namespace: this.to,
        ...(cm.metadata?.labels ? { labels: cm.metadata.labels } : {}),
        ...(cm.metadata?.annotations ? { annotations: cm.metadata.annotations } : {}),
      },
      ...(cm.data ? { data: cm.data } : {}),
    };
    try {
      await this.core.createNamespacedConfigMap({ namespace: this.to, body: copy });
    } catch (err: unknown) {
      // Here already: moved in an earlier round whose delete did not happen; the copy here is the one in use.
      if (statusOf(err) !== 409) throw unavailable(`copy record ${name} into ${this.to}`, err);
    }
    return this.deleteIfUnchanged('ConfigMap', name, cm.metadata?.resourceVersion, (n, body) =>
      this.core.deleteNamespacedConfigMap({ namespace: this.from, name: n, body }),
    );
  }

  /** Deletes only the version seen (a writer that changed it meanwhile wins; the next round looks again). */
  private async deleteIfUnchanged(
    kind: string,
    name: string,
    resourceVersion: string | undefined,
    del: (name: string, body: { preconditions: { resourceVersion: string } }) => Promise<unknown>,
  ): Promise<boolean> {
    try {
      await del(name, { preconditions: { resourceVersion: resourceVersion ?? '' } });
      return true;
    } catch (err: unknown) {
      if (statusOf(err) === 404) return true;
      if (statusOf(err) === 409) return false;
      throw unavailable(`delete ${kind} ${name} from ${this.from}`, err);
    }
  }

  private expired(lease: V1Lease): boolean {
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    return renewed + (lease.spec?.leaseDurationSeconds ?? 0) * 1000 <= this.now();
  }

  private async call<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err: unknown) {
      throw unavailable(what, err);
    }
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function unavailable(what: string, err: unknown): StoreUnavailableError {
  const status = statusOf(err);
  // 403: the chart did not grant the old namespace (a release rendered without `lookup`, e.g. by `helm template`).
  const hint = status === 403 ? ' (the chart grants the earlier state namespace only on the upgrade that moves it: see ADR 17)' : '';
  return new StoreUnavailableError(
    `cannot ${what}: ${status !== undefined ? `HTTP ${status}` : err instanceof Error ? err.message : String(err)}${hint}`,
    { cause: err, retryable: status === undefined || status >= 500 || status === 429 },
  );
}
