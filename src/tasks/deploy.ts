/**
 * Keptn's `deployment` task: write the event's image into the files the settings name, commit, wait for the tool (and
 * the progressive workload), and revert a failed commit when the settings ask for it.
 */
import type { Logger } from 'pino';
import { messageOf } from '../shared/errors.js';
import { formatImageRef } from '../platform/git/image.js';
import { DEPLOYMENT_TRAILER, type GitWorkspace } from '../platform/git/workspace.js';
import type { DeploymentOutcome, DeploymentTriggeredData, TriggeredEvent } from '../keptn/events.js';
import type { HandlerContext } from './handler.js';
import type { Progress } from '../platform/state/record.js';
import { changeAndWait, fileEdit, imageFrom, trailers } from './change.js';
import type { DeploymentDeps, Prepared } from './deps.js';
import { confirmObserved, observedRevision } from './observed.js';
import { prepare } from './prepare.js';
import { followProgressive, progressiveOf, progressivePlan, progressiveReport } from './progressive-steps.js';

/**
 * Runs one deployment. With `context.progress` (a resumed deployment whose commit is already pushed) it waits for that
 * commit and writes nothing; otherwise it commits and reports the commit through `context.checkpoint` first.
 */
export async function deploy(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext> = {},
): Promise<DeploymentOutcome> {
  // A resumed deployment's commit is pushed already, and an observed one's was made in Git: neither commits.
  const commits = !observedRevision(event.data) && !context.progress;
  const prepared = await prepare(event, deps, log, context, { commits });
  try {
    return await deployPrepared(event, deps, log, context, prepared);
  } finally {
    // Asking for the commit withdrew it already; every other way out must not leave its group waiting.
    prepared.withdraw?.();
  }
}

async function deployPrepared(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext>,
  prepared: Prepared,
): Promise<DeploymentOutcome> {
  const { project, stage, service } = event.data;
  const observed = observedRevision(event.data);
  if (observed) return confirmObserved(event, deps, log, context, prepared, observed);
  const plan = await progressivePlan(event, prepared, deps, log);
  const edits = prepared.settings.images.map((w) => fileEdit(w, imageFrom(event.data, w)));
  const images = [...new Set(edits.map((e) => formatImageRef(e.image)))].join(', ');
  const done = await changeAndWait(
    event,
    deps,
    log,
    context,
    prepared,
    async () => {
      // What the progressive workload holds before our commit can reach it: a version it held then is not ours.
      const mark = plan.kind === 'progressive' ? await progressiveOf(deps, plan.workload).mark(plan.workload) : undefined;
      const made = await deps.git.commitImage({
        repo: prepared.repo,
        edits,
        author: prepared.settings.git.author ?? deps.author,
        deploymentId: event.id,
        message: `keptn: deploy ${images} to ${project}/${stage}/${service}\n\n${trailers(event)}`,
      });
      // A commit made before (found by its trailer) or none at all: the mark may already be our version.
      return made?.created && mark !== undefined ? { ...made, mark } : made;
    },
    { images: edits.map((e) => formatImageRef(e.image)), files: [...new Set(edits.map((e) => e.file))] },
    // A Rollout paused for promotion is what a progressive deployment wants: its Suspended health is no failure.
    plan.kind === 'progressive' ? { argocd: { ...prepared.settings.argocd, suspended: 'pass' } } : {},
  );
  const { progress } = done!;
  let { verdict } = done!;
  let report = prepared.report;
  if (plan.kind === 'progressive' && verdict.state === 'passed') {
    const held = await followProgressive(
      deps,
      plan.workload,
      'preview',
      edits.map((e) => formatImageRef(e.image)),
      progress,
      log,
    );
    verdict = held.state === 'passed' ? { ...held, message: `${verdict.message}; ${held.message}` } : held;
    report = await progressiveReport(deps, plan.workload, prepared, 'preview', log);
    // The exact version Keptn's tests will see: the release promotes it and nothing newer (src/tasks/release.ts).
    if (held.state === 'passed' && held.revision) report = { ...report, progressiveVersion: held.revision };
  }
  const change = progress.ownCommit ? `commit ${progress.commit}` : `commit ${progress.commit} (the image was already in Git)`;
  return verdict.state === 'passed'
    ? {
        status: 'succeeded',
        result: 'pass',
        message: `${images} deployed with ${change}. ${verdict.message}`,
        gitCommit: progress.commit,
        ...report,
      }
    : await failed(`${images} not deployed (${change}): ${verdict.message}`);

  async function failed(message: string): Promise<DeploymentOutcome> {
    const revert =
      prepared.settings.onFailure === 'revert' && progress.ownCommit
        ? await revertFailed(event, deps, log, prepared, progress, images)
        : undefined;
    return {
      status: 'succeeded',
      result: 'fail',
      message: revert ? `${message} ${revert.note}` : message,
      gitCommit: progress.commit,
      ...(revert?.revertCommit ? { revertCommit: revert.revertCommit } : {}),
      ...prepared.report,
    };
  }
}

/**
 * Settings `onFailure: revert`: our commit failed to deploy, so it is reverted in Git (once: the revert carries its
 * own deployment trailer), and the revert is waited for like any deployment. The outcome names both commits.
 */
async function revertFailed(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  prepared: Prepared,
  progress: Progress,
  images: string,
): Promise<{ note: string; revertCommit?: string }> {
  const { project, stage, service } = event.data;
  const deploymentId = `${event.id}.revert`;
  let made: Awaited<ReturnType<GitWorkspace['revertDeployment']>>;
  try {
    made = await deps.git.revertDeployment({
      repo: prepared.repo,
      author: prepared.settings.git.author ?? deps.author,
      deploymentId,
      match: [`${DEPLOYMENT_TRAILER}: ${event.id}`],
      // Not `Keptn-Context`: a roll-back later in the sequence must find the deployment, not this revert.
      message: (reverted: string) =>
        `keptn: revert ${reverted.slice(0, 12)}, which failed to deploy ${images} to ${project}/${stage}/${service}\n\n${trailers(event).replace('Keptn-Context:', 'Keptn-Revert-Context:')}`,
    });
  } catch (err: unknown) {
    log.warn({ err }, 'failed deployment not reverted');
    return { note: `Reverting commit ${progress.commit} in Git failed as well: ${messageOf(err)}; it is still on the branch.` };
  }
  if (!made) return { note: `Commit ${progress.commit} is no longer on the branch, so nothing was reverted.` };
  log.info({ revert: made.commit, reverted: progress.commit }, 'failed deployment reverted in Git');
  const revertCommit = made.commit;
  const verdict = await prepared.tool.deliver({
    target: prepared.settings.target,
    commit: revertCommit,
    repoUrl: prepared.settings.git.url,
    branch: prepared.settings.git.branch,
    images: [],
    files: [],
    deadline: Date.now() + prepared.timeoutMs,
    deploymentId,
    relation: (sha) => deps.git.relation(prepared.repo, revertCommit, sha),
    onBranch: () => deps.git.onBranch(prepared.repo, revertCommit),
    log,
    ...(prepared.settings.argocd ? { argocd: prepared.settings.argocd } : {}),
  });
  return {
    revertCommit,
    note:
      verdict.state === 'passed'
        ? `Reverted with commit ${revertCommit}, which is deployed: ${verdict.message}`
        : `Reverted with commit ${revertCommit}, which is not deployed either: ${verdict.message}`,
  };
}
