/**
 * Deployment records as ConfigMaps in the service's namespace: durable state without another database, with the
 * API server's resourceVersion as the lock. The name is derived from the event id, so a redelivered event, on any
 * replica, finds its record already there.
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { pooledApiClient } from '../k8s/pool.js';
import { Limiter } from '../../shared/limit.js';
import { RecordTooLargeError, StoreConflictError, StoreUnavailableError, type DeploymentRecord, type StateStore } from './record.js';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'deployment' };
const PHASE_LABEL = 'keptn-gitops-service/phase';
/** How often the list includes finished records (for the retention sweep). */
export const DONE_SWEEP_MS = 5 * 60_000;
const SELECTOR = Object.entries(MANAGED_BY)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

/**
 * A ConfigMap holds at most 1 MiB of data: ValidateConfigMap (kubernetes/kubernetes pkg/apis/core/validation) sums
 * the values and refuses more than core.MaxSecretSize. A record larger than that could never be saved, so it is
 * refused before it is sent.
 */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** Records per page of the resume scan's list (see `list`). */
export const LIST_PAGE = 250;

/** How many of the deployments' record requests may be at the API server at once (see `background`). */
export const MAX_BACKGROUND_REQUESTS = 16;

export function recordName(eventId: string): string {
  return `keptn-gitops-${createHash('sha256').update(eventId).digest('hex').slice(0, 32)}`;
}

export class ConfigMapStore implements StateStore {
  /** Acknowledgements only (create): its own connections, never queued behind the deployments' saves and scans. */
  private readonly acknowledge: CoreV1Api;
  private readonly api: CoreV1Api;
  /**
   * The deployments' saves, reads and scans, a bounded number at a time: the deployments in flight (thousands during
   * a burst of triggers) never all have a record request at the API server at once, where every request of our
   * ServiceAccount shares one flow (API Priority and Fairness) with the acknowledgements. Creates never wait here.
   */
  private readonly background: Limiter;

  private lastFullList = -Infinity;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly doneSweepMs = DONE_SWEEP_MS,
    private readonly now: () => number = Date.now,
    backgroundRequests = MAX_BACKGROUND_REQUESTS,
  ) {
    this.acknowledge = pooledApiClient(kc, CoreV1Api);
    this.api = pooledApiClient(kc, CoreV1Api);
    this.background = new Limiter(backgroundRequests);
  }

  async create(record: DeploymentRecord): Promise<DeploymentRecord | undefined> {
    const body = this.toConfigMap(record);
    try {
      const saved = await this.acknowledge.createNamespacedConfigMap({ namespace: this.namespace, body });
      return { ...record, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (statusOf(err) === 409) return undefined;
      throw storeError('record the deployment', err);
    }
  }

  async update(record: DeploymentRecord): Promise<DeploymentRecord> {
    const body = this.toConfigMap(record);
    try {
      const saved = await this.background.run(() =>
        this.api.replaceNamespacedConfigMap({ namespace: this.namespace, name: recordName(record.event.id), body }),
      );
      return { ...record, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (statusOf(err) === 409 || statusOf(err) === 404)
        throw new StoreConflictError(`record ${record.event.id} changed meanwhile`, { cause: err });
      throw storeError('save the deployment', err);
    }
  }

  async get(eventId: string): Promise<DeploymentRecord | undefined> {
    try {
      const cm = await this.background.run(() =>
        this.api.readNamespacedConfigMap({ namespace: this.namespace, name: recordName(eventId) }),
      );
      return fromConfigMap(cm);
    } catch (err: unknown) {
      if (statusOf(err) === 404) return undefined;
      throw storeError('read the deployment', err);
    }
  }

  /**
   * The records to look at. Finished ones matter only to the retention sweep, so they are listed at most once per
   * `doneSweepMs`; every other call lists the unfinished ones only, and the scan does not grow with history.
   */
  async list(): Promise<DeploymentRecord[]> {
    const full = this.now() - this.lastFullList >= this.doneSweepMs;
    const labelSelector = full ? SELECTOR : `${SELECTOR},${PHASE_LABEL}!=done`;
    try {
      const records: DeploymentRecord[] = [];
      // In pages: one answer for thousands of records in flight took 400 ms of the event loop to parse, and every
      // acknowledgement waited behind it (issue 11). Between pages the loop serves requests.
      let next: string | undefined;
      do {
        const page = await this.background.run(() =>
          this.api.listNamespacedConfigMap({
            namespace: this.namespace,
            labelSelector,
            limit: LIST_PAGE,
            ...(next ? { _continue: next } : {}),
          }),
        );
        for (const cm of page.items) {
          const record = fromConfigMap(cm);
          if (record) records.push(record);
        }
        next = page.metadata?._continue || undefined;
      } while (next);
      if (full) this.lastFullList = this.now();
      return records;
    } catch (err: unknown) {
      throw storeError('list deployments', err);
    }
  }

  async remove(record: DeploymentRecord): Promise<void> {
    try {
      await this.background.run(() => this.api.deleteNamespacedConfigMap({ namespace: this.namespace, name: recordName(record.event.id) }));
    } catch (err: unknown) {
      if (statusOf(err) !== 404) throw storeError('remove a finished deployment', err);
    }
  }

  private toConfigMap(record: DeploymentRecord): V1ConfigMap {
    const { version, ...rest } = record;
    const text = JSON.stringify(rest);
    const size = Buffer.byteLength(text);
    if (size > MAX_RECORD_BYTES)
      throw new RecordTooLargeError(`the deployment record would be ${size} bytes; a ConfigMap holds at most ${MAX_RECORD_BYTES}`);
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: recordName(record.event.id),
        namespace: this.namespace,
        labels: { ...MANAGED_BY, [PHASE_LABEL]: record.phase },
        annotations: { 'keptn-gitops-service/triggeredid': record.event.id, 'keptn-gitops-service/owner': record.owner },
        ...(version ? { resourceVersion: version } : {}),
      },
      data: { record: text },
    };
  }
}

/** The record a ConfigMap holds; undefined for one that is not ours or not readable (it is left alone). */
function fromConfigMap(cm: V1ConfigMap): DeploymentRecord | undefined {
  const text = cm.data?.['record'];
  if (!text) return undefined;
  let record: DeploymentRecord;
  try {
    record = JSON.parse(text) as DeploymentRecord;
  } catch {
    return undefined;
  }
  // Records written before `created` became `ownCommit` (same meaning) are read as they were meant.
  const progress = record.progress as (DeploymentRecord['progress'] & { created?: boolean }) | undefined;
  if (progress && progress.ownCommit === undefined && progress.created !== undefined) {
    const { created, ...rest } = progress;
    record = { ...record, progress: { ...rest, ownCommit: created } };
  }
  return { ...record, version: cm.metadata?.resourceVersion ?? '' };
}

/** The HTTP status of a client-node ApiException (its `code`); undefined when there was no answer. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function storeError(what: string, err: unknown): Error {
  const status = statusOf(err);
  if (status === 413) return new RecordTooLargeError(`cannot ${what} in Kubernetes: the record is too large (HTTP 413)`, { cause: err });
  // No answer, a server error or throttling may pass; a refusal (403 RBAC, 422 invalid) will not by asking again.
  const retryable = status === undefined || status >= 500 || status === 429 || status === 408;
  const reason = status !== undefined ? `HTTP ${status}` : err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`cannot ${what} in Kubernetes: ${reason}`, { cause: err, retryable });
}
