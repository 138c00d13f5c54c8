/**
 * When has Flux applied our commit, and does it run? Pure rules over Kustomization, HelmRelease, HelmChart and
 * GitRepository objects and the workloads they applied. docs/verdicts.md (Flux) is the table of these rules.
 *
 * Upstream behaviour the rules rely on (read in the controllers' source):
 * - kustomize-controller 1.9 (internal/controller/kustomization_controller.go): `lastAttemptedRevision` is set before
 *   the build, `lastAppliedRevision` only after apply and health checks succeed; `lastHandledReconcileAt` is written in
 *   finalizeStatus at the end of a reconcile; Stalled is set for InvalidCELExpression, AccessDenied and
 *   FeatureGateDisabled before any revision is attempted; DependencyNotReady, ArtifactFailed and HealthCheckCanceled
 *   are retried.
 * - helm-controller 1.6 (internal/controller/helmrelease_controller.go, internal/reconcile/atomic_release.go):
 *   `lastHandledReconcileAt` is written in the deferred patch of every reconcile; ArtifactFailed, SourceNotReady,
 *   ValuesError and DependencyNotReady are retried; remediation retries show `Reconciling=True ProgressingWithRetry`;
 *   exhausted retries show `Stalled=True RetriesExceeded`.
 * - source-controller 1.9 (internal/controller/helmchart_controller.go): a chart built from Git gets the version
 *   `<version>+<sha12>` only with `reconcileStrategy: Revision`; `observedSourceArtifactRevision` is recorded before
 *   the build, so a BuildFailed condition next to it is the build of that revision.
 * @see https://fluxcd.io/flux/components/kustomize/kustomizations/#status
 * @see https://fluxcd.io/flux/components/helm/helmreleases/#status
 */
import { imagesOf, rolloutOf, type WorkloadObject } from '../k8s/kstatus.js';
import { commitOf, contains, findCondition, imagesExpectedAt, type Condition, type Expectation, type Verdict } from '../readiness.js';
import { carriesOtherImages, inventoryRefs, isWorkload, sameImage, type Inventory, type InventoryRef } from './inventory.js';
import { sameRepository as sameRepositoryUrl } from '../repository.js';

export interface FluxObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { suspend?: boolean; sourceRef?: { kind: string; name: string; namespace?: string }; [k: string]: unknown };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    lastHandledReconcileAt?: string;
    lastAttemptedGeneration?: number;
    artifact?: { revision?: string };
    inventory?: Inventory;
    helmChart?: string;
    observedSourceArtifactRevision?: string;
    [k: string]: unknown;
  };
}

/** The objects a rule may look up besides the one it judges: read-only views of the shared watches. */
export interface FluxView {
  kustomization(namespace: string, name: string): FluxObject | undefined;
  helmChart(namespace: string, name: string): FluxObject | undefined;
  workload(ref: InventoryRef): WorkloadObject | undefined;
}

/** The service's clock, for the one settle window the rules have; `since` remembers when a state was first seen. */
export interface Clock {
  now: number;
  since(key: string): number;
}

export interface RuleContext {
  view: FluxView;
  /** The image references we wrote; empty for a roll-back (which writes no image). */
  images: readonly string[];
  /** The files we edited, when known, to name in a message. */
  files?: readonly string[];
  clock: Clock;
  /** The Kustomization that applies the judged object (its `kustomize.toolkit.fluxcd.io/name` label), if any. */
  manager?: FluxObject;
  /** The reconcile request we wrote on the judged object after its manager had applied our commit. */
  requestedAfterApply?: string;
  /** The judged object's generation when the deployment started. */
  startGeneration?: number;
}

export interface HelmReleaseContext extends RuleContext {
  /** The chart is built by source-controller from a GitRepository that reads our repository. */
  chartFromOurRepo: boolean;
}

/**
 * How long a missing image may be put down to watch lag (the workload watch trailing the Kustomization watch) before
 * it counts: both events come from one API server, normally within milliseconds.
 */
