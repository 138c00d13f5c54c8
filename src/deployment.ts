/**
 * The one place that orders a deployment: settings → image → Git commit → tool → verdict.
 * It returns the outcome and never sends events itself; the runner owns `.started`/`.finished`.
 */
import type { Logger } from 'pino';
import { codeOf, messageOf, ServiceError } from './errors.js';
import { missingGrantMessage, secretGrant, TARGET_API_VERSIONS, targetGrant, workloadGrant, type GrantDecision } from './grants.js';
import { credentialsFromSecretData, type GitCredentials } from './git/credentials.js';
import { formatImageRef, parseImageRef, type ImageRef } from './git/image.js';
import type { ImageWrite } from './git/editors.js';
import { DEPLOYMENT_TRAILER, type FileEdit, type GitWorkspace, type RepoRef } from './git/workspace.js';
import {
  REVISION_LABEL,
  requestedStrategy,
  type DeploymentOutcome,
  type DeploymentTriggeredData,
  type TriggeredEvent,
} from './keptn/events.js';
import { isRecord } from './json.js';
import { parseDuration } from './duration.js';
import type { GitOpsSettings, ImageWriteSetting } from './settings/schema.js';
import type { SettingsSource } from './settings/source.js';
import type { DeliveryRequest, DeliveryTool } from './tool.js';
import type { HandlerContext } from './runner.js';
import type { Progress } from './state/record.js';
import type { FinalVerdict } from './wait.js';
import type { ObjectMetadata, ObjectRef } from './k8s/cluster.js';
import { retry } from './retry.js';
import { toolOf, type Metrics } from './metrics.js';
import {
  settingOf,
  strategyPlan,
  type ProgressiveDriver,
  type ProgressiveGoal,
  type ProgressiveKind,
  type ProgressiveRef,
  type StrategyPlan,
} from './progressive.js';

export interface DeploymentDeps {
  settings: SettingsSource;
  git: GitWorkspace;
  tools: DeliveryTool[];
  /** Reads a Secret's data; absent when the service runs without a cluster. */
  secretData?(namespace: string, name: string): Promise<Record<string, string>>;
  /** Reads the labels and annotations grants live in (see grants.ts); absent when the service runs without a cluster. */
  objectMetadata?(ref: ObjectRef): Promise<ObjectMetadata>;
  /** Argo Rollouts and Flagger, by the kind of their workload: absent when the service runs without a cluster. */
  progressive?: Partial<Record<ProgressiveKind, ProgressiveDriver>>;
  secretNamespace: string;
  defaultTimeoutMs: number;
  author: { name: string; email: string };
  /** Hears how long each deployment waited for its tool. */
  metrics?: Pick<Metrics, 'toolWaited'>;
}

/** A deployment that cannot be carried out as asked: reported as `errored` with this message. */
export class DeploymentError extends ServiceError {}

/** What a deployment and a rollback of one service both need: its settings, tool, repository and report. */
export interface Prepared {
  settings: GitOpsSettings;
  tool: DeliveryTool;
  repo: RepoRef;
  timeoutMs: number;
  report: Omit<DeploymentOutcome, 'status' | 'result' | 'message' | 'gitCommit'>;
}

export async function prepare(
  event: TriggeredEvent<DeploymentTriggeredData>,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext>,
): Promise<Prepared> {
  const { project, stage, service } = event.data;
  const { settings, where } = await deps.settings.load({ project, stage, service }, event.gitcommitid);
  log.info({ where }, 'settings loaded');
  context.onTarget?.(settings.target.kind);
  const tool = deps.tools.find((t) => t.kinds.includes(settings.target.kind));
  if (!tool) throw new DeploymentError('NO_TOOL', `no driver for target.kind ${settings.target.kind} in ${where}`);
  // Both grants are decided before anything is cloned, fetched, written or patched: a refusal sends nothing anywhere.
  const secret = await grantedSecret(settings, project, deps, log);
  await checkTargetGrant(settings, project, deps, log);
  return {
    settings,
    tool,
    repo: {
      url: settings.git.url,
      branch: settings.git.branch,
      ...(settings.git.insecureAcceptNewHostKey ? { insecureAcceptNewHostKey: true } : {}),
      ...(await credentials(secret, deps)),
    },
    timeoutMs: settings.timeout ? parseDuration(settings.timeout) : deps.defaultTimeoutMs,
    report: reportFields(event, settings),
  };
}

/**
 * Makes the change once (or takes the recorded one when resuming), then waits for the tool. `change` returns the
 * commit to wait for, or undefined when there is nothing to change at all.
 */
