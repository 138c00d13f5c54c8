/**
 * Which replicas are alive: each renews a Lease named after itself; a deployment whose owner's Lease has run out is
 * adopted by another replica. (Leases, not leader election: every replica works, ownership is per deployment.)
 */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { pooledApiClient } from '../k8s/pool.js';
import { ConfigMapStore } from './configmaps.js';
import { StoreUnavailableError, type StateStore } from './record.js';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'keptn-gitops-service' };
const SELECTOR = Object.entries(MANAGED_BY)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

export interface ReplicaRegistry {
  readonly identity: string;
  /** Creates or renews our Lease. */
  heartbeat(): Promise<void>;
  /** False once a replica's Lease has not been renewed for its duration (or it has none). */
  isAlive(identity: string): Promise<boolean>;
  /**
   * On a graceful stop, after the last heartbeat: deletes our Lease unless we still own unfinished deployments (those
   * are adopted once it runs out, when this process is surely gone). Never rejects; true when the Lease is gone.
   */
  release(): Promise<boolean>;
}

export interface LeaseRegistryOptions {
  /** Where the deployment records are, to tell whether a stopped replica still owns any. Default: the ConfigMaps. */
  records?: Pick<StateStore, 'list'>;
  /** How often a heartbeat also removes the Leases of stopped replicas that own nothing unfinished. */
  sweepIntervalMs?: number;
  now?: () => number;
}

const LEASE_PREFIX = 'keptn-gitops-replica-';

export function leaseName(identity: string): string {
  return `${LEASE_PREFIX}${identity
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40)}`;
}

export class LeaseRegistry implements ReplicaRegistry {
  private readonly api: CoordinationV1Api;
  private readonly records: Pick<StateStore, 'list'>;
  private readonly now: () => number;
  private readonly sweepIntervalMs: number;
  private lastSweep: number;
  private beating: Promise<void> | undefined;
  private released = false;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    readonly identity: string,
    private readonly leaseSeconds = 20,
    opts: LeaseRegistryOptions = {},
  ) {
    this.api = pooledApiClient(kc, CoordinationV1Api);
    this.records = opts.records ?? new ConfigMapStore(kc, namespace);
    this.now = opts.now ?? Date.now;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? Math.max(60_000, leaseSeconds * 3_000);
    // Not at the first heartbeat: the start of the service waits for that one.
    this.lastSweep = this.now();
  }

  /** Renews our Lease; now and then also removes the Leases of stopped replicas (sweep). */
  heartbeat(): Promise<void> {
    if (this.released) return Promise.resolve();
    const beat = (this.beating ??= this.renew().finally(() => (this.beating = undefined)));
    return beat.then(async () => {
      if (this.now() - this.lastSweep < this.sweepIntervalMs) return;
      this.lastSweep = this.now();
      await this.sweep();
    });
  }

  private async renew(): Promise<void> {
    const name = leaseName(this.identity);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace: this.namespace, labels: { ...MANAGED_BY } },
      spec: { holderIdentity: this.identity, leaseDurationSeconds: this.leaseSeconds, renewTime: new V1MicroTime() },
    };
    let current: V1Lease | undefined;
    try {
      current = await this.api.readNamespacedLease({ namespace: this.namespace, name });
    } catch (err: unknown) {
      if (statusOf(err) !== 404) throw leaseError('read our Lease', err);
    }
    try {
      if (!current) {
        await this.api.createNamespacedLease({ namespace: this.namespace, body });
        return;
      }
      // Leases are updated with their resourceVersion; only this replica writes its own Lease.
      body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' };
      await this.api.replaceNamespacedLease({ namespace: this.namespace, name, body });
    } catch (err: unknown) {
      throw leaseError('renew our Lease', err);
    }
  }

  async isAlive(identity: string): Promise<boolean> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ namespace: this.namespace, name: leaseName(identity) });
    } catch (err: unknown) {
      if (statusOf(err) === 404) return false;
      throw leaseError(`read the Lease of ${identity}`, err);
    }
    return !this.expired(lease);
  }

  async release(): Promise<boolean> {
    this.released = true;
    // A heartbeat under way would create the Lease again after we deleted it.
    await this.beating?.catch(() => undefined);
    try {
      const unfinished = (await this.records.list()).some((r) => r.phase !== 'done' && r.owner === this.identity);
      if (unfinished) return false;
      await this.api.deleteNamespacedLease({ namespace: this.namespace, name: leaseName(this.identity) });
      return true;
    } catch (err: unknown) {
      // Left behind, it runs out and another replica's sweep removes it.
      return statusOf(err) === 404;
    }
  }

  /**
   * Deletes the Leases of replicas whose Lease ran out and that own no unfinished deployment any more (adopted or
   * finished): pod names change with every rollout, so nothing else ever removes them. An expired Lease and none mean
   * the same to isAlive, so removing one changes no decision; the delete is conditional on the version we saw, so a
   * replica that renewed meanwhile keeps its Lease. Returns the identities whose Lease was removed.
   */
  async sweep(): Promise<string[]> {
    let leases: V1Lease[];
    try {
      leases = (await this.api.listNamespacedLease({ namespace: this.namespace, labelSelector: SELECTOR })).items;
    } catch (err: unknown) {
      throw leaseError('list the replica Leases', err);
    }
    const stale = leases.filter(
      (l) => l.metadata?.name?.startsWith(LEASE_PREFIX) && l.metadata.name !== leaseName(this.identity) && this.expired(l),
    );
    if (!stale.length) return [];
    const owners = new Set((await this.records.list()).filter((r) => r.phase !== 'done').map((r) => r.owner));
    const removed: string[] = [];
    for (const lease of stale) {
      const holder = lease.spec?.holderIdentity ?? '';
      if (owners.has(holder)) continue;
      try {
        await this.api.deleteNamespacedLease({
          namespace: this.namespace,
          name: lease.metadata!.name!,
          body: { preconditions: { resourceVersion: lease.metadata?.resourceVersion ?? '' } },
        });
        removed.push(holder);
      } catch (err: unknown) {
        // Gone already, or renewed since it was listed: either way not ours to remove now.
        if (statusOf(err) !== 404 && statusOf(err) !== 409) throw leaseError(`remove the Lease of ${holder}`, err);
      }
    }
    return removed;
  }

  private expired(lease: V1Lease): boolean {
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    return renewed + (lease.spec?.leaseDurationSeconds ?? this.leaseSeconds) * 1000 <= this.now();
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function leaseError(what: string, err: unknown): StoreUnavailableError {
  const status = statusOf(err);
  // A conflict on renewal is the next heartbeat's to solve; an unanswered call may pass too.
  const retryable = status === undefined || status >= 500 || status === 409 || status === 429;
  return new StoreUnavailableError(
    `cannot ${what} in Kubernetes: ${status !== undefined ? `HTTP ${status}` : err instanceof Error ? err.message : String(err)}`,
    { cause: err, retryable },
  );
}

/** One replica, always alive: for unit tests and single-process runs. */
export class SoloRegistry implements ReplicaRegistry {
  constructor(readonly identity = 'solo') {}
  async heartbeat(): Promise<void> {}
  async isAlive(identity: string): Promise<boolean> {
    return identity === this.identity;
  }
  async release(): Promise<boolean> {
    return true;
  }
}
