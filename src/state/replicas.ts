/**
 * Which replicas are alive: each renews a Lease named after itself; a deployment whose owner's Lease has run out is
 * adopted by another replica. (Leases, not leader election: every replica works, ownership is per deployment.)
 */
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { StoreUnavailableError } from './record.js';

export interface ReplicaRegistry {
  readonly identity: string;
  /** Creates or renews our Lease. */
  heartbeat(): Promise<void>;
  /** False once a replica's Lease has not been renewed for its duration (or it has none). */
  isAlive(identity: string): Promise<boolean>;
}

export function leaseName(identity: string): string {
  return `keptn-gitops-replica-${identity
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40)}`;
}

export class LeaseRegistry implements ReplicaRegistry {
  private readonly api: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    readonly identity: string,
    private readonly leaseSeconds = 20,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  async heartbeat(): Promise<void> {
    const name = leaseName(this.identity);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service' } },
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
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    return renewed + (lease.spec?.leaseDurationSeconds ?? this.leaseSeconds) * 1000 > Date.now();
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
}
