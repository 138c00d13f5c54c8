/**
 * The one place that orders a deployment: settings → image → Git commit → tool → verdict.
 * It returns the outcome and never sends events itself; the runner owns `.started`/`.finished`.
 */
import type { Logger } from 'pino';
import { credentialsFromSecretData, type GitCredentials } from './git/credentials.js';
import { formatImageRef, parseImageRef, type ImageRef } from './git/image.js';
import type { ImageWrite } from './git/editors.js';
import type { FileEdit, GitWorkspace, RepoRef } from './git/workspace.js';
import { requestedStrategy, type DeploymentOutcome, type DeploymentTriggeredData, type TriggeredEvent } from './keptn/events.js';
import { isRecord } from './keptn/parse.js';
import { parseDuration, type GitOpsSettings, type ImageWriteSetting } from './settings/schema.js';
import type { SettingsSource } from './settings/source.js';
import type { DeliveryTool } from './tool.js';
import type { HandlerContext } from './runner.js';

export interface DeploymentDeps {
  settings: SettingsSource;
  git: GitWorkspace;
  tools: DeliveryTool[];
  /** Reads a Secret's data; absent when the service runs without a cluster. */
  secretData?(namespace: string, name: string): Promise<Record<string, string>>;
  secretNamespace: string;
  defaultTimeoutMs: number;
  author: { name: string; email: string };
}

/** A deployment that cannot be carried out as asked: reported as `errored` with this message. */
export class DeploymentError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
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
  const acceptedAt = context.acceptedAt ?? Date.now();
  const { project, stage, service } = event.data;
  const { settings, where } = await deps.settings.load({ project, stage, service });
  log.info({ where }, 'settings loaded');

  const tool = deps.tools.find((t) => t.kinds.includes(settings.target.kind));
  if (!tool) throw new DeploymentError('NO_TOOL', `no driver for target.kind ${settings.target.kind} in ${where}`);
  const edits = settings.images.map((w) => fileEdit(w, imageFrom(event.data, w)));
  const repo: RepoRef = { url: settings.git.url, branch: settings.git.branch, ...(await credentials(settings, deps)) };
  const timeoutMs = settings.timeout ? parseDuration(settings.timeout) : deps.defaultTimeoutMs;
  const report = reportFields(event, settings);

  const images = [...new Set(edits.map((e) => formatImageRef(e.image)))].join(', ');
  let progress = context.progress;
  if (progress) {
    log.info({ commit: progress.commit }, 'resuming the wait for the recorded commit');
  } else {
    const { commit, created, reused } = await deps.git.commitImage({
      repo,
      edits,
      author: settings.git.author ?? deps.author,
      deploymentId: event.id,
      message: `keptn: deploy ${images} to ${project}/${stage}/${service}\n\nKeptn-Context: ${event.shkeptncontext}\nKeptn-Project: ${project}\nKeptn-Stage: ${stage}\nKeptn-Service: ${service}`,
    });
    log.info({ commit, created, reused }, created ? 'image committed' : 'image already in place');
    progress = { commit, created: created || reused, deadline: acceptedAt + timeoutMs, target: settings.target, repoUrl: settings.git.url };
    await context.checkpoint?.(progress);
  }
  const { commit, created } = progress;

  const verdict = await tool.deliver({
    target: settings.target,
    commit,
    repoUrl: settings.git.url,
    deadline: progress.deadline,
    deploymentId: event.id,
    relation: (sha) => deps.git.relation(repo, commit, sha),
    log,
    onProgress: (reason) => log.debug({ reason }, 'waiting'),
  });
  const change = created ? `commit ${commit}` : `commit ${commit} (the image was already in Git)`;
  return verdict.state === 'passed'
    ? { status: 'succeeded', result: 'pass', message: `${images} deployed with ${change}. ${verdict.message}`, gitCommit: commit, ...report }
    : { status: 'succeeded', result: 'fail', message: `${images} not deployed (${change}): ${verdict.message}`, gitCommit: commit, ...report };
}

function imageFrom(data: DeploymentTriggeredData, w: ImageWriteSetting): ImageRef {
  const key = w.value ?? 'image';
  const values = data.configurationChange?.values;
  const value = isRecord(values) ? values[key] : undefined;
  if (value === undefined) {
    throw new DeploymentError('MISSING_IMAGE', `configurationChange.values.${key} is missing from the event; trigger the delivery with an image, e.g. keptn trigger delivery --image=<repository>:<tag>`);
  }
  if (typeof value !== 'string') throw new DeploymentError('MISSING_IMAGE', `configurationChange.values.${key} must be an image reference string`);
  try {
    return parseImageRef(value);
  } catch (err: unknown) {
    throw new DeploymentError('INVALID_IMAGE', `configurationChange.values.${key}: ${(err as Error).message}`, { cause: err });
  }
}

function fileEdit(w: ImageWriteSetting, image: ImageRef): FileEdit {
  const write: ImageWrite = w.kustomizeImage
    ? { kind: 'kustomizeImage', name: w.kustomizeImage }
    : w.yamlPath
      ? { kind: 'yamlPath', path: w.yamlPath, part: w.part ?? 'ref', ...(w.document !== undefined ? { document: w.document } : {}) }
      : { kind: 'imagePolicy', policy: w.imagePolicy! };
  return { file: w.file, write, image };
}

async function credentials(settings: GitOpsSettings, deps: DeploymentDeps): Promise<{ credentials?: GitCredentials }> {
  const ref = settings.git.secretRef;
  if (!ref) return {};
  if (!deps.secretData) throw new DeploymentError('NO_CLUSTER', `git.secretRef names Secret ${ref.name}, but the service has no Kubernetes access to read it`);
  const namespace = ref.namespace ?? deps.secretNamespace;
  const data = await deps.secretData(namespace, ref.name).catch((err: unknown) => {
    throw new DeploymentError('SECRET_UNAVAILABLE', `cannot read the Git credentials: ${(err as Error).message}`, { cause: err });
  });
  return { credentials: credentialsFromSecretData(data, `${namespace}/${ref.name}`) };
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
