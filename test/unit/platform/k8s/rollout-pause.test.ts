// How a Rollout's pause ends, over Rollouts built from Argo Rollouts v1.10 (rollout/pause.go, canary.go,
// utils/rollout/rolloututil.go); the same rows over Rollouts captured from the real controller are in
// test/unit/tools/argocd/suspended.test.ts.
import { describe, expect, it } from '@jest/globals';
import { pauseEnd, rolloutMoving, timedPause, type PausableRollout } from '../../../../src/platform/k8s/rollout-pause.js';

const paused = (reason: string) => ({
  observedGeneration: '2',
  phase: 'Paused',
  message: reason,
  pauseConditions: [{ reason, startTime: '2026-12-07T18:00:00Z' }],
  controllerPause: true,
});

function canary(
  steps: Array<{ pause?: { duration?: unknown } }>,
  status: PausableRollout['status'],
  specPaused?: boolean,
): PausableRollout {
  return {
    metadata: { name: 'web', namespace: 'app', generation: 2 },
    spec: { ...(specPaused ? { paused: true } : {}), strategy: { canary: { steps } } },
    status,
  };
}

function blueGreen(
  blue: { autoPromotionEnabled?: boolean; autoPromotionSeconds?: number },
  status: PausableRollout['status'],
): PausableRollout {
  return { metadata: { name: 'web', namespace: 'app', generation: 2 }, spec: { strategy: { blueGreen: blue } }, status };
}

const STEPS = [{}, { pause: { duration: '5s' } }, {}, { pause: {} }];

describe('pauseEnd (Argo Rollouts v1.10 pause handling)', () => {
  it.each<[string, PausableRollout, 'itself' | 'never' | undefined, RegExp | undefined]>([
    [
      'canary at a timed pause step (CompletedCanaryPauseStep ends it)',
      canary(STEPS, { ...paused('CanaryPauseStep'), currentStepIndex: 1 }),
      'itself',
      /^in a timed pause \(5s\) at step 1$/,
    ],
    [
      'a duration in seconds as a number',
      canary([{ pause: { duration: 30 } }], { ...paused('CanaryPauseStep'), currentStepIndex: 0 }),
      'itself',
      /timed pause \(30s\) at step 0/,
    ],
    [
      'canary at an indefinite pause step (pause: {})',
      canary(STEPS, { ...paused('CanaryPauseStep'), currentStepIndex: 3 }),
      'never',
      /^at an indefinite pause step \(step 3: pause: \{\}\)$/,
    ],
    [
      'paused by hand at a timed step (completedCurrentCanaryStep: never while spec.paused)',
      canary(STEPS, { ...paused('CanaryPauseStep'), currentStepIndex: 1 }, true),
      'never',
      /paused by hand \(spec\.paused: true\)/,
    ],
    [
      'blue-green waiting autoPromotionSeconds (CompletedBlueGreenPause)',
      blueGreen({ autoPromotionSeconds: 30 }, paused('BlueGreenPause')),
      'itself',
      /waiting 30s \(autoPromotionSeconds\)/,
    ],
    [
      'blue-green with autoPromotionEnabled: false',
      blueGreen({ autoPromotionEnabled: false }, paused('BlueGreenPause')),
      'never',
      /waiting for promotion \(blueGreen\.autoPromotionEnabled: false\)/,
    ],
    [
      'an inconclusive analysis: a person decides',
      canary(STEPS, { ...paused('InconclusiveAnalysisRun'), currentStepIndex: 1 }),
      'never',
      /paused \(InconclusiveAnalysisRun\)/,
    ],
    [
      'a timed pause beside an inconclusive analysis: the one that stays decides',
      canary(STEPS, {
        ...paused('CanaryPauseStep'),
        pauseConditions: [{ reason: 'CanaryPauseStep' }, { reason: 'InconclusiveAnalysisRun' }],
        currentStepIndex: 1,
      }),
      'never',
      /InconclusiveAnalysisRun/,
    ],
    [
      'pause conditions cleared, the controller not yet reacted (IsUnpausing)',
      canary(STEPS, { phase: 'Paused', controllerPause: true, pauseConditions: [], currentStepIndex: 1 }),
      'itself',
      /resuming/,
    ],
    ['not paused', canary(STEPS, { phase: 'Progressing', currentStepIndex: 2 }), undefined, undefined],
  ])('%s', (_name, ro, ends, what) => {
    const end = pauseEnd(ro);
    expect(end?.ends).toBe(ends);
    if (what) expect(end?.what).toMatch(what);
    if (end?.ends === 'never') expect(end.fix).toMatch(/kubectl argo rollouts (promote|resume)/);
  });

  it('says what resumes a Rollout held for promotion under a strategy that never promotes', () => {
    const end = pauseEnd(canary(STEPS, { ...paused('CanaryPauseStep'), currentStepIndex: 3 }));
    expect(end?.ends === 'never' && end.fix).toMatch(
      /promote it .*progressive strategy \(settings progressive\.rollout\).*give the step a duration/,
    );
  });

  it('timedPause reads the current step only', () => {
    expect(timedPause(canary(STEPS, { currentStepIndex: 1 }))).toBe('5s');
    expect(timedPause(canary(STEPS, { currentStepIndex: 3 }))).toBeUndefined();
    expect(timedPause(canary(STEPS, {}))).toBeUndefined();
  });
});

describe('rolloutMoving: a status Argo CD shows as Progressing (health.lua surfaces status.phase)', () => {
  it.each<[string, PausableRollout, boolean]>([
    ['Progressing', canary(STEPS, { observedGeneration: '2', phase: 'Progressing' }), true],
    ['a spec the controller has not observed', canary(STEPS, { observedGeneration: '1', phase: 'Healthy' }), true],
    ['no status yet', canary(STEPS, undefined), true],
    ['Healthy', canary(STEPS, { observedGeneration: '2', phase: 'Healthy' }), false],
    ['Paused', canary(STEPS, { ...paused('CanaryPauseStep') }), false],
    ['Degraded', canary(STEPS, { observedGeneration: '2', phase: 'Degraded' }), false],
  ])('%s', (_name, ro, moving) => expect(rolloutMoving(ro)).toBe(moving));
});
