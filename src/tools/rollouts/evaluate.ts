/**
 * When is an Argo Rollouts `Rollout` where a Keptn task wants it? Pure rules over the Rollout's own status (Argo
 * Rollouts v1.10), never the health summary alone: the phase and message the controller computes
 * (utils/rollout/rolloututil.go GetRolloutPhase, CalculateRolloutPhase), its pause conditions
 * (pkg/apis/rollouts/v1alpha1/types.go PauseReason), and the pod-template hashes: `currentPodHash` is the version the
 * spec asks for, `stableRS` the version promoted last; the two are equal once a version is fully promoted
 * (rolloututil.go IsFullyPromoted). The rule table is in docs/verdicts.md (Argo Rollouts).
 *
 * A Rollout with `spec.workloadRef` keeps its template in another object (a Deployment, ReplicaSet or PodTemplate:
 * rollout/templateref.go Resolve copies it in memory; the stored Rollout's `spec.template` stays empty), so the images
 * come from that object, and the status describes it only once `status.workloadObservedGeneration` is its generation
 * (rollout/controller.go persistRolloutStatus records it; rolloututil.go isWorkloadGenerationObserved).
 *
 * Goals:
 * - `preview` (deployment): our version runs beside the stable one, healthy and held back: paused for promotion
 *   (blue-green: `BlueGreenPause` with the preview Service on our hash; canary: a `CanaryPauseStep` at a step whose
 *   pause has no duration; a timed pause ends by itself (rollout/pause.go CompletedCanaryPauseStep) and is waited
 *   out).
 * - `stable` (release): our version is promoted: current = stable, phase Healthy.
 * - `rolled-back` (rollback): the stable version serves again: current = stable, phase Healthy, and it is not ours.
 */
import { carriesAll } from '../../platform/git/image.js';
import { timedPause, type PausableRollout } from '../../platform/k8s/rollout-pause.js';
import type { ProgressiveExpectation } from '../../judge/progressive.js';
import type { Verdict } from '../../judge/verdict.js';

// The pause rules are shared with the Argo CD rule (a paused Rollout is Suspended there): src/platform/k8s/rollout-pause.ts.
export { timedPause };

/** The object a `spec.workloadRef` names, as the watch holds it (only what the rules read). */
export interface WorkloadRefObject {
  kind?: string;
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: { template?: { spec?: { containers?: Array<{ image?: string }> } } };
  /** A PodTemplate keeps its template at the top (templateref.go infoByGroupKind). */
  template?: { spec?: { containers?: Array<{ image?: string }> } };
}

