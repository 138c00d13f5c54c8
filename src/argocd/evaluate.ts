/**
 * When has Argo CD applied our commit? Pure rules over an Application (Argo CD 3.5).
 * Never trust Synced/Healthy alone: right after a push both still describe the previous revision, and health is
 * only recomputed once `reconciledAt` has passed the end of the sync operation. The rule table, state by state, is
 * docs/verdicts.md (Argo CD).
 * @see https://argo-cd.readthedocs.io/en/stable/user-guide/application-specification/
 */
import { commitOf, contains, imagesExpectedAt, type Expectation, type Verdict } from '../readiness.js';
import { sameRepository } from '../repository.js';

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

/** What a `Suspended` health at our commit means for this service (settings `argocd.suspended`). */
export type SuspendedVerdict = 'fail' | 'pass' | 'wait';

/** The state of a refresh we asked for: `handled` once the controller consumed the annotation after our request. */
export type RefreshState = 'none' | 'requested' | 'handled';

export interface ArgoExpectation extends Expectation {
  /** Which of `spec.sources` is our Git repository; 0 for a single-source Application. */
  sourceIndex: number;
  /** The branch we pushed to. */
  branch?: string;
  /** Our source tracks `HEAD`, which Argo CD resolves to the repository's default branch. */
  trackedHead?: boolean;
  /** Our deployment's triggeredid, to recognise the operation we started. */
  operationTag?: string;
  /** Our hard refresh: once handled, the comparison in the status was made after our push. */
  hardRefresh?: RefreshState;
  /** The normal refresh we ask for after a transport error in the comparison that followed our hard refresh. */
  retryRefresh?: RefreshState;
  /** The image references we wrote: what must run once our commit is synced. */
  images?: readonly string[];
  /** The files we wrote them into, named when the Application does not deploy them. */
  files?: readonly string[];
  /** How long this service has seen health `Degraded` without a break (its own clock only). */
  degradedForMs?: number;
  /** How long `Degraded` may last when the workload running our image is not known to be Degraded; default 60 s. */
  degradedGraceMs?: number;
  suspended?: SuspendedVerdict;
  /** Set when the project's sync windows keep the sync from running at any time before the deadline: why. */
  syncBlocked?: string;
}

export const DEFAULT_DEGRADED_GRACE_MS = 60_000;

/** Same repository, whatever the scheme, credentials, `.git` suffix or trailing slash (src/repository.ts). */
export function sameRepo(a: string, b: string): boolean {
  return sameRepository(a, b);
}

export function sourcesOf(app: Application): ApplicationSource[] {
  return app.spec.sources?.length ? app.spec.sources : app.spec.source ? [app.spec.source] : [];
}

function isMultiSource(app: Application): boolean {
  return Boolean(app.spec.sources?.length);
}

/** A revision field of one source: the single-source field, or our entry of the multi-source list. */
function revisionOfSource(single: string | undefined, perSource: string[] | undefined, index: number, multi: boolean): string | undefined {
  return multi ? perSource?.[index] : single;
}

function appName(app: Application): string {
  return `Application ${app.metadata.namespace ?? ''}/${app.metadata.name}`;
}

