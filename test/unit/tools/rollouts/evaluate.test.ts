import { describe, expect, it } from '@jest/globals';
import type { ProgressiveGoal } from '../../../../src/judge/progressive.js';
import {
  evaluateRollout,
  promotePatches,
  promoteRefusal,
  revertAtGate,
  rolloutProblem,
  timedPause,
  type RolloutObject,
  type WorkloadRefObject,
} from '../../../../src/tools/rollouts/evaluate.js';

const NEW = 'ghcr.io/podtato/head:0.2.0';
const OLD = 'ghcr.io/podtato/head:0.1.0';

/** A Rollout as the v1.10 controller writes it; `status` overrides the blue-green preview pause. */
function rollout(strategy: 'blueGreen' | 'canary', image: string, status: RolloutObject['status'] = {}, generation = 2): RolloutObject {
  return {
    metadata: { name: 'web', namespace: 'app', generation },
    spec: {
      template: { spec: { containers: [{ name: 'web', image }] } },
      strategy:
        strategy === 'blueGreen' ? { blueGreen: { activeService: 'web', previewService: 'web-preview' } } : { canary: { steps: [] } },
    },
    status: { observedGeneration: String(generation), ...status },
  };
}

const bgPaused = {
  phase: 'Paused',
  message: 'BlueGreenPause',
  pauseConditions: [{ reason: 'BlueGreenPause', startTime: '2026-11-24T15:00:00Z' }],
  controllerPause: true,
  currentPodHash: 'new',
  stableRS: 'old',
  blueGreen: { previewSelector: 'new', activeSelector: 'old' },
};
const canaryPaused = {
  phase: 'Paused',
  message: 'CanaryPauseStep',
  pauseConditions: [{ reason: 'CanaryPauseStep', startTime: '2026-11-24T15:00:00Z' }],
  controllerPause: true,
  currentPodHash: 'new',
  stableRS: 'old',
  currentStepIndex: 1,
};
const stable = (hash: string) => ({ phase: 'Healthy', currentPodHash: hash, stableRS: hash, blueGreen: { activeSelector: hash } });
const aborted = {
  phase: 'Degraded',
  message: 'RolloutAborted: Rollout aborted update to revision 2',
  abort: true,
  currentPodHash: 'new',
  stableRS: 'old',
  conditions: [{ type: 'Progressing', status: 'False', reason: 'RolloutAborted', message: 'Rollout aborted update to revision 2' }],
};

