/**
 * One replica observes at a time: it holds the Lease `keptn-gitops-observer` and renews it; another replica takes it
 * over once it has not been renewed for its duration. Every write is a compare-and-swap on the Lease's
 * resourceVersion, so two replicas never both win the same round.
 */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { pooledApiClient } from '../platform/k8s/pool.js';
import { StoreUnavailableError } from '../platform/state/record.js';

export const OBSERVER_LEASE = 'keptn-gitops-observer';

export interface ObserverLease {
  readonly identity: string;
  /** Takes or renews the Lease; true while this replica holds it. */
  acquire(): Promise<boolean>;
}

/** Pure: may `identity` take a Lease held as described, at `now`? */
export function mayTake(lease: Pick<V1Lease, 'spec'> | undefined, identity: string, now: number, fallbackSeconds: number): boolean {
  const holder = lease?.spec?.holderIdentity;
  if (!holder || holder === identity) return true;
  const renewed = lease?.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
  return renewed + (lease?.spec?.leaseDurationSeconds ?? fallbackSeconds) * 1000 <= now;
}

export class KubeObserverLease implements ObserverLease {
  private readonly api: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    readonly identity: string,
    private readonly leaseSeconds: number,
  ) {
    this.api = pooledApiClient(kc, CoordinationV1Api);
  }

  async acquire(): Promise<boolean> {
    let current: V1Lease | undefined;
    try {
      current = await this.api.readNamespacedLease({ namespace: this.namespace, name: OBSERVER_LEASE });
    } catch (err: unknown) {
      if (statusOf(err) !== 404) throw leaseError('read the observer Lease', err);
    }
    if (!mayTake(current, this.identity, Date.now(), this.leaseSeconds)) return false;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: OBSERVER_LEASE,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service' },
        ...(current ? { resourceVersion: current.metadata?.resourceVersion ?? '' } : {}),
      },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseSeconds,
        renewTime: new V1MicroTime(),
        ...(current?.spec?.holderIdentity === this.identity && current.spec.acquireTime
          ? { acquireTime: current.spec.acquireTime }
          : { acquireTime: new V1MicroTime() }),
      },
    };
    try {
      if (current) await this.api.replaceNamespacedLease({ namespace: this.namespace, name: OBSERVER_LEASE, body });
      else await this.api.createNamespacedLease({ namespace: this.namespace, body });
      return true;
    } catch (err: unknown) {
      // Someone else wrote it first: theirs this round.
      if (statusOf(err) === 409) return false;
      throw leaseError('take the observer Lease', err);
    }
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function leaseError(what: string, err: unknown): StoreUnavailableError {
  const status = statusOf(err);
  return new StoreUnavailableError(`cannot ${what} in Kubernetes: ${status !== undefined ? `HTTP ${status}` : String(err)}`, {
    cause: err,
    retryable: status === undefined || status >= 500 || status === 429,
  });
}