function resourceName(r: ResourceRef): string {
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
    .filter((s) => !s.source.chart && sameRepo(s.source.repoURL, repoUrl));
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

interface LooseImage {
  name: string;
  tag?: string;
  digest?: string;
}

function looseImage(ref: string): LooseImage {
  const [rest = '', digest] = ref.trim().split('@', 2);
  const colon = rest.lastIndexOf(':');
  const named = colon > rest.lastIndexOf('/') ? { name: rest.slice(0, colon), tag: rest.slice(colon + 1) } : { name: rest };
  // Docker Hub's implicit registry and `library/` namespace: `nginx` is `docker.io/library/nginx`.
  const name = named.name.replace(/^(index\.)?docker\.io\//, '').replace(/^library\//, '');
  return { name, ...(named.tag ? { tag: named.tag } : {}), ...(digest ? { digest } : {}) };
}

/**
 * Whether a running image is the one we wrote: the same repository, and the same digest (if we wrote one) or tag.
 * Repositories compare by their last path segment when the full names differ: with `part: tag` only the tag reaches
 * Git, and the chart or a registry mirror may put another registry in front (`mirror.example.com/podtato/head`).
 */
export function sameImage(written: string, running: string): boolean {
  const w = looseImage(written);
  const r = looseImage(running);
  const base = (name: string) => name.slice(name.lastIndexOf('/') + 1);
  if (w.name !== r.name && base(w.name) !== base(r.name)) return false;
  if (w.digest) return w.digest === r.digest;
  return (w.tag ?? 'latest') === (r.tag ?? 'latest');
}

/** Transport failures of the repo-server or Git (not of our manifests): worth another refresh before failing. */
const TRANSPORT_ERROR =
  /code = (Unavailable|DeadlineExceeded|ResourceExhausted|Aborted)\b|context deadline exceeded|i\/o timeout|connection (refused|reset)|no such host|TLS handshake timeout|unexpected EOF|remote end hung up|\b(502|503|504) (Bad Gateway|Service Unavailable|Gateway Time-?out)|status code: (429|502|503|504)\b/i;

export function isTransportError(message: string | undefined): boolean {
  return message !== undefined && TRANSPORT_ERROR.test(message);
}

export function comparisonError(app: Application): string | undefined {
  const condition = app.status?.conditions?.find((c) => c.type === 'ComparisonError');
  return condition ? (condition.message ?? '') : undefined;
}

export function evaluateApplication(app: Application, expected: ArgoExpectation): Verdict {
  const multi = isMultiSource(app);
  const status = app.status ?? {};
  const op = status.operationState;
  const index = expected.sourceIndex;

  const spec = status.conditions?.find((c) => c.type === 'InvalidSpecError');
  if (spec) return { state: 'failed', message: `${appName(app)} has an invalid spec: ${spec.message ?? ''}` };

  const comparedRevision = revisionOfSource(status.sync?.revision, status.sync?.revisions, index, multi);
  const synced = commitOf(comparedRevision);
  const syncedRel = synced ? expected.relation(synced) : undefined;
  if (synced && syncedRel === 'unknown')
    return { state: 'pending', reason: `learning how ${synced} relates to our commit`, unknownRevision: synced };
  const oursCompared = syncedRel !== undefined && contains(syncedRel);

  const opRevision = commitOf(
    revisionOfSource(
      op?.syncResult?.revision ?? op?.operation?.sync?.revision,
      op?.syncResult?.revisions ?? op?.operation?.sync?.revisions,
      index,
      multi,
    ),
  );
  const opRel = opRevision ? expected.relation(opRevision) : undefined;
  if (opRevision && opRel === 'unknown')
    return { state: 'pending', reason: `learning how ${opRevision} relates to our commit`, unknownRevision: opRevision };
  const ourOperation =
    (expected.operationTag !== undefined &&
      op?.operation?.info?.some((i) => i.name === OPERATION_INFO_KEY && i.value === expected.operationTag)) ||
    (opRel !== undefined && contains(opRel));

  if (ourOperation && (op?.phase === 'Failed' || op?.phase === 'Error')) {
    return {
      state: 'failed',
      message: `Argo CD sync of ${appName(app)} ${op.phase === 'Error' ? 'errored' : 'failed'}: ${op.message ?? ''}`.trim(),
      ...(opRevision ? { revision: opRevision } : {}),
    };
  }

  // When manifests cannot be generated Argo CD reports the branch (`main`), not a commit, as the compared revision;
  // a comparison written after the controller consumed our refresh request saw the branch with our commit on it.
  const comparison = comparisonError(app);
  if (comparison !== undefined && (oursCompared || (synced === undefined && expected.hardRefresh === 'handled'))) {
    const at = synced ?? comparedRevision ?? 'our revision';
    if (isTransportError(comparison)) {
      // A hard refresh skips Argo CD's grace period for repository errors, so one failed fetch shows at once.
      if (expected.retryRefresh !== 'handled')
        return {
          state: 'pending',
          reason: `Argo CD could not reach the repository for ${appName(app)} (${comparison}); retrying with a normal refresh`,
        };
      return { state: 'failed', message: `Argo CD still cannot compare ${appName(app)} at ${at} after a retry: ${comparison}` };
    }
    return { state: 'failed', message: `Argo CD cannot compare ${appName(app)} at ${at}: ${comparison}` };
  }

  if (!oursCompared) {
    // HEAD is resolved by Argo CD: once it compared after our refresh, a HEAD without our commit is another branch.
    if (expected.trackedHead && expected.hardRefresh === 'handled' && synced && syncedRel === 'unrelated') {
      return {
        state: 'failed',
        message: `${appName(app)} tracks HEAD, which resolves to ${synced.slice(0, 12)}, not to branch ${expected.branch ?? 'of our commit'}: it never deploys our commit`,
      };
    }
    return {
      state: 'pending',
      reason: `${appName(app)} compares ${synced?.slice(0, 12) ?? 'no revision'} so far; waiting for a refresh to see our commit`,
    };
  }
  const windowClosed = expected.syncBlocked
    ? `Argo CD cannot sync ${appName(app)} before the deadline: ${expected.syncBlocked}`
    : undefined;
  if (op?.phase === 'Running' || op?.phase === 'Terminating') {
    // controller/sync.go SyncAppState: a running operation waits with this message while a window blocks it.
    if (windowClosed && op.message?.includes('blocked by sync window'))
      return { state: 'failed', message: windowClosed, revision: synced! };
    return { state: 'pending', reason: `Argo CD is syncing ${appName(app)}: ${op.message ?? op.phase}` };
  }
  if (app.operation)
    return {
      state: 'pending',
      reason: `${appName(app)} has a sync operation queued${ourOperation ? '' : ' that is not ours; ours starts after it'}`,
    };

  if (status.sync?.status !== 'Synced') {
    const stuck = pruneOnly(app, expected, Boolean(ourOperation && op?.phase === 'Succeeded'));
    if (stuck) return { state: 'failed', message: stuck, revision: synced! };
    // Automated sync does not start while a window blocks it, and says nothing about it in the status.
    if (windowClosed && !app.operation && isAutomated(app)) return { state: 'failed', message: windowClosed, revision: synced! };
    return { state: 'pending', reason: `${appName(app)} is ${status.sync?.status ?? 'not compared yet'} at ${synced}` };
  }
  if (op?.finishedAt && (!status.reconciledAt || Date.parse(status.reconciledAt) < Date.parse(op.finishedAt))) {
    return { state: 'pending', reason: `${appName(app)} health not yet reassessed after the sync` };
  }

  const health = status.health?.status;
  if (health === 'Healthy') return runningOurImage(app, expected, synced!, 'Healthy');
  if (health === 'Degraded') return degraded(app, expected, synced!, ourOperation === true);
  if (health === 'Suspended') {
    const verdict = expected.suspended ?? 'fail';
    // Paused on purpose: the new Pods may not exist yet, so the image applied by our sync counts as well.
    if (verdict === 'pass')
      return runningOurImage(app, expected, synced!, 'Suspended (argocd.suspended: pass)', ourOperation ? appliedImages(app) : []);
    if (verdict === 'fail') {
      const paused = (status.resources ?? [])
        .filter((r) => r.health?.status === 'Suspended')
        .map((r) => `${resourceName(r)}${r.health?.message ? ` (${r.health.message})` : ''}`);
      const why = paused.length ? `: ${paused.join(', ')}` : status.health?.message ? `: ${status.health.message}` : '';
      return {
        state: 'failed',
        message: `${appName(app)} is Suspended at ${synced}${why}; it does not resume on its own (set argocd.suspended to pass or wait if it is paused on purpose)`,
        revision: synced!,
      };
    }
  }
  return {
    state: 'pending',
    reason: `${appName(app)} is ${health ?? 'of unknown health'} at ${synced}${status.health?.message ? `: ${status.health.message}` : ''}`,
  };
}

/**
 * OutOfSync only because resources wait to be pruned, and nobody will prune them: automated sync skips it when
 * `automated.prune` is off (controller/appcontroller.go autoSync, "need to prune extra resources only"), and the
 * sync we started carried the same prune setting.
 */
function pruneOnly(app: Application, expected: ArgoExpectation, ourSyncDone: boolean): string | undefined {
  const resources = app.status?.resources ?? [];
  const toPrune = resources.filter((r) => r.requiresPruning);
  if (toPrune.length === 0 || prunes(app) || !resources.every((r) => r.status === 'Synced' || r.requiresPruning)) return undefined;
  if (!isAutomated(app) && !ourSyncDone) return undefined;
  const names = toPrune.slice(0, 5).map(resourceName).join(', ') + (toPrune.length > 5 ? ` and ${toPrune.length - 5} more` : '');
  return `${appName(app)} stays OutOfSync at ${expected.commit.slice(0, 12)} until ${names} ${toPrune.length === 1 ? 'is' : 'are'} pruned, and its sync policy does not prune (syncPolicy.automated.prune is off); prune them or turn prune on`;
}

/** The workloads that, in our sync, carry an image we wrote (from the sync result, which lists each resource's images). */
function carriersOfOurImage(app: Application, expected: ArgoExpectation, ourOperation: boolean): ResourceRef[] {
  const written = expected.images ?? [];
  if (!ourOperation || written.length === 0) return [];
  return (app.status?.operationState?.syncResult?.resources ?? []).filter((r) =>
    r.images?.some((i) => written.some((w) => sameImage(w, i))),
  );
}

const sameResource = (a: ResourceRef, b: ResourceRef) =>
  a.kind === b.kind && a.name === b.name && (a.namespace ?? '') === (b.namespace ?? '') && (a.group ?? '') === (b.group ?? '');

/**
 * Degraded during a normal rollout (an autoscaler without metrics yet, KEDA objects) may clear by itself; the
 * workload that runs our image being Degraded does not. Per-resource health is in `status.resources` only when the
 * controller persists it (`controller.resource.health.persist`); otherwise Degraded must outlast the grace period.
 */
function degraded(app: Application, expected: ArgoExpectation, synced: string, ourOperation: boolean): Verdict {
  const carriers = carriersOfOurImage(app, expected, ourOperation);
  const degradedResources = (app.status?.resources ?? []).filter((r) => r.health?.status === 'Degraded');
  const describe = (r: (typeof degradedResources)[number]) => `${resourceName(r)}${r.health?.message ? ` (${r.health.message})` : ''}`;
  const ours = degradedResources.filter((r) => carriers.some((c) => sameResource(c, r)));
  if (ours.length > 0) {
    return {
      state: 'failed',
      message: `${appName(app)} is Degraded at ${synced}: ${ours.map(describe).join(', ')}, which runs the image we wrote, is Degraded`,
      revision: synced,
    };
  }
  const which =
    degradedResources.length > 0
      ? degradedResources.map(describe).join(', ')
      : `${app.status?.health?.message ?? (app.status?.resourceHealthSource === 'appTree' ? 'the Application does not say which resource (Argo CD keeps resource health in its resource tree unless controller.resource.health.persist is true)' : 'Argo CD does not say which resource')}${carriers.length ? `; our image runs in ${carriers.map(resourceName).join(', ')}` : ''}`;
  const grace = expected.degradedGraceMs ?? DEFAULT_DEGRADED_GRACE_MS;
  const lasted = expected.degradedForMs ?? 0;
  if (lasted >= grace) {
    return {
      state: 'failed',
      message: `${appName(app)} has been Degraded at ${synced} for ${Math.round(lasted / 1000)} s: ${which}`,
      revision: synced,
    };
  }
  return {
    state: 'pending',
    reason: `${appName(app)} is Degraded at ${synced} (${which}); allowing up to ${Math.round(grace / 1000)} s for a rollout to settle`,
  };
}

/** The images of the resources our sync applied (the manifests, not the Pods). */
function appliedImages(app: Application): string[] {
  return (app.status?.operationState?.syncResult?.resources ?? []).flatMap((r) => r.images ?? []);
}

/** Synced and healthy at our commit is a pass only if the image we wrote runs: else the file is not what it deploys. */
function runningOurImage(app: Application, expected: ArgoExpectation, synced: string, health: string, applied: string[] = []): Verdict {
  const running = app.status?.summary?.images ?? [];
  const missing = imagesExpectedAt(expected.relation(synced), expected.images ?? []).filter(
    (w) => ![...running, ...applied].some((r) => sameImage(w, r)),
  );
  if (missing.length === 0)
    return { state: 'passed', message: `Argo CD synced ${appName(app)} to ${synced} and it is ${health}`, revision: synced };
  const source = sourcesOf(app)[expected.sourceIndex];
  const where = source ? `${source.repoURL}${source.path ? ` path ${source.path}` : ''}` : 'its source';
  const files = expected.files?.length
    ? `the file${expected.files.length > 1 ? 's' : ''} ${expected.files.join(', ')}`
    : 'the file we edited';
  return {
    state: 'failed',
    message: `${appName(app)} is synced to ${synced} and ${health}, but runs ${running.length ? running.join(', ') : 'no image'}, not ${missing.join(', ')}: ${files} ${expected.files && expected.files.length > 1 ? 'are' : 'is'} not what it deploys (it reads ${where}); check images[].file in the settings`,
    revision: synced,
  };
}
