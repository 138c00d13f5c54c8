// A Suspended Application holding Argo Rollouts, under `argocd.suspended: fail` (the direct strategy): the rule over
// Applications and Rollouts captured together from Argo CD 3.5.3 and Argo Rollouts 1.10.1
// (test/e2e/rollouts.e2e.test.ts, ROLLOUTS_CAPTURE; see test/fixtures/argocd/README.md), and states derived from them
// as named beside each row.
import { describe, expect, it } from '@jest/globals';
import { pauseEnd, type PausableRollout } from '../../../../src/platform/k8s/rollout-pause.js';
import { evaluateApplication, type Application, type ArgoExpectation } from '../../../../src/tools/argocd/evaluate.js';
import { RESUME_SETTLE_MS } from '../../../../src/tools/argocd/suspended.js';
import { fixture } from '../../fixtures.js';

interface Pair {
  application: Application;
  rollout: PausableRollout;
}
const TIMED = fixture<Pair>('argocd', 'suspended-rollout-timed-pause');
const INDEFINITE = fixture<Pair>('argocd', 'suspended-rollout-indefinite-pause');
const commitOf = (p: Pair) => p.application.status!.sync!.revision!;

const expectation = (p: Pair, extra: Partial<ArgoExpectation> = {}): ArgoExpectation => ({
  commit: commitOf(p),
  relation: (sha) => (sha === commitOf(p) ? 'same' : 'unrelated'),
  sourceIndex: 0,
  ...extra,
});
const withStatus = (ro: PausableRollout, status: PausableRollout['status']): PausableRollout => ({
  ...ro,
  status: { ...ro.status, ...status },
});
/** Derived: the timed pause over, the controller finished the steps (Argo CD not yet reassessed). */
const RESUMED = withStatus(TIMED.rollout, {
  phase: 'Healthy',
  message: '',
  pauseConditions: null,
  controllerPause: false,
  currentStepIndex: 2,
});
/** Derived: the persisted health (`controller.resource.health.persist`) names another resource Suspended. */
const withPersistedHealth = (app: Application): Application => ({
  ...app,
  status: {
    ...app.status,
    resources: [
      ...(app.status?.resources ?? []),
      {
        group: 'apps',
        kind: 'Deployment',
        namespace: 'other',
        name: 'paused',
        health: { status: 'Suspended', message: 'Deployment is paused' },
      },
    ],
  },
});

describe('the captured Rollouts (Argo Rollouts 1.10.1)', () => {
  it('a canary at `pause: {duration: 5s}` ends its pause by itself; at `pause: {}` it does not', () => {
    expect(pauseEnd(TIMED.rollout)).toEqual({ ends: 'itself', what: 'in a timed pause (5s) at step 1' });
    expect(pauseEnd(INDEFINITE.rollout)).toMatchObject({ ends: 'never', what: 'at an indefinite pause step (step 1: pause: {})' });
  });
});

describe('Suspended at our commit, argocd.suspended: fail (issue 18 item 18)', () => {
  it.each<[string, Pair, Partial<ArgoExpectation>, 'passed' | 'failed' | 'pending', RegExp]>([
    [
      'a Rollout in a timed pause: it resumes on its own',
      TIMED,
      { rollouts: [TIMED.rollout] },
      'pending',
      /is Suspended at \w+: Rollout ro-argocd-canary-1\/web is in a timed pause \(5s\) at step 1; it resumes on its own/,
    ],
    [
      'a Rollout at an indefinite pause: nothing resumes it under direct; what to do',
      INDEFINITE,
      { rollouts: [INDEFINITE.rollout] },
      'failed',
      /Rollout ro-argocd-canary-1\/web is at an indefinite pause step \(step 1: pause: \{\}\), which nothing resumes under this strategy: promote it \(kubectl argo rollouts promote\), or deploy it with a progressive strategy \(settings progressive.rollout\).*give the step a duration/,
    ],
    [
      'derived: the same timed pause while a paused Deployment is Suspended too (persisted health)',
      { ...TIMED, application: withPersistedHealth(TIMED.application) },
      { rollouts: [TIMED.rollout] },
      'failed',
      /Suspended at \w+: Deployment other\/paused \(Deployment is paused\); it does not resume on its own/,
    ],
    [
      'derived: the Rollout already left the pause and is Progressing (Argo CD has not reassessed)',
      TIMED,
      {
        rollouts: [
          withStatus(TIMED.rollout, {
            phase: 'Progressing',
            message: 'more replicas need to be updated',
            pauseConditions: null,
            controllerPause: false,
          }),
        ],
      },
      'pending',
      /computed before Rollout ro-argocd-canary-1\/web is Progressing; waiting for Argo CD to reassess/,
    ],
    [
      'derived: the Rollout finished right after the timed pause this wait saw',
      TIMED,
      { rollouts: [RESUMED], rolloutResumedForMs: 2_000 },
      'pending',
      /computed before a Rollout left its timed pause/,
    ],
    [
      'derived: still Suspended long after the timed pause ended: something else is',
      TIMED,
      { rollouts: [RESUMED], rolloutResumedForMs: RESUME_SETTLE_MS },
      'failed',
      /is Suspended at \w+; it does not resume on its own/,
    ],
    [
      'the Rollouts not read (no grant): as without them, saying why',
      TIMED,
      { rolloutsUnread: 'forbidden' },
      'failed',
      /could not be read to tell a timed pause: forbidden/,
    ],
    ['the Rollouts not read yet (another cluster): as before', TIMED, {}, 'failed', /it does not resume on its own \(set argocd.suspended/],
    ['argocd.suspended: wait', INDEFINITE, { suspended: 'wait', rollouts: [INDEFINITE.rollout] }, 'pending', /is Suspended/],
    [
      'argocd.suspended: pass (a progressive strategy)',
      INDEFINITE,
      { suspended: 'pass', images: ['ghcr.io/podtato/head:0.3.0'], rollouts: [INDEFINITE.rollout] },
      'passed',
      /Suspended \(argocd.suspended: pass\)/,
    ],
  ])('%s', (_name, pair, extra, state, message) => {
    const verdict = evaluateApplication(pair.application, expectation(pair, extra));
    expect(verdict.state).toBe(state);
    expect(verdict.state === 'pending' ? verdict.reason : verdict.message).toMatch(message);
  });
});
