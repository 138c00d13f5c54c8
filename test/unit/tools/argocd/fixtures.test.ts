// The Argo CD rule over Applications captured from the real controllers (Argo CD 3.5.3), and over the `upstream-*`
// states built from Argo CD's source (see test/fixtures/argocd/README.md).
import { describe, expect, it } from '@jest/globals';
import { evaluateApplication, type Application, type ArgoExpectation } from '../../../../src/tools/argocd/evaluate.js';
import { fixture } from '../../fixtures.js';

const C1 = 'bfccae246a6f0ad5d72a275f1d8c895151a5c509';
const C2 = '79dcd7668c6553cc0df8980468d181db7f45d580';
const INVALID = 'a4e988e29385b4804cb0229e8da1f3a0fe6e3395';
const UNPARSEABLE = 'a1c53c9c6f01546c2343a8ca846b041e0e957b26';
const UNSCHEDULABLE = 'c09c0409c389e634d645377b72dbd6950a40da56';
const PAUSED = 'c8037130c39eb40cc51f6333a2efa431614295d7';
const PRUNE = '90f9e5ec0c2ab9af0de7ee9ff049af0e4fb9f1bb';
const BLOCKED = 'b0a1ab801449fa28cd88b12e0ef3db48d51ccb1c';
const WAVES = 'b8c674d6784fdd32a5a32359d96dee6d924b4e03';

const expectation = (commit: string, extra: Partial<ArgoExpectation> = {}): ArgoExpectation => ({
  commit,
  relation: (sha) => (sha === commit ? 'same' : 'unrelated'),
  sourceIndex: 0,
  ...extra,
});
const LONG_DEGRADED = { degradedForMs: 61_000 };

