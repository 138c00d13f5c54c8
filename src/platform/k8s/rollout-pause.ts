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
