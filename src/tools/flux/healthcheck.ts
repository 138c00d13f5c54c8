/**
 * kustomize-controller's running health check, read from a Kustomization's status: whose revision it checks, until
 * when, and which of the workloads it checks are not ready yet (issue 24 items 1 and 2).
 *
 * kustomize-controller 1.9.5 (internal/controller/kustomization_controller.go):
 * - `reconcile` writes `status.inventory` right after the apply and before `checkHealth`, so while a check runs the
 *   inventory is what the checked revision applied;
 * - `checkHealth` marks `Reconciling=True Progressing` and `Healthy=Unknown Progressing` with "Running health checks
 *   for revision <rev> with a timeout of <GetTimeout()>", then waits up to that timeout (ssa WaitForSetWithContext);
 *   `lastAppliedRevision` moves only after the check passes;
 * - the controller reconciles one Kustomization at a time, so a newer revision waits until the check ends; only with
 *   the CancelHealthCheckOnNewRevision feature gate (internal/features/features.go: off by default, opt-in since 1.7;
 *   main.go passes it as CancelHealthCheckOnRequeue) does a new source revision interrupt it (GetInterruptContext,
 *   then `Reconcile` sets `Ready=False HealthCheckCanceled` and requeues at once);
 * - api/v1 GetTimeout: `spec.timeout`, else `spec.interval` less 30 s; never under 30 s.
 */
import { parseDuration, isDuration } from '../../shared/duration.js';
import { rolloutOf } from '../../platform/k8s/kstatus.js';
import { commitOf, findCondition, type Expectation, type Verdict } from '../../judge/verdict.js';
import { inventoryRefs, isWorkload, type InventoryRef } from './inventory.js';
import { isTrue, objectName, ours, short, type FluxObject, type RuleContext } from './object.js';

