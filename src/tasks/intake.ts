/**
 * The runner's side of the intake (ADR 18): events accepted together are recorded in one batch write before they are
 * acknowledged (shared/group.ts), and each batch is removed once every event in it has its own deployment record.
 * Which events of a batch still lack one is kept here, per batch, for the batches this process writes or takes over.
 */
import type { Logger } from 'pino';
import { GroupWriter } from '../shared/group.js';
import { retry, type Sleep } from '../shared/retry.js';
import { SAVE_POLICY } from './save.js';
import { RecordTooLargeError, StoreConflictError, type DeploymentRecord, type StateStore } from '../platform/state/record.js';
import { entrySize, MAX_INTAKE_BYTES, type IntakeBatch, type IntakeEntry, type IntakeStore } from '../platform/state/intake.js';

/** Batch writes in flight at once: enough to keep one write at the API server while the answer of the other travels. */
export const INTAKE_WRITES_IN_FLIGHT = 2;

/** How many removed batches are remembered: far more than a resume round's list can be behind. */
const REMEMBERED_BATCHES = 10_000;

export interface IntakeOptions {
  store: IntakeStore;
  /** The deployment records, where each recorded event gets its own when its turn comes. */
  records: StateStore;
  /** This replica's identity. */
  owner(): string;
  log: Logger;
  /** Waits between a record's create attempts (SAVE_POLICY). */
  sleep: Sleep;
}

export class Intake {
  private readonly writer: GroupWriter<IntakeEntry, IntakeBatch>;
  /** Per batch name, the event ids still without their own record. */
  private readonly open = new Map<string, Set<string>>();
  /** Batches removed from here lately, oldest first. */
  private readonly gone = new Set<string>();

  private readonly store: IntakeStore;
  private readonly log: Logger;

  constructor(private readonly opts: IntakeOptions) {
    this.store = opts.store;
    this.log = opts.log;
    this.writer = new GroupWriter({
      write: (entries) => this.store.create(this.opts.owner(), entries),
      sizeOf: entrySize,
      maxSize: MAX_INTAKE_BYTES,
      inFlight: INTAKE_WRITES_IN_FLIGHT,
    });
  }

  /** Resolves once the entry is durable, in the batch that holds it; throws when it cannot be written. */
  async record(entry: IntakeEntry): Promise<IntakeBatch> {
    const batch = await this.writer.add(
      entry,
      (size) => new RecordTooLargeError(`the event would take ${size} bytes of a record; a record holds at most ${MAX_INTAKE_BYTES}`),
    );
    this.track(batch);
    return batch;
  }

  /**
   * The entry's own record, made now with the given owner and claim; undefined when it exists already (the event was
   * delivered again, or another replica made it). Also undefined, logged, when it cannot be made now: the entry stays
   * in its batch and a resume round tries again.
   */
  async admit(entry: IntakeEntry, batch: IntakeBatch, who: { owner: string; claim: string }): Promise<DeploymentRecord | undefined> {
    const fresh: DeploymentRecord = { ...entry, phase: 'accepted', ...who };
    const log = this.log.child({ triggeredid: entry.event.id, shkeptncontext: entry.event.shkeptncontext });
    let record: DeploymentRecord | undefined;
    try {
      record = await retry(SAVE_POLICY, () => this.opts.records.create(fresh), this.opts.sleep);
    } catch (err: unknown) {
      log.error({ err }, 'deployment could not be recorded; it will be resumed');
      return undefined;
    }
    this.resolved(batch, entry.event.id);
    if (!record) log.info('event delivered again; its deployment is recorded already');
    return record;
  }

  /**
   * Hands `launch` every recorded event without a record of its own: those of our batches that nothing started yet
   * (after a restart, or a record that could not be written), and those of a stopped replica's batches, taken over
   * first (compare-and-swap, so two replicas adopting the same batch do not both take it).
   */
  async resume(isAlive: (owner: string) => Promise<boolean>, launch: (entry: IntakeEntry, batch: IntakeBatch) => void): Promise<void> {
    const me = this.opts.owner();
    for (const listed of await this.store.list()) {
      let batch = listed;
      try {
        if (batch.owner !== me) {
          if (await isAlive(batch.owner)) continue;
          batch = await this.store.claim(batch, me);
          this.log.info({ batch: batch.name, from: listed.owner, events: batch.entries.length }, 'adopted the intake of a stopped replica');
        }
      } catch (err: unknown) {
        if (!(err instanceof StoreConflictError)) this.log.warn({ err, batch: listed.name }, 'could not take an intake batch over');
        continue;
      }
      for (const entry of this.unresolved(batch)) launch(entry, batch);
    }
  }

  /** The entries of a listed batch that this process has not yet seen to a record. */
  private unresolved(batch: IntakeBatch): IntakeEntry[] {
    const open = this.track(batch);
    return batch.entries.filter((e) => open.has(e.event.id));
  }

  /** The entry has its record now (made here, or found existing): the batch goes once none is left. */
  private resolved(batch: Pick<IntakeBatch, 'name'>, eventId: string): void {
    const open = this.open.get(batch.name);
    if (!open) return;
    open.delete(eventId);
    if (open.size) return;
    this.open.delete(batch.name);
    this.remember(batch.name);
    this.store.remove(batch).catch((err: unknown) => {
      // Listed again then, and its entries' records exist, so it changes nothing but its removal.
      this.gone.delete(batch.name);
      this.log.warn({ err, batch: batch.name }, 'could not remove an intake batch');
    });
  }

  /** A resume round's list taken before a batch was removed must not bring its entries back (their records exist). */
  private remember(name: string): void {
    this.gone.add(name);
    if (this.gone.size > REMEMBERED_BATCHES) this.gone.delete(this.gone.values().next().value!);
  }

  private track(batch: IntakeBatch): Set<string> {
    if (this.gone.has(batch.name)) return new Set();
    let open = this.open.get(batch.name);
    if (!open) this.open.set(batch.name, (open = new Set(batch.entries.map((e) => e.event.id))));
    return open;
  }
}