export async function changeAndWait(
  event: TriggeredEvent,
  deps: DeploymentDeps,
  log: Logger,
  context: Partial<HandlerContext>,
  prepared: Prepared,
  change: () => Promise<{ commit: string; created: boolean; reused: boolean; mark?: string } | undefined>,
  written: { images: string[]; files: string[] } = { images: [], files: [] },
  /** More of the request, e.g. `verifyOnly` for a release that must not apply anything. */
  request: Pick<DeliveryRequest, 'verifyOnly' | 'argocd'> = {},
): Promise<{ progress: Progress; verdict: FinalVerdict } | undefined> {
  let progress = context.progress;
  if (progress) {
    log.info({ commit: progress.commit }, 'resuming the wait for the recorded commit');
  } else {
    const made = await change();
    if (!made) return undefined;
    log.info(
      { commit: made.commit, created: made.created, reused: made.reused },
      made.created ? 'change committed' : 'change already in Git',
    );
    progress = {
      commit: made.commit,
      ownCommit: made.created || made.reused,
      deadline: (context.acceptedAt ?? Date.now()) + prepared.timeoutMs,
      target: prepared.settings.target,
      repoUrl: prepared.settings.git.url,
      ...(made.mark !== undefined ? { mark: made.mark } : {}),
    };
    await context.checkpoint?.(progress);
  }
  const commit = progress.commit;
  const waitStart = performance.now();
  const verdict = await prepared.tool.deliver({
    target: prepared.settings.target,
    commit,
    repoUrl: prepared.settings.git.url,
    branch: prepared.settings.git.branch,
    ...written,
    deadline: progress.deadline,
    ...(context.progress ? { resumed: true } : {}),
    deploymentId: event.id,
    relation: (sha) => deps.git.relation(prepared.repo, commit, sha, written.files),
    onBranch: () => deps.git.onBranch(prepared.repo, commit),
    log,
    onProgress: (reason) => log.debug({ reason }, 'waiting'),
    ...(prepared.settings.argocd ? { argocd: prepared.settings.argocd } : {}),
    ...request,
  });
  // A verdict, pass or fail; a wait that throws (its watch refused) makes the deployment errored and is not a wait.
  const tool = toolOf(prepared.settings.target.kind);
  if (tool !== 'none') deps.metrics?.toolWaited(tool, (performance.now() - waitStart) / 1000);
  return { progress, verdict };
}

function trailers(event: TriggeredEvent): string {
  const { project, stage, service } = event.data;
  return `Keptn-Context: ${event.shkeptncontext}\nKeptn-Project: ${project}\nKeptn-Stage: ${stage}\nKeptn-Service: ${service}`;
}

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
  const { project, stage, service } = event.data;
  const prepared = await prepare(event, deps, log, context);
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
  const done = await changeAndWait(event, deps, log, context, prepared, async () => {
    const made = await revert();
    // The stable version serves again at once; the revert then brings the workload's template back to it.
    if (made && plan.kind === 'progressive') await progressiveOf(deps, plan.workload).abort(plan.workload, log);
    return made;
  });
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

