/**
 * One record per observed object and revision, as a ConfigMap in the service's namespace (like the deployment
 * records, state/configmaps.ts): created BEFORE the sequence's `.triggered` is sent (creation is the claim: the API
 * server refuses a second create with 409), marked `sent` after. A record left `announcing` by a crash is re-sent
 * once by whoever claims it next (compare-and-swap on its resourceVersion), with the same event id.
 *
 * Records are kept for a retention period (`OBSERVATION_RETENTION`), counted from when the object was last found at
 * the revision (`at`: the record's creation, moved forward when the object returns to that revision), then deleted
 * (`RecordRetention`). So an object's current revision always has its newest record, and the retention removes it
 * last: an object whose records are all gone is seen afresh (its revision becomes a baseline, never announced again).
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { pooledApiClient } from '../platform/k8s/pool.js';
import type { SequenceTriggeredEvent } from '../keptn/events.js';
import { StoreConflictError, StoreUnavailableError } from '../platform/state/record.js';

/**
 * `baseline`: the revision an object was at when it was first seen linked (never announced); `own`: a revision this
 * service deployed for a Keptn sequence (never announced); `announcing`: the event is about to be (or was) sent;
 * `sent`: delivered; `refused`: the object was not allowed to start the linked service's sequences (link.ts,
 * observationGrant) when it reached this revision, which is therefore never announced, even once allowed later.
 */
export type ObservationPhase = 'baseline' | 'own' | 'announcing' | 'sent' | 'refused';

export interface ObservationRecord {
  /** `<Kind> <namespace>/<name>`. */
  object: string;
  revision: string;
  phase: ObservationPhase;
  owner: string;
  /**
   * Epoch ms when the object was last found at this revision: the record's creation, or a later return to the
   * revision (the observer moves it forward then). The retention counts from it.
   */
  at: number;
  /** The event to send (and to send again after a crash), when announcing. */
  event?: SequenceTriggeredEvent;
  /** New at every claim, so a claim always changes the stored record. */
  claim?: string;
  version?: string;
}

export interface ObservationStore {
  /** Undefined when a record for this object and revision exists already. */
  create(record: ObservationRecord): Promise<ObservationRecord | undefined>;
  /** Compare-and-swap; StoreConflictError when it changed since it was read. */
  update(record: ObservationRecord): Promise<ObservationRecord>;
  get(object: string, revision: string): Promise<ObservationRecord | undefined>;
  /** Whether any record exists for the object (it has been seen before). */
  seen(object: string): Promise<boolean>;
  /** Records still `announcing`. */
  unsent(): Promise<ObservationRecord[]>;
  /** Every record whose `at` is before `before` (epoch ms), in pages; unreadable records of ours count by their age. */
  expired(before: number): Promise<ObservationRecord[]>;
  /** Deletes the record as read (its version): false when it changed meanwhile (moved forward) or is gone. */
  remove(record: ObservationRecord): Promise<boolean>;
}

/** Records per page when the retention lists them all. */
export const EXPIRED_PAGE = 250;

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'observation' };
const SELECTOR = Object.entries(MANAGED_BY)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

export function observationName(object: string, revision: string): string {
  return `keptn-gitops-obs-${hash(`${object}@${revision}`)}`;
}