describe('evaluateRollout (Argo Rollouts v1.10 status)', () => {
  it.each<[string, ProgressiveGoal, RolloutObject, 'passed' | 'failed' | 'pending', RegExp]>([
    // deployment: preview / canary held back
    [
      'blue-green paused with the preview on our version',
      'preview',
      rollout('blueGreen', NEW, bgPaused),
      'passed',
      /runs new .* as preview, Healthy and paused for promotion; stable is old/,
    ],
    [
      'blue-green paused, preview Service not switched yet',
      'preview',
      rollout('blueGreen', NEW, { ...bgPaused, blueGreen: { previewSelector: 'old' } }),
      'pending',
      /preview Service does not select new/,
    ],
    [
      'canary paused at a pause step',
      'preview',
      rollout('canary', NEW, canaryPaused),
      'passed',
      /as canary at step 1, paused for promotion/,
    ],
    [
      'still progressing to the pause',
      'preview',
      rollout('blueGreen', NEW, {
        phase: 'Progressing',
        message: 'more replicas need to be updated',
        currentPodHash: 'new',
        stableRS: 'old',
      }),
      'pending',
      /Progressing \(more replicas need to be updated\)/,
    ],
    [
      'the controller has not observed the new spec',
      'preview',
      rollout('blueGreen', NEW, { ...stable('old'), observedGeneration: '1' }),
      'pending',
      /not yet observed generation 2/,
    ],
    ['first version: nothing to hold back', 'preview', rollout('blueGreen', NEW, stable('new')), 'passed', /as its stable version already/],
    [
      'the template does not carry our image',
      'preview',
      rollout('blueGreen', OLD, stable('old')),
      'failed',
      /runs ghcr.io\/podtato\/head:0.1.0, not ghcr.io\/podtato\/head:0.2.0.*progressive.rollout/,
    ],
    ['aborted (someone, or an analysis)', 'preview', rollout('canary', NEW, aborted), 'failed', /was aborted: Degraded \(RolloutAborted/],
    [
      'progress deadline exceeded',
      'preview',
      rollout('canary', NEW, {
        phase: 'Degraded',
        message: 'ProgressDeadlineExceeded: ReplicaSet "web-new" has timed out progressing.',
        currentPodHash: 'new',
        stableRS: 'old',
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "web-new" has timed out progressing.',
          },
        ],
      }),
      'failed',
      /Degraded at new: ProgressDeadlineExceeded: ReplicaSet "web-new" has timed out/,
    ],
    [
      'an invalid spec',
      'preview',
      rollout('canary', NEW, {
        phase: 'Degraded',
        conditions: [{ type: 'InvalidSpec', status: 'True', message: 'The Rollout "web" is invalid' }],
      }),
      'failed',
      /InvalidSpec: The Rollout "web" is invalid/,
    ],
    [
      'paused on an inconclusive analysis',
      'preview',
      rollout('canary', NEW, { ...canaryPaused, pauseConditions: [{ reason: 'InconclusiveAnalysisRun' }] }),
      'failed',
      /inconclusive analysis/,
    ],
    [
      'unpausing (conditions cleared, controller not yet reacted)',
      'preview',
      rollout('canary', NEW, { ...canaryPaused, pauseConditions: [] }),
      'pending',
      /unpausing/,
    ],
    // release: promoted and stable
    [
      'promoted: current = stable, Healthy',
      'stable',
      rollout('blueGreen', NEW, stable('new')),
      'passed',
      /promoted new .* to stable and it is Healthy/,
    ],
    [
      'promotion under way',
      'stable',
      rollout('blueGreen', NEW, {
        phase: 'Progressing',
        message: 'active service cutover pending',
        currentPodHash: 'new',
        stableRS: 'old',
        promoteFull: true,
      }),
      'pending',
      /not stable at new yet: Progressing \(active service cutover pending\)/,
    ],
    ['still paused (not promoted)', 'stable', rollout('canary', NEW, canaryPaused), 'pending', /not stable at new yet: Paused/],
    ['aborted instead of promoted', 'stable', rollout('blueGreen', NEW, aborted), 'failed', /was aborted/],
    // rollback: the stable version serves again
    [
      'aborted, template still ours (revert not applied yet)',
      'rolled-back',
      rollout('blueGreen', NEW, aborted),
      'pending',
      /aborted and serves its stable version old; waiting for the revert in Git/,
    ],
    [
      'reverted: the old template is current and stable',
      'rolled-back',
      rollout('blueGreen', OLD, stable('old'), 3),
      'passed',
      /serves its stable version old \(ghcr.io\/podtato\/head:0.1.0\) again/,
    ],
    ['our version is stable: not rolled back', 'rolled-back', rollout('blueGreen', NEW, stable('new')), 'pending', /Healthy/],
  ])('%s (%s)', (_name, goal, ro, state, text) => {
    const verdict = evaluateRollout(ro, { goal, images: [NEW] });
    expect(verdict.state).toBe(state);
    expect(verdict.state === 'pending' ? verdict.reason : verdict.message).toMatch(text);
  });
});

