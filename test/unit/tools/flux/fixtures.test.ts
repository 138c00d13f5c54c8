// The Flux rules over objects captured from the real controllers (kustomize-controller 1.9.5, helm-controller 1.6.4).
import { describe, expect, it } from '@jest/globals';
import {
  evaluateGitRepository,
  evaluateHelmRelease,
  evaluateKustomization,
  IMAGE_SETTLE_MS,
  type FluxObject,
  type HelmReleaseContext,
} from '../../../../src/tools/flux/evaluate.js';
import type { InventoryRef } from '../../../../src/tools/flux/inventory.js';
import type { WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';
import { relationFrom, type Expectation } from '../../../../src/judge/verdict.js';
import { fixture } from '../../fixtures.js';

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
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(/BuildFailed: kustomize build failed: accumulating resources/),
    });
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
    expect(evaluateGitRepository(repo, 'keptn-token', expected(C1))).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('unable to clone'),
    });
  });
});

// Captured from the real controllers by test/e2e/verdicts-flux.e2e.test.ts (kustomize-controller 1.9.5,
// helm-controller 1.6.4, kube-controller-manager 1.36 with kwok nodes), managedFields removed.
describe('issue 7 states, as the real controllers report them', () => {
  const workloadsView = (...names: string[]) => {
    const objs = names.map((n) => fixture<WorkloadObject>('flux', n));
    return {
      kustomization: () => undefined,
      helmChart: () => undefined,
      workload: (ref: InventoryRef) =>
        objs.find((o) => o.kind === ref.kind && o.metadata.name === ref.name && o.metadata.namespace === ref.namespace),
    };
  };

  it('a Kustomization without spec.wait is Ready while its Deployment cannot roll out: the service waits (item 2)', () => {
    const v = evaluateKustomization(
      fixture<FluxObject>('flux', 'kustomization-nowait-applied-ready'),
      expected('acec08937e233109babfbb93ca2c9aedc7b2d99b'),
      { ...ctx(), images: ['ghcr.io/podtato/head:0.2.0'], view: workloadsView('deployment-nowait-unschedulable') },
    );
    expect(v).toMatchObject({
      state: 'pending',
      reason: expect.stringContaining('without checking health (spec.wait is off); Deployment flux-nowait-2/web is rolling out'),
    });
  });

  it('a Ready Kustomization whose Deployment still runs the old image fails after the settle window (item 3)', () => {
    const k = fixture<FluxObject>('flux', 'kustomization-otherfile-applied-ready');
    const view = workloadsView('deployment-otherfile-old-image');
    const commit = expected('149e6d5cba356572fe68392e16d1add7043beba8');
    const at = (now: number) =>
      evaluateKustomization(k, commit, { ...ctx(), images: ['ghcr.io/podtato/head:0.2.0'], view, clock: { now, since: () => 0 } });
    expect(at(1).state).toBe('pending');
    expect(at(IMAGE_SETTLE_MS)).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('none of its workloads runs ghcr.io/podtato/head:0.2.0 (they run ghcr.io/podtato/head:0.1.0)'),
    });
  });

  it('a HelmRelease upgraded to the chart built from our commit passes only once it handled the request made after its manager applied (item 1)', () => {
    const hr = fixture<FluxObject>('flux', 'helmrelease-chart-values-upgraded');
    const manager = fixture<FluxObject>('flux', 'kustomization-chart-values-manager');
    const base = { ...ctx(true), manager, images: ['ghcr.io/podtato/head:0.2.0'], view: workloadsView() };
    const commit = expected('a9bc09e1f9659f1b54e3545aaad31dcf53b6613b');
    expect(evaluateHelmRelease(hr, commit, base).state).toBe('pending');
    // Its Deployment is not in this capture: the rule waits to see it before it judges the image.
    expect(evaluateHelmRelease(hr, commit, { ...base, requestedAfterApply: hr.status!.lastHandledReconcileAt! })).toMatchObject({
      state: 'pending',
      reason: expect.stringContaining('waiting to see its Deployment flux-chart-values-1/web'),
    });
  });

  it('a HelmRelease whose chart cannot render keeps retrying (Reconciling=True): not final while its manager works (items 5, 6)', () => {
    const hr = fixture<FluxObject>('flux', 'helmrelease-render-error-retrying');
    const manager = fixture<FluxObject>('flux', 'kustomization-helm-fail-manager');
    const commit = expected('342fee7c6f4c' + '0'.repeat(28));
    expect(evaluateHelmRelease(hr, commit, { ...ctx(true), manager, startGeneration: 2 }).state).toBe('pending');
  });
});

// Captured from the real controllers by the issue 18 scenarios of test/e2e/verdicts-flux.e2e.test.ts (2026-12-07;
// kustomize-controller 1.9.5, helm-controller 1.6.4, kube-controller-manager 1.36 with kwok), managedFields removed.
describe('issue 18 states, as the real controllers report them', () => {
  it('a Kustomization whose healthChecks list only a ConfigMap is Ready and Healthy while its Deployment cannot roll out: the service waits (item 7)', () => {
    const deployment = fixture<WorkloadObject>('flux', 'deployment-healthchecks-other-unschedulable');
    const view = {
      kustomization: () => undefined,
      helmChart: () => undefined,
      workload: (ref: InventoryRef) => (ref.kind === 'Deployment' && ref.name === deployment.metadata.name ? deployment : undefined),
    };
    const v = evaluateKustomization(
      fixture<FluxObject>('flux', 'kustomization-healthchecks-other-applied-ready'),
      expected('7fd46ee881f7969a4bf486c18c6bb7a8ea98c8b8'),
      { ...ctx(), images: ['ghcr.io/podtato/head:0.2.0'], view },
    );
    expect(v).toMatchObject({
      state: 'pending',
      reason: expect.stringContaining(
        '(spec.wait is off and spec.healthChecks does not list it); Deployment flux-hc-other-1/web is rolling out',
      ),
    });
  });

  it.each([
    [
      'helmrelease-tests-succeeded',
      `30dd2e6a43ac${'0'.repeat(28)}`,
      'passed',
      /TestSucceeded: Helm test succeeded .* 1 test hook completed successfully/,
    ],
    // A Job test hook that cannot run: Helm's test times out, Ready=False TestFailed and, with no retry left, Stalled.
    ['helmrelease-tests-failed', `378a52643d69${'0'.repeat(28)}`, 'failed', /TestFailed: Helm test failed .*timeout waiting for/],
  ] as const)('a HelmRelease with spec.test.enable: %s → %s (item 1)', (name, commit, verdict, text) => {
    const v = evaluateHelmRelease(fixture<FluxObject>('flux', name), expected(commit), ctx(true));
    expect(v.state).toBe(verdict);
    expect(v.state === 'passed' || v.state === 'failed' ? v.message : '').toMatch(text);
  });

  it('the same release before its tests ran (TestSuccess back to AwaitingTests, as upgrade.go leaves it) waits', () => {
    const hr = fixture<FluxObject>('flux', 'helmrelease-tests-succeeded');
    const awaiting = (hr.status!.conditions ?? []).map((c) =>
      c.type === 'TestSuccess' ? { ...c, status: 'Unknown' as const, reason: 'AwaitingTests', message: 'awaiting tests' } : c,
    );
    const v = evaluateHelmRelease(
      { ...hr, status: { ...hr.status, conditions: awaiting } },
      expected(`30dd2e6a43ac${'0'.repeat(28)}`),
      ctx(true),
    );
    expect(v).toMatchObject({ state: 'pending', reason: expect.stringContaining('waiting for its Helm tests') });
  });
});
