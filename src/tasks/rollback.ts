/**
 * Keptn's `rollback` task: revert in Git what this sequence's deployment of the service committed, and wait for the
 * tool (and the progressive workload) to apply the revert.
 */
import type { Logger } from 'pino';
import { codeOf } from '../shared/errors.js';
import { formatImageRef } from '../platform/git/image.js';
import type { DeploymentOutcome, DeploymentTriggeredData, TriggeredEvent } from '../keptn/events.js';
import type { HandlerContext } from './handler.js';
import { changeAndWait, imageFrom, trailers } from './change.js';
import type { DeploymentDeps } from './deps.js';
import { prepare } from './prepare.js';
import { followProgressive, progressiveOf, progressivePlan } from './progressive-steps.js';

/**
 * Undoes in Git what this sequence's deployment of the service changed (the commit whose trailers name the same
 * Keptn context, stage and service), then waits for the tool to apply the revert.
 */
export async function rollback(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext> = {},
): Promise<DeploymentOutcome> {
  const { stage, service } = event.data;
  const prepared = await prepare(event, deps, log, context);
  // A revert in Git is always possible: a strategy the settings cannot do (its deployment errored, so there is
  // nothing of it to undo) is rolled back as written.
  const plan = await progressivePlan(event, prepared, deps, log).catch((err: unknown) => {
    if (codeOf(err) !== 'STRATEGY_UNSUPPORTED') throw err;
    return { kind: 'direct' as const };
  });
  const revert = () =>
    deps.git.revertDeployment({
      repo: prepared.repo,
      author: prepared.settings.git.author ?? deps.author,
      deploymentId: event.id,
      match: [`Keptn-Context: ${event.shkeptncontext}`, `Keptn-Stage: ${stage}`, `Keptn-Service: ${service}`],
      // Not `Keptn-Context`: a later roll-back in the same sequence must find the deployment, not this revert.
      message: (reverted: string) =>
        `keptn: roll back ${service} in ${stage} (revert ${reverted.slice(0, 12)})\n\n${trailers(event).replace('Keptn-Context:', 'Keptn-Rollback-Context:')}`,
    });
  const done = await changeAndWait(
    event,
    deps,
    log,
    context,
    prepared,
    async () => {
      const made = await revert();
      // The stable version serves again at once; the revert then brings the workload's template back to it.
      if (made && plan.kind === 'progressive') await progressiveOf(deps, plan.workload).abort(plan.workload, log);
      return made;
    },
    undefined,
    // After a promotion the revert is a new version that pauses at the gate until the Rollouts driver promotes it.
    plan.kind === 'progressive' ? { argocd: { ...prepared.settings.argocd, suspended: 'pass' } } : {},
  );
  if (!done) {
    return {
      status: 'succeeded',
      result: 'pass',
      message: `nothing to roll back: this sequence (${event.shkeptncontext}) made no commit for ${service} in ${stage}`,
      ...prepared.report,
    };
  }
  const { progress } = done;
  let { verdict } = done;
  if (plan.kind === 'progressive' && verdict.state === 'passed') {
    const images = prepared.settings.images.flatMap((w) => {
      try {
        return [formatImageRef(imageFrom(event.data, w))];
      } catch {
        return [];
      }
    });
    const back = await followProgressive(deps, plan.workload, 'rolled-back', images, progress, log);
    verdict = back.state === 'passed' ? { ...back, message: `${verdict.message}; ${back.message}` } : back;
  }
  return verdict.state === 'passed'
    ? {
        status: 'succeeded',
        result: 'pass',
        message: `rolled back with commit ${progress.commit}. ${verdict.message}`,
        gitCommit: progress.commit,
        ...prepared.report,
      }
    : {
        status: 'succeeded',
        result: 'fail',
        message: `roll-back commit ${progress.commit} not applied: ${verdict.message}`,
        gitCommit: progress.commit,
        ...prepared.report,
      };
}
