/**
 * The single owner of a deployment's events: every accepted `.triggered` gets one `.started` and then exactly one
 * `.finished`, whatever happens in between (the `finally` below is the guarantee). A repeated event id is the same
 * deployment and changes nothing.
 */
import type { Logger } from 'pino';
import { finishedEvent, startedEvent, type DeploymentOutcome, type OutgoingEvent, type TriggeredEvent } from './keptn/events.js';
import type { EventSink } from './keptn/sender.js';

export type Handler = (event: TriggeredEvent, log: Logger) => Promise<DeploymentOutcome>;

export interface RunnerOptions {
  sink: EventSink;
  handle: Handler;
  log: Logger;
  source: string;
  /** How many recent event ids to remember for de-duplication. */
  rememberIds?: number;
}

export type Acceptance = 'accepted' | 'duplicate';

export class DeploymentRunner {
  private readonly seen = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly opts: RunnerOptions) {}

  accept(event: TriggeredEvent): Acceptance {
    if (this.seen.has(event.id)) return 'duplicate';
    this.remember(event.id);
    const log = this.opts.log.child({
      shkeptncontext: event.shkeptncontext,
      triggeredid: event.id,
      project: event.data.project,
      stage: event.data.stage,
      service: event.data.service,
    });
    const run = this.run(event, log).finally(() => this.running.delete(event.id));
    this.running.set(event.id, run);
    return 'accepted';
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Waits for running deployments to finish (for a graceful stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private remember(id: string): void {
    this.seen.add(id);
    const max = this.opts.rememberIds ?? 10_000;
    if (this.seen.size > max) this.seen.delete(this.seen.values().next().value as string);
  }

  private async run(event: TriggeredEvent, log: Logger): Promise<void> {
    const source = this.opts.source;
    let outcome: DeploymentOutcome | undefined;
    try {
      const startedOk = await this.deliver(startedEvent(event, { source }), log);
      if (!startedOk) {
        // Keptn may or may not have it; a `.finished` closes the task if it did and is ignored if it did not.
        outcome = errored(event, 'the service could not deliver deployment.started to Keptn, so it did not deploy; trigger the delivery again');
        return;
      }
      log.info('deployment started');
      outcome = await this.opts.handle(event, log);
    } catch (err: unknown) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn({ code: (err as { code?: string }).code, err: message }, 'deployment errored');
      outcome = errored(event, message);
    } finally {
      const final = outcome ?? errored(event, 'internal error: no outcome');
      const delivered = await this.deliver(finishedEvent(event, final, { source }), log);
      log.info({ result: final.result, status: final.status, message: final.message, gitCommit: final.gitCommit, delivered }, 'deployment finished');
    }
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
