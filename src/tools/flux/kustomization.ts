/**
 * When has a Flux Kustomization applied our commit, and does what it applied run? docs/verdicts.md (Flux,
 * Kustomization) is the table of these rules.
 *
 * kustomize-controller 1.9 (internal/controller/kustomization_controller.go): `lastAttemptedRevision` is set before
 * the build, `lastAppliedRevision` only after apply and health checks succeed; `lastHandledReconcileAt` is written in
 * finalizeStatus at the end of a reconcile; Stalled is set for InvalidCELExpression, AccessDenied and
 * FeatureGateDisabled before any revision is attempted; DependencyNotReady, ArtifactFailed and HealthCheckCanceled
 * are retried.
 * @see https://fluxcd.io/flux/components/kustomize/kustomizations/#status
 */
import { imagesExpectedAt, type Expectation, type Verdict } from '../../judge/verdict.js';
import {
  askAbout,
  conditionText,
  isTrue,
  KUSTOMIZATION_NOT_YET,
  objectName,
  ours,
  readyAtGeneration,
  reconciledAfterApply,
  short,
  STALLED_BEFORE_ATTEMPT,
  suspended,
  type FluxObject,
  type RuleContext,
} from './object.js';
import { blockedDependency } from './dependencies.js';
import { checkingAnother, checkingOurs, fluxHealthChecks } from './healthcheck.js';
import { kustomizationRevisions } from './origin.js';
import { checkInventory } from './workloads.js';

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
  // Through an OCIRepository, the Git origin its artifact records (origin.ts, issue 18 item 14).
  const { applied, attempted, problem } = kustomizationRevisions(obj, ctx.view);
  if (problem) return { state: 'failed', message: `${objectName(obj)} reads an artifact without a commit: ${problem}` };
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
    const health = fluxHealthChecks(obj);
    const where = typeof obj.spec?.['path'] === 'string' ? `spec.path ${String(obj.spec['path'])}` : 'its path';
    const rollout = checkInventory(
      obj,
      obj.status?.inventory,
      {
        checkedByFlux: health.checked,
        why: health.why,
        where,
        revision: applied!,
        images: imagesExpectedAt(expected.relation(applied!), ctx.images),
      },
      ctx,
    );
    if (rollout) return rollout;
    return {
      state: 'passed',
      message: `Flux applied ${objectName(obj)} at ${applied}: ${conditionText(ready)}${health.all ? '' : '; its workloads rolled out'}`,
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
  if (current && ready?.status === 'False' && ready.reason === 'DependencyNotReady') {
    const dependency = blockedDependency(obj, 'Kustomization', expected, ctx.view);
    if (dependency) return dependency;
  }
  // Applied, and kustomize-controller checks its health (ours), or ours waits for another revision's check to end.
  const checking = (attemptedOurs && atOurSpec ? checkingOurs(obj, expected, ctx) : undefined) ?? checkingAnother(obj, expected, ctx);
  if (checking) return checking;
  const at = applied ? `applied ${short(applied)}` : 'nothing applied yet';
  return { state: 'pending', reason: `${objectName(obj)}: ${at}; ${conditionText(ready)}` };
}
