/**
 * The single owner of a deployment's events: every accepted `.triggered` gets one `.started` and then exactly one
 * `.finished`, whatever happens in between, including a crash of this process.
 *
 * Each deployment is recorded in the state store before it is acknowledged, and its record moves
 * accepted → started → finishing → done as the events go out. A restarted process resumes its own records; a
 * replica adopts the records of a replica whose Lease ran out. The Git commit is idempotent (a trailer names the
 * deployment), so resuming never commits twice. A repeated event id finds its record and changes nothing.
 *
 * Nothing acts on a record it has not claimed: acceptance creates the record with a fresh claim, and the resume loop,
 * which works from a list that may be stale by the time it gets to a record, first writes a new claim with the
 * version it listed (compare-and-swap). If anything saved the record since, the claim fails and the record is left
 * alone; so a deployment that finished meanwhile is never launched again, here or on another replica.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { FairSlots, NO_TURN, type Turn } from '../shared/limit.js';
import type { LoopPace } from '../shared/pace.js';
import { noMetrics, resultLabel, toolOf, type Metrics } from '../platform/metrics.js';
import {
  boundedOutcome,
  errored,
  finishedEvent,
  startedEvent,
  type DeploymentOutcome,
  type OutgoingEvent,
  type TriggeredEvent,
} from '../keptn/events.js';
import type { EventSink } from '../keptn/sender.js';
import type { Handler } from './handler.js';
import { realSleep, type Sleep } from '../shared/retry.js';
import { saveRecord } from './save.js';
import { StoreConflictError, type DeploymentRecord, type Progress, type StateStore } from '../platform/state/record.js';
import type { ReplicaRegistry } from '../platform/state/replicas.js';
import { MemoryIntake, type IntakeBatch, type IntakeEntry, type IntakeStore } from '../platform/state/intake.js';
import { Intake } from './intake.js';
import { MAX_GROUP } from '../platform/git/workspace.js';

export interface RunnerOptions {
  sink: EventSink;
  handle: Handler;
  log: Logger;
  source: string;
  store: StateStore;
  /** Where events accepted together are recorded in one write before the answer (ADR 18); in memory by default. */
  intake?: IntakeStore;
  replicas: ReplicaRegistry;
  /** How often to look for deployments to resume or adopt, and to retry undelivered `.finished` events. */
  resumeIntervalMs?: number;
  heartbeatIntervalMs?: number;
  /** How long a finished deployment's record is kept to recognise redeliveries. */
  doneRetentionMs?: number;
  /** How long after acceptance an undelivered `.finished` is still re-sent; then it is given up, loudly. */
  finishedRetryMs?: number;
  /** Waits between save attempts; tests pass one that does not sleep. */
  sleep?: Sleep;
  metrics?: Metrics;
  /** How many deployments may be starting at once (default MAX_STARTING). */
  maxStarting?: number;
  /** Holds new starts while the event loop is late, so answers to Keptn come first (shared/pace.ts). */
  pace?: LoopPace;
}

/**
 * Deployments that may be starting at once: from launch until their first checkpoint (the commit is pushed) or their
 * end. Starting is the busy part (.started, settings, Secrets, Git); waiting for the tool costs almost nothing. The
 * others wait their turn, recorded and acknowledged already, so a burst of events does not starve the answers to
 * new ones (issue 11). A project holds at most three quarters of them, so one whose Git host never answers cannot
 * hold back another project's `.started` (issue 19, item 4). Three quarters are as many as one commit holds
 * (MAX_GROUP): a burst of one project's deployments to one repository starts together and goes out in one commit,
 * where 64 turns made it six commits, each setting every Kustomization of the repository reconciling again (issue 22,
 * item 2).
 */
export const MAX_STARTING = Math.ceil((MAX_GROUP * 4) / 3);

export type Acceptance = 'accepted' | 'duplicate';

export class DeploymentRunner {
  private readonly running = new Map<string, Promise<void>>();
  /** Outcomes whose `.finished` this process delivered but could not mark done: never sent twice from here. */
  private readonly delivered = new Map<string, DeploymentOutcome>();
  private readonly timers: NodeJS.Timeout[] = [];
  private resuming: Promise<void> | undefined;
  private readonly metrics: Metrics;
  private readonly startSlots: FairSlots;
  private readonly intake: Intake;

