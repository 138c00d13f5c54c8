/**
 * Deployment records as ConfigMaps in the service's namespace: durable state without another database, with the
 * API server's resourceVersion as the lock. The name is derived from the event id, so a redelivered event, on any
 * replica, finds its record already there.
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { StoreConflictError, type DeploymentRecord, type StateStore } from './record.js';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'deployment' };
const SELECTOR = Object.entries(MANAGED_BY).map(([k, v]) => `${k}=${v}`).join(',');

export function recordName(eventId: string): string {
  return `keptn-gitops-${createHash('sha256').update(eventId).digest('hex').slice(0, 32)}`;
}

export class ConfigMapStore implements StateStore {
  private readonly api: CoreV1Api;

  constructor(kc: KubeConfig, private readonly namespace: string) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async create(record: DeploymentRecord): Promise<DeploymentRecord | undefined> {
    try {
      const saved = await this.api.createNamespacedConfigMap({ namespace: this.namespace, body: this.toConfigMap(record) });
      return { ...record, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (status(err) === 409) return undefined;
      throw stateError('record the deployment', err);
    }
  }

  async update(record: DeploymentRecord): Promise<DeploymentRecord> {
    try {
      const saved = await this.api.replaceNamespacedConfigMap({ namespace: this.namespace, name: recordName(record.event.id), body: this.toConfigMap(record) });
      return { ...record, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (status(err) === 409 || status(err) === 404) throw new StoreConflictError(`record ${record.event.id} changed meanwhile`);
      throw stateError('save the deployment', err);
    }
  }

  async list(): Promise<DeploymentRecord[]> {
    try {
      const list = await this.api.listNamespacedConfigMap({ namespace: this.namespace, labelSelector: SELECTOR });
      return list.items.flatMap((cm) => {
        const text = cm.data?.['record'];
        if (!text) return [];
        try {
          return [{ ...(JSON.parse(text) as DeploymentRecord), version: cm.metadata?.resourceVersion ?? '' }];
        } catch {
          return [];
        }
      });
    } catch (err: unknown) {
      throw stateError('list deployments', err);
    }
  }

  async remove(record: DeploymentRecord): Promise<void> {
    try {
      await this.api.deleteNamespacedConfigMap({ namespace: this.namespace, name: recordName(record.event.id) });
    } catch (err: unknown) {
      if (status(err) !== 404) throw stateError('remove a finished deployment', err);
    }
  }

  private toConfigMap(record: DeploymentRecord): V1ConfigMap {
    const { version, ...rest } = record;
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: recordName(record.event.id),
        namespace: this.namespace,
        labels: { ...MANAGED_BY, 'keptn-gitops-service/phase': record.phase },
        annotations: { 'keptn-gitops-service/triggeredid': record.event.id, 'keptn-gitops-service/owner': record.owner },
        ...(version ? { resourceVersion: version } : {}),
      },
      data: { record: JSON.stringify(rest) },
    };
  }
}

function status(err: unknown): number | undefined {
  return (err as { code?: number } | undefined)?.code;
}

function stateError(what: string, err: unknown): Error {
  const code = status(err);
  return new Error(`cannot ${what} in Kubernetes: ${code ? `HTTP ${code}` : err instanceof Error ? err.message : String(err)}`, { cause: err });
}
