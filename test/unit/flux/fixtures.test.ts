// The Flux rules over objects captured from the real controllers (kustomize-controller 1.9.5, helm-controller 1.6.4).
import { describe, expect, it } from '@jest/globals';
import { evaluateGitRepository, evaluateHelmRelease, evaluateKustomization, type FluxObject, type HelmReleaseContext } from '../../../src/flux/evaluate.js';
import { relationFrom, type Expectation } from '../../../src/readiness.js';
import { fixture } from '../fixtures.js';

/** Every other commit is unrelated: these fixtures each name the one commit under test. */
const ctx = (chartFromOurRepo = false): HelmReleaseContext => ({
  view: { kustomization: () => undefined, helmChart: () => undefined, workload: () => undefined },
  images: [],
  clock: { now: 0, since: () => 0 },
  chartFromOurRepo,
});

function expected(commit: string): Expectation {
  const known = relationFrom(commit, new Map());
  return { commit, relation: (sha) => (known(sha) === 'same' ? 'same' : 'unrelated') };
}
const C1 = '738ddbf6793b901abef754589144a82e57bfbe20';
const C2 = 'a8afd3b39578c243a8e23a68436262cbb1ca443c';
const BROKEN = '95f68d02d75bd051b5fd870f0047a7d86c27c752';
const STUCK = '86eb1df762d648ef6da4a944aeea85a41e50d9b7';

describe('Kustomization, as kustomize-controller reports it', () => {
  it.each([
    ['kustomization-ready', C1, 'passed'],
    ['kustomization-stale-ready-after-push', C2, 'pending'],
    ['kustomization-progressing-new-revision', C2, 'pending'],
    ['kustomization-ready-second', C2, 'passed'],
    ['kustomization-build-failed', BROKEN, 'failed'],
    ['kustomization-wait-progressing', STUCK, 'pending'],
    ['kustomization-wait-bad-progressing', STUCK, 'pending'],
    ['kustomization-health-check-failed', STUCK, 'failed'],
    ['kustomization-wait-ready', STUCK, 'passed'],
    ['kustomization-suspended', STUCK, 'failed'],
    ['kustomization-artifact-failed', C1, 'pending'],
  ] as const)('%s, waiting for %s → %s', (name, commit, verdict) => {
    expect(evaluateKustomization(fixture<FluxObject>('flux', name), expected(commit), ctx()).state).toBe(verdict);
  });

  it("carries Flux's message for a build failure", () => {
    const v = evaluateKustomization(fixture<FluxObject>('flux', 'kustomization-build-failed'), expected(BROKEN), ctx());
    expect(v).toMatchObject({ state: 'failed', message: expect.stringMatching(/BuildFailed: kustomize build failed: accumulating resources/) });
  });
});

describe('HelmRelease with its chart in our Git repository, as helm-controller reports it', () => {
  it.each([
    ['helmrelease-ready', STUCK, 'passed'],
    ['helmrelease-ready', C1, 'pending'],
    ['helmrelease-upgrade-failed', `019ed930aafb${'0'.repeat(28)}`, 'failed'],
    // Remediation retries left (Reconciling=True ProgressingWithRetry): helm-controller tries again (item 6).
    ['helmrelease-rolled-back', `24628bffab29${'0'.repeat(28)}`, 'pending'],
    ['helmrelease-state-1', `019ed930aafb${'0'.repeat(28)}`, 'pending'],
    ['helmrelease-state-2', `019ed930aafb${'0'.repeat(28)}`, 'pending'],
    ['helmrelease-state-3', `019ed930aafb${'0'.repeat(28)}`, 'pending'],
    ['helmrelease-upgraded', `b75e00c4ca18${'0'.repeat(28)}`, 'passed'],
  ] as const)('%s, waiting for %s → %s', (name, commit, verdict) => {
    expect(evaluateHelmRelease(fixture<FluxObject>('flux', name), expected(commit), ctx(true)).state).toBe(verdict);
  });
});

describe('GitRepository', () => {
  it('does not fail a deployment on a fetch failure it did not ask for', () => {
    expect(evaluateGitRepository(fixture<FluxObject>('flux', 'gitrepository-fetch-failed'), 'keptn-token', expected(C1))).toBeUndefined();
  });
  it('fails on a fetch failure that answers our reconcile request', () => {
    const repo = fixture<FluxObject>('flux', 'gitrepository-fetch-failed');
    repo.status = { ...repo.status, lastHandledReconcileAt: 'keptn-token' };
    expect(evaluateGitRepository(repo, 'keptn-token', expected(C1))).toMatchObject({ state: 'failed', message: expect.stringContaining('unable to clone') });
  });
});
