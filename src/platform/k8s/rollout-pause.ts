/**
 * How an Argo Rollouts `Rollout` is paused, read from its own spec and status (Argo Rollouts v1.10). Pure, and shared
 * by the tools that meet Rollouts: the Rollouts driver (progressive strategies) and the Argo CD rule, whose health
 * `Suspended` covers every paused Rollout alike.
 */

/** The fields of a Rollout the pause rules read. */
export interface PausableRollout {
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: {
    paused?: boolean;
    strategy?: {
      blueGreen?: { autoPromotionEnabled?: boolean; autoPromotionSeconds?: number };
      canary?: { steps?: Array<{ pause?: { duration?: unknown } }> };
    };
  };
  status?: {
    observedGeneration?: string | number;
    phase?: string;
    message?: string;
    pauseConditions?: Array<{ reason?: string; startTime?: string }> | null;
    controllerPause?: boolean;
    currentStepIndex?: number;
  };
}

/**
 * The pause the Rollout is in at its current canary step, if it is a timed one (`pause: {duration}`): the controller
 * resumes it itself once the duration passed (rollout/pause.go CompletedCanaryPauseStep), so it is no gate.
 */
export function timedPause(ro: PausableRollout): string | undefined {
  const index = ro.status?.currentStepIndex;
  const step = index === undefined ? undefined : ro.spec?.strategy?.canary?.steps?.[index];
  const duration = step?.pause?.duration;
  if (duration === undefined || duration === null) return undefined;
  return typeof duration === 'number' ? `${duration}s` : String(duration);
}

/** How a pause ends: by itself (the controller resumes it), or only when someone acts, and what they would do. */
export type PauseEnd = { ends: 'itself'; what: string } | { ends: 'never'; what: string; fix: string };

/** What resumes a Rollout held for promotion under a strategy that never promotes (`direct`). */
const PROMOTE =
  'promote it (kubectl argo rollouts promote), or deploy it with a progressive strategy (settings progressive.rollout), whose release promotes it';

/**
 * How the Rollout's pause ends, from its own spec and status; undefined when it is not paused. A pause ends by itself
 * when every condition holding it does (Argo Rollouts v1.10 rollout/pause.go):
 * - `CanaryPauseStep` at a step with `pause: {duration}`: CompletedCanaryPauseStep resumes it once the duration has
 *   passed since the condition's start time (checkEnqueueRolloutDuringWait requeues the Rollout for that moment);
 *   without a duration only a promotion clears it.
 * - `BlueGreenPause`: CompletedBlueGreenPause promotes on its own after `autoPromotionSeconds` unless
 *   `autoPromotionEnabled: false` (then only a promotion does).
 * - `InconclusiveAnalysisRun` / `InconclusiveExperiment`: a person decides (promote or abort).
 * - `spec.paused: true` (a pause by hand): canary.go completedCurrentCanaryStep never completes a step while it is set.
 * Pause conditions cleared while `controllerPause` is still set is rolloututil.go IsUnpausing: resuming.
 */
export function pauseEnd(ro: PausableRollout): PauseEnd | undefined {
  if (ro.spec?.paused)
    return { ends: 'never', what: 'paused by hand (spec.paused: true)', fix: 'resume it (kubectl argo rollouts resume)' };
  const reasons = (ro.status?.pauseConditions ?? []).map((c) => c.reason ?? '');
  if (reasons.length === 0)
    return ro.status?.controllerPause ? { ends: 'itself', what: 'resuming (its pause conditions are cleared)' } : undefined;
  const ends = reasons.map((reason) => endOf(ro, reason));
  return ends.find((e) => e.ends === 'never') ?? ends[0];
}

function endOf(ro: PausableRollout, reason: string): PauseEnd {
  const step = ro.status?.currentStepIndex ?? 0;
  if (reason === 'CanaryPauseStep') {
    const timed = timedPause(ro);
    return timed
      ? { ends: 'itself', what: `in a timed pause (${timed}) at step ${step}` }
      : { ends: 'never', what: `at an indefinite pause step (step ${step}: pause: {})`, fix: `${PROMOTE}; or give the step a duration` };
  }
  if (reason === 'BlueGreenPause') {
    const blueGreen = ro.spec?.strategy?.blueGreen;
    return blueGreen?.autoPromotionEnabled !== false
      ? { ends: 'itself', what: `waiting ${blueGreen?.autoPromotionSeconds ?? 0}s (autoPromotionSeconds) before it promotes itself` }
      : { ends: 'never', what: 'waiting for promotion (blueGreen.autoPromotionEnabled: false)', fix: PROMOTE };
  }
  return {
    ends: 'never',
    what: `paused (${reason})`,
    fix: 'promote or abort it once the analysis is judged (kubectl argo rollouts promote / abort)',
  };
}

/**
 * Whether the status describes the current spec: rolloututil.go isGenerationObserved (a numeric `observedGeneration`
 * equal to `metadata.generation`; older controllers wrote a hash, taken as observed). A pause read from an older
 * status says nothing about the current spec.
 */
export function statusObserved(ro: PausableRollout): boolean {
  const observed = Number(ro.status?.observedGeneration);
  return !Number.isInteger(observed) || ro.metadata.generation === undefined || observed >= ro.metadata.generation;
}

/**
 * Whether the Rollout's own status is still on its way somewhere (a spec not observed yet, or a phase other than
 * Healthy, Paused or Degraded): Argo CD maps that to Progressing (resource_customizations/argoproj.io/Rollout/health.lua
 * surfaces `status.phase`), so a Suspended health that includes it was computed before.
 */
export function rolloutMoving(ro: PausableRollout): boolean {
  return !statusObserved(ro) || !['Healthy', 'Paused', 'Degraded'].includes(ro.status?.phase ?? '');
}
