/**
 * The single owner of a deployment's events: every accepted `.triggered` gets one `.started` and then exactly one
 * `.finished`, whatever happens in between, including a crash of this process.
 *
 * Each deployment is recorded in the state store before it is acknowledged, and its record moves
 * accepted → started → finishing → done as the events go out. A restarted process resumes its own records; a
 * replica adopts the records of a replica whose Lease ran out. The Git commit is idempotent (a trailer names the
 * deployment), so resuming never commits twice. A repeated event id finds its record and changes nothing.
 */
import type { Logger } from 'pino';
import { finishedEvent, startedEvent, type DeploymentOutcome, type OutgoingEvent, type TriggeredEvent } from './keptn/events.js';
import type { EventSink } from './keptn/sender.js';
import { StoreConflictError, type DeploymentRecord, type Progress, type StateStore } from './state/record.js';
import type { ReplicaRegistry } from './state/replicas.js';

export interface HandlerContext {
  /** Epoch ms of acceptance: deadlines count from here, across restarts and takeovers. */
  acceptedAt: number;
  /** What an earlier run of this deployment recorded, when it is resumed. */
  progress?: Progress;
  /** Records progress; never throws (a resume can still find the commit by its trailer). */
  checkpoint(progress: Progress): Promise<void>;
}

export type Handler = (event: TriggeredEvent, log: Logger, context: HandlerContext) => Promise<DeploymentOutcome>;

export interface RunnerOptions {
  sink: EventSink;
  handle: Handler;
  log: Logger;
  source: string;
  store: StateStore;
  replicas: ReplicaRegistry;
  /** How often to look for deployments to resume or adopt, and to retry undelivered `.finished` events. */
  resumeIntervalMs?: number;
  heartbeatIntervalMs?: number;
  /** How long a finished deployment's record is kept to recognise redeliveries. */
  doneRetentionMs?: number;
  /** How long after acceptance an undelivered `.finished` is still re-sent; then it is given up, loudly. */
  finishedRetryMs?: number;
}

export type Acceptance = 'accepted' | 'duplicate';

export class DeploymentRunner {
  private readonly running = new Map<string, Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private resuming: Promise<void> | undefined;

  constructor(private readonly opts: RunnerOptions) {}

  get identity(): string {
    return this.opts.replicas.identity;
  }

  /**
   * Records the deployment and starts it. Throws when the record cannot be written: the caller answers 5xx and the
   * distributor delivers the event again, so nothing is acknowledged that could be lost.
   */
  async accept(event: TriggeredEvent): Promise<Acceptance> {
    if (this.running.has(event.id)) return 'duplicate';
    const record = await this.opts.store.create({ event, phase: 'accepted', owner: this.identity, acceptedAt: Date.now() });
    if (!record) return 'duplicate';
    this.launch(record);
    return 'accepted';
  }

