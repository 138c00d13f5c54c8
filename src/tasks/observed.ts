/**
 * A deployment task for a change made in Git (src/observe/): the sequence names the commit; nothing is written.
 */
import type { Logger } from 'pino';
import { REVISION_LABEL, type DeploymentOutcome, type DeploymentTriggeredData, type TriggeredEvent } from '../keptn/events.js';
import type { HandlerContext } from './handler.js';
import { changeAndWait } from './change.js';
import { DeploymentError, type DeploymentDeps, type Prepared } from './deps.js';

/** The full commit a sequence started for a change made in Git names (its revision label), if any. */
export function observedRevision(data: DeploymentTriggeredData): string | undefined {
  const label = data.labels?.[REVISION_LABEL];
  if (label === undefined) return undefined;
  if (!/^[0-9a-f]{40}$/.test(label))
    throw new DeploymentError(
      'INVALID_REVISION',
      `label ${REVISION_LABEL} must be a full 40-digit commit hash, got ${JSON.stringify(label.slice(0, 80))}`,
    );
  return label;
}

/**
 * A sequence started for a change made in Git (src/observe/): nothing is written; the deployment is that commit (or a
 * later one containing it) applied and healthy, judged by the same driver and rules as a commit of our own.
 */
export async function confirmObserved(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext>,
  prepared: Prepared,
  revision: string,
): Promise<DeploymentOutcome> {
  log.info({ revision }, 'confirming a change made in Git');
  // Issue 18 item 6: a change reverted (or rewritten) on the branch before this task ran is not what gets deployed,
  // whatever the tool says of the later revision that contains it. A resumed task has decided this already.
  if (!context.progress) {
    const later = await deps.git.changedAgain(prepared.repo, revision).catch((err: unknown) => {
      // Unknown is not "reverted": the wait below still judges the commit itself.
      log.warn({ err }, 'whether the observed change still stands could not be read from Git');
      return undefined;
    });
    if (later)
      return {
        status: 'succeeded',
        result: 'fail',
        message: `commit ${revision} (made in Git, not by Keptn) is not deployed: it is no longer in effect, as ${later.files.slice(0, 5).join(', ')}${later.files.length > 5 ? ', …' : ''} changed again on branch ${prepared.settings.git.branch} after it (last in commit ${later.by})`,
        gitCommit: revision,
        ...prepared.report,
      };
  }
  const done = await changeAndWait(event, deps, log, context, prepared, async () => ({ commit: revision, created: false, reused: false }));
  const { progress, verdict } = done!;
  return verdict.state === 'passed'
    ? {
        status: 'succeeded',
        result: 'pass',
        message: `commit ${progress.commit} (made in Git, not by Keptn) is deployed. ${verdict.message}`,
        gitCommit: progress.commit,
        ...prepared.report,
      }
    : {
        status: 'succeeded',
        result: 'fail',
        message: `commit ${progress.commit} (made in Git, not by Keptn) is not deployed: ${verdict.message}`,
        gitCommit: progress.commit,
        ...prepared.report,
      };
}