// Issue 18 items 17 and 18, built from upstream code (Argo Rollouts v1.10: rollout/templateref.go Resolve,
// controller.go persistRolloutStatus, pause.go, bluegreen.go syncRolloutStatusBlueGreen); the real controller
// shows the release row in test/e2e/rollouts.e2e.test.ts.
describe('evaluateRollout: the exact version, workloadRef, timed pauses, a roll-back after promotion', () => {
  /** A Rollout whose template lives in Deployment web (spec.workloadRef), as the controller stores it. */
  const byRef = (status: RolloutObject['status']): RolloutObject => ({
    metadata: { name: 'web', namespace: 'app', generation: 2 },
    spec: {
      workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
      strategy: { blueGreen: { activeService: 'web', previewService: 'web-preview', autoPromotionEnabled: false } },
    },
    status: { observedGeneration: '2', workloadObservedGeneration: '5', ...status },
  });
  const deployment = (image: string, generation = 5): WorkloadRefObject => ({
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'app', generation },
    spec: { template: { spec: { containers: [{ image }] } } },
  });
  const timedCanary = (index: number): RolloutObject => ({
    ...rollout('canary', NEW, { ...canaryPaused, currentStepIndex: index }),
    spec: {
      template: { spec: { containers: [{ name: 'web', image: NEW }] } },
      strategy: { canary: { steps: [{}, { pause: { duration: '30s' } }, {}, { pause: {} }] } },
    },
  });

  it.each<[string, RolloutObject, WorkloadRefObject | undefined, Parameters<typeof evaluateRollout>[1], string, RegExp]>([
    [
      'workloadRef: the Deployment carries our image, paused for promotion',
      byRef(bgPaused),
      deployment(NEW),
      { goal: 'preview', images: [NEW] },
      'passed',
      /runs new \(ghcr.io\/podtato\/head:0.2.0\) as preview/,
    ],
    [
      'workloadRef: the Rollout has not observed the Deployment’s new generation',
      byRef(bgPaused),
      deployment(NEW, 6),
      { goal: 'preview', images: [NEW] },
      'pending',
      /has not observed generation 6 of Deployment app\/web yet \(observed 5\)/,
    ],
    [
      'workloadRef: the Deployment is not seen yet',
      byRef(bgPaused),
      undefined,
      { goal: 'preview', images: [NEW] },
      'pending',
      /takes its template from Deployment app\/web, which the service cannot see yet/,
    ],
    [
      'workloadRef: the Deployment runs another image',
      byRef(bgPaused),
      deployment(OLD),
      { goal: 'preview', images: [NEW] },
      'failed',
      /runs ghcr.io\/podtato\/head:0.1.0, not ghcr.io\/podtato\/head:0.2.0/,
    ],
    [
      'canary in a timed pause (pause: {duration: 30s}): it resumes on its own, no gate',
      timedCanary(1),
      undefined,
      { goal: 'preview', images: [NEW] },
      'pending',
      /timed pause \(30s\) at step 1; it resumes on its own/,
    ],
    [
      'canary at its indefinite pause after a timed one',
      timedCanary(3),
      undefined,
      { goal: 'preview', images: [NEW] },
      'passed',
      /as canary at step 3, paused for promotion/,
    ],
    [
      'release: the tested version promoted',
      rollout('blueGreen', NEW, stable('new')),
      undefined,
      { goal: 'stable', images: [NEW], version: 'new' },
      'passed',
      /promoted new/,
    ],
    [
      'release: a newer template (same image) replaced the tested version before it became stable',
      rollout('blueGreen', NEW, { ...bgPaused, currentPodHash: 'newer' }),
      undefined,
      { goal: 'stable', images: [NEW], version: 'new' },
      'failed',
      /now holds newer, not new that this sequence deployed and tested/,
    ],
    [
      'release resumed: the tested version is stable, a newer one already beside it',
      rollout('blueGreen', NEW, { ...bgPaused, currentPodHash: 'newer', stableRS: 'new' }),
      undefined,
      { goal: 'stable', images: [NEW], version: 'new' },
      'passed',
      /promoted new to stable \(a newer version newer follows it\)/,
    ],
    [
      'roll-back after promotion: the revert waits at the blue-green gate and is promoted',
      rollout('blueGreen', OLD, { ...bgPaused, currentPodHash: 'old2', stableRS: 'new', blueGreen: { previewSelector: 'old2' } }),
      undefined,
      { goal: 'rolled-back', images: [NEW] },
      'pending',
      /promoted to our version before the roll-back; the revert old2 waits at the promotion gate and is promoted now/,
    ],
    [
      'roll-back after promotion: the promoted revert serves',
      rollout('blueGreen', OLD, stable('old2'), 3),
      undefined,
      { goal: 'rolled-back', images: [NEW] },
      'passed',
      /serves its stable version old2/,
    ],
  ])('%s', (_name, ro, workload, expected, state, text) => {
    const verdict = evaluateRollout(ro, expected, workload);
    expect(verdict.state).toBe(state);
    expect(verdict.state === 'pending' ? verdict.reason : verdict.message).toMatch(text);
  });

  it('timedPause reads the step the Rollout is at', () => {
    expect(timedPause(timedCanary(1))).toBe('30s');
    expect(timedPause(timedCanary(3))).toBeUndefined();
  });

  it('revertAtGate: only a revert (none of our images), observed, at the gate, not aborted', () => {
    const atGate = rollout('blueGreen', OLD, {
      ...bgPaused,
      currentPodHash: 'old2',
      stableRS: 'new',
      blueGreen: { previewSelector: 'old2' },
    });
    const back = { goal: 'rolled-back' as const, images: [NEW] };
    expect(revertAtGate(atGate, back)).toBe(true);
    expect(revertAtGate(rollout('blueGreen', NEW, bgPaused), back)).toBe(false); // our version, not the revert
    expect(revertAtGate({ ...atGate, status: { ...atGate.status, abort: true } }, back)).toBe(false);
    expect(revertAtGate({ ...atGate, status: { ...atGate.status, observedGeneration: '1' } }, back)).toBe(false);
    expect(revertAtGate(atGate, { goal: 'rolled-back', images: [] })).toBe(false); // nothing to tell ours from the revert
    expect(revertAtGate(atGate, { goal: 'stable', images: [NEW] })).toBe(false);
  });

  it.each<[string, RolloutObject, string | undefined, WorkloadRefObject | undefined, RegExp | undefined]>([
    ['the tested version is held', rollout('blueGreen', NEW, bgPaused), 'new', undefined, undefined],
    [
      'no version recorded: images alone',
      rollout('blueGreen', NEW, { ...bgPaused, currentPodHash: 'other' }),
      undefined,
      undefined,
      undefined,
    ],
    [
      'a newer template with the same image',
      rollout('blueGreen', NEW, { ...bgPaused, currentPodHash: 'newer' }),
      'new',
      undefined,
      /holds version newer, not new that this sequence deployed and tested.*nothing promoted/,
    ],
    ['another image', rollout('blueGreen', OLD, bgPaused), 'new', undefined, /holds ghcr.io\/podtato\/head:0.1.0, not/],
    [
      'a spec the controller has not observed',
      rollout('blueGreen', NEW, { ...bgPaused, observedGeneration: '1' }),
      'new',
      undefined,
      /not yet observed generation 2/,
    ],
    ['workloadRef: the tested version is held', byRef(bgPaused), 'new', deployment(NEW), undefined],
    ['workloadRef: the Deployment moved on', byRef(bgPaused), 'new', deployment(NEW, 6), /has not observed generation 6/],
  ])('promoteRefusal: %s', (_name, ro, version, workload, refusal) => {
    const answer = promoteRefusal(ro, [NEW], version, workload);
    if (refusal) expect(answer).toMatch(refusal);
    else expect(answer).toBeUndefined();
  });
});