export const IMAGE_SETTLE_MS = 10_000;

/** Ready=False reasons of a Kustomization that mean "not done yet", not "failed". */
const KUSTOMIZATION_NOT_YET = new Set([
  'Progressing',
  'ProgressingWithRetry',
  'DependencyNotReady',
  'ReconciliationInProgress',
  'HealthCheckCanceled',
  'ArtifactFailed',
  'SourceNotReady',
]);
/** Stalled reasons set before any revision is attempted: nothing changes them but a new spec. */
const STALLED_BEFORE_ATTEMPT = new Set(['InvalidCELExpression', 'AccessDenied', 'FeatureGateDisabled']);
/** helm-controller Ready=False reasons that end a release attempt (retries aside, see below). */
const HELM_FAILED = new Set([
  'InstallFailed',
  'UpgradeFailed',
  'TestFailed',
  'RollbackSucceeded',
  'RollbackFailed',
  'UninstallSucceeded',
  'UninstallFailed',
  'RetriesExceeded',
  'MissingRollbackTarget',
  'InitFailed',
  'GetLastReleaseFailed',
]);
/** helm-controller Ready=False reasons from its own configuration, independent of any revision. */
const HELM_CONFIG_ERRORS = new Set(['ChartMutateError', 'RESTClientError', 'ResourceManagerError', 'FactoryError']);

