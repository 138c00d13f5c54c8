/**
 * Keptn's `release` task: after the tests and the quality gate, confirm that what the target runs is still the commit
 * the sequence's deployment applied (or a later commit on the branch that contains it) and that it is healthy.
 *
 * helm-service, which answered `release` before, did nothing for a `direct` deployment and promoted only its
 * duplicate (blue/green) one (keptn/keptn 1.4.5 before the move to keptn-contrib, helm-service/controller/
 * release_handler.go HandleEvent). In GitOps there is nothing to promote for `direct` either, but the quality gate
 * was passed by one revision: the release says whether that revision is what runs now, through the same drivers and
 * rules as a deployment, and writes nothing to Git.
 *
 * Which revision: shipyard-controller merges the `.finished` data of the sequence's earlier tasks into the next
 * `.triggered` (shipyard-controller/models/sequence_execution.go GetNextTriggeredEventData), so `deployment.gitCommit`
 * of our `deployment.finished` arrives here. Without it the release cannot know what was tested, and helm-service
 * offers no fallback (it looked at nothing), so it ends errored, saying what to fix.
 *
 * A progressive strategy (see progressive.ts) promotes the Rollout or Canary the settings name, as helm-service
 * promoted its blue/green deployment, and passes once the promoted version is stable. It promotes only the exact
 * version the sequence's deployment saw held back and Keptn then tested (`deployment.progressiveVersion`: a Rollout's
 * pod-template hash, a Canary's lastAppliedSpec), never a newer template that happens to carry the same image (a
 * later commit may change its configuration, resources or sidecars, none of which passed this quality gate).
 */
import type { Logger } from 'pino';
import {
  changeAndWait,
  DeploymentError,
  fileEdit,
  imageFrom,
  prepare,
  progressiveOf,
  progressivePlan,
  progressiveReport,
  type DeploymentDeps,
} from './deployment.js';
import { codeOf, messageOf } from '../shared/errors.js';
import { formatImageRef } from '../platform/git/image.js';
import { isRecord } from '../shared/json.js';
import { requestedStrategy, type DeploymentOutcome, type ReleaseTriggeredData, type TriggeredEvent } from '../keptn/events.js';
import type { HandlerContext } from './handler.js';
import type { GitOpsSettings } from '../platform/settings/schema.js';
import type { Progress } from '../platform/state/record.js';

const FULL_SHA = /^[0-9a-f]{40}$/;
/** Pod-template hashes (Argo Rollouts) and Flagger's spec hashes are short lower-case alphanumerics (rand.SafeEncodeString). */
const VERSION = /^[a-z0-9]{1,63}$/;

/**
 * The progressive version the sequence's deployment recorded as tested, from the merged `deployment.finished` data;
 * none when it recorded none (a direct deployment, or one reported by an older release of this service: the release
 * then checks the images alone); or what is wrong with it.
 */
export function releaseVersion(data: ReleaseTriggeredData): { version?: string } | { problem: string } {
  const value = isRecord(data.deployment) ? data.deployment.progressiveVersion : undefined;
  if (value === undefined || value === null || value === '') return {};
  if (typeof value !== 'string' || !VERSION.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
    return {
      problem: `deployment.progressiveVersion must be the version hash that deployment.finished reported (lower-case letters and digits), got ${shown}`,
    };
  }
  return { version: value };
}

/** The commit the sequence deployed, from the merged `deployment.finished` data; or what is wrong with it. */
export function releaseRevision(data: ReleaseTriggeredData): { commit: string } | { problem: string } {
  const deployment = isRecord(data.deployment) ? data.deployment : undefined;
  const value = deployment?.gitCommit;
  if (value === undefined || value === null || value === '') {
    return {
      problem:
        `release.triggered for ${data.service} in ${data.stage} carries no deployment.gitCommit, so there is no deployed ` +
        'revision to confirm: Keptn copies it from the deployment.finished of the same sequence. Put a deployment task ' +
        'answered by keptn-gitops-service before release in the sequence of this stage (as the delivery sequence does)',
    };
  }
  if (typeof value !== 'string' || !FULL_SHA.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
    return { problem: `deployment.gitCommit must be the full 40-hex commit SHA that deployment.finished reported, got ${shown}` };
  }
  return { commit: value };
}

