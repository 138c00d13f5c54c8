/**
 * The Argo CD Application as the rules read it (Argo CD 3.5), and which of its sources follows our branch.
 * @see https://argo-cd.readthedocs.io/en/stable/user-guide/application-specification/
 */
import { sameRepository } from '../../platform/git/repository.js';

export interface ApplicationSource {
  repoURL: string;
  path?: string;
  targetRevision?: string;
  chart?: string;
}

export interface ResourceRef {
  group?: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface Application {
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string; annotations?: Record<string, string> };
  spec: {
    project?: string;
    destination?: { server?: string; name?: string; namespace?: string };
    source?: ApplicationSource;
    sources?: ApplicationSource[];
    syncPolicy?: { automated?: unknown; syncOptions?: string[]; retry?: Record<string, unknown> };
  };
  operation?: { sync?: { revision?: string; revisions?: string[] }; info?: Array<{ name: string; value: string }> };
  status?: {
    sync?: { status?: string; revision?: string; revisions?: string[] };
    health?: { status?: string; message?: string };
    reconciledAt?: string;
    controllerNamespace?: string;
    /** `appTree` (the 3.x default): per-resource health lives in Argo CD's cache, not in `resources[].health`. */
    resourceHealthSource?: string;
    resources?: Array<ResourceRef & { status?: string; requiresPruning?: boolean; health?: { status?: string; message?: string } }>;
    /** Images of the live Pods in the Application's resource tree. */
    summary?: { images?: string[] };
    operationState?: {
      phase?: string;
      message?: string;
      startedAt?: string;
      finishedAt?: string;
      operation?: { info?: Array<{ name: string; value: string }>; sync?: { revision?: string; revisions?: string[] } };
      syncResult?: { revision?: string; revisions?: string[]; resources?: Array<ResourceRef & { images?: string[] }> };
    };
    conditions?: Array<{ type: string; message?: string }>;
  };
}

/** The `info` entry that marks a sync operation as started by this service for one deployment. */
export const OPERATION_INFO_KEY = 'keptn-triggeredid';

export function sourcesOf(app: Application): ApplicationSource[] {
  return app.spec.sources?.length ? app.spec.sources : app.spec.source ? [app.spec.source] : [];
}

export function isMultiSource(app: Application): boolean {
  return Boolean(app.spec.sources?.length);
}

/** A revision field of one source: the single-source field, or our entry of the multi-source list. */
export function revisionOfSource(
  single: string | undefined,
  perSource: string[] | undefined,
  index: number,
  multi: boolean,
): string | undefined {
  return multi ? perSource?.[index] : single;
}

export function appName(app: Application): string {
  return `Application ${app.metadata.namespace ?? ''}/${app.metadata.name}`;
}

export function resourceName(r: ResourceRef): string {
  return `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
}

/** Argo CD 2.x: `automated: {}` means on; 3.x adds `automated.enabled`, which may turn it off. */
export function isAutomated(app: Application): boolean {
  const automated = app.spec.syncPolicy?.automated as { enabled?: boolean } | undefined;
  return automated !== undefined && automated !== null && automated.enabled !== false;
}

/** `spec.syncPolicy.automated.prune`: whether syncs of this Application delete what Git no longer has. */
export function prunes(app: Application): boolean {
  return (app.spec.syncPolicy?.automated as { prune?: boolean } | undefined)?.prune === true;
}

export type TrackedSource = { index: number; tracksHead: boolean } | { problem: string };

/**
 * Which source of the Application follows our branch of our repository. A source that tracks a tag, a commit or
 * another branch never picks up our commit, and syncing it to our commit would pin the team's app to a revision it
 * does not track; `HEAD` (or empty) follows the repository's default branch, which only Argo CD resolves.
 */
export function trackedSource(app: Application, repoUrl: string, branch: string): TrackedSource {
  const ours = sourcesOf(app)
    .map((source, index) => ({ index, revision: source.targetRevision?.trim() || 'HEAD', source }))
    .filter((s) => !s.source.chart && sameRepository(s.source.repoURL, repoUrl));
  if (ours.length === 0)
    return { problem: `${appName(app)} does not read the GitOps repository ${repoUrl}; check git.url in the settings` };
  const onBranch = ours.find((s) => s.revision === branch || s.revision === `refs/heads/${branch}`);
  if (onBranch) return { index: onBranch.index, tracksHead: false };
  const head = ours.find((s) => s.revision === 'HEAD');
  if (head) return { index: head.index, tracksHead: true };
  const tracked = [...new Set(ours.map((s) => s.revision))].join(', ');
  return {
    problem: `${appName(app)} tracks ${tracked}, not branch ${branch}: it never deploys our commit; point its targetRevision at ${branch} or git.branch at what it tracks`,
  };
}