  constructor(private readonly opts: RunnerOptions) {
    this.metrics = opts.metrics ?? noMetrics;
    this.startSlots = new FairSlots(opts.maxStarting ?? MAX_STARTING);
    const sleep = opts.sleep ?? realSleep;
    this.intake = new Intake({
      store: opts.intake ?? new MemoryIntake(),
      records: opts.store,
      owner: () => this.identity,
      log: opts.log,
      sleep,
    });
  }

  get identity(): string {
    return this.opts.replicas.identity;
  }

  /**
   * Records the event and starts its deployment. Throws when it cannot be recorded: the caller answers 5xx and the
   * distributor delivers the event again, so nothing is acknowledged that could be lost. Events arriving together are
   * recorded in one write (the intake, ADR 18); each gets its own record when its turn to start comes.
   */
  async accept(event: TriggeredEvent): Promise<Acceptance> {
    if (this.running.has(event.id)) return 'duplicate';
    // Taken before the event is recorded: a resume round that lists the new batch before it is launched leaves the
    // event to us, instead of starting it beside this acceptance.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    this.running.set(event.id, held);
    try {
      const entry: IntakeEntry = { event, acceptedAt: Date.now() };
      const batch = await this.intake.record(entry);
      this.launchEntry(entry, batch);
      return 'accepted';
    } finally {
      if (this.running.get(event.id) === held) this.running.delete(event.id);
      release();
    }
  }

  /** Heartbeats and the resume loop; resumes this replica's unfinished deployments at once. */
  async start(): Promise<void> {
    await this.opts.replicas.heartbeat();
    const every = (ms: number, work: () => Promise<void>) => {
      const t = setInterval(() => void work().catch((err: unknown) => this.opts.log.warn({ err }, 'background step failed')), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.heartbeatIntervalMs ?? 5_000, () => this.opts.replicas.heartbeat());
    every(this.opts.resumeIntervalMs ?? 10_000, () => this.resume());
    this.opts.pace?.start();
    await this.resume();
  }

  /** Stops heartbeats and resume rounds (at once: a failed start, or the first step of a graceful stop). */
  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
    this.opts.pace?.stop();
  }

