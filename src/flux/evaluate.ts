/**
 * When has Flux applied our commit? Pure rules over Kustomization, HelmRelease and GitRepository objects.
 * @see https://fluxcd.io/flux/components/kustomize/kustomizations/#status
 * @see https://fluxcd.io/flux/components/helm/helmreleases/#status
 */
import { commitOf, contains, findCondition, type Condition, type Expectation, type Verdict } from '../readiness.js';

export interface FluxObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; generation?: number; labels?: Record<string, string> };
  spec?: { suspend?: boolean; sourceRef?: { kind: string; name: string; namespace?: string }; [k: string]: unknown };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    lastHandledReconcileAt?: string;
    artifact?: { revision?: string };
    [k: string]: unknown;
  };
}

/** Ready=False reasons that mean "still on its way", not "failed". */
const NOT_YET = new Set(['Progressing', 'ProgressingWithRetry', 'DependencyNotReady', 'ReconciliationInProgress']);

function describe(obj: FluxObject): string {
  return `${obj.kind ?? 'object'} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

function conditionText(c: Condition | undefined): string {
  return c ? `${c.reason ?? c.type}: ${c.message ?? ''}`.trim() : 'no Ready condition yet';
}

/** Checks shared by Kustomization and HelmRelease: suspension, stalling, a current Ready condition. */
function common(obj: FluxObject): { ready?: Condition; current: boolean; verdict?: Verdict } {
  if (obj.spec?.suspend) {
    return { current: false, verdict: { state: 'failed', message: `${describe(obj)} is suspended (spec.suspend: true); resume it to deploy` } };
  }
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const generation = obj.metadata.generation;
  // Ready's own observedGeneration: status.observedGeneration stays -1 until a first success, even on failures.
  const observed = ready?.observedGeneration ?? obj.status?.observedGeneration;
  const current = generation === undefined || observed === generation;
  return { ready, current };
}

function stalled(obj: FluxObject): Verdict | undefined {
  const stall = findCondition(obj.status?.conditions, 'Stalled');
  return stall?.status === 'True' ? { state: 'failed', message: `${describe(obj)} is stalled: ${conditionText(stall)}` } : undefined;
}

export function evaluateKustomization(obj: FluxObject, target: Expectation): Verdict {
  const { ready, current, verdict } = common(obj);
  if (verdict) return verdict;
  const applied = commitOf(obj.status?.lastAppliedRevision);
  const attempted = commitOf(obj.status?.lastAttemptedRevision);
  for (const sha of [attempted, applied]) {
    if (sha && target.relation(sha) === 'unknown') return { state: 'pending', reason: `learning how ${sha} relates to our commit`, unknownRevision: sha };
  }
  const attemptedOurs = attempted !== undefined && contains(target.relation(attempted));
  const appliedOurs = applied !== undefined && contains(target.relation(applied));
  const reconciling = findCondition(obj.status?.conditions, 'Reconciling')?.status === 'True';

  if (attemptedOurs) {
    const stall = stalled(obj);
    if (stall) return { ...stall, ...(attempted ? { revision: attempted } : {}) };
    if (current && ready?.status === 'False' && !NOT_YET.has(ready.reason ?? '')) {
      return { state: 'failed', message: `Flux could not apply ${describe(obj)} at ${attempted}: ${conditionText(ready)}`, revision: attempted };
    }
  }
  if (appliedOurs && current && ready?.status === 'True' && !reconciling) {
    return { state: 'passed', message: `Flux applied ${describe(obj)} at ${applied}: ${conditionText(ready)}`, revision: applied! };
  }
  const at = applied ? `applied ${applied.slice(0, 12)}` : 'nothing applied yet';
  return { state: 'pending', reason: `${describe(obj)}: ${at}; ${conditionText(ready)}` };
}

/** Failure reasons of helm-controller's Ready condition at the current generation. */
const HELM_FAILED = new Set(['InstallFailed', 'UpgradeFailed', 'TestFailed', 'RollbackSucceeded', 'RollbackFailed', 'UninstallSucceeded', 'UninstallFailed', 'ArtifactFailed', 'InitFailed', 'GetLastReleaseFailed', 'ValuesError', 'RetriesExceeded']);

/**
 * A HelmRelease is deployed when the Git commit that carries it is in effect and helm-controller is Ready at the
 * current generation. With a `manager` (the Kustomization that applies the HelmRelease, values included) that
 * Kustomization must have applied our commit; without one, the chart itself comes from our repository and its
 * revision (`<version>+<12 hex>`) must contain our commit.
 */
export function evaluateHelmRelease(obj: FluxObject, manager: FluxObject | undefined, target: Expectation): Verdict {
  const { ready, current, verdict } = common(obj);
  if (verdict) return verdict;
  if (manager) {
    const upstream = evaluateKustomization(manager, target);
    if (upstream.state !== 'passed') {
      // The Kustomization may wait on this HelmRelease's health itself: a HelmRelease failure at our spec decides.
      const own = helmFailure(obj, ready, current);
      if (own && upstream.state === 'pending' && appliedOrAttemptedOurs(manager, target)) return own;
      return upstream;
    }
  }
  const chart = manager ? undefined : commitOf(obj.status?.lastAttemptedRevision);
  if (!manager) {
    if (chart && target.relation(chart) === 'unknown') return { state: 'pending', reason: `learning how ${chart} relates to our commit`, unknownRevision: chart };
    if (!chart || !contains(target.relation(chart))) return { state: 'pending', reason: `${describe(obj)} has not attempted a chart built from our commit yet (${obj.status?.lastAttemptedRevision ?? 'nothing attempted'})` };
  }
  const stall = stalled(obj);
  if (stall) return stall;
  const failed = helmFailure(obj, ready, current);
  if (failed) return failed;
  if (current && ready?.status === 'True') {
    const revision = manager ? commitOf(manager.status?.lastAppliedRevision) : chart;
    return { state: 'passed', message: `${describe(obj)} is ready: ${conditionText(ready)}`, revision: revision ?? target.commit };
  }
  return { state: 'pending', reason: `${describe(obj)}: ${conditionText(ready)}` };
}

function helmFailure(obj: FluxObject, ready: Condition | undefined, current: boolean): Verdict | undefined {
  if (current && ready?.status === 'False' && HELM_FAILED.has(ready.reason ?? '')) {
    return { state: 'failed', message: `${describe(obj)} failed: ${conditionText(ready)}` };
  }
  return undefined;
}

function appliedOrAttemptedOurs(k: FluxObject, target: Expectation): boolean {
  return [k.status?.lastAppliedRevision, k.status?.lastAttemptedRevision].some((r) => {
    const sha = commitOf(r);
    return sha !== undefined && contains(target.relation(sha));
  });
}

/**
 * A source that cannot fetch ends the wait early. Only a failure reported after our reconcile request counts, so an
 * old outage that has since healed is not held against us.
 */
export function evaluateGitRepository(obj: FluxObject, requestedAt: string | undefined): Verdict | undefined {
  if (obj.spec?.suspend) return { state: 'failed', message: `${describe(obj)} is suspended (spec.suspend: true); resume it to deploy` };
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const fetchFailed = findCondition(obj.status?.conditions, 'FetchFailed');
  const handled = requestedAt !== undefined && obj.status?.lastHandledReconcileAt === requestedAt;
  if (handled && fetchFailed?.status === 'True' && ready?.status === 'False') {
    return { state: 'failed', message: `Flux cannot fetch from ${describe(obj)}: ${conditionText(fetchFailed)}` };
  }
  return undefined;
}