/** The full commit a sequence started for a change made in Git names (its revision label), if any. */
function observedRevision(data: DeploymentTriggeredData): string | undefined {
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
async function confirmObserved(
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

/**
 * The repository (with its granted credentials) the settings of a Keptn service name: where the observer reads who
 * made a commit. The settings are the latest ones (no sequence, so no configuration version, asks for another).
 */
export async function repositoryOf(
  scope: { project: string; stage: string; service: string },
  deps: DeploymentDeps,
  log: Logger,
): Promise<RepoRef> {
  const { settings } = await deps.settings.load(scope, undefined);
  const secret = await grantedSecret(settings, scope.project, deps, log);
  return {
    url: settings.git.url,
    branch: settings.git.branch,
    ...(settings.git.insecureAcceptNewHostKey ? { insecureAcceptNewHostKey: true } : {}),
    ...(await credentials(secret, deps)),
  };
}

export function imageFrom(data: DeploymentTriggeredData, w: ImageWriteSetting): ImageRef {
  const key = w.value ?? 'image';
  const values = data.configurationChange?.values;
  const value = isRecord(values) ? values[key] : undefined;
  if (value === undefined) {
    throw new DeploymentError(
      'MISSING_IMAGE',
      `configurationChange.values.${key} is missing from the event; trigger the delivery with an image, e.g. keptn trigger delivery --image=<repository>:<tag>`,
    );
  }
  if (typeof value !== 'string')
    throw new DeploymentError('MISSING_IMAGE', `configurationChange.values.${key} must be an image reference string`);
  try {
    return parseImageRef(value);
  } catch (err: unknown) {
    throw new DeploymentError('INVALID_IMAGE', `configurationChange.values.${key}: ${(err as Error).message}`, { cause: err });
  }
}

export function fileEdit(w: ImageWriteSetting, image: ImageRef): FileEdit {
  const write: ImageWrite = w.kustomizeImage
    ? { kind: 'kustomizeImage', name: w.kustomizeImage }
    : w.yamlPath
      ? { kind: 'yamlPath', path: w.yamlPath, part: w.part ?? 'ref', ...(w.document !== undefined ? { document: w.document } : {}) }
      : { kind: 'imagePolicy', policy: w.imagePolicy! };
  return { file: w.file, write, image };
}

/** A Secret the settings name, with the namespace filled in. */
interface SecretRef {
  namespace: string;
  name: string;
}

/** Transient API failures (not 403/404) are worth a few quick attempts before the deployment errors. */
const METADATA_RETRY = { attempts: 3, baseDelayMs: 200, maxDelayMs: 2_000, retryable: (err: unknown) => codeOf(err) === 'API_ERROR' };

async function metadataOf(ref: ObjectRef, deps: DeploymentDeps, purpose: string): Promise<ObjectMetadata> {
  const read = deps.objectMetadata;
  if (!read)
    throw new DeploymentError(
      'NO_CLUSTER',
      `${purpose} needs the grant on ${ref.kind} ${ref.namespace}/${ref.name}, but the service has no Kubernetes access to read it`,
    );
  return retry(METADATA_RETRY, () => read(ref));
}

function refuseUnlessGranted(decision: GrantDecision, project: string, log: Logger): void {
  if (decision.granted) return;
  log.warn(
    { grant: decision.missing.object, annotation: decision.missing.annotation, expected: decision.missing.expected },
    'grant missing; deployment refused',
  );
  throw new DeploymentError('GRANT_MISSING', missingGrantMessage(project, decision.missing));
}

/** The Secret of `git.secretRef`, once it is granted to the project and to the host of `git.url`. */
async function grantedSecret(settings: GitOpsSettings, project: string, deps: DeploymentDeps, log: Logger): Promise<SecretRef | undefined> {
  const ref = settings.git.secretRef;
  if (!ref) return undefined;
  const secret = { namespace: ref.namespace ?? deps.secretNamespace, name: ref.name };
  const metadata = await metadataOf({ apiVersion: 'v1', kind: 'Secret', ...secret }, deps, 'git.secretRef').catch((err: unknown) => {
    if (err instanceof DeploymentError) throw err;
    const hint =
      codeOf(err) === 'FORBIDDEN'
        ? ": the service may read only the Secrets its RBAC names; bind the Role of the Secret's Keptn scope to it (chart value secrets.keptnScopeRoles) or list it in secrets.names"
        : '';
    throw new DeploymentError('SECRET_UNAVAILABLE', `cannot read the Git credentials: ${messageOf(err)}${hint}`, { cause: err });
  });
  refuseUnlessGranted(secretGrant({ kind: 'Secret', ...secret, metadata }, project, settings.git.url), project, log);
  return secret;
}

/** Refuses a target (Kustomization, HelmRelease, Application) that is not granted to the project. */
async function checkTargetGrant(settings: GitOpsSettings, project: string, deps: DeploymentDeps, log: Logger): Promise<void> {
  const { kind, namespace, name } = settings.target;
  const metadata = await metadataOf({ apiVersion: TARGET_API_VERSIONS[kind], kind, namespace, name }, deps, 'target').catch(
    (err: unknown) => {
      if (err instanceof DeploymentError) throw err;
      if (codeOf(err) === 'NOT_FOUND')
        throw new DeploymentError('NOT_FOUND', `${kind} ${namespace}/${name} not found; check target in the settings`, { cause: err });
      throw new DeploymentError(
        codeOf(err) === 'FORBIDDEN' ? 'FORBIDDEN' : 'API_ERROR',
        `cannot read the grant on ${kind} ${namespace}/${name}: ${messageOf(err)}`,
        { cause: err },
      );
    },
  );
  refuseUnlessGranted(targetGrant({ kind, namespace, name, metadata }, project), project, log);
}

async function credentials(secret: SecretRef | undefined, deps: DeploymentDeps): Promise<{ credentials?: GitCredentials }> {
  if (!secret) return {};
  if (!deps.secretData)
    throw new DeploymentError(
      'NO_CLUSTER',
      `git.secretRef names Secret ${secret.name}, but the service has no Kubernetes access to read it`,
    );
  const data = await deps.secretData(secret.namespace, secret.name).catch((err: unknown) => {
    throw new DeploymentError('SECRET_UNAVAILABLE', `cannot read the Git credentials: ${(err as Error).message}`, { cause: err });
  });
  return { credentials: credentialsFromSecretData(data, `${secret.namespace}/${secret.name}`) };
}

function reportFields(event: TriggeredEvent<DeploymentTriggeredData>, settings: GitOpsSettings) {
  const asked = event.data.deployment;
  return {
    deploymentstrategy: requestedStrategy(event.data),
    deploymentNames: settings.report?.deploymentNames ?? [event.data.service],
    deploymentURIsLocal: settings.report?.deploymentURIsLocal ?? asked?.deploymentURIsLocal ?? [],
    deploymentURIsPublic: settings.report?.deploymentURIsPublic ?? asked?.deploymentURIsPublic ?? [],
  };
}
