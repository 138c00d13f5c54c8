/**
 * Health rules for an Application synced at our commit: Degraded, and whether the image we wrote runs (Argo CD 3.5).
 */
import { sameImage } from '../../platform/git/image.js';
import { imagesExpectedAt, type Verdict } from '../../judge/verdict.js';
import { appName, resourceName, sourcesOf, type Application, type ResourceRef } from './application.js';
import { DEFAULT_DEGRADED_GRACE_MS, type ArgoExpectation } from './expectation.js';

// The one image matcher of every tool (issue 18 item 9): digests decide when both sides carry one.
export { sameImage };

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
export function degraded(app: Application, expected: ArgoExpectation, synced: string, ourOperation: boolean): Verdict {
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
export function appliedImages(app: Application): string[] {
  return (app.status?.operationState?.syncResult?.resources ?? []).flatMap((r) => r.images ?? []);
}

const REPLICATED = new Set(['Deployment', 'StatefulSet', 'ReplicaSet']);

/**
 * Why a workload runs no Pods by design, or undefined. `status.summary.images` lists the images of the Pods in the
 * Application's tree only (argo-cd controller/cache/info.go populatePodInfo; ApplicationTree GetSummary), so a
 * CronJob between runs and a workload scaled to 0 show no image, though Argo CD calls them Healthy
 * (resource_customizations/batch/CronJob/health.lua: "has not been scheduled yet" is Healthy; gitops-engine
 * pkg/health/health_deployment.go: 0 of 0 replicas is Healthy). Their template is what the sync applied: the sync
 * result lists its images (gitops-engine pkg/sync/sync_context.go, kube.GetResourceImages reads
 * spec.template and spec.jobTemplate).
 */
export function runsNoPodsByDesign(workload: { kind: string; spec?: { replicas?: number } }): string | undefined {
  if (workload.kind === 'CronJob') return 'a CronJob runs Pods only while one of its Jobs runs';
  if (REPLICATED.has(workload.kind) && workload.spec?.replicas === 0) return 'scaled to 0 replicas';
  return undefined;
}

/** The workloads in our sync's result that run no Pods by design, with their applied images and why. */
function templateJudged(app: Application, expected: ArgoExpectation): Array<{ ref: ResourceRef; images: string[]; why: string }> {
  return (app.status?.operationState?.syncResult?.resources ?? []).flatMap((r) => {
    const why = (r.group ?? '') === 'batch' ? runsNoPodsByDesign({ kind: r.kind }) : expected.podless?.find((p) => sameResource(p, r))?.why;
    return why && r.images?.length ? [{ ref: r, images: r.images, why }] : [];
  });
}

/**
 * Synced and healthy at our commit is a pass only if the image we wrote runs: else the file is not what it deploys.
 * `ourSync`: the sync result in the status is of our commit or a later one containing it, so the templates it
 * applied may stand in for Pods where a workload runs none by design.
 */
export function runningOurImage(
  app: Application,
  expected: ArgoExpectation,
  synced: string,
  health: string,
  applied: string[] = [],
  ourSync = false,
): Verdict {
  const running = app.status?.summary?.images ?? [];
  const byTemplate = ourSync ? templateJudged(app, expected) : [];
  const wanted = imagesExpectedAt(expected.relation(synced), expected.images ?? []);
  const missing = wanted.filter((w) => ![...running, ...applied].some((r) => sameImage(w, r)));
  const fromTemplate = byTemplate.filter((t) => missing.some((w) => t.images.some((i) => sameImage(w, i))));
  const stillMissing = missing.filter((w) => !fromTemplate.some((t) => t.images.some((i) => sameImage(w, i))));
  if (stillMissing.length === 0) {
    const note = fromTemplate.length
      ? ` (${fromTemplate.map((t) => `${resourceName(t.ref)} runs no Pods by design, ${t.why}: judged by the template our sync applied`).join('; ')})`
      : '';
    return { state: 'passed', message: `Argo CD synced ${appName(app)} to ${synced} and it is ${health}${note}`, revision: synced };
  }
  if (expected.regeneratedBy) {
    // The spec comes from our file through the ApplicationSet: until it regenerates the Application, the old spec runs.
    return {
      state: 'pending',
      reason: `${appName(app)} is synced to ${synced} and ${health} but runs ${running.length ? running.join(', ') : 'no image'}, not ${stillMissing.join(', ')} yet: waiting for ${expected.regeneratedBy} to regenerate it`,
    };
  }
  const source = sourcesOf(app)[expected.sourceIndex];
  const where = source ? `${source.repoURL}${source.path ? ` path ${source.path}` : ''}` : 'its source';
  const files = expected.files?.length
    ? `the file${expected.files.length > 1 ? 's' : ''} ${expected.files.join(', ')}`
    : 'the file we edited';
  return {
    state: 'failed',
    message: `${appName(app)} is synced to ${synced} and ${health}, but runs ${running.length ? running.join(', ') : 'no image'}, not ${stillMissing.join(', ')}: ${files} ${expected.files && expected.files.length > 1 ? 'are' : 'is'} not what it deploys (it reads ${where}); check images[].file in the settings`,
    revision: synced,
  };
}