  /** Heartbeats and the resume loop; resumes this replica's unfinished deployments at once. */
  async start(): Promise<void> {
    await this.opts.replicas.heartbeat();
    const every = (ms: number, work: () => Promise<void>) => {
      const t = setInterval(() => void work().catch((err: unknown) => this.opts.log.warn({ err: (err as Error).message }, 'background step failed')), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.heartbeatIntervalMs ?? 5_000, () => this.opts.replicas.heartbeat());
    every(this.opts.resumeIntervalMs ?? 10_000, () => this.resume());
    await this.resume();
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Waits for the deployments running in this process (tests; a graceful stop need not: others resume them). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  /** Resumes own unfinished records, adopts those of dead replicas, forgets old finished ones. */
  resume(): Promise<void> {
    this.resuming ??= this.resumeOnce().finally(() => (this.resuming = undefined));
    return this.resuming;
  }

  private async resumeOnce(): Promise<void> {
    for (const record of await this.opts.store.list()) {
      if (record.phase === 'done') {
        if (Date.now() - (record.doneAt ?? 0) > (this.opts.doneRetentionMs ?? 3_600_000)) await this.opts.store.remove(record);
        continue;
      }
      if (this.running.has(record.event.id)) continue;
      if (record.owner === this.identity && record.phase === 'finishing' && Date.now() - record.acceptedAt > (this.opts.finishedRetryMs ?? 24 * 3_600_000)) {
        this.logFor(record.event).error({ result: record.outcome?.result, message: record.outcome?.message }, 'gave up delivering deployment.finished');
        await this.opts.store.update({ ...record, phase: 'done', doneAt: Date.now() });
        continue;
      }
      if (record.owner === this.identity) {
        this.logFor(record.event).info({ phase: record.phase }, 'resuming deployment');
        this.launch(record);
      } else if (!(await this.opts.replicas.isAlive(record.owner))) {
        try {
          const adopted = await this.opts.store.update({ ...record, owner: this.identity });
          this.logFor(record.event).info({ phase: record.phase, from: record.owner }, 'adopted deployment of a stopped replica');
          this.launch(adopted);
        } catch (err: unknown) {
          if (!(err instanceof StoreConflictError)) throw err;
        }
      }
    }
  }

  private launch(record: DeploymentRecord): void {
    const run = this.drive(record).finally(() => this.running.delete(record.event.id));
    this.running.set(record.event.id, run);
  }

  private logFor(event: TriggeredEvent): Logger {
    return this.opts.log.child({ shkeptncontext: event.shkeptncontext, triggeredid: event.id, project: event.data.project, stage: event.data.stage, service: event.data.service });
  }

  private async drive(initial: DeploymentRecord): Promise<void> {
    const { event } = initial;
    const log = this.logFor(event);
    const source = this.opts.source;
    let record = initial;
    try {
      if (record.phase === 'accepted') {
        const delivered = await this.deliver(startedEvent(event, { source }), log);
        // If Keptn did not get `.started`, do not deploy; a `.finished` closes the task if it did and is ignored if not.
        const next: DeploymentRecord = delivered
          ? { ...record, phase: 'started' }
          : { ...record, phase: 'finishing', outcome: errored(event, 'the service could not deliver deployment.started to Keptn, so it did not deploy; trigger the delivery again') };
        // `.started` is out: go on even if the API cannot take the new phase now, or a resume would send it twice.
        record = await this.save(next).catch((err: unknown) => {
          if (err instanceof StoreConflictError) throw err;
          log.warn({ err: (err as Error).message }, 'could not record the phase; going on');
          return next;
        });
        if (delivered) log.info('deployment started');
      }
      if (record.phase === 'started') {
        let outcome: DeploymentOutcome;
        const checkpoint = async (progress: Progress) => {
          try {
            record = await this.save({ ...record, progress });
          } catch (err: unknown) {
            log.warn({ err: (err as Error).message }, 'could not record progress');
          }
        };
        try {
          outcome = await this.opts.handle(event, log, { acceptedAt: record.acceptedAt, ...(record.progress ? { progress: record.progress } : {}), checkpoint });
        } catch (err: unknown) {
          const message = err instanceof Error ? err.message : String(err);
          log.warn({ code: (err as { code?: string }).code, err: message }, 'deployment errored');
          outcome = errored(event, message);
        }
        record = { ...record, phase: 'finishing', outcome };
        record = await this.save(record).catch((err: unknown) => {
          // Deliver what we know even when it cannot be saved: a `.finished` sent twice beats one never sent.
          log.error({ err: (err as Error).message }, 'could not save the outcome; sending it anyway');
          return record;
        });
      }
      if (record.phase === 'finishing' && record.outcome) {
        const final = record.outcome;
        const delivered = await this.deliver(finishedEvent(event, final, { source }), log);
        log.info({ result: final.result, status: final.status, message: final.message, gitCommit: final.gitCommit, delivered }, 'deployment finished');
        // Undelivered: the record stays `finishing` and the resume loop sends it again.
        if (delivered) await this.save({ ...record, phase: 'done', doneAt: Date.now() });
      }
    } catch (err: unknown) {
      if (err instanceof StoreConflictError) log.warn('another replica took this deployment over');
      else log.error({ err: (err as Error).message }, 'deployment state could not be saved; it will be resumed');
    }
  }

  /**
   * Saves with a few quick retries: the API server may be restarting. A conflict is final unless the stored record is
   * still ours (an earlier save of ours went through but its answer was lost): then it is saved over that version.
   */
  private async save(record: DeploymentRecord): Promise<DeploymentRecord> {
    let last: unknown;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        return await this.opts.store.update(record);
      } catch (err: unknown) {
        if (err instanceof StoreConflictError) {
          const stored = (await this.opts.store.list()).find((r) => r.event.id === record.event.id);
          if (!stored || stored.owner !== this.identity || stored.version === record.version) throw err;
          record = { ...record, version: stored.version };
          continue;
        }
        last = err;
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
    throw last;
  }

  private async deliver(event: OutgoingEvent, log: Logger): Promise<boolean> {
    try {
      await this.opts.sink.send(event);
      return true;
    } catch (err: unknown) {
      log.error({ type: event.type, err: (err as Error).message }, 'event not delivered');
      return false;
    }
  }
}

export function errored(event: TriggeredEvent, message: string): DeploymentOutcome {
  return {
    status: 'errored',
    result: 'fail',
    message,
    deploymentstrategy: String((event.data['deployment'] as { deploymentstrategy?: string } | undefined)?.deploymentstrategy || 'direct'),
    deploymentNames: [],
    deploymentURIsLocal: [],
    deploymentURIsPublic: [],
  };
}
