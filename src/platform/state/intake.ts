/**
 * The intake: events accepted together, recorded in ONE write before they are acknowledged (ADR 18). A batch is a
 * ConfigMap in the service's namespace holding the triggering events; each event gets its own deployment record
 * (record.ts) when its turn to start comes, and the batch is removed once every event in it has one. The record's
 * name, derived from the event id, stays the one place that decides "already accepted": a redelivered event may sit in
 * a second batch, and its record's create answers 409 there.
 */
import { randomUUID } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { TriggeredEvent } from '../../keptn/events.js';
import { pooledApiClient } from '../k8s/pool.js';
import { StoreConflictError, StoreUnavailableError, RecordTooLargeError } from './record.js';

export interface IntakeEntry {
  event: TriggeredEvent;
  /** Epoch ms of acceptance: the deployment's deadline counts from here. */
  acceptedAt: number;
}

export interface IntakeBatch {
  name: string;
  /** Replica identity of the one that creates the members' records. */
  owner: string;
  entries: IntakeEntry[];
  /** Opaque optimistic-concurrency token of the store. */
  version: string;
}

export interface IntakeStore {
  /** Records the entries in one write. */
  create(owner: string, entries: IntakeEntry[]): Promise<IntakeBatch>;
  list(): Promise<IntakeBatch[]>;
  /** Takes a batch over with the version it was listed at; StoreConflictError when it changed since. */
  claim(batch: IntakeBatch, owner: string): Promise<IntakeBatch>;
  /** Removes a batch all of whose entries have records; nothing when it is gone already. */
  remove(batch: Pick<IntakeBatch, 'name'>): Promise<void>;
}

/**
 * What one batch may hold: a ConfigMap holds at most 1 MiB of data (ValidateConfigMap, kubernetes/kubernetes
 * pkg/apis/core/validation, sums the values against core.MaxSecretSize); the rest of the object stays small.
 */
export const MAX_INTAKE_BYTES = 1024 * 1024 - 1024;

/** The bytes an entry adds to a batch: its JSON and a separator. */
export function entrySize(entry: IntakeEntry): number {
  return Buffer.byteLength(JSON.stringify(entry)) + 1;
}

const LABELS = { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'intake' };
const SELECTOR = Object.entries(LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');
const OWNER = 'keptn-gitops-service/owner';

export class ConfigMapIntake implements IntakeStore {
  /** Its own connections: acknowledgements never queue behind the deployments' record requests. */
  private readonly api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
  ) {
    this.api = pooledApiClient(kc, CoreV1Api);
  }

  async create(owner: string, entries: IntakeEntry[]): Promise<IntakeBatch> {
    const name = `keptn-gitops-intake-${randomUUID()}`;
    const body = this.toConfigMap({ name, owner, entries, version: '' });
    try {
      const saved = await this.api.createNamespacedConfigMap({ namespace: this.namespace, body });
      return { name, owner, entries, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      throw storeError('record the events', err);
    }
  }

  async list(): Promise<IntakeBatch[]> {
    try {
      const batches: IntakeBatch[] = [];
      let next: string | undefined;
      do {
        const page = await this.api.listNamespacedConfigMap({
          namespace: this.namespace,
          labelSelector: SELECTOR,
          limit: 50,
          ...(next ? { _continue: next } : {}),
        });
        for (const cm of page.items) {
          const batch = fromConfigMap(cm);
          if (batch) batches.push(batch);
        }
        next = page.metadata?._continue || undefined;
      } while (next);
      return batches;
    } catch (err: unknown) {
      throw storeError('list the intake', err);
    }
  }

  async claim(batch: IntakeBatch, owner: string): Promise<IntakeBatch> {
    try {
      const saved = await this.api.replaceNamespacedConfigMap({
        namespace: this.namespace,
        name: batch.name,
        body: this.toConfigMap({ ...batch, owner }),
      });
      return { ...batch, owner, version: saved.metadata?.resourceVersion ?? '' };
    } catch (err: unknown) {
      if (statusOf(err) === 409 || statusOf(err) === 404)
        throw new StoreConflictError(`intake ${batch.name} changed meanwhile`, { cause: err });
      throw storeError('claim the intake', err);
    }
  }

  async remove(batch: Pick<IntakeBatch, 'name'>): Promise<void> {
    try {
      await this.api.deleteNamespacedConfigMap({ namespace: this.namespace, name: batch.name });
    } catch (err: unknown) {
      if (statusOf(err) !== 404) throw storeError('remove the intake', err);
    }
  }

  private toConfigMap(batch: IntakeBatch): V1ConfigMap {
    const text = JSON.stringify(batch.entries);
    const size = Buffer.byteLength(text);
    if (size > MAX_INTAKE_BYTES)
      throw new RecordTooLargeError(`the intake batch would be ${size} bytes; it holds at most ${MAX_INTAKE_BYTES}`);
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: batch.name,
        namespace: this.namespace,
        labels: LABELS,
        annotations: { [OWNER]: batch.owner },
        ...(batch.version ? { resourceVersion: batch.version } : {}),
      },
      data: { entries: text },
    };
  }
}

/** A batch as a ConfigMap holds it; undefined for one that is not readable (left alone). */
function fromConfigMap(cm: V1ConfigMap): IntakeBatch | undefined {
  const name = cm.metadata?.name;
  const owner = cm.metadata?.annotations?.[OWNER];
  const text = cm.data?.['entries'];
  if (!name || !owner || !text) return undefined;
  try {
    const entries = JSON.parse(text) as unknown;
    if (!Array.isArray(entries)) return undefined;
    return { name, owner, entries: entries as IntakeEntry[], version: cm.metadata?.resourceVersion ?? '' };
  } catch {
    return undefined;
  }
}

/** For unit tests and for running without a cluster: nothing survives the process. */
export class MemoryIntake implements IntakeStore {
  readonly batches = new Map<string, IntakeBatch>();
  private counter = 0;

  async create(owner: string, entries: IntakeEntry[]): Promise<IntakeBatch> {
    const batch = { name: `intake-${++this.counter}`, owner, entries, version: String(this.counter) };
    this.batches.set(batch.name, batch);
    return batch;
  }

  async list(): Promise<IntakeBatch[]> {
    return [...this.batches.values()];
  }

  async claim(batch: IntakeBatch, owner: string): Promise<IntakeBatch> {
    const current = this.batches.get(batch.name);
    if (!current || current.version !== batch.version) throw new StoreConflictError(`intake ${batch.name} changed meanwhile`);
    const next = { ...current, owner, version: String(++this.counter) };
    this.batches.set(batch.name, next);
    return next;
  }

  async remove(batch: Pick<IntakeBatch, 'name'>): Promise<void> {
    this.batches.delete(batch.name);
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function storeError(what: string, err: unknown): Error {
  const status = statusOf(err);
  const retryable = status === undefined || status >= 500 || status === 429 || status === 408;
  const reason = status !== undefined ? `HTTP ${status}` : err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`cannot ${what} in Kubernetes: ${reason}`, { cause: err, retryable });
}
