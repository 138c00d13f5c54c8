/**
 * What is kept of an accepted deployment so that any replica, after any crash, can finish it: the triggering event,
 * how far it got, who owns it. Phases only move forward: accepted → started → finishing → done.
 */
import type { DeploymentOutcome, TriggeredEvent } from '../../keptn/events.js';
import { ServiceError, type ServiceErrorOptions } from '../../shared/errors.js';

export type Phase = 'accepted' | 'started' | 'finishing' | 'done';

/** What a started deployment has done so far: once its commit is pushed, a resume waits for it and commits nothing. */
export interface Progress {
  commit: string;
  /**
   * True when `commit` is this deployment's own commit (made now, or by an earlier attempt and found by its trailer);
   * false when the image was already in Git and `commit` is the head that carried it.
   */
  ownCommit: boolean;
  /** Epoch ms. */
  deadline: number;
  target: { kind: string; name: string; namespace: string };
  repoUrl: string;
  /** What the progressive workload held before our commit (ProgressiveDriver.mark), when it says something. */
  mark?: string;
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
  /**
   * Who acts on the record now: a token new at every acceptance, resume and adoption. Whoever holds the stored
   * record's claim drives the deployment; anyone else stops at its next save (see DeploymentRunner.claim).
   */
  claim?: string;
  /** Opaque optimistic-concurrency token of the store. */
  version?: string;
}

export class StoreConflictError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('STATE_CONFLICT', message, options);
  }
}

/** A record that can never be stored (the store's size limit): terminal, the event is refused. */
export class RecordTooLargeError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('RECORD_TOO_LARGE', message, options);
  }
}

/** The store's own trouble (unreachable, refusing): `retryable` when asking again may help. */
export class StoreUnavailableError extends ServiceError {
  constructor(message: string, options: ServiceErrorOptions = {}) {
    super('STATE_UNAVAILABLE', message, options);
  }
}

export interface StateStore {
  /** Records a new deployment; undefined when a record for this event id exists already (a redelivery). */
  create(record: DeploymentRecord): Promise<DeploymentRecord | undefined>;
  /**
   * Saves a changed record if the stored one still has `record.version` (compare-and-swap); throws
   * StoreConflictError when someone changed it since it was read, or removed it. Like the Kubernetes API, saving an
   * unchanged record changes nothing and keeps its version, so a write that must exclude others has to change it.
   */
  update(record: DeploymentRecord): Promise<DeploymentRecord>;
  /** The stored record of an event id, undefined when there is none. */
  get(eventId: string): Promise<DeploymentRecord | undefined>;
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
    // As kube-apiserver does: an update that changes nothing is not written and keeps the version.
    if (JSON.stringify({ ...record, version: '' }) === JSON.stringify({ ...current, version: '' })) return current;
    const next = { ...record, version: String(++this.counter) };
    this.records.set(record.event.id, next);
    return next;
  }

  async get(eventId: string): Promise<DeploymentRecord | undefined> {
    return this.records.get(eventId);
  }

  async list(): Promise<DeploymentRecord[]> {
    return [...this.records.values()];
  }

  async remove(record: DeploymentRecord): Promise<void> {
    this.records.delete(record.event.id);
  }
}
