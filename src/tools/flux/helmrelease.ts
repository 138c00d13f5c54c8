/**
 * When has helm-controller released our commit, and does it run? docs/verdicts.md (Flux, HelmRelease) is the table.
 *
 * helm-controller 1.6 (internal/controller/helmrelease_controller.go, internal/reconcile/atomic_release.go):
 * `lastHandledReconcileAt` is written in the deferred patch of every reconcile; ArtifactFailed, SourceNotReady,
 * ValuesError and DependencyNotReady are retried; remediation retries show `Reconciling=True ProgressingWithRetry`;
 * exhausted retries show `Stalled=True RetriesExceeded`.
 * source-controller 1.9 (internal/controller/helmchart_controller.go): a chart built from Git gets the version
 * `<version>+<sha12>` only with `reconcileStrategy: Revision`; `observedSourceArtifactRevision` is recorded before
 * the build, so a BuildFailed condition next to it is the build of that revision.
 * @see https://fluxcd.io/flux/components/helm/helmreleases/#status
 */
import { commitOf, findCondition, imagesExpectedAt, type Expectation, type Verdict } from '../../judge/verdict.js';
import { blockedDependency } from './dependencies.js';
import { evaluateKustomization } from './kustomization.js';
import { chartCommit, helmChartOf } from './origin.js';
import {
  askAbout,
  conditionText,
  handledSince,
  HELM_FAILED,
  isTrue,
  objectName,
  ours,
  readyAtGeneration,
  reconciledAfterApply,
  short,
  STALLED_BEFORE_ATTEMPT,
  suspended,
  type FluxObject,
  type HelmReleaseContext,
  type RuleContext,
} from './object.js';
import { checkInventory } from './workloads.js';

/** helm-controller Ready=False reasons from its own configuration, independent of any revision. */
const HELM_CONFIG_ERRORS = new Set(['ChartMutateError', 'RESTClientError', 'ResourceManagerError', 'FactoryError']);

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

  // The chart's build settings: the HelmRelease's own template, or the HelmChart its `spec.chartRef` names (issue 18
  // item 13); an OCIRepository chart changes its digest with every push, so it needs no strategy (origin.ts).
  const chartRef = obj.spec?.['chartRef'] as { kind?: string; name?: string } | undefined;
  const chartSpec =
    chartRef?.kind === 'HelmChart'
      ? (helmChartOf(obj, ctx.view)?.spec as { reconcileStrategy?: string } | undefined)
      : (obj.spec?.['chart'] as { spec?: { reconcileStrategy?: string; valuesFiles?: string[] } } | undefined)?.spec;
  const revisionStrategy = chartRef?.kind === 'OCIRepository' || chartSpec?.reconcileStrategy === 'Revision';
  const strategyField =
    chartRef?.kind === 'HelmChart' ? `spec.reconcileStrategy of HelmChart ${chartRef.name ?? ''}` : 'spec.chart.spec.reconcileStrategy';
  let chartOurs = false;
  if (ctx.chartFromOurRepo) {
    if (!ctx.manager && !revisionStrategy) {
      return {
        state: 'failed',
        message: `${objectName(obj)} builds its chart from our repository with reconcileStrategy ${chartSpec?.reconcileStrategy ?? 'ChartVersion (the default)'}: a commit that does not change the chart's version never produces a new chart; set ${strategyField}: Revision`,
      };
    }
    const chartSha = chartCommit(obj, ctx.view);
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

  // dependsOn: a stale DependencyNotReady waits, a dependency that can no longer become ready fails (dependencies.ts).
  if (current && ready?.status === 'False' && ready.reason === 'DependencyNotReady') {
    const dependency = blockedDependency(obj, 'HelmRelease', expected, ctx.view);
    if (dependency) return dependency;
  }
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
    const revision = (ctx.manager ? commitOf(ctx.manager.status?.lastAppliedRevision) : chartCommit(obj, ctx.view)) ?? expected.commit;
    const disableWait = ['install', 'upgrade'].some(
      (action) => (obj.spec?.[action] as { disableWait?: boolean } | undefined)?.disableWait === true,
    );
    const chart = (obj.spec?.['chart'] as { spec?: { chart?: string } } | undefined)?.spec?.chart;
    const rollout = checkInventory(
      obj,
      obj.status?.inventory,
      {
        checkedByFlux: () => !disableWait,
        why: 'disableWait is set',
        where: `chart ${chart ?? '(chartRef)'} and its values`,
        revision,
        images: imagesExpectedAt(expected.relation(revision), ctx.images),
      },
      ctx,
    );
    if (rollout) return rollout;
    const tests = helmTests(obj, revision);
    if (tests.verdict) return tests.verdict;
    return { state: 'passed', message: `${objectName(obj)} is ready: ${conditionText(ready)}${tests.note}`, revision };
  }
  return { state: 'pending', reason: `${objectName(obj)}: ${conditionText(ready)}` };
}

/**
 * With `spec.test.enable`, the release is done only once its Helm tests ran (issue 18 item 1). helm-controller 1.6
 * (internal/reconcile/upgrade.go and install.go success) removes TestSuccess when a release action starts and sets it
 * Unknown `AwaitingTests` after the release; internal/reconcile/test.go sets it True `TestSucceeded` or False
 * `TestFailed` for the latest release only (observeTest). internal/reconcile/release.go summarize puts TestSuccess in
 * Ready only without `spec.test.ignoreFailures`, and orders it by observedGeneration, so Ready alone can say True while
 * the tests have not run (ignoreFailures) or failed (an older TestSuccess generation): the condition itself decides.
 * With ignoreFailures the team chose that a failed test changes nothing (no remediation either, state.go
 * DetermineReleaseState): the pass names the failure instead.
 */
function helmTests(obj: FluxObject, revision: string): { verdict?: Verdict; note: string } {
  const test = obj.spec?.['test'] as { enable?: boolean; ignoreFailures?: boolean } | undefined;
  if (test?.enable !== true) return { note: '' };
  const tested = findCondition(obj.status?.conditions, 'TestSuccess');
  if (!tested || tested.status === 'Unknown')
    return {
      verdict: {
        state: 'pending',
        reason: `${objectName(obj)} released ${short(revision)}; waiting for its Helm tests (spec.test.enable): ${tested ? conditionText(tested) : 'no TestSuccess condition yet'}`,
      },
      note: '',
    };
  if (tested.status === 'False' && test.ignoreFailures !== true)
    return {
      verdict: { state: 'failed', message: `${objectName(obj)}: its Helm tests failed: ${conditionText(tested)}`, revision },
      note: '',
    };
  return {
    note:
      tested.status === 'True'
        ? `; ${conditionText(tested)}`
        : `; its Helm tests failed, which spec.test.ignoreFailures accepts: ${conditionText(tested)}`,
  };
}

/** The HelmChart of a HelmRelease failed to build from a revision that contains our commit. */
function failedChartBuild(obj: FluxObject, expected: Expectation, ctx: RuleContext): Verdict | undefined {
  const chart = helmChartOf(obj, ctx.view);
  if (!chart) return undefined;
  const [namespace, name] = [chart.metadata.namespace ?? '', chart.metadata.name];
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