describe('Application, as Argo CD reports it', () => {
  it.each([
    ['outofsync-initial', C1, {}, 'pending'],
    ['synced-healthy', C1, {}, 'passed'],
    ['synced-healthy', C1, { images: ['nginx:1.0'] }, 'passed'],
    ['synced-healthy', C1, { images: ['docker.io/library/nginx:1.0'] }, 'passed'],
    ['synced-healthy', C1, { images: ['nginx:9.9'] }, 'failed'],
    ['outofsync-new-revision', C2, {}, 'pending'],
    ['sync-failed-invalid-manifest', INVALID, {}, 'failed'],
    ['sync-error-unparseable', UNPARSEABLE, {}, 'failed'],
    ['synced-progressing-rollout', UNSCHEDULABLE, {}, 'pending'],
    ['degraded', UNSCHEDULABLE, {}, 'pending'],
    ['degraded', UNSCHEDULABLE, LONG_DEGRADED, 'failed'],
    ['sync-running', WAVES, {}, 'pending'],
    ['sync-wave-blocked-by-degraded', WAVES, {}, 'failed'],
    ['upstream-degraded-resource-health-persisted', UNSCHEDULABLE, { images: ['nginx:2.0'] }, 'failed'],
    ['upstream-degraded-resource-health-persisted', UNSCHEDULABLE, { images: ['other:1'] }, 'pending'],
    ['upstream-degraded-hpa-without-metrics', UNSCHEDULABLE, { images: ['nginx:2.0'] }, 'pending'],
    ['upstream-degraded-hpa-without-metrics', UNSCHEDULABLE, { images: ['nginx:2.0'], ...LONG_DEGRADED }, 'failed'],
    ['suspended-deployment-paused', PAUSED, {}, 'failed'],
    ['suspended-deployment-paused', PAUSED, { suspended: 'wait' }, 'pending'],
    ['suspended-deployment-paused', PAUSED, { suspended: 'pass', images: ['ghcr.io/podtato/head:0.2.0'] }, 'passed'],
    ['suspended-deployment-paused', PAUSED, { suspended: 'pass', images: ['ghcr.io/podtato/head:0.3.0'] }, 'failed'],
    ['upstream-suspended-deployment-paused', C1, {}, 'failed'],
    ['upstream-suspended-deployment-paused', C1, { suspended: 'pass', images: ['nginx:1.0'] }, 'passed'],
    ['upstream-suspended-deployment-paused', C1, { suspended: 'wait' }, 'pending'],
    ['outofsync-prune-only-automated', PRUNE, {}, 'failed'],
    ['sync-blocked-by-window', BLOCKED, {}, 'pending'],
    ['sync-blocked-by-window', BLOCKED, { syncBlocked: 'sync window deny "0 0 * * *" for 24h' }, 'failed'],
    ['sync-running', WAVES, { syncBlocked: 'sync window deny "0 22 * * *" for 8h' }, 'pending'],
  ] as const)('%s, waiting for %s with %j → %s', (name, commit, extra, expected) => {
    expect(evaluateApplication(fixture<Application>('argocd', name), expectation(commit, extra)).state).toBe(expected);
  });

  it('fails on a comparison error seen after our refresh was handled, though Argo CD names only the branch', () => {
    const app = fixture<Application>('argocd', 'comparison-error');
    expect(evaluateApplication(app, expectation(UNPARSEABLE, { hardRefresh: 'handled' }))).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('Failed to unmarshal "bad.yaml"'),
    });
    expect(evaluateApplication(app, expectation(UNPARSEABLE, { hardRefresh: 'requested' })).state).toBe('pending');
  });

  it('retries a repo-server outage with a normal refresh and fails only when it persists after that', () => {
    const app = fixture<Application>('argocd', 'upstream-comparison-error-repo-server-unavailable');
    expect(evaluateApplication(app, expectation(UNPARSEABLE, { hardRefresh: 'handled' }))).toMatchObject({
      state: 'pending',
      reason: expect.stringContaining('retrying with a normal refresh'),
    });
    expect(evaluateApplication(app, expectation(UNPARSEABLE, { hardRefresh: 'handled', retryRefresh: 'requested' })).state).toBe('pending');
    expect(evaluateApplication(app, expectation(UNPARSEABLE, { hardRefresh: 'handled', retryRefresh: 'handled' }))).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(/still cannot compare .* after a retry: .*code = Unavailable/),
    });
  });

  it("reports Argo CD's message for a failed sync", () => {
    const v = evaluateApplication(fixture<Application>('argocd', 'sync-failed-invalid-manifest'), expectation(INVALID));
    expect(v.state === 'failed' && v.message).toMatch(/Bad_Name|one or more/);
  });

  it('names the Degraded workload that runs our image, and the one that is not ours once the grace period is over', () => {
    const ours = evaluateApplication(
      fixture<Application>('argocd', 'upstream-degraded-resource-health-persisted'),
      expectation(UNSCHEDULABLE, { images: ['nginx:2.0'] }),
    );
    expect(ours).toMatchObject({
      state: 'failed',
      message: expect.stringContaining(
        'Deployment default/demo (Deployment "demo" exceeded its progress deadline), which runs the image we wrote',
      ),
    });
    const hpa = evaluateApplication(
      fixture<Application>('argocd', 'upstream-degraded-hpa-without-metrics'),
      expectation(UNSCHEDULABLE, { images: ['nginx:2.0'], ...LONG_DEGRADED }),
    );
    expect(hpa).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('HorizontalPodAutoscaler default/demo (the HPA was unable to compute the replica count'),
    });
  });

  it('with health kept in the resource tree, names the workload that runs our image after the grace period', () => {
    const v = evaluateApplication(
      fixture<Application>('argocd', 'degraded'),
      expectation(UNSCHEDULABLE, { images: ['nginx:2.0'], ...LONG_DEGRADED }),
    );
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(/keeps resource health in its resource tree .*; our image runs in Deployment default\/demo/),
    });
  });

  it('says what to do about a Suspended app, an unprunable OutOfSync, a blocked sync and a file the app does not deploy', () => {
    const suspended = evaluateApplication(fixture<Application>('argocd', 'upstream-suspended-deployment-paused'), expectation(C1));
    expect(suspended.state === 'failed' && suspended.message).toMatch(
      /is Suspended at \w+: Deployment default\/demo \(Deployment is paused\); .*set argocd.suspended to pass or wait/,
    );
    const prune = evaluateApplication(fixture<Application>('argocd', 'outofsync-prune-only-automated'), expectation(PRUNE));
    expect(prune.state === 'failed' && prune.message).toMatch(
      /until ConfigMap argocd-verdict-\d+\/legacy is pruned.*automated.prune is off/,
    );
    const blocked = evaluateApplication(fixture<Application>('argocd', 'sync-blocked-by-window'), expectation(BLOCKED));
    expect(blocked.state === 'pending' && blocked.reason).toMatch(/blocked by sync window/);
    const elsewhere = evaluateApplication(
      fixture<Application>('argocd', 'synced-healthy'),
      expectation(C1, { images: ['ghcr.io/podtato/head:0.2.0'], files: ['other/kustomization.yaml'] }),
    );
    expect(elsewhere.state === 'failed' && elsewhere.message).toMatch(
      /Application argocd\/demo .* runs nginx:1.0, not ghcr.io\/podtato\/head:0.2.0: the file other\/kustomization.yaml is not what it deploys \(it reads http:\/\/127.0.0.1:44855\/app.git path app\)/,
    );
    // Synced to a later commit that rewrote our file (a later deployment): its health is the verdict, not our image.
    const superseded = evaluateApplication(
      fixture<Application>('argocd', 'synced-healthy'),
      expectation('0'.repeat(40), { relation: () => 'superseded', images: ['ghcr.io/podtato/head:0.2.0'] }),
    );
    expect(superseded.state).toBe('passed');
  });
});