/**
 * The images the settings write, where the event still names them (the sequence's `configurationChange.values`),
 * and the files they go to. An image the event no longer names is left out: the revision and health still count.
 */
function expectedImages(event: TriggeredEvent<ReleaseTriggeredData>, settings: GitOpsSettings): { images: string[]; files: string[] } {
  const images: string[] = [];
  for (const w of settings.images) {
    try {
      images.push(formatImageRef(fileEdit(w, imageFrom(event.data, w)).image));
    } catch {
      // Not in this event: nothing to compare for this write.
    }
  }
  return { images: [...new Set(images)], files: [...new Set(settings.images.map((w) => w.file))] };
}

export async function release(
  event: TriggeredEvent<ReleaseTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext> = {},
): Promise<DeploymentOutcome> {
  const revision = context.progress ? { commit: context.progress.commit } : releaseRevision(event.data);
  if ('problem' in revision) throw new DeploymentError('MISSING_REVISION', revision.problem);
  const prepared = await prepare(event, deps, log, context);
  const strategy = requestedStrategy(event.data);
  const plan = await progressivePlan(event, prepared, deps, log);
  const { commit } = revision;
  const report = { ...prepared.report, gitCommit: commit };

  if (!context.progress && !(await deps.git.onBranch(prepared.repo, commit))) {
    return {
      status: 'succeeded',
      result: 'fail',
      message:
        `the deployed commit ${commit} is no longer on branch ${prepared.settings.git.branch}: its history was rewritten after the ` +
        'deployment, so what runs is not the revision this sequence tested; trigger the delivery again',
      ...report,
    };
  }
  const written = expectedImages(event, prepared.settings);
  if (plan.kind === 'progressive') {
    // Keptn's quality gate passed this version: promote it fully, then wait for it to be stable. Promoting again
    // after a restart is harmless: a version already stable gets no write. A resumed release keeps the version it
    // recorded (`mark`).
    const tested = context.progress ? { version: context.progress.mark } : releaseVersion(event.data);
    if ('problem' in tested) throw new DeploymentError('MISSING_REVISION', tested.problem);
    const version = tested.version;
    const progress: Progress = context.progress ?? {
      commit,
      ownCommit: false,
      deadline: (context.acceptedAt ?? Date.now()) + prepared.timeoutMs,
      target: prepared.settings.target,
      repoUrl: prepared.settings.git.url,
      ...(version !== undefined ? { mark: version } : {}),
    };
    if (!context.progress) await context.checkpoint?.(progress);
    if (version === undefined) log.info('the deployment recorded no progressive version; the release checks the images alone');
    const driver = progressiveOf(deps, plan.workload);
    try {
      await driver.promote(plan.workload, written.images, log, version);
    } catch (err: unknown) {
      // A newer version than the one this sequence tested waits now: it did not pass this quality gate.
      if (codeOf(err) !== 'VERSION_NOT_HELD') throw err;
      return { status: 'succeeded', result: 'fail', message: `not released: ${messageOf(err)}`, ...report };
    }
    const stable = await driver.wait(plan.workload, {
      expectation: { goal: 'stable', images: written.images, ...(version !== undefined ? { version } : {}) },
      deadline: progress.deadline,
      commit,
      log,
      onProgress: (reason) => log.debug({ reason }, 'waiting for the progressive workload'),
    });
    const released = { ...(await progressiveReport(deps, plan.workload, prepared, 'stable', log)), gitCommit: commit };
    return stable.state === 'passed'
      ? { status: 'succeeded', result: 'pass', message: `released: commit ${commit} promoted. ${stable.message}`, ...released }
      : { status: 'succeeded', result: 'fail', message: `not released: commit ${commit} promoted, but ${stable.message}`, ...released };
  }
  const done = await changeAndWait(
    event,
    deps,
    log,
    context,
    prepared,
    () => Promise.resolve({ commit, created: false, reused: false }),
    written,
    { verifyOnly: true },
  );
  const { verdict } = done!;
  return verdict.state === 'passed'
    ? {
        status: 'succeeded',
        result: 'pass',
        message: `released: commit ${commit}, deployed by this sequence, still runs (nothing to promote for ${strategy}). ${verdict.message}`,
        ...report,
      }
    : {
        status: 'succeeded',
        result: 'fail',
        message: `not released: commit ${commit}, deployed by this sequence, is not what runs healthy now: ${verdict.message}`,
        ...report,
      };
}
