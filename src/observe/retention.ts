/**
 * Observation records are kept for a retention period (`OBSERVATION_RETENTION`), then deleted (issue 19, item 7):
 * without it, every revision of every linked object stays in the state namespace for ever. Only the replica that
 * observes (holds the observer Lease) deletes, on a timer of its own, so the Lease's renewals never wait for a sweep.
 *
 * Deleting by age alone is safe because the observer moves a record's `at` forward whenever an object returns to its
 * revision (records.ts): the record of an object's current revision is its newest, so it goes last, and an object
 * whose records are all gone is taken afresh (its revision becomes a baseline, not an announcement).
 */
import type { Logger } from 'pino';
import type { ObservationStore } from './records.js';

export interface RetentionOptions {
  store: ObservationStore;
  /** How long a record is kept after its `at`. */
  retentionMs: number;
  /** Whether this replica observes now (holds the observer Lease): only then does it delete. */
  active: () => boolean;
  log: Logger;
  now?: () => number;
  /** How often to sweep; by default a quarter of the retention, at most an hour. */
  intervalMs?: number;
}

/** The shortest retention: shorter would drop an announcement a Keptn outage left unsent before it is re-sent. */
export const MIN_RETENTION_MS = 3_600_000;

/** Whether a record whose object was last found at its revision at `at` is past the retention at `now`. */
export function pastRetention(at: number, now: number, retentionMs: number): boolean {
  return now - at > retentionMs;
}

export class RecordRetention {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: RetentionOptions) {
    this.now = opts.now ?? Date.now;
  }

  get intervalMs(): number {
    return this.opts.intervalMs ?? Math.min(3_600_000, Math.max(60_000, Math.floor(this.opts.retentionMs / 4)));
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.opts.active()) void this.sweep();
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /** Deletes every record past the retention; how many were deleted. One sweep at a time; failures are logged. */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce()
      .catch((err: unknown) => {
        this.opts.log.warn({ err }, 'observation records past their retention not deleted; tried again later');
        return 0;
      })
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    const now = this.now();
    const expired = await this.opts.store.expired(now - this.opts.retentionMs);
    let deleted = 0;
    for (const record of expired) {
      // The Lease may have gone to another replica meanwhile: it sweeps from then on.
      if (!this.opts.active()) break;
      if (!pastRetention(record.at, now, this.opts.retentionMs)) continue;
      if (await this.opts.store.remove(record)) deleted++;
    }
    if (deleted) this.opts.log.info({ deleted, retentionMs: this.opts.retentionMs }, 'observation records past their retention deleted');
    return deleted;
  }
}