export function objectName(obj: FluxObject): string {
  return `${obj.kind ?? 'object'} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

function conditionText(c: Condition | undefined): string {
  return c ? `${c.reason ?? c.type}: ${c.message ?? ''}`.trim() : 'no Ready condition yet';
}

function short(sha: string | undefined): string {
  return sha ? sha.slice(0, 12) : 'nothing';
}

function suspended(obj: FluxObject): Verdict | undefined {
  return obj.spec?.suspend
    ? { state: 'failed', message: `${objectName(obj)} is suspended (spec.suspend: true); resume it to deploy` }
    : undefined;
}

/** The Ready condition, and whether it describes the current spec. */
function readyAtGeneration(obj: FluxObject): { ready?: Condition; current: boolean } {
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const generation = obj.metadata.generation;
  // Ready's own observedGeneration: status.observedGeneration stays -1 until a first success, even on failures.
  const observed = ready?.observedGeneration ?? obj.status?.observedGeneration;
  return { ready, current: generation === undefined || observed === generation };
}

function isTrue(obj: FluxObject, type: string): Condition | undefined {
  const c = findCondition(obj.status?.conditions, type);
  return c?.status === 'True' ? c : undefined;
}

/**
 * Whether a reconcile request was handled: the same token, or a later one (another deployment through the same object
 * overwrote ours; its reconcile began after ours was written). Tokens that are not times must match exactly.
 */
export function handledSince(handled: string | undefined, requested: string | undefined): boolean {
  if (!handled || !requested) return false;
  if (handled === requested) return true;
  const [h, r] = [Date.parse(handled), Date.parse(requested)];
  return Number.isFinite(h) && Number.isFinite(r) && h >= r;
}

/** Asks the waiter about the first revision it cannot place yet. */
function askAbout(expected: Expectation, ...shas: Array<string | undefined>): Verdict | undefined {
  for (const sha of shas) {
    if (sha && expected.relation(sha) === 'unknown')
      return { state: 'pending', reason: `learning how ${sha} relates to our commit`, unknownRevision: sha };
  }
  return undefined;
}

function ours(expected: Expectation, sha: string | undefined): boolean {
  return sha !== undefined && contains(expected.relation(sha));
}

/** Evidence that the judged object reconciled after its manager applied our commit. */
function reconciledAfterApply(obj: FluxObject, ctx: RuleContext): boolean {
  if (handledSince(obj.status?.lastHandledReconcileAt, ctx.requestedAfterApply)) return true;
  const generation = obj.metadata.generation;
  // The manager changed the spec after we started (our commit did) and the controller attempted that spec.
  return (
    ctx.startGeneration !== undefined &&
    generation !== undefined &&
    generation > ctx.startGeneration &&
    obj.status?.lastAttemptedGeneration === generation
  );
}

/**
 * Whether a Kustomization's own spec can carry an image (`spec.images`, `spec.postBuild.substitute`): only then does
 * the Kustomization that applies it stand between our commit and the cluster. Otherwise our change is in the files it
 * reads, and its manager's state (a failing neighbour in the manager's inventory) is none of this deployment's business.
 */
export function specMayCarryImage(obj: FluxObject): boolean {
  const images = obj.spec?.['images'];
  const substitute = (obj.spec?.['postBuild'] as { substitute?: Record<string, string> } | undefined)?.substitute;
  return (Array.isArray(images) && images.length > 0) || Object.keys(substitute ?? {}).length > 0;
}

export function evaluateKustomization(obj: FluxObject, expected: Expectation, ctx: RuleContext, depth = 0): Verdict {
  const stop = suspended(obj);
  if (stop) return stop;
  if (ctx.manager) {
    const upstream = evaluateKustomization(ctx.manager, expected, { ...ctx, images: [], manager: undefined }, depth + 1);
    if (upstream.state === 'failed' || (upstream.state === 'pending' && upstream.unknownRevision)) return upstream;
    if (upstream.state === 'pending')
      return { ...upstream, reason: `${objectName(obj)} is applied by ${objectName(ctx.manager)}: ${upstream.reason}` };
  }
  const { ready, current } = readyAtGeneration(obj);
  const applied = commitOf(obj.status?.lastAppliedRevision);
  const attempted = commitOf(obj.status?.lastAttemptedRevision);
  const ask = askAbout(expected, attempted, applied);
  if (ask) return ask;
  const attemptedOurs = ours(expected, attempted);
  const appliedOurs = ours(expected, applied);
  const reconciling = isTrue(obj, 'Reconciling');
  // With a manager, our spec (e.g. `spec.images`) reaches this object only through the manager's apply.
  const atOurSpec = !ctx.manager || reconciledAfterApply(obj, ctx);

  const stall = isTrue(obj, 'Stalled');
  if (stall && current && STALLED_BEFORE_ATTEMPT.has(stall.reason ?? '')) {
    return { state: 'failed', message: `${objectName(obj)} is stalled before it could try our commit: ${conditionText(stall)}` };
  }
  if (appliedOurs && current && ready?.status === 'True' && !reconciling) {
    if (!atOurSpec)
      return {
        state: 'pending',
        reason: `${objectName(obj)} applied ${short(applied)}, but has not reconciled since ${objectName(ctx.manager!)} applied our commit`,
      };
    const healthChecked = obj.spec?.['wait'] === true || ((obj.spec?.['healthChecks'] as unknown[] | undefined)?.length ?? 0) > 0;
    const where = typeof obj.spec?.['path'] === 'string' ? `spec.path ${String(obj.spec['path'])}` : 'its path';
    const rollout = checkInventory(
      obj,
      obj.status?.inventory,
      {
        healthChecked,
        why: 'spec.wait is off',
        where,
        revision: applied!,
        images: imagesExpectedAt(expected.relation(applied!), ctx.images),
      },
      ctx,
    );
    if (rollout) return rollout;
    return {
      state: 'passed',
      message: `Flux applied ${objectName(obj)} at ${applied}: ${conditionText(ready)}${healthChecked ? '' : '; its workloads rolled out'}`,
      revision: applied!,
    };
  }
  if (attemptedOurs && atOurSpec) {
    if (stall)
      return { state: 'failed', message: `${objectName(obj)} is stalled at ${attempted}: ${conditionText(stall)}`, revision: attempted! };
    if (current && ready?.status === 'False' && !KUSTOMIZATION_NOT_YET.has(ready.reason ?? '')) {
      return {
        state: 'failed',
        message: `Flux could not apply ${objectName(obj)} at ${attempted}: ${conditionText(ready)}`,
        revision: attempted!,
      };
    }
  }
  if (current && ready?.status === 'False' && ready.reason === 'DependencyNotReady' && depth < 3) {
    const dependency = failedDependency(obj, expected, ctx, depth);
    if (dependency) return dependency;
  }
  const at = applied ? `applied ${short(applied)}` : 'nothing applied yet';
  return { state: 'pending', reason: `${objectName(obj)}: ${at}; ${conditionText(ready)}` };
}

/** A `dependsOn` Kustomization that failed at our commit holds this one back for good. */
function failedDependency(obj: FluxObject, expected: Expectation, ctx: RuleContext, depth: number): Verdict | undefined {
  const deps = (obj.spec?.['dependsOn'] as Array<{ name: string; namespace?: string }> | undefined) ?? [];
  for (const dep of deps) {
    const other = ctx.view.kustomization(dep.namespace ?? obj.metadata.namespace ?? '', dep.name);
    if (!other) continue;
    const verdict = evaluateKustomization(
      other,
      expected,
      { ...ctx, images: [], manager: undefined, requestedAfterApply: undefined, startGeneration: undefined },
      depth + 1,
    );
    if (verdict.state === 'pending' && verdict.unknownRevision) return verdict;
    if (verdict.state === 'failed')
      return {
        state: 'failed',
        message: `${objectName(obj)} waits for its dependency ${objectName(other)}, which failed: ${verdict.message}`,
      };
  }
  return undefined;
}

interface InventoryCheck {
  /** Flux checked the workloads' health itself (Kustomization `wait`/`healthChecks`, Helm's wait). */
  healthChecked: boolean;
  /** Why Flux did not check health, for the message. */
  why: string;
  /** What the owner deploys, for the message when our image does not run. */
  where: string;
  revision: string;
  /** The images that must run at that revision (none when a later commit rewrote the files we edited). */
  images: readonly string[];
}

/**
 * The workloads in an owner's inventory: does one run each image we wrote, and (when Flux did not check health) have
 * they rolled out? Undefined when all is well.
 */
function checkInventory(owner: FluxObject, inventory: Inventory | undefined, check: InventoryCheck, ctx: RuleContext): Verdict | undefined {
  const images = check.images;
  if (images.length === 0 && check.healthChecked) return undefined;
  const refs = inventoryRefs(inventory);
  const workloads = refs.filter(isWorkload);
  const seen: Array<{ ref: InventoryRef; obj: WorkloadObject }> = [];
  for (const ref of workloads) {
    const obj = ctx.view.workload(ref);
    if (!obj)
      return {
        state: 'pending',
        reason: `${objectName(owner)} applied ${short(check.revision)}; waiting to see its ${ref.kind} ${ref.namespace}/${ref.name}`,
      };
    seen.push({ ref, obj });
  }

  const othersMayRunIt = refs.some(carriesOtherImages);
  if (images.length > 0 && seen.length > 0 && !othersMayRunIt) {
    const missing = images.filter((image) => !seen.some(({ obj }) => imagesOf(obj).some((runs) => sameImage(image, runs))));
    if (missing.length > 0) {
      const key = `${objectName(owner)}@${check.revision}: ${missing.join(',')}`;
      const settledAt = ctx.clock.since(key) + IMAGE_SETTLE_MS;
      if (ctx.clock.now < settledAt) {
        return {
          state: 'pending',
          reason: `${objectName(owner)} applied ${short(check.revision)}; no workload runs ${missing.join(', ')} yet`,
          recheckAt: settledAt,
        };
      }
      const running = [...new Set(seen.flatMap(({ obj }) => imagesOf(obj)))].join(', ');
      const files = ctx.files?.length ? `the file we edited (${ctx.files.join(', ')})` : 'the file we edited';
      return {
        state: 'failed',
        message: `${objectName(owner)} applied our commit ${short(check.revision)} and is ready, but none of its workloads runs ${missing.join(', ')} (they run ${running}): ${files} is not part of what ${objectName(owner)} deploys (${check.where})`,
        revision: check.revision,
      };
    }
  }

  if (!check.healthChecked) {
    for (const { ref, obj } of seen) {
      const rollout = rolloutOf({ ...obj, kind: ref.kind });
      const what = `${ref.kind} ${ref.namespace}/${ref.name}`;
      if (rollout.status === 'Failed')
        return {
          state: 'failed',
          message: `${objectName(owner)} applied ${check.revision}, but ${what} failed to roll out: ${rollout.message}`,
          revision: check.revision,
        };
      if (rollout.status !== 'Current') {
        return {
          state: 'pending',
          reason: `${objectName(owner)} applied ${short(check.revision)} without checking health (${check.why}); ${what} is rolling out: ${rollout.message}`,
        };
      }
    }
  }
  return undefined;
}

/**
 * A HelmRelease is deployed when helm-controller acted on our commit and is Ready at the current generation.
 * With a manager (the Kustomization that applies the HelmRelease) that Kustomization must have applied our commit and
 * helm-controller must have reconciled after that; with the chart in our repository (`reconcileStrategy: Revision`)
 * the chart revision must contain our commit as well.
 */
export function evaluateHelmRelease(obj: FluxObject, expected: Expectation, ctx: HelmReleaseContext): Verdict {
  const stop = suspended(obj);
  if (stop) return stop;
  const { ready, current } = readyAtGeneration(obj);
  const stall = isTrue(obj, 'Stalled');
  if (stall && current && STALLED_BEFORE_ATTEMPT.has(stall.reason ?? '')) {
    return { state: 'failed', message: `${objectName(obj)} is stalled before it could try our commit: ${conditionText(stall)}` };
  }
  if (current && ready?.status === 'False' && HELM_CONFIG_ERRORS.has(ready.reason ?? '')) {
    return { state: 'failed', message: `${objectName(obj)} cannot run Helm: ${conditionText(ready)}` };
  }

  let upstream: Verdict | undefined;
  if (ctx.manager) {
    upstream = evaluateKustomization(ctx.manager, expected, { ...ctx, images: [], manager: undefined }, 1);
    if (upstream.state === 'pending' && upstream.unknownRevision) return upstream;
  }

  const chartSpec = (obj.spec?.['chart'] as { spec?: { reconcileStrategy?: string; valuesFiles?: string[] } } | undefined)?.spec;
  const revisionStrategy = chartSpec?.reconcileStrategy === 'Revision';
  let chartOurs = false;
  if (ctx.chartFromOurRepo) {
    if (!ctx.manager && !revisionStrategy) {
      return {
        state: 'failed',
        message: `${objectName(obj)} builds its chart from our repository with reconcileStrategy ${chartSpec?.reconcileStrategy ?? 'ChartVersion (the default)'}: a commit that does not change the chart's version never produces a new chart; set spec.chart.spec.reconcileStrategy: Revision`,
      };
    }
    const chartSha = commitOf(obj.status?.lastAttemptedRevision);
    const ask = revisionStrategy ? askAbout(expected, chartSha) : undefined;
    if (ask) return ask;
    chartOurs = revisionStrategy && ours(expected, chartSha);
    const chartFailure = failedChartBuild(obj, expected, ctx);
    if (chartFailure) return chartFailure;
  }

  // Only a failure of a reconcile that saw our commit counts; an older one may be the very thing we are fixing.
  const actedOnOurs = ctx.manager ? reconciledAfterApply(obj, ctx) : chartOurs;
  const reconciling = isTrue(obj, 'Reconciling');
  if (actedOnOurs) {
    if (stall)
      return {
        state: 'failed',
        message: `${objectName(obj)} failed: ${conditionText(ready?.status === 'False' ? ready : stall)} (${conditionText(stall)})`,
      };
    if (current && ready?.status === 'False' && HELM_FAILED.has(ready.reason ?? '')) {
      if (reconciling)
        return {
          state: 'pending',
          reason: `${objectName(obj)}: helm-controller will retry (${conditionText(reconciling)}); last attempt ${conditionText(ready)}`,
        };
      return { state: 'failed', message: `${objectName(obj)} failed: ${conditionText(ready)}` };
    }
  }
  // The manager's health check failing on this release says less than the release's own failure above.
  if (upstream?.state === 'failed') return upstream;
  if (upstream?.state === 'pending')
    return { ...upstream, reason: `${objectName(obj)} is applied by ${objectName(ctx.manager!)}: ${upstream.reason}` };

  const sawOurs = ctx.manager
    ? handledSince(obj.status?.lastHandledReconcileAt, ctx.requestedAfterApply) && (!ctx.chartFromOurRepo || !revisionStrategy || chartOurs)
    : chartOurs;
  if (!sawOurs) {
    const waiting = ctx.manager
      ? ctx.chartFromOurRepo && revisionStrategy && !chartOurs
        ? `has not attempted a chart built from our commit yet (${obj.status?.lastAttemptedRevision ?? 'nothing attempted'})`
        : `waiting for helm-controller to reconcile it after ${objectName(ctx.manager)} applied our commit`
      : `has not attempted a chart built from our commit yet (${obj.status?.lastAttemptedRevision ?? 'nothing attempted'})`;
    return { state: 'pending', reason: `${objectName(obj)} ${waiting}; ${conditionText(ready)}` };
  }
  if (current && ready?.status === 'True' && !reconciling) {
    const revision =
      (ctx.manager ? commitOf(ctx.manager.status?.lastAppliedRevision) : commitOf(obj.status?.lastAttemptedRevision)) ?? expected.commit;
    const disableWait = ['install', 'upgrade'].some(
      (action) => (obj.spec?.[action] as { disableWait?: boolean } | undefined)?.disableWait === true,
    );
    const chart = (obj.spec?.['chart'] as { spec?: { chart?: string } } | undefined)?.spec?.chart;
    const rollout = checkInventory(
      obj,
      obj.status?.inventory,
      {
        healthChecked: !disableWait,
        why: 'disableWait is set',
        where: `chart ${chart ?? '(chartRef)'} and its values`,
        revision,
        images: imagesExpectedAt(expected.relation(revision), ctx.images),
      },
      ctx,
    );
    if (rollout) return rollout;
    return { state: 'passed', message: `${objectName(obj)} is ready: ${conditionText(ready)}`, revision };
  }
  return { state: 'pending', reason: `${objectName(obj)}: ${conditionText(ready)}` };
}

