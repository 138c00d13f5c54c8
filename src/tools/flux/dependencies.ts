/**
 * `dependsOn`: an object that waits for its dependencies (Ready=False DependencyNotReady) is judged by each
 * dependency's own current state (issue 18 item 15), not by what the waiting object last wrote about it.
 *
 * - kustomize-controller 1.9.4 kustomization_controller.go checkDependencies: a dependency is ready when it exists,
 *   `status.observedGeneration` equals its generation, Ready is True, and, when it reads the same source, its
 *   `lastAppliedRevision` is that source's artifact revision. Otherwise Ready=False DependencyNotReady and a retry
 *   after `--requeue-dependency` (Reconcile): the message can be stale for that long, never a failure in itself.
 * - helm-controller 1.6 helmrelease_controller.go checkDependencies: the same for HelmReleases (generation and Ready).
 * A dependency can no longer become ready when it is suspended, stalled, or failed at the latest revision it can get
 * and no controller works on it (a Kustomization's retry of the same revision aside): the wait then fails and names it. Anything else keeps the wait going.
 */
import { commitOf, type Expectation, type Verdict } from '../../judge/verdict.js';
import {
  askAbout,
  conditionText,
  HELM_FAILED,
  isTrue,
  KUSTOMIZATION_NOT_YET,
  objectName,
  ours,
  readyAtGeneration,
  type FluxObject,
  type FluxView,
} from './object.js';

/** How deep a chain of dependencies is followed (a cycle in dependsOn must not loop). */
const MAX_DEPTH = 3;

interface DependencyRef {
  name: string;
  namespace?: string;
}

function sameSource(a: FluxObject, b: FluxObject): boolean {
  const [x, y] = [a.spec?.sourceRef, b.spec?.sourceRef];
  return (
    !!x && !!y && x.kind === y.kind && x.name === y.name && (x.namespace ?? a.metadata.namespace) === (y.namespace ?? b.metadata.namespace)
  );
}

/**
 * Why `obj`, which says DependencyNotReady, can never go on: a failed verdict naming the dependency; a pending one when
 * a revision must be placed first; undefined while every dependency may still become ready (keep waiting).
 */
export function blockedDependency(
  obj: FluxObject,
  kind: 'Kustomization' | 'HelmRelease',
  expected: Expectation,
  view: FluxView,
  depth = 0,
  root: FluxObject = obj,
): Verdict | undefined {
  if (depth >= MAX_DEPTH) return undefined;
  const deps = (obj.spec?.['dependsOn'] as DependencyRef[] | undefined) ?? [];
  for (const ref of deps) {
    const namespace = ref.namespace || obj.metadata.namespace || '';
    const dep = kind === 'Kustomization' ? view.kustomization(namespace, ref.name) : view.helmRelease?.(namespace, ref.name);
    // Not there (yet): the controller keeps retrying, and the dependency may still be created.
    if (!dep) continue;
    const verdict = cannotBecomeReady(obj, dep, kind, expected, view, depth, root);
    if (verdict) return verdict;
  }
  return undefined;
}

function cannotBecomeReady(
  obj: FluxObject,
  dep: FluxObject,
  kind: 'Kustomization' | 'HelmRelease',
  expected: Expectation,
  view: FluxView,
  depth: number,
  root: FluxObject,
): Verdict | undefined {
  const waits = `${objectName(obj)} waits for its dependency ${objectName(dep)}`;
  if (dep.spec?.suspend) return { state: 'failed', message: `${waits}, which is suspended (spec.suspend: true): resume it to deploy` };
  const { ready, current } = readyAtGeneration(dep);
  const stall = isTrue(dep, 'Stalled');
  if (stall && (stall.observedGeneration === undefined || stall.observedGeneration === dep.metadata.generation))
    return { state: 'failed', message: `${waits}, which is stalled: ${conditionText(stall)}` };
  if (!current || ready?.status !== 'False') return undefined;
  if (ready.reason === 'DependencyNotReady') {
    const deeper = blockedDependency(dep, kind, expected, view, depth + 1, root);
    return deeper?.state === 'failed' ? { state: 'failed', message: `${waits}: ${deeper.message}` } : deeper;
  }
  const reconciling = isTrue(dep, 'Reconciling');
  if (kind === 'HelmRelease') {
    // helm-controller retries this one (remediation or retry left, a new attempt running).
    if (reconciling || !HELM_FAILED.has(ready.reason ?? '')) return undefined;
  } else {
    // kustomize-controller 1.9.4 finalizeStatus leaves Reconciling=True ProgressingWithRetry on every failed
    // reconcile: a retry of the same revision at retryInterval, which does not change a failure at that revision
    // (seen on the real controller: a BuildFailed dependency). Only a reconcile in progress may.
    if (reconciling && reconciling.reason !== 'ProgressingWithRetry') return undefined;
    if (KUSTOMIZATION_NOT_YET.has(ready.reason ?? '')) return undefined;
    // A dependency on the source that carries our commit (the judged object's) has not tried our commit yet, but
    // will: its failure may be what our commit fixes.
    if (sameSource(root, dep)) {
      const attempted = commitOf(dep.status?.lastAttemptedRevision);
      const ask = askAbout(expected, attempted);
      if (ask) return ask;
      if (!ours(expected, attempted)) return undefined;
    }
  }
  const at = dep.status?.lastAttemptedRevision ? ` at ${dep.status.lastAttemptedRevision}` : '';
  return {
    state: 'failed',
    message: `${waits}, which failed${at} and cannot become ready until it is fixed: ${conditionText(ready)}`,
  };
}