export interface RolloutObject {
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: {
    paused?: boolean;
    workloadRef?: { apiVersion?: string; kind?: string; name?: string };
    template?: { spec?: { containers?: Array<{ name?: string; image?: string }> } };
    strategy?: {
      blueGreen?: { activeService?: string; previewService?: string; autoPromotionEnabled?: boolean };
      canary?: { steps?: Array<{ pause?: { duration?: unknown } }>; canaryService?: string; stableService?: string };
    };
  };
  /** The pause fields as the shared pause rules read them (observedGeneration: a number since v0.10, a hash before). */
  status?: NonNullable<PausableRollout['status']> & {
    abort?: boolean;
    promoteFull?: boolean;
    currentPodHash?: string;
    stableRS?: string;
    blueGreen?: { activeSelector?: string; previewSelector?: string };
    workloadObservedGeneration?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

export function rolloutName(ro: RolloutObject): string {
  return `Rollout ${ro.metadata.namespace ?? ''}/${ro.metadata.name}`;
}

/** The strategy the Rollout's spec names. */
export function rolloutStrategy(ro: RolloutObject): 'blueGreen' | 'canary' | undefined {
  if (ro.spec?.strategy?.blueGreen) return 'blueGreen';
  if (ro.spec?.strategy?.canary) return 'canary';
  return undefined;
}

/** rolloututil.go isGenerationObserved: a numeric observedGeneration must equal metadata.generation. */
function generationObserved(ro: RolloutObject): boolean {
  const observed = Number(ro.status?.observedGeneration);
  if (!Number.isInteger(observed) || ro.metadata.generation === undefined) return true;
  return observed >= ro.metadata.generation;
}

/** The images of the template the Rollout runs: its own, or those of the object its workloadRef names. */
export function templateImages(ro: RolloutObject, workload?: WorkloadRefObject): string[] {
  const template = ro.spec?.workloadRef ? (workload?.spec?.template ?? workload?.template) : ro.spec?.template;
  return (template?.spec?.containers ?? []).map((c) => c.image ?? '').filter(Boolean);
}

/**
 * Why the status may describe another template than the workloadRef's object holds now; undefined when it is that
 * template (or there is no workloadRef).
 */
export function workloadRefLag(ro: RolloutObject, workload?: WorkloadRefObject): string | undefined {
  const ref = ro.spec?.workloadRef;
  if (!ref) return undefined;
  const what = `${ref.kind ?? 'workload'} ${ro.metadata.namespace ?? ''}/${ref.name ?? ''}`;
  if (!workload) return `${rolloutName(ro)} takes its template from ${what}, which the service cannot see yet`;
  const seen = ro.status?.workloadObservedGeneration;
  if (workload.metadata.generation !== undefined && seen !== String(workload.metadata.generation))
    return `${rolloutName(ro)} has not observed generation ${workload.metadata.generation} of ${what} yet (observed ${seen ?? 'none'})`;
  return undefined;
}

const DEGRADING_REASONS = new Set(['RolloutAborted', 'ProgressDeadlineExceeded']);

/** A failure the controller reports about the version the spec asks for (CalculateRolloutPhase's Degraded cases). */
function degradedBy(ro: RolloutObject): string | undefined {
  for (const c of ro.status?.conditions ?? []) {
    if (c.type === 'InvalidSpec' && c.status === 'True') return `InvalidSpec: ${c.message ?? ''}`;
    if (c.reason && DEGRADING_REASONS.has(c.reason)) return `${c.reason}: ${c.message ?? ''}`;
  }
  if (ro.status?.phase === 'Degraded') return ro.status.message || 'Degraded';
  return undefined;
}

export function evaluateRollout(ro: RolloutObject, expected: ProgressiveExpectation, workload?: WorkloadRefObject): Verdict {
  const name = rolloutName(ro);
  const status = ro.status ?? {};
  const images = templateImages(ro, workload);
  const hash = status.currentPodHash;
  const revision = hash ?? '';
  if (!generationObserved(ro))
    return { state: 'pending', reason: `${name}: the controller has not yet observed generation ${ro.metadata.generation}` };
  const lag = workloadRefLag(ro, workload);
  if (lag) return { state: 'pending', reason: lag };
  // rolloututil.go IsUnpausing: pause conditions cleared, the controller has not reacted yet.
  if (status.controllerPause && !status.pauseConditions?.length) return { state: 'pending', reason: `${name} is unpausing` };
  const ours = expected.images.length > 0 && carriesAll(expected.images, images);
  const phase = `${status.phase ?? 'no phase'}${status.message ? ` (${status.message})` : ''}`;
  const promoted = Boolean(hash) && hash === status.stableRS;

  if (expected.goal === 'rolled-back') {
    if (promoted && status.phase === 'Healthy' && !ours)
      return { state: 'passed', message: `${name} serves its stable version ${hash} (${images.join(', ')}) again`, revision };
    if (status.abort && !ours)
      return { state: 'pending', reason: `${name} is aborted; waiting for the reverted template to become stable: ${phase}` };
    if (status.abort)
      return {
        state: 'pending',
        reason: `${name} is aborted and serves its stable version ${status.stableRS ?? ''}; waiting for the revert in Git`,
      };
    if (revertAtGate(ro, expected, workload))
      return {
        state: 'pending',
        reason: `${name} was promoted to our version before the roll-back; the revert ${hash} waits at the promotion gate and is promoted now`,
      };
    return { state: 'pending', reason: `${name}: ${phase}` };
  }

  if (expected.images.length > 0 && !ours)
    return {
      state: 'failed',
      message: `${name} runs ${images.join(', ') || 'no image'}, not ${expected.images.join(', ')}: the file we wrote is not what deploys it; check progressive.rollout in the settings`,
    };
  if (status.abort)
    return { state: 'failed', message: `${name} was aborted: ${phase}; its stable version ${status.stableRS ?? ''} serves`, revision };
  const degraded = degradedBy(ro);
  if (degraded) return { state: 'failed', message: `${name} is Degraded at ${hash ?? 'our version'}: ${degraded}`, revision };

  if (expected.goal === 'stable') {
    // Release: only the version the sequence tested; a newer template in its place was never promoted by us
    // (the controller drops promoteFull when the pod template changes: rollout/bluegreen.go
    // syncRolloutStatusBlueGreen and sync.go resetRolloutStatus).
    if (expected.version && hash !== expected.version && status.stableRS !== expected.version)
      return {
        state: 'failed',
        message: `${name} now holds ${hash ?? 'no version'}, not ${expected.version} that this sequence deployed and tested; a newer template replaced it before it became stable`,
        revision,
      };
    if (promoted && status.phase === 'Healthy')
      return { state: 'passed', message: `${name} promoted ${hash} (${images.join(', ')}) to stable and it is Healthy`, revision };
    // A resumed release may find the tested version stable with a newer one already beside it: ours was promoted.
    if (expected.version && status.stableRS === expected.version && hash !== expected.version)
      return {
        state: 'passed',
        message: `${name} promoted ${expected.version} to stable (a newer version ${hash ?? ''} follows it)`,
        revision: expected.version,
      };
    return { state: 'pending', reason: `${name} is not stable at ${hash ?? 'our version'} yet: ${phase}` };
  }

  // preview
  if (promoted && status.phase === 'Healthy')
    return {
      state: 'passed',
      message: `${name} runs ${hash} as its stable version already (first version, or nothing held it back), Healthy`,
      revision,
    };
  const reasons = (status.pauseConditions ?? []).map((p) => p.reason);
  if (status.phase === 'Paused' && !promoted) {
    const strategy = rolloutStrategy(ro);
    if (strategy === 'blueGreen' && reasons.includes('BlueGreenPause')) {
      // bluegreen.go reconcileBlueGreenPause: the pause is only added once the new ReplicaSet is ready (ReadyForPause).
      if (status.blueGreen?.previewSelector !== hash)
        return { state: 'pending', reason: `${name} is paused; the preview Service does not select ${hash} yet` };
      return {
        state: 'passed',
        message: `${name} runs ${hash} (${images.join(', ')}) as preview, Healthy and paused for promotion; stable is ${status.stableRS ?? 'none'}`,
        revision,
      };
    }
    const timed = strategy === 'canary' ? timedPause(ro) : undefined;
    if (timed && reasons.includes('CanaryPauseStep'))
      return {
        state: 'pending',
        reason: `${name} is in a timed pause (${timed}) at step ${status.currentStepIndex}; it resumes on its own`,
      };
    if (strategy === 'canary' && reasons.includes('CanaryPauseStep'))
      return {
        state: 'passed',
        message: `${name} runs ${hash} (${images.join(', ')}) as canary at step ${status.currentStepIndex ?? '?'}, paused for promotion; stable is ${status.stableRS ?? 'none'}`,
        revision,
      };
    if (reasons.some((r) => r === 'InconclusiveAnalysisRun' || r === 'InconclusiveExperiment'))
      return { state: 'failed', message: `${name} paused on an inconclusive analysis: ${reasons.join(', ')}`, revision };
  }
  return { state: 'pending', reason: `${name} at ${hash ?? 'our version'}: ${phase}` };
}

/** Paused where a person (or Keptn's release) has to promote: blue-green's pause, or an indefinite canary pause. */
function pausedAtGate(ro: RolloutObject): boolean {
  const status = ro.status ?? {};
  const reasons = (status.pauseConditions ?? []).map((p) => p.reason);
  if (status.phase !== 'Paused') return false;
  if (reasons.includes('BlueGreenPause')) return status.blueGreen?.previewSelector === status.currentPodHash;
  return reasons.includes('CanaryPauseStep') && !timedPause(ro);
}

/**
 * A roll-back after the version was already promoted: aborting does nothing then (current = stable, cmd/abort), and
 * the revert reaches the Rollout as a new version that stops at the same gate as any other (autoPromotionEnabled:
 * false, or the canary's `pause: {}`), so without a promotion it waits to the deadline. Keptn's roll-back is the
 * decision to go back, so the revert is promoted, only once it is what the Rollout holds: its template carries none
 * of the images the deployment wrote, the controller observed it, and it waits at the gate.
 */
export function revertAtGate(ro: RolloutObject, expected: ProgressiveExpectation, workload?: WorkloadRefObject): boolean {
  const status = ro.status ?? {};
  if (expected.goal !== 'rolled-back' || expected.images.length === 0 || status.abort) return false;
  if (!generationObserved(ro) || workloadRefLag(ro, workload)) return false;
  const hash = status.currentPodHash;
  if (!hash || hash === status.stableRS) return false;
  const images = templateImages(ro, workload);
  return images.length > 0 && !carriesAll(expected.images, images) && pausedAtGate(ro);
}

/**
 * Why a release must not promote what the Rollout holds now, or undefined when it may: the version must be the one
 * this sequence deployed and tested (the hash its deployment recorded), not merely a template with the same image (a
 * later commit may change anything else in it), and the controller must have observed the current spec, so that
 * `currentPodHash` names the template that would be promoted.
 */
export function promoteRefusal(
  ro: RolloutObject,
  images: readonly string[],
  version: string | undefined,
  workload?: WorkloadRefObject,
): string | undefined {
  const name = rolloutName(ro);
  const held = templateImages(ro, workload);
  if (!carriesAll(images, held))
    return `${name} holds ${held.join(', ') || 'no image'}, not ${images.join(', ')} that this sequence deployed; nothing promoted`;
  if (version === undefined) return undefined;
  if (!generationObserved(ro)) return `${name}: the controller has not yet observed generation ${ro.metadata.generation}`;
  const lag = workloadRefLag(ro, workload);
  if (lag) return lag;
  const hash = ro.status?.currentPodHash;
  if (hash !== version)
    return `${name} holds version ${hash ?? 'none'}, not ${version} that this sequence deployed and tested (a later change to its template, even with the same image, did not pass this quality gate); nothing promoted`;
  return undefined;
}

/**
 * What makes a Rollout unfit for Keptn's gate: it would promote the new version on its own, before the release. A
 * blue-green Rollout promotes at once unless `autoPromotionEnabled: false` (the default is true: types.go
 * BlueGreenStrategy); a canary one needs a `pause: {}` step without a duration (a timed pause ends by itself).
 */
export function rolloutProblem(ro: RolloutObject): string | undefined {
  const name = rolloutName(ro);
  const { blueGreen, canary } = ro.spec?.strategy ?? {};
  if (blueGreen && blueGreen.autoPromotionEnabled !== false)
    return `${name} promotes a new version at once (blueGreen.autoPromotionEnabled is not false), without Keptn's quality gate: set spec.strategy.blueGreen.autoPromotionEnabled: false`;
  if (canary && !(canary.steps ?? []).some((step) => step.pause && step.pause.duration === undefined))
    return `${name} has no indefinite pause step, so it promotes without Keptn's quality gate: add a step "pause: {}" where the release should take over`;
  if (!blueGreen && !canary) return `${name} names no blueGreen or canary strategy`;
  return undefined;
}

/**
 * The patches `kubectl argo rollouts promote --full` makes (pkg/kubectl-argo-rollouts/cmd/promote/promote.go,
 * getPatches, case full): unpause the spec if it is paused, and ask the controller, on the status subresource, to
 * promote fully, skipping the remaining steps, pauses and analysis. Keptn's quality gate is the decision: once the
 * release is triggered, nothing more should hold the version back.
 */
export function promotePatches(ro: RolloutObject): { spec?: Record<string, unknown>; status?: Record<string, unknown> } {
  return {
    ...(ro.spec?.paused ? { spec: { spec: { paused: false } } } : {}),
    ...(ro.status?.currentPodHash !== ro.status?.stableRS ? { status: { status: { promoteFull: true } } } : {}),
  };
}

/** The patch `kubectl argo rollouts abort` makes, on the status subresource (cmd/abort/abort.go). */
export const ABORT_PATCH = { status: { abort: true } } as const;
