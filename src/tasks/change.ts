/**
 * The step every writing task shares: make the change once (or take the recorded one when resuming), then wait for the
 * tool; and the pieces a change is made of (trailers, the image from the event, the file edit).
 */
import type { Logger } from 'pino';
import { parseImageRef, type ImageRef } from '../platform/git/image.js';
import type { ImageWrite } from '../platform/git/editors.js';
import type { FileEdit } from '../platform/git/workspace.js';
import type { DeploymentTriggeredData, TriggeredEvent } from '../keptn/events.js';
import { isRecord } from '../shared/json.js';
import type { ImageWriteSetting } from '../platform/settings/schema.js';
import type { DeliveryRequest } from '../judge/tool.js';
import type { HandlerContext } from './handler.js';
import type { Progress } from '../platform/state/record.js';
import type { FinalVerdict } from '../judge/wait.js';
import { toolOf } from '../platform/metrics.js';
import { DeploymentError, type DeploymentDeps, type Prepared } from './deps.js';
import { gitHostName, rideOut } from './outage.js';

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
    const deadline = (context.acceptedAt ?? Date.now()) + prepared.timeoutMs;
    // The commit is idempotent (its trailer names the deployment), so a Git host that is away is simply tried again.
    const made = await rideOut({ party: 'git', name: gitHostName(prepared.settings.git.url), deadline }, change, {
      log,
      metrics: deps.metrics,
      aside: context.aside,
    });
    if (!made) return undefined;
    log.info(
      { commit: made.commit, created: made.created, reused: made.reused },
      made.created ? 'change committed' : 'change already in Git',
    );
    progress = {
      commit: made.commit,
      ownCommit: made.created || made.reused,
      deadline,
      target: prepared.settings.target,
      repoUrl: prepared.settings.git.url,
      ...(made.mark !== undefined ? { mark: made.mark } : {}),
    };
    await context.checkpoint?.(progress);
  }
  const commit = progress.commit;
  const waitStart = performance.now();
  const deadline = progress.deadline;
  let tries = 0;
  // The Kubernetes API away while the tool is asked or watched: the wait starts over once it is back, as a resumed
  // one (it looks before its deadline applies), until the deadline (issue 23).
  const verdict = await rideOut(
    { party: 'kube', name: 'the Kubernetes API', deadline },
    () =>
      prepared.tool.deliver({
        target: prepared.settings.target,
        commit,
        repoUrl: prepared.settings.git.url,
        branch: prepared.settings.git.branch,
        ...written,
        deadline,
        ...(context.progress || tries++ > 0 ? { resumed: true } : {}),
        deploymentId: event.id,
        relation: (sha) => deps.git.relation(prepared.repo, commit, sha, written.files),
        onBranch: () => deps.git.onBranch(prepared.repo, commit),
        log,
        onProgress: (reason) => log.debug({ reason }, 'waiting'),
        ...(prepared.settings.argocd ? { argocd: prepared.settings.argocd } : {}),
        ...request,
      }),
    { log, metrics: deps.metrics },
  );
  // A verdict, pass or fail; a wait that throws (its watch refused) makes the deployment errored and is not a wait.
  const tool = toolOf(prepared.settings.target.kind);
  if (tool !== 'none') deps.metrics?.toolWaited(tool, (performance.now() - waitStart) / 1000);
  return { progress, verdict };
}

export function trailers(event: TriggeredEvent): string {
  const { project, stage, service } = event.data;
  return `Keptn-Context: ${event.shkeptncontext}\nKeptn-Project: ${project}\nKeptn-Stage: ${stage}\nKeptn-Service: ${service}`;
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
