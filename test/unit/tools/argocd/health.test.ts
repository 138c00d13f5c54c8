import { describe, expect, it } from '@jest/globals';
import type { Application } from '../../../../src/tools/argocd/application.js';
import { evaluateApplication, OPERATION_INFO_KEY } from '../../../../src/tools/argocd/evaluate.js';
import { runsNoPodsByDesign, sameImage } from '../../../../src/tools/argocd/health.js';

describe('images', () => {
  it.each([
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.2.0', true],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.1.0', false],
    ['nginx:1.0', 'docker.io/library/nginx:1.0', true],
    ['nginx', 'nginx:latest', true],
    ['ghcr.io/podtato/head@sha256:' + 'a'.repeat(64), 'ghcr.io/podtato/head:0.2.0@sha256:' + 'a'.repeat(64), true],
    ['ghcr.io/podtato/head@sha256:' + 'a'.repeat(64), 'ghcr.io/podtato/head:0.2.0', false],
    ['localhost:5000/head:1', 'localhost:5000/head:1', true],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/body:0.2.0', false],
    ['podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.2.0', true],
    ['podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.1.0', false],
  ])('sameImage(%s, %s) = %s', (written, running, same) => expect(sameImage(written, running)).toBe(same));
});

// Workloads that run no Pods by design (issue 18 item 10). Built from Argo CD's code: status.summary.images holds the
// images of Pods only (controller/cache/info.go populatePodInfo), the sync result the images of the applied manifest
// (gitops-engine kube.GetResourceImages, which reads spec.jobTemplate for CronJobs); a CronJob not yet scheduled and a
// Deployment with 0 replicas are Healthy (resource_customizations/batch/CronJob/health.lua, health_deployment.go).
describe('workloads that run no Pods by design', () => {
  const OURS = 'a'.repeat(40);
  const OURS_IMAGE = 'ghcr.io/podtato/head:0.2.0';
  const healthyNoPods = (resource: { group: string; kind: string }, tag = 'trig-1'): Application => ({
    metadata: { name: 'podtato', namespace: 'argocd' },
    spec: { source: { repoURL: 'http://git/fleet.git', path: 'app', targetRevision: 'main' } },
    status: {
      sync: { status: 'Synced', revision: OURS },
      health: { status: 'Healthy' },
      reconciledAt: '2026-11-24T10:00:10Z',
      summary: {},
      operationState: {
        phase: 'Succeeded',
        finishedAt: '2026-11-24T10:00:05Z',
        operation: { info: [{ name: OPERATION_INFO_KEY, value: tag }] },
        syncResult: { revision: OURS, resources: [{ ...resource, namespace: 'podtato', name: 'web', images: [OURS_IMAGE] }] },
      },
    },
  });
  const expected = { commit: OURS, relation: () => 'same' as const, sourceIndex: 0, operationTag: 'trig-1', images: [OURS_IMAGE] };
  it.each([
    ['CronJob', {}, 'a CronJob runs Pods only while one of its Jobs runs'],
    ['Deployment', { replicas: 0 }, 'scaled to 0 replicas'],
    ['StatefulSet', { replicas: 0 }, 'scaled to 0 replicas'],
    ['Deployment', { replicas: 1 }, undefined],
    ['Deployment', {}, undefined],
    ['DaemonSet', { replicas: 0 }, undefined],
  ])('runsNoPodsByDesign(%s %j) = %s', (kind, spec, why) => expect(runsNoPodsByDesign({ kind, spec })).toBe(why));
  it('passes a CronJob not yet run on the template our sync applied', () => {
    expect(evaluateApplication(healthyNoPods({ group: 'batch', kind: 'CronJob' }), expected)).toMatchObject({
      state: 'passed',
      message: expect.stringContaining('CronJob podtato/web runs no Pods by design, a CronJob runs Pods only while one of its Jobs runs'),
    });
  });
  it('passes a Deployment the driver read as scaled to 0, and only then', () => {
    const a = healthyNoPods({ group: 'apps', kind: 'Deployment' });
    const podless = [{ group: 'apps', kind: 'Deployment', namespace: 'podtato', name: 'web', why: 'scaled to 0 replicas' }];
    expect(evaluateApplication(a, { ...expected, podless })).toMatchObject({ state: 'passed' });
    expect(evaluateApplication(a, expected)).toMatchObject({ state: 'failed', message: expect.stringContaining('not what it deploys') });
  });
  it('does not take the template of a sync that is not ours (an older sync result)', () => {
    const a = healthyNoPods({ group: 'batch', kind: 'CronJob' }, 'someone-else');
    a.status!.operationState!.syncResult!.revision = 'b'.repeat(40);
    const older = { ...expected, relation: (sha: string) => (sha === OURS ? ('same' as const) : ('unrelated' as const)) };
    expect(evaluateApplication(a, older).state).toBe('failed');
  });
});