describe('promotePatches: what kubectl argo rollouts promote --full writes', () => {
  it.each<[string, RolloutObject, object]>([
    [
      'paused at a new version: promoteFull on the status',
      rollout('canary', NEW, canaryPaused),
      { status: { status: { promoteFull: true } } },
    ],
    [
      'also paused in the spec: unpause it too',
      { ...rollout('canary', NEW, canaryPaused), spec: { ...rollout('canary', NEW).spec, paused: true } },
      { spec: { spec: { paused: false } }, status: { status: { promoteFull: true } } },
    ],
    ['already stable: nothing to write', rollout('blueGreen', NEW, stable('new')), {}],
  ])('%s', (_name, ro, patches) => {
    expect(promotePatches(ro)).toEqual(patches);
  });
});

describe('rolloutProblem: a Rollout that waits for Keptn\u2019s release', () => {
  const ro = (strategy: NonNullable<RolloutObject['spec']>['strategy']): RolloutObject => ({
    metadata: { name: 'web', namespace: 'app' },
    spec: { strategy },
  });
  it.each<[string, NonNullable<RolloutObject['spec']>['strategy'], RegExp | undefined]>([
    ['blue-green held for promotion', { blueGreen: { activeService: 'web', autoPromotionEnabled: false } }, undefined],
    [
      'blue-green with the default auto-promotion (types.go: true)',
      { blueGreen: { activeService: 'web' } },
      /promotes a new version at once.*autoPromotionEnabled: false/,
    ],
    ['canary with an indefinite pause', { canary: { steps: [{}, { pause: {} }] } }, undefined],
    ['canary with timed pauses only', { canary: { steps: [{ pause: { duration: '1m' } }] } }, /no indefinite pause step.*pause: \{\}/],
    ['canary without steps', { canary: {} }, /no indefinite pause step/],
  ])('%s', (_name, strategy, expected) => {
    const got = rolloutProblem(ro(strategy));
    if (expected) expect(got).toMatch(expected);
    else expect(got).toBeUndefined();
  });
});