/** The HelmChart of a HelmRelease failed to build from a revision that contains our commit. */
function failedChartBuild(obj: FluxObject, expected: Expectation, ctx: RuleContext): Verdict | undefined {
  const [namespace, name] = (obj.status?.helmChart ?? '').split('/');
  const chart = namespace && name ? ctx.view.helmChart(namespace, name) : undefined;
  if (!chart) return undefined;
  const failure = isTrue(chart, 'BuildFailed') ?? isTrue(chart, 'Stalled');
  if (!failure) return undefined;
  const sha = commitOf(chart.status?.observedSourceArtifactRevision);
  const ask = askAbout(expected, sha);
  if (ask) return ask;
  if (!ours(expected, sha)) return undefined;
  return {
    state: 'failed',
    message: `HelmChart ${namespace}/${name} could not be built at ${sha}: ${conditionText(failure)}`,
    revision: sha!,
  };
}

export interface SourceWanted {
  repoUrl: string;
  branch: string;
}

/**
 * Checked once at the start: a GitRepository that reads another repository, or a ref that is not our branch, never
 * picks our commit (source-controller api/v1 gitrepository_types.go: commit, then name, semver, tag, branch; the
 * branch defaults to master).
 */
export function checkGitRepositoryRef(obj: FluxObject, wanted: SourceWanted): Verdict | undefined {
  const url = obj.spec?.['url'];
  if (typeof url === 'string' && !sameRepository(url, wanted.repoUrl)) {
    return {
      state: 'failed',
      message: `${objectName(obj)} reads ${url}, not our repository ${wanted.repoUrl}; point the settings' git.url or target at the same repository`,
    };
  }
  const ref = (obj.spec?.['ref'] as { branch?: string; tag?: string; semver?: string; name?: string; commit?: string } | undefined) ?? {};
  const tracks = ref.commit
    ? `commit ${ref.commit}`
    : ref.name
      ? ref.name === `refs/heads/${wanted.branch}`
        ? undefined
        : `ref ${ref.name}`
      : ref.semver
        ? `semver ${ref.semver}`
        : ref.tag
          ? `tag ${ref.tag}`
          : (ref.branch ?? 'master') === wanted.branch
            ? undefined
            : `branch ${ref.branch ?? 'master'}`;
  if (tracks)
    return { state: 'failed', message: `${objectName(obj)} tracks ${tracks}, not branch ${wanted.branch}: it will never pick our commit` };
  return undefined;
}

