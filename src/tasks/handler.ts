/**
 * What a task (deploy, rollback, release) gets from the runner that drives it: the contract between the two, apart
 * from the runner itself so that the tasks depend on it alone.
 */
import type { Logger } from 'pino';
import type { DeploymentOutcome, TriggeredEvent } from '../keptn/events.js';
import type { Progress } from '../platform/state/record.js';

export interface HandlerContext {
  /** Epoch ms of acceptance: deadlines count from here, across restarts and takeovers. */
  acceptedAt: number;
  /** What an earlier run of this deployment recorded, when it is resumed. */
  progress?: Progress;
  /** Records progress; never throws (a resume can still find the commit by its trailer). */
  checkpoint(progress: Progress): Promise<void>;
  /** Hears the target kind once the settings name it: the metrics' `tool` label, also for outcomes decided before the tool. */
  onTarget?(kind: string): void;
  /**
   * Runs `wait` (for a party that is away: the Git host, the resource-service) without the deployment's start turn,
   * which is taken again after it: waiting out an outage keeps no one else from starting (issue 23).
   */
  aside?<T>(wait: () => Promise<T>): Promise<T>;
}

export type Handler = (event: TriggeredEvent, log: Logger, context: HandlerContext) => Promise<DeploymentOutcome>;
