/**
 * The progressive plumbing of the tasks (ADR 12): which way a strategy goes for this service, the driver of its
 * workload, waiting for the workload, and the report naming where each version is reached.
 */
import type { Logger } from 'pino';
import { codeOf, messageOf } from '../shared/errors.js';
import { workloadGrant } from '../platform/grants.js';
import { requestedStrategy, type DeploymentTriggeredData, type TriggeredEvent } from '../keptn/events.js';
import type { Progress } from '../platform/state/record.js';
import type { FinalVerdict } from '../judge/wait.js';
import {
  settingOf,
  strategyPlan,
  type ProgressiveDriver,
  type ProgressiveGoal,
  type ProgressiveKind,
  type ProgressiveRef,
  type StrategyPlan,
} from '../judge/progressive.js';
import { DeploymentError, type DeploymentDeps, type Prepared } from './deps.js';
import { metadataOf, refuseUnlessGranted } from './grant-checks.js';

/**
 * What the event's strategy means for this service (see progressive.ts); a strategy the settings cannot do, a
 * workload not granted to the project, or one unfit for Keptn's gate, ends errored before anything is written.
 */
export async function progressivePlan(
  event: TriggeredEvent<DeploymentTriggeredData>,
  prepared: Prepared,
  deps: DeploymentDeps,
  log: Logger,
): Promise<Exclude<StrategyPlan, { problem: string }>> {
  const plan = strategyPlan(requestedStrategy(event.data), prepared.settings);
  if ('problem' in plan) throw new DeploymentError('STRATEGY_UNSUPPORTED', plan.problem);
  if (plan.kind === 'progressive') {
    const workload = plan.workload;
    const driver = progressiveOf(deps, workload);
    const shown = `${workload.kind} ${workload.namespace}/${workload.name}`;
    const ref = { apiVersion: PROGRESSIVE_API_VERSIONS[workload.kind], ...workload };
    const metadata = await metadataOf(ref, deps, settingOf(workload)).catch((err: unknown) => {
      if (err instanceof DeploymentError) throw err;
      if (codeOf(err) === 'NOT_FOUND')
        throw new DeploymentError('NOT_FOUND', `${shown} not found; check ${settingOf(workload)} in the settings`, { cause: err });
      throw new DeploymentError('API_ERROR', `cannot read the grant on ${shown}: ${messageOf(err)}`, { cause: err });
    });
    refuseUnlessGranted(workloadGrant({ ...workload, metadata }, event.data.project), event.data.project, log);
    const problem = await driver.problem(workload);
    if (problem) throw new DeploymentError('STRATEGY_UNSUPPORTED', problem);
  }
  return plan;
}

const PROGRESSIVE_API_VERSIONS: Record<ProgressiveKind, string> = { Rollout: 'argoproj.io/v1alpha1', Canary: 'flagger.app/v1beta1' };

export function progressiveOf(deps: DeploymentDeps, workload: ProgressiveRef): ProgressiveDriver {
  const driver = deps.progressive?.[workload.kind];
  if (!driver)
    throw new DeploymentError(
      'NO_CLUSTER',
      `${settingOf(workload)} names a ${workload.kind}, but the service has no Kubernetes access to drive it`,
    );
  return driver;
}

/** Waits, until the task's deadline, for the progressive workload to reach `goal`. */
export function followProgressive(
  deps: DeploymentDeps,
  workload: ProgressiveRef,
  goal: ProgressiveGoal,
  images: string[],
  progress: Pick<Progress, 'commit' | 'deadline' | 'mark'>,
  log: Logger,
): Promise<FinalVerdict> {
  return progressiveOf(deps, workload).wait(workload, {
    expectation: { goal, images, ...(goal === 'preview' && progress.mark !== undefined ? { since: progress.mark } : {}) },
    deadline: progress.deadline,
    commit: progress.commit,
    log,
    onProgress: (reason) => log.debug({ reason }, 'waiting for the progressive workload'),
  });
}

/**
 * The report of a progressive task names the workload and where each version is reached; Keptn's tests go to
 * `deploymentURIsLocal`, so after a deployment those are the preview's (the stable version's after a release),
 * unless the settings give their own.
 */
export async function progressiveReport(
  deps: DeploymentDeps,
  workload: ProgressiveRef,
  prepared: Pick<Prepared, 'report' | 'settings'>,
  reached: 'preview' | 'stable',
  log: Logger,
): Promise<Prepared['report']> {
  const uris = await progressiveOf(deps, workload)
    .uris(workload)
    .catch((err: unknown) => {
      log.warn({ err }, 'the progressive workload could not be read for its URIs');
      return undefined;
    });
  if (!uris) return prepared.report;
  const local = reached === 'preview' ? uris.previewURIsLocal : uris.stableURIsLocal;
  return {
    ...prepared.report,
    // Not the URIs the event carried over from the deployment: after a release they are the stable version's.
    ...(prepared.settings.report?.deploymentURIsLocal ? {} : { deploymentURIsLocal: local }),
    progressive: { workload: `${workload.kind} ${workload.namespace}/${workload.name}`, ...uris },
  };
}