interface HealthCheckRef {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

/**
 * Which workloads kustomize-controller health-checked before it set Ready=True. kustomize-controller 1.9.4
 * kustomization_controller.go checkHealth: with `spec.wait` every applied object; otherwise only the objects
 * `spec.healthChecks` lists (internal/inventory/inventory.go ReferenceToObjMetadataSet: the group from `apiVersion`,
 * `apps/v1` when empty, and the namespace as written, none when left out); with neither, none. A workload the list
 * leaves out was applied, not checked, so it gets the same rollout check as under a Kustomization without `wait`.
 */
export function fluxHealthChecks(obj: FluxObject): { all: boolean; checked: (ref: InventoryRef) => boolean; why: string } {
  if (obj.spec?.['wait'] === true) return { all: true, checked: () => true, why: '' };
  const listed = (obj.spec?.['healthChecks'] as HealthCheckRef[] | undefined) ?? [];
  if (listed.length === 0) return { all: false, checked: () => false, why: 'spec.wait is off' };
  const checked = (ref: InventoryRef): boolean =>
    listed.some((hc) => {
      const apiVersion = hc.apiVersion || 'apps/v1';
      const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
      return group === ref.group && hc.kind === ref.kind && hc.name === ref.name && (hc.namespace ?? '') === ref.namespace;
    });
  return { all: false, checked, why: 'spec.wait is off and spec.healthChecks does not list it' };
}

const RUNNING = /^Running health checks for revision (\S+) with a timeout of (\S+)$/;

export interface RunningHealthCheck {
  /** The revision being checked, as the controller writes it (`main@sha1:<sha>`). */
  revision: string;
  sha: string | undefined;
  /** The timeout as the controller prints it (Go's Duration.String(), e.g. `5m0s`). */
  timeout: string;
  /** Epoch ms at which the check ends at the latest, when the timeout and its start can be read. */
  until?: number;
}

/**
 * The health check kustomize-controller runs now, if any. Its start is the later of the two conditions' transitions:
 * Reconciling turned True when the reconcile began (or earlier, when an earlier attempt failed and left it True with
 * ProgressingWithRetry, finalizeStatus), Healthy turned Unknown when the check began (unless it was Unknown already);
 * so `until` is a lower bound.
 */
export function runningHealthCheck(obj: FluxObject): RunningHealthCheck | undefined {
  const reconciling = isTrue(obj, 'Reconciling');
  const match = RUNNING.exec(reconciling?.message ?? '');
  if (!match) return undefined;
  const [, revision, timeout] = match as unknown as [string, string, string];
  const healthy = findCondition(obj.status?.conditions, 'Healthy');
  const starts = [reconciling?.lastTransitionTime, healthy?.message === reconciling?.message ? healthy?.lastTransitionTime : undefined]
    .map((t) => Date.parse(t ?? ''))
    .filter((t) => Number.isFinite(t));
  const since = starts.length ? Math.max(...starts) : undefined;
  const until = since !== undefined && isDuration(timeout) ? since + parseDuration(timeout) : undefined;
  return { revision, sha: commitOf(revision), timeout, ...(until !== undefined ? { until } : {}) };
}

/**
 * The workloads the check waits for that are not ready, in kstatus' terms (the library Flux's check uses), e.g.
 * "Deployment shop/web: updated 0/1"; empty when none of them is known to be behind (or none is a workload).
 */
export function notReadyWorkloads(obj: FluxObject, ctx: RuleContext): string[] {
  const checked = fluxHealthChecks(obj).checked;
  return inventoryRefs(obj.status?.inventory)
    .filter(isWorkload)
    .filter(checked)
    .flatMap((ref) => {
      const live = ctx.view.workload(ref);
      if (!live) return [];
      const rollout = rolloutOf({ ...live, kind: ref.kind });
      return rollout.status === 'Current' ? [] : [`${ref.kind} ${ref.namespace}/${ref.name} is not ready: ${rollout.message}`];
    });
}

const until = (check: RunningHealthCheck) => (check.until !== undefined ? ` until about ${new Date(check.until).toISOString()}` : '');

/** Our commit is applied and kustomize-controller checks its health: applied, not healthy yet, and what it waits for. */
export function checkingOurs(obj: FluxObject, expected: Expectation, ctx: RuleContext): Verdict | undefined {
  const check = runningHealthCheck(obj);
  if (!check?.sha || !ours(expected, check.sha)) return undefined;
  const waiting = notReadyWorkloads(obj, ctx);
  return {
    state: 'pending',
    reason: `${objectName(obj)} applied ${short(check.sha)} and kustomize-controller is checking its health${until(check)} (spec.timeout ${check.timeout})${waiting.length ? `: ${waiting.join('; ')}` : ''}`,
    applied: check.revision,
  };
}

/**
 * kustomize-controller still checks the health of a revision that is not ours (a failing one, typically, before a
 * rollback or a redeploy): ours is applied only after that check ends, so the wait's time counts from then
 * (`busyUntil`; issue 24 item 1). Undefined when no such check runs.
 */
export function checkingAnother(obj: FluxObject, expected: Expectation, ctx: RuleContext): Verdict | undefined {
  const check = runningHealthCheck(obj);
  if (!check?.sha || expected.relation(check.sha) === 'unknown' || ours(expected, check.sha)) return undefined;
  const failing = notReadyWorkloads(obj, ctx);
  const which = failing.length ? `the failing revision ${short(check.sha)} (${failing.join('; ')})` : `revision ${short(check.sha)}`;
  return {
    state: 'pending',
    reason:
      `${objectName(obj)} is still checking the health of ${which}${until(check)} (spec.timeout ${check.timeout}); ` +
      'our commit is applied after that, and the deadline counts from then (kustomize-controller checks one revision at a ' +
      'time: a shorter spec.timeout, or its CancelHealthCheckOnNewRevision feature gate, ends such a wait sooner)',
    // The controller's own end of the check, no later: the wait then still has its whole length after it, which covers
    // the seconds the estimate may be early by (a lower bound). Never "until now": a status that outlives its check
    // (kustomize-controller stopped mid-check) would move the deadline for as long as nothing else changed it.
    ...(check.until !== undefined ? { busyUntil: check.until } : {}),
  };
}