export class ConfigMapObservationStore implements ObservationStore {
  private readonly api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
  ) {
    this.api = pooledApiClient(kc, CoreV1Api);
  }

  async create(record: ObservationRecord): Promise<ObservationRecord | undefined> {
    try {
      const saved = await this.api.createNamespacedConfigMap({ namespace: this.namespace, body: this.toConfigMap(record) });
      return { ...record, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (statusOf(err) === 409) return undefined;
      throw storeError('record an observed revision', err);
    }
  }

  async update(record: ObservationRecord): Promise<ObservationRecord> {
    try {
      const saved = await this.api.replaceNamespacedConfigMap({
        namespace: this.namespace,
        name: observationName(record.object, record.revision),
        body: this.toConfigMap(record),
      });
      return { ...record, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (statusOf(err) === 409 || statusOf(err) === 404)
        throw new StoreConflictError(`the record of ${record.object}@${record.revision} changed meanwhile`, { cause: err });
      throw storeError('save an observed revision', err);
    }
  }

  async get(object: string, revision: string): Promise<ObservationRecord | undefined> {
    try {
      return fromConfigMap(await this.api.readNamespacedConfigMap({ namespace: this.namespace, name: observationName(object, revision) }));
    } catch (err: unknown) {
      if (statusOf(err) === 404) return undefined;
      throw storeError('read an observed revision', err);
    }
  }

  async seen(object: string): Promise<boolean> {
    const list = await this.list(`${SELECTOR},keptn-gitops-service/object=${hash(object)}`);
    return list.length > 0;
  }

  async unsent(): Promise<ObservationRecord[]> {
    return this.list(`${SELECTOR},keptn-gitops-service/phase=announcing`);
  }

  async expired(before: number): Promise<ObservationRecord[]> {
    const out: ObservationRecord[] = [];
    let next: string | undefined;
    try {
      // In pages, as the deployment records (state/configmaps.ts): years of records must not arrive in one answer.
      do {
        const page = await this.api.listNamespacedConfigMap({
          namespace: this.namespace,
          labelSelector: SELECTOR,
          limit: EXPIRED_PAGE,
          ...(next ? { _continue: next } : {}),
        });
        for (const cm of page.items) {
          const record = fromConfigMap(cm) ?? unreadable(cm);
          if (record && record.at < before) out.push(record);
        }
        next = page.metadata?._continue || undefined;
      } while (next);
    } catch (err: unknown) {
      throw storeError('list observed revisions', err);
    }
    return out;
  }

  async remove(record: ObservationRecord): Promise<boolean> {
    try {
      await this.api.deleteNamespacedConfigMap({
        namespace: this.namespace,
        name: observationName(record.object, record.revision),
        // Only the version read: a record moved forward meanwhile (its object came back to it) stays.
        ...(record.version ? { body: { preconditions: { resourceVersion: record.version } } } : {}),
      });
      return true;
    } catch (err: unknown) {
      if (statusOf(err) === 404 || statusOf(err) === 409) return false;
      throw storeError('delete an observed revision', err);
    }
  }

  private async list(labelSelector: string): Promise<ObservationRecord[]> {
    try {
      const list = await this.api.listNamespacedConfigMap({ namespace: this.namespace, labelSelector });
      return list.items.flatMap((cm) => fromConfigMap(cm) ?? []);
    } catch (err: unknown) {
      throw storeError('list observed revisions', err);
    }
  }

  private toConfigMap(record: ObservationRecord): V1ConfigMap {
    const { version, ...rest } = record;
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: observationName(record.object, record.revision),
        namespace: this.namespace,
        labels: { ...MANAGED_BY, 'keptn-gitops-service/object': hash(record.object), 'keptn-gitops-service/phase': record.phase },
        annotations: { 'keptn-gitops-service/object': record.object, 'keptn-gitops-service/revision': record.revision },
        ...(version ? { resourceVersion: version } : {}),
      },
      data: { record: JSON.stringify(rest) },
    };
  }
}

function fromConfigMap(cm: V1ConfigMap): ObservationRecord | undefined {
  const text = cm.data?.['record'];
  if (!text) return undefined;
  try {
    return { ...(JSON.parse(text) as ObservationRecord), version: cm.metadata?.resourceVersion ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * A ConfigMap of ours whose record cannot be read (written by hand, or by a later version): aged by its creation time,
 * so that it too is deleted once past the retention; never sent.
 */
function unreadable(cm: V1ConfigMap): ObservationRecord | undefined {
  const created = cm.metadata?.creationTimestamp ? new Date(cm.metadata.creationTimestamp).getTime() : NaN;
  const object = cm.metadata?.annotations?.['keptn-gitops-service/object'];
  const revision = cm.metadata?.annotations?.['keptn-gitops-service/revision'];
  if (!Number.isFinite(created) || object === undefined || revision === undefined) return undefined;
  return { object, revision, phase: 'refused', owner: '', at: created, version: cm.metadata?.resourceVersion ?? '' };
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function storeError(what: string, err: unknown): StoreUnavailableError {
  const status = statusOf(err);
  const retryable = status === undefined || status >= 500 || status === 429 || status === 408;
  return new StoreUnavailableError(`cannot ${what} in Kubernetes: ${status !== undefined ? `HTTP ${status}` : String(err)}`, {
    cause: err,
    retryable,
  });
}

/** For unit tests: the same rules (create refuses what exists, update is compare-and-swap), nothing survives. */
export class MemoryObservationStore implements ObservationStore {
  readonly records = new Map<string, ObservationRecord>();
  private counter = 0;

  async create(record: ObservationRecord): Promise<ObservationRecord | undefined> {
    const k = `${record.object}@${record.revision}`;
    if (this.records.has(k)) return undefined;
    const saved = { ...record, version: String(++this.counter) };
    this.records.set(k, saved);
    return saved;
  }

  async update(record: ObservationRecord): Promise<ObservationRecord> {
    const k = `${record.object}@${record.revision}`;
    const current = this.records.get(k);
    if (!current || current.version !== record.version) throw new StoreConflictError(`${k} changed meanwhile`);
    const saved = { ...record, version: String(++this.counter) };
    this.records.set(k, saved);
    return saved;
  }

  async get(object: string, revision: string): Promise<ObservationRecord | undefined> {
    return this.records.get(`${object}@${revision}`);
  }

  async seen(object: string): Promise<boolean> {
    return [...this.records.values()].some((r) => r.object === object);
  }

  async unsent(): Promise<ObservationRecord[]> {
    return [...this.records.values()].filter((r) => r.phase === 'announcing');
  }

  async expired(before: number): Promise<ObservationRecord[]> {
    return [...this.records.values()].filter((r) => r.at < before);
  }

  async remove(record: ObservationRecord): Promise<boolean> {
    const k = `${record.object}@${record.revision}`;
    if (this.records.get(k)?.version !== record.version) return false;
    return this.records.delete(k);
  }
}
