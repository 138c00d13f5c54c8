/**
 * What is kept of an accepted deployment so that any replica, after any crash, can finish it: the triggering event,
 * how far it got, who owns it. Phases only move forward: accepted → started → finishing → done.
 */
import type { DeploymentOutcome, TriggeredEvent } from '../keptn/events.js';
import { ServiceError, type ServiceErrorOptions } from '../errors.js';

export type Phase = 'accepted' | 'started' | 'finishing' | 'done';

/** What a started deployment has done so far: once its commit is pushed, a resume waits for it and commits nothing. */
export interface Progress {
  commit: string;
  /** False when the image was already in Git and `commit` is the head that carried it. */
  created: boolean;
  /** Epoch ms. */
  deadline: number;
  target: { kind: string; name: string; namespace: string };
  repoUrl: string;
}

export interface DeploymentRecord {
  event: TriggeredEvent;
  phase: Phase;
  /** Replica identity of the current owner. */
  owner: string;
  /** Epoch ms of acceptance; the deployment's deadline is measured from here, across restarts. */
  acceptedAt: number;
  /** Set once the commit is pushed. */
  progress?: Progress;
  /** Set on entering `finishing`: what `.finished` reports, re-sent until delivered. */
  outcome?: DeploymentOutcome;
  /** Epoch ms when `.finished` was delivered. */
  doneAt?: number;
  /** Opaque optimistic-concurrency token of the store. */
  version?: string;
}

export class StoreConflictError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('STATE_CONFLICT', message, options);
  }
}

export interface StateStore {
  /** Records a new deployment; undefined when a record for this event id exists already (a redelivery). */
  create(record: DeploymentRecord): Promise<DeploymentRecord | undefined>;
  /** Saves a changed record; throws StoreConflictError when someone else changed it since it was read. */
  update(record: DeploymentRecord): Promise<DeploymentRecord>;
  list(): Promise<DeploymentRecord[]>;
  remove(record: DeploymentRecord): Promise<void>;
}

/** For unit tests and for running without a cluster: nothing survives the process. */
export class MemoryStore implements StateStore {
  private readonly records = new Map<string, DeploymentRecord>();
  private counter = 0;

  async create(record: DeploymentRecord): Promise<DeploymentRecord | undefined> {
    if (this.records.has(record.event.id)) return undefined;
    const saved = { ...record, version: String(++this.counter) };
    this.records.set(record.event.id, saved);
    return saved;
  }

  async update(record: DeploymentRecord): Promise<DeploymentRecord> {
    const current = this.records.get(record.event.id);
    if (!current || current.version !== record.version) throw new StoreConflictError(`record ${record.event.id} changed meanwhile`);
    const next = { ...record, version: String(++this.counter) };
    this.records.set(record.event.id, next);
    return next;
  }

  async list(): Promise<DeploymentRecord[]> {
    return [...this.records.values()];
  }

  async remove(record: DeploymentRecord): Promise<void> {
    this.records.delete(record.event.id);
  }
}