  /** Waits for the deployments running in this process, for at most `withinMs`; true when none is left. */
  async drain(withinMs = Infinity): Promise<boolean> {
    const all = Promise.allSettled([...this.running.values()]).then(() => true);
    if (withinMs === Infinity) return all;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), withinMs)));
    return Promise.race([all, late]).finally(() => clearTimeout(timer));
  }

  /**
   * A graceful stop: no more rounds, a bounded wait for running deployments (their `.finished` goes out from here
   * rather than after a Lease runs out), then our Lease goes, unless something of ours is unfinished (others adopt it).
   */
  async shutdown(drainMs: number): Promise<void> {
    this.stop();
    const drained = await this.drain(drainMs);
    if (!drained) this.opts.log.info({ running: this.running.size }, 'stopping with deployments running; another replica resumes them');
    await this.opts.replicas.release();
  }

  /** Resumes own unfinished records, adopts those of dead replicas, forgets old finished ones. */
  resume(): Promise<void> {
    this.resuming ??= this.resumeOnce().finally(() => (this.resuming = undefined));
    return this.resuming;
  }

  private async resumeOnce(): Promise<void> {
    // One Lease read per other replica per round, however many of its records are listed: the read was the largest
    // share of the service's API requests under load (docs/benchmarks.md, GET leases).
    const alive = new Map<string, Promise<boolean>>();
    const isAlive = (owner: string) => {
      let answer = alive.get(owner);
      if (!answer) alive.set(owner, (answer = this.opts.replicas.isAlive(owner)));
      return answer;
    };
    await this.intake.resume(isAlive, (entry, batch) => {
      if (!this.running.has(entry.event.id)) this.launchEntry(entry, batch);
    });
    for (const listed of await this.opts.store.list()) {
      try {
        await this.reconsider(listed, isAlive);
      } catch (err: unknown) {
        // Someone saved the record after it was listed: it is theirs, or it moved on; the next round sees it anew.
        if (err instanceof StoreConflictError) continue;
        this.logFor(listed.event).warn({ err }, 'could not resume deployment');
      }
    }
  }

  /** What one listed record needs; `listed` may be stale, so every write goes with its version and may conflict. */
  private async reconsider(listed: DeploymentRecord, isAlive: (owner: string) => Promise<boolean>): Promise<void> {
    if (listed.phase === 'done') {
      if (Date.now() - (listed.doneAt ?? 0) > (this.opts.doneRetentionMs ?? 3_600_000)) await this.opts.store.remove(listed);
      return;
    }
    if (this.running.has(listed.event.id)) return;
    const log = this.logFor(listed.event);
    if (listed.owner === this.identity) {
      const sent = this.delivered.get(listed.event.id);
      if (sent) {
        // The record may still say `started` if the outcome could not be saved either.
        await this.opts.store.update({ ...listed, phase: 'done', outcome: sent, doneAt: Date.now() });
        this.delivered.delete(listed.event.id);
        return;
      }
      if (listed.phase === 'finishing' && Date.now() - listed.acceptedAt > (this.opts.finishedRetryMs ?? 24 * 3_600_000)) {
        await this.opts.store.update({ ...listed, phase: 'done', doneAt: Date.now() });
        log.error({ result: listed.outcome?.result, message: listed.outcome?.message }, 'gave up delivering deployment.finished');
        return;
      }
      const claimed = await this.claim(listed);
      log.info({ phase: claimed.phase }, 'resuming deployment');
      this.metrics.resumed();
      this.launch(claimed);
    } else if (!(await isAlive(listed.owner))) {
      const claimed = await this.claim(listed);
      log.info({ phase: claimed.phase, from: listed.owner }, 'adopted deployment of a stopped replica');
      this.metrics.adopted();
      this.launch(claimed);
    }
  }

  /**
   * Takes the record over with the version it was listed at: throws StoreConflictError when it changed since. The
   * claim token is new, so the write changes the record even when the owner stays the same (the API server keeps the
   * version of an update that changes nothing: k8s.io/apiserver storage/etcd3/store.go, GuaranteedUpdate), and a
   * drive still holding an older claim stops at its next save.
   */
  private claim(listed: DeploymentRecord): Promise<DeploymentRecord> {
    return this.opts.store.update({ ...listed, owner: this.identity, claim: randomUUID() });
  }

  private launch(record: DeploymentRecord): void {
    this.run(record.event, (turn) => this.drive(record, turn));
  }

  /**
   * A recorded event's deployment: at its turn, its own record is made (the create that decides, across replicas,
   * that it runs once: a redelivered event finds the record there and ends here), then it runs as any other.
   */
  private launchEntry(entry: IntakeEntry, batch: IntakeBatch): void {
    this.run(entry.event, async (turn) => {
      const record = await this.intake.admit(entry, batch, { owner: this.identity, claim: randomUUID() });
      if (record) await this.drive(record, turn);
    });
  }

  private run(event: TriggeredEvent, work: (turn: Turn) => Promise<void>): void {
    this.metrics.deploymentBegan();
    const run = (this.opts.pace?.admit() ?? Promise.resolve())
      .then(() => this.startSlots.turn(event.data.project))
      .then((turn) => work(turn).finally(turn.end))
      .finally(() => {
        this.running.delete(event.id);
        this.metrics.deploymentEnded();
      });
    this.running.set(event.id, run);
  }

  private logFor(event: TriggeredEvent): Logger {
    return this.opts.log.child({
      shkeptncontext: event.shkeptncontext,
      triggeredid: event.id,
      project: event.data.project,
      stage: event.data.stage,
      service: event.data.service,
    });
  }

  /** `turn`: the deployment's turn among the starting ones (limit.ts, FairSlots), shared fairly between projects. */
  private async drive(initial: DeploymentRecord, turn: Turn = NO_TURN): Promise<void> {
    const { event } = initial;
    const log = this.logFor(event);
    const source = this.opts.source;
    let record = initial;
    let tool = toolOf(record.progress?.target.kind ?? '');
    /** Counted once the outcome is saved (or cannot be and is sent anyway), not when another replica took over. */
    const decided = (outcome: DeploymentOutcome) =>
      this.metrics.deploymentFinished({ task: event.task, tool, result: resultLabel(outcome) }, (Date.now() - record.acceptedAt) / 1000);
    const checkpoint = async (progress: Progress) => {
      try {
        record = await this.save({ ...record, progress });
      } catch (err: unknown) {
        log.warn({ err }, 'could not record progress');
      }
      turn.end();
    };
    const runTask = () =>
      this.opts
        .handle(event, log, {
          acceptedAt: record.acceptedAt,
          ...(record.progress ? { progress: record.progress } : {}),
          checkpoint,
          onTarget: (kind) => (tool = toolOf(kind)),
          aside: turn.aside,
        })
        .catch((err: unknown): DeploymentOutcome => {
          log.warn({ err }, 'deployment errored');
          return errored(event, err instanceof Error ? err.message : String(err));
        });
    try {
      if (record.phase === 'accepted') {
        record = await this.begin(record, log);
        if (record.phase !== 'started' && record.outcome) decided(record.outcome);
      }
      if (record.phase === 'started') {
        const outcome = await runTask();
        record = { ...record, phase: 'finishing', outcome: boundedOutcome(outcome) };
        record = await this.save(record).catch((err: unknown) => {
          if (err instanceof StoreConflictError) throw err;
          // Deliver what we know even when it cannot be saved: a `.finished` sent twice beats one never sent.
          log.error({ err }, 'could not save the outcome; sending it anyway');
          return record;
        });
        decided(outcome);
      }
      if (record.phase === 'finishing' && record.outcome) {
        const final = record.outcome;
        const delivered = await this.deliver(finishedEvent(event, final, { source }), log);
        log.info(
          { result: final.result, status: final.status, message: final.message, gitCommit: final.gitCommit, delivered },
          'deployment finished',
        );
        // Undelivered: the record stays `finishing` and the resume loop sends it again.
        if (delivered) {
          this.delivered.set(event.id, final);
          await this.save({ ...record, phase: 'done', doneAt: Date.now() });
          this.delivered.delete(event.id);
        }
      }
    } catch (err: unknown) {
      if (err instanceof StoreConflictError) log.warn('another replica took this deployment over');
      else log.error({ err }, 'deployment state could not be saved; it will be resumed');
    }
  }

  /**
   * Sends `.started` and records it: the record in phase `started`, or `finishing` with an errored outcome when Keptn
   * did not get `.started` (then nothing is deployed; a `.finished` closes the task if it did and is ignored if not).
   */
  private async begin(record: DeploymentRecord, log: Logger): Promise<DeploymentRecord> {
    const { event } = record;
    const delivered = await this.deliver(startedEvent(event, { source: this.opts.source }), log);
    const next: DeploymentRecord = delivered
      ? { ...record, phase: 'started' }
      : {
          ...record,
          phase: 'finishing',
          outcome: errored(
            event,
            'the service could not deliver deployment.started to Keptn, so it did not deploy; trigger the delivery again',
          ),
        };
    // `.started` is out: go on even if the API cannot take the new phase now, or a resume would send it twice.
    const saved = await this.save(next).catch((err: unknown) => {
      if (err instanceof StoreConflictError) throw err;
      log.warn({ err }, 'could not record the phase; going on');
      return next;
    });
    if (delivered) log.info('deployment started');
    return saved;
  }

  private save(record: DeploymentRecord): Promise<DeploymentRecord> {
    return saveRecord(this.opts.store, record, this.opts.sleep ?? realSleep);
  }

  private async deliver(event: OutgoingEvent, log: Logger): Promise<boolean> {
    try {
      await this.opts.sink.send(event);
      return true;
    } catch (err: unknown) {
      log.error({ type: event.type, err }, 'event not delivered');
      this.metrics.eventUndelivered(event.type);
      return false;
    }
  }
}
