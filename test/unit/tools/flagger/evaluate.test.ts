// The Flagger rules (src/tools/flagger/evaluate.ts), one row per state a Keptn task can meet. Canary states are named after
// the upstream code that writes them (fluxcd/flagger v1.44 pkg/controller/scheduler.go, scheduler_hooks.go).
import { describe, expect, it } from '@jest/globals';
import {
  canaryProblem,
  canaryURIs,
  evaluateCanary,
  gateOpen,
  gatePatch,
  promoteRefusal,
  revertAtGate,
  type CanaryObject,
  type CanaryView,
} from '../../../../src/tools/flagger/evaluate.js';
import type { WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';
import type { ProgressiveGoal } from '../../../../src/judge/progressive.js';

const OLD = 'ghcr.io/podtato/head:0.1.0';
const NEW = 'ghcr.io/podtato/head:0.2.0';

function deployment(name: string, image: string, ready: number, replicas = ready): WorkloadObject {
  return {
    kind: 'Deployment',
    metadata: { name, namespace: 'app', generation: 2 },
    spec: { replicas, template: { spec: { containers: [{ name: 'web', image }] } } },
    status: {
      observedGeneration: 2,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: ready,
      availableReplicas: ready,
      conditions: [{ type: 'Available', status: ready >= replicas ? 'True' : 'False' }],
    },
  };
}

function canary(phase: string, lastAppliedSpec: string, lastPromotedSpec: string, message = ''): CanaryObject {
  return {
    metadata: { name: 'web', namespace: 'app' },
    spec: {
      targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
      service: { port: 80 },
      analysis: {
        webhooks: [
          { name: 'keptn-promote', type: 'confirm-promotion', url: 'http://gitops.keptn:8082/flagger/gates/promote' },
          { name: 'keptn-rollback', type: 'rollback', url: 'http://gitops.keptn:8082/flagger/gates/rollback' },
        ],
      },
    },
    status: {
      phase,
      lastAppliedSpec,
      lastPromotedSpec,
      ...(message ? { conditions: [{ type: 'Promoted', status: 'Unknown', reason: phase, message }] } : {}),
    },
  };
}

/** Flagger's scheduler states, as the watches hold them: the Canary, its target (the canary) and its primary. */
const STATES: Record<string, CanaryView> = {
  // runConfirmPromotionHooks: the gate answered non-2xx, the phase set to WaitingPromotion; the target scaled up.
  waitingOurs: {
    canary: canary('WaitingPromotion', 'h-new', 'h-old', 'Waiting for approval.'),
    target: deployment('web', NEW, 1),
    primary: deployment('web-primary', OLD, 1),
  },
  // Before Flagger's next tick: the target already has our image, the Canary still holds what it held before.
  waitingStale: {
    canary: canary('WaitingPromotion', 'h-prev', 'h-old'),
    target: deployment('web', NEW, 1),
    primary: deployment('web-primary', OLD, 1),
  },
  // checkCanaryStatus: a new revision detected, analysis under way.
  progressing: {
    canary: canary('Progressing', 'h-new', 'h-old', 'New revision detected, progressing canary analysis.'),
    target: deployment('web', NEW, 0, 1),
    primary: deployment('web-primary', OLD, 1),
  },
  // rollback(): the phase Failed, the target scaled to zero, the primary untouched.
  failedOurs: {
    canary: canary('Failed', 'h-new', 'h-old', 'Canary analysis failed, Deployment scaled to zero.'),
    target: deployment('web', NEW, 0, 0),
    primary: deployment('web-primary', OLD, 1),
  },
  // A roll-back of an earlier version, not yet followed by ours.
  failedStale: {
    canary: canary('Failed', 'h-prev', 'h-old', 'Canary analysis failed, Deployment scaled to zero.'),
    target: deployment('web', NEW, 0, 0),
    primary: deployment('web-primary', OLD, 1),
  },
  // Finalising → SetStatusPhase(Succeeded): the primary carries our template, the target back at zero.
  succeeded: {
    canary: canary('Succeeded', 'h-new', 'h-new', 'Canary analysis completed successfully, promotion finished.'),
    target: deployment('web', NEW, 0, 0),
    primary: deployment('web-primary', NEW, 1),
  },
  promoting: {
    canary: canary('Promoting', 'h-new', 'h-old'),
    target: deployment('web', NEW, 1),
    primary: deployment('web-primary', NEW, 0, 1),
  },
  // setPhaseInitialized: the first version goes straight to the primary.
  initialized: {
    canary: canary('Initialized', 'h-new', 'h-new'),
    target: deployment('web', NEW, 0, 0),
    primary: deployment('web-primary', NEW, 1),
  },
  // The revert applied after a roll-back: the target back at the primary's template, Flagger stays Failed
  // (spec.go hasSpecChanged: no canary run for the last promoted spec).
  revertedAfterFailure: {
    canary: canary('Failed', 'h-new', 'h-old', 'Canary analysis failed, Deployment scaled to zero.'),
    target: deployment('web', OLD, 0, 0),
    primary: deployment('web-primary', OLD, 1),
  },
  otherImage: {
    canary: canary('WaitingPromotion', 'h-new', 'h-old'),
    target: deployment('web', 'ghcr.io/podtato/head:9.9.9', 1),
    primary: deployment('web-primary', OLD, 1),
  },
};

describe('evaluateCanary: where a Keptn task wants the Canary', () => {
  it.each<[string, ProgressiveGoal, keyof typeof STATES, string | undefined, 'passed' | 'failed' | 'pending', RegExp]>([
    [
      'deployment: ours waits at the confirm-promotion gate',
      'preview',
      'waitingOurs',
      'h-prev',
      'passed',
      /holds .*0\.2\.0 as canary.*web-primary runs .*0\.1\.0/,
    ],
    [
      'deployment: a version Flagger held before our commit is not ours',
      'preview',
      'waitingStale',
      'h-prev',
      'pending',
      /not picked up our version/,
    ],
    [
      'deployment: no mark (the image was already in Git) trusts the phase',
      'preview',
      'waitingStale',
      undefined,
      'passed',
      /waiting at the confirm-promotion gate/,
    ],
    ['deployment: analysis still running', 'preview', 'progressing', 'h-prev', 'pending', /Progressing: New revision detected/],
    [
      'deployment: Flagger rolled ours back, in its own words',
      'preview',
      'failedOurs',
      'h-prev',
      'failed',
      /rolled back .*0\.2\.0: Failed: Canary analysis failed.*web-primary still runs .*0\.1\.0/,
    ],
    [
      'deployment: a failure of the version before ours is not ours',
      'preview',
      'failedStale',
      'h-prev',
      'pending',
      /not picked up our version/,
    ],
    ['deployment: the first version is the primary at once', 'preview', 'initialized', '', 'passed', /as its primary already/],
    [
      'deployment: the target runs another image',
      'preview',
      'otherImage',
      'h-prev',
      'failed',
      /runs .*9\.9\.9, not .*0\.2\.0.*check progressive.canary/,
    ],
    ['release: promoted and serving', 'stable', 'succeeded', undefined, 'passed', /promoted .*0\.2\.0: web-primary runs it/],
    ['release: Flagger is copying the template', 'stable', 'promoting', undefined, 'pending', /not promoted .* yet: Promoting/],
    ['release: rolled back instead', 'stable', 'failedOurs', undefined, 'failed', /rolled back instead of promoting/],
    ['release: still waiting at the gate', 'stable', 'waitingOurs', undefined, 'pending', /not promoted/],
    ['rollback: Flagger has not acted on the gate yet', 'rolled-back', 'waitingOurs', undefined, 'pending', /not rolled back yet/],
    [
      'rollback: the primary serves the old version',
      'rolled-back',
      'failedOurs',
      undefined,
      'passed',
      /web-primary serves .*0\.1\.0 again/,
    ],
    [
      'rollback: the revert applied, Flagger stays Failed',
      'rolled-back',
      'revertedAfterFailure',
      undefined,
      'passed',
      /serves .*0\.1\.0 again/,
    ],
    ['rollback: ours was promoted already', 'rolled-back', 'succeeded', undefined, 'pending', /promoted before the roll-back/],
  ])('%s', (_name, goal, state, since, verdict, message) => {
    // The wait saw Flagger analyse our version (h-new) before it got here.
    const got = evaluateCanary(STATES[state]!, { goal, images: [NEW], ...(since !== undefined ? { since } : {}) }, 'h-new');
    expect(got.state).toBe(verdict);
    expect(got.state === 'pending' ? got.reason : got.message).toMatch(message);
  });

  it('a Failed phase with a new hash Flagger has not analysed is the old failure (shouldAdvance syncs the hash first)', () => {
    // Seen in the real Flagger 1.44: a failed Canary writes Failed with the new target's hash ~25 ms before Progressing.
    const got = evaluateCanary(STATES['failedOurs']!, { goal: 'preview', images: [NEW], since: 'h-prev' }, undefined);
    expect(got).toMatchObject({ state: 'pending' });
    expect(evaluateCanary(STATES['failedOurs']!, { goal: 'stable', images: [NEW] }, 'h-other')).toMatchObject({ state: 'pending' });
  });

  it('waits while the canary is not serving yet at WaitingPromotion', () => {
    const view = { ...STATES['waitingOurs']!, target: deployment('web', NEW, 0, 1) };
    expect(evaluateCanary(view, { goal: 'preview', images: [NEW], since: 'h-prev' })).toMatchObject({ state: 'pending' });
  });
});

// Issue 18 items 17 and 18, built from Flagger v1.44 pkg/canary/status.go SetStatusPhase (lastPromotedSpec takes
// lastAppliedSpec on Succeeded) and scheduler.go (a new target template restarts the analysis).
describe('the exact version, and a roll-back after promotion', () => {
  const view = (phase: string, applied: string, promoted: string, targetImage: string, primaryImage: string): CanaryView => ({
    canary: canary(phase, applied, promoted),
    target: deployment('web', targetImage, 1),
    primary: deployment('web-primary', primaryImage, 1),
  });
  it.each<[string, CanaryView, 'passed' | 'failed' | 'pending', RegExp]>([
    ['the tested version promoted', view('Succeeded', 'h-new', 'h-new', NEW, NEW), 'passed', /promoted/],
    [
      'a newer template (same image) replaced the tested version before promotion',
      view('Progressing', 'h-newer', 'h-old', NEW, OLD),
      'failed',
      /now holds h-newer, not h-new that this sequence deployed and tested/,
    ],
    ['promotion under way', view('Promoting', 'h-new', 'h-old', NEW, NEW), 'pending', /has not promoted h-new yet/],
  ])('release: %s', (_name, v, state, text) => {
    const verdict = evaluateCanary(v, { goal: 'stable', images: [NEW], version: 'h-new' });
    expect(verdict.state).toBe(state);
    expect(verdict.state === 'pending' ? verdict.reason : verdict.message).toMatch(text);
  });

  it('promoteRefusal: only the recorded version (none recorded: the images alone decide)', () => {
    expect(promoteRefusal(canary('WaitingPromotion', 'h-new', 'h-old'), 'h-new')).toBeUndefined();
    expect(promoteRefusal(canary('WaitingPromotion', 'h-newer', 'h-old'), undefined)).toBeUndefined();
    expect(promoteRefusal(canary('WaitingPromotion', 'h-newer', 'h-old'), 'h-new')).toMatch(
      /holds version h-newer, not h-new that this sequence deployed and tested.*nothing promoted/,
    );
  });

  it('roll-back after promotion: the revert waiting at the gate is promoted, never our version', () => {
    const back = { goal: 'rolled-back' as const, images: [NEW] };
    const revert = view('WaitingPromotion', 'h-revert', 'h-new', OLD, NEW);
    expect(revertAtGate(revert, back)).toBe(true);
    const verdict = evaluateCanary(revert, back);
    expect(verdict.state === 'pending' && verdict.reason).toMatch(/the revert h-revert waits at the promotion gate and is promoted now/);
    expect(revertAtGate(view('WaitingPromotion', 'h-new2', 'h-new', NEW, NEW), back)).toBe(false); // still ours
    expect(revertAtGate(view('Progressing', 'h-revert', 'h-new', OLD, NEW), back)).toBe(false); // not at the gate yet
    expect(revertAtGate(view('WaitingPromotion', 'h-revert', 'h-old', OLD, OLD), back)).toBe(false); // never promoted
    expect(revertAtGate(revert, { goal: 'rolled-back', images: [] })).toBe(false);
  });
});

describe('gates: open only for the version Flagger holds now', () => {
  const waiting = canary('WaitingPromotion', 'h-new', 'h-old');
  it('closed until Keptn approves', () => {
    expect(gateOpen(waiting, 'promote')).toEqual({ open: false, reason: expect.stringMatching(/release task opens this gate/) });
  });
  it('the approval is the annotation naming the held spec', () => {
    const patch = gatePatch(waiting, 'promote');
    expect(patch).toEqual({ metadata: { annotations: { 'gitops.keptn.sh/promote': 'h-new' } } });
    const approved = { ...waiting, metadata: { ...waiting.metadata, ...patch!.metadata } };
    expect(gateOpen(approved, 'promote').open).toBe(true);
    expect(gateOpen(approved, 'rollback').open).toBe(false);
  });
  it('an approval of an older version does not open the gate for a newer one', () => {
    const newer = {
      ...canary('WaitingPromotion', 'h-newer', 'h-old'),
      metadata: { name: 'web', namespace: 'app', annotations: { 'gitops.keptn.sh/promote': 'h-new' } },
    };
    expect(gateOpen(newer, 'promote')).toEqual({
      open: false,
      reason: expect.stringMatching(/approved for h-new, not for the version h-newer/),
    });
  });
  it('nothing to approve before Flagger holds a version', () => {
    const fresh = { metadata: { name: 'web', namespace: 'app' } };
    expect(gatePatch(fresh, 'rollback')).toBeUndefined();
    expect(gateOpen(fresh, 'rollback').open).toBe(false);
  });
});

describe('canaryProblem: a Canary fit for Keptn\u2019s gate', () => {
  it('accepts a Canary with both gates', () => expect(canaryProblem(canary('Initialized', 'a', 'a'))).toBeUndefined());
  it('refuses one that would promote without asking, naming the webhook to add', () => {
    const c = canary('Initialized', 'a', 'a');
    c.spec!.analysis!.webhooks = [{ type: 'rollback', url: 'http://x/flagger/gates/rollback' }];
    expect(canaryProblem(c)).toMatch(
      /no confirm-promotion webhook, so Flagger would promote without Keptn.s quality gate: add \{ type: confirm-promotion, url: .*\/flagger\/gates\/promote \}/,
    );
  });
  it('refuses skipAnalysis and targets that are not Deployments', () => {
    expect(canaryProblem({ ...canary('Initialized', 'a', 'a'), spec: { ...canary('x', 'a', 'a').spec, skipAnalysis: true } })).toMatch(
      /skipAnalysis/,
    );
    expect(canaryProblem({ ...canary('Initialized', 'a', 'a'), spec: { targetRef: { kind: 'DaemonSet', name: 'x' } } })).toMatch(
      /targets a DaemonSet/,
    );
  });
});

describe('canaryURIs: Flagger\u2019s Services', () => {
  it('preview is <name>-canary, stable <name>-primary, on the Canary\u2019s port', () =>
    expect(canaryURIs(canary('Initialized', 'a', 'a'))).toEqual({
      previewURIsLocal: ['http://web-canary.app:80'],
      stableURIsLocal: ['http://web-primary.app:80'],
    }));
});