/** Same repository, whatever the scheme, credentials, default port, `.git` suffix or trailing slash (src/repository.ts). */
export function sameRepository(a: string, b: string): boolean {
  return sameRepositoryUrl(a, b);
}

/**
 * What the GitRepository says after our reconcile request (or a later one) was handled: a failed fetch or signature
 * verification, or a new artifact that does not contain our commit, is final. Undefined while it says nothing decisive.
 *
 * `artifactBefore` is the artifact's revision when we asked. Only an artifact made after our request is evidence of
 * what the fetch found: the one from before may stand beside our handled token in a status written while kube-apiserver
 * was away (seen twice in faults.e2e: source-controller stored our artifact, its status write failed, and a later write
 * carried the token with the old artifact, Ready=True and no Reconciling). source-controller records the token whatever
 * the reconcile's outcome (v1.9.3 internal/reconcile/summarize/processor.go RecordReconcileReq ignores the error), so
 * the token alone never says the artifact is new. A branch rewritten without our commit is
 * still found: the wait asks whether our commit is on the branch when the tool reports a revision without it.
 */
export function evaluateGitRepository(
  obj: FluxObject,
  requestedAt: string | undefined,
  expected: Expectation,
  artifactBefore?: string,
): Verdict | undefined {
  const stop = suspended(obj);
  if (stop) return stop;
  if (!handledSince(obj.status?.lastHandledReconcileAt, requestedAt)) return undefined;
  const verified = findCondition(obj.status?.conditions, 'SourceVerified');
  if (verified?.status === 'False')
    return { state: 'failed', message: `${objectName(obj)} could not verify the signature of our commit: ${conditionText(verified)}` };
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const fetchFailed = isTrue(obj, 'FetchFailed');
  if (fetchFailed && ready?.status === 'False')
    return { state: 'failed', message: `Flux cannot fetch from ${objectName(obj)}: ${conditionText(fetchFailed)}` };
  const { current } = readyAtGeneration(obj);
  const artifact = commitOf(obj.status?.artifact?.revision);
  // While `Reconciling` is True the status may still carry the previous artifact beside the new handled token: seen
  // when kube-apiserver went away after source-controller stored our artifact but before its status write landed
  // (faults.e2e); the old Ready=True and artifact then stood beside our token until the retried reconcile finished.
  if (isTrue(obj, 'Reconciling')) return undefined;
  if (current && ready?.status === 'True' && artifact && obj.status?.artifact?.revision !== artifactBefore) {
    const ask = askAbout(expected, artifact);
    if (ask) return ask;
    if (!ours(expected, artifact)) {
      return {
        state: 'failed',
        message: `${objectName(obj)} fetched ${obj.status?.artifact?.revision} after our request, which does not contain our commit ${expected.commit}`,
      };
    }
  }
  return undefined;
}
