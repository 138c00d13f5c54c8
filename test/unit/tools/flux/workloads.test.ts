// The Flux rules over the workloads a Kustomization or HelmRelease applied, one row per observed state
// (docs/verdicts.md (Flux) is the same table for users). Objects here are built from the controllers' API types and
// source (builders.ts); fixtures.test.ts runs the same rules over objects captured from the real controllers.
import { describe, expect, it } from '@jest/globals';
import { evaluateKustomization, IMAGE_SETTLE_MS } from '../../../../src/tools/flux/evaluate.js';
import { sameImage } from '../../../../src/tools/flux/inventory.js';
import type { WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';
import { OURS, LATER, IMAGE, expected, viewOf, clock, ctx, kustomization, appliedStatus, deployment, inventory } from './builders.js';

describe('Flux Kustomization without spec.wait: the workloads in its inventory (item 2)', () => {
  const noWait = (inv = inventory('app_web_apps_Deployment', 'app_web__Service')) =>
    kustomization(appliedStatus(OURS, { inventory: inv }), { wait: false });
  it.each([
    ['passes when every workload rolled out', [deployment(IMAGE)], 'passed', /rolled out/],
    [
      'waits while a workload is rolling out, saying Flux did not check health',
      [deployment(IMAGE, 'rolling')],
      'pending',
      /without checking health \(spec.wait is off\); Deployment app\/web is rolling out: available 0\/1/,
    ],
    [
      'fails when a workload exceeded its progress deadline',
      [deployment(IMAGE, 'deadline')],
      'failed',
      /Deployment app\/web failed to roll out: progress deadline exceeded/,
    ],
    ['waits until the workload watch has the workload', [], 'pending', /waiting to see its Deployment app\/web/],
  ] as const)('%s', (_name, workloads, verdict, text) => {
    const v = evaluateKustomization(noWait(), expected(), ctx({ view: viewOf({ workloads: [...workloads] }), images: [IMAGE] }));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });

  it('trusts Flux with spec.wait: true (its own kstatus health checks)', () => {
    const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment') }), { wait: true });
    expect(
      evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE, 'rolling')] }), images: [IMAGE] })).state,
    ).toBe('passed');
  });

  // Built from upstream code (test/env's kwok runs no StatefulSet controller): kstatus core.go stsConditions calls an
  // OnDelete StatefulSet Current, so Flux's wait passes it; stateful_set_control.go counts in updatedReplicas the Pods
  // on updateRevision, which under OnDelete moves only when someone deletes a Pod.
  const onDelete = (updatedReplicas: number): WorkloadObject =>
    ({
      kind: 'StatefulSet',
      metadata: { name: 'db', namespace: 'app', generation: 2 },
      spec: { replicas: 2, updateStrategy: { type: 'OnDelete' }, template: { spec: { containers: [{ name: 'db', image: IMAGE }] } } },
      status: {
        observedGeneration: 2,
        replicas: 2,
        readyReplicas: 2,
        currentReplicas: 2 - updatedReplicas,
        updatedReplicas,
        currentRevision: 'db-1',
        updateRevision: 'db-2',
      },
    }) as unknown as WorkloadObject;
  it.each([
    [
      'with spec.wait: true, still waits for an OnDelete StatefulSet whose new template runs on no Pod (kstatus: Current)',
      0,
      'pending',
      /Flux's health check \(kstatus\) passed StatefulSet app\/db, but it has not rolled out: OnDelete update strategy: 0\/2 Pods/,
    ],
    ['with spec.wait: true, passes the OnDelete StatefulSet once every Pod runs the new template', 2, 'passed', /Applied revision/],
  ] as const)('%s', (_name, updated, verdict, text) => {
    const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_db_apps_StatefulSet') }), { wait: true });
    const v = evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [onDelete(updated)] }), images: [IMAGE] }));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });

  it('trusts Flux with spec.healthChecks', () => {
    const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment') }), {
      wait: false,
      healthChecks: [{ kind: 'Deployment', name: 'web', namespace: 'app' }],
    });
    expect(evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE, 'rolling')] }) })).state).toBe('passed');
  });
});

describe('Flux Kustomization whose spec.healthChecks lists only other objects (issue 18 item 7)', () => {
  // Built from kustomize-controller 1.9.4 checkHealth and inventory.ReferenceToObjMetadataSet: without `wait`, only the
  // listed objects are health-checked before Ready=True; a listed Deployment may leave apiVersion out (apps/v1).
  const listing = (healthChecks: unknown[]) =>
    kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment', 'app_db_apps_StatefulSet') }), {
      wait: false,
      healthChecks,
    });
  const dbReady = {
    kind: 'StatefulSet',
    metadata: { name: 'db', namespace: 'app', generation: 1 },
    spec: { replicas: 1, template: { spec: { containers: [{ name: 'db', image: 'postgres:16' }] } } },
    status: {
      observedGeneration: 1,
      replicas: 1,
      readyReplicas: 1,
      currentReplicas: 1,
      updatedReplicas: 1,
      availableReplicas: 1,
      currentRevision: 'db-1',
      updateRevision: 'db-1',
    },
  } as unknown as WorkloadObject;
  const judge = (healthChecks: unknown[], web: WorkloadObject) =>
    evaluateKustomization(listing(healthChecks), expected(), ctx({ view: viewOf({ workloads: [web, dbReady] }), images: [IMAGE] }));
  it.each([
    [
      'waits while the unlisted workload rolls out, saying it was not checked',
      [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', namespace: 'app' }],
      'rolling',
      'pending',
      /without checking health \(spec.wait is off and spec.healthChecks does not list it\); Deployment app\/web is rolling out/,
    ],
    [
      'fails when the unlisted workload cannot roll out',
      [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', namespace: 'app' }],
      'deadline',
      'failed',
      /Deployment app\/web failed to roll out: progress deadline exceeded/,
    ],
    [
      'a healthCheck without namespace names no namespaced workload (ReferenceToObjMetadataSet keeps it empty)',
      [{ kind: 'Deployment', name: 'web' }],
      'rolling',
      'pending',
      /Deployment app\/web is rolling out/,
    ],
    [
      'trusts Flux for the workload it lists (apiVersion left out means apps/v1)',
      [{ kind: 'Deployment', name: 'web', namespace: 'app' }],
      'rolling',
      'passed',
      /rolled out/,
    ],
    [
      'passes once the unlisted workload rolled out',
      [{ kind: 'Secret', apiVersion: 'v1', name: 's', namespace: 'app' }],
      'done',
      'passed',
      /rolled out/,
    ],
  ] as const)('%s', (_name, healthChecks, web, verdict, text) => {
    const v = judge([...healthChecks], deployment(IMAGE, web));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });
});

describe('Flux: the image we wrote must be what runs (item 3)', () => {
  const k = kustomization(appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment') }));
  const old = [deployment('ghcr.io/podtato/head:0.1.0')];
  it('passes when a workload runs the image we wrote', () => {
    expect(evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE)] }), images: [IMAGE] })).state).toBe(
      'passed',
    );
  });
  it('waits a settle window first: the workload watch may trail the Kustomization watch', () => {
    const v = evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: old }), images: [IMAGE], clock: clock(1_000, 0) }));
    expect(v).toEqual({
      state: 'pending',
      reason: expect.stringContaining(`no workload runs ${IMAGE} yet`),
      recheckAt: IMAGE_SETTLE_MS,
      applied: expect.stringContaining(OURS),
    });
  });
  it('asks no image of a later commit that rewrote the file we edited (a later deployment superseded ours)', () => {
    const later = kustomization(appliedStatus(LATER, { inventory: inventory('app_web_apps_Deployment') }));
    const superseded = expected({ [LATER]: 'superseded' });
    const v = evaluateKustomization(
      later,
      superseded,
      ctx({ view: viewOf({ workloads: old }), images: [IMAGE], clock: clock(IMAGE_SETTLE_MS, 0) }),
    );
    expect(v.state).toBe('passed');
  });
  it('then fails, naming the target, what it deploys, the file and what runs instead', () => {
    const v = evaluateKustomization(
      k,
      expected(),
      ctx({
        view: viewOf({ workloads: old }),
        images: [IMAGE],
        files: ['apps/other/kustomization.yaml'],
        clock: clock(IMAGE_SETTLE_MS, 0),
      }),
    );
    expect(v).toMatchObject({ state: 'failed', revision: OURS });
    expect(v.state === 'failed' && v.message).toBe(
      `Kustomization flux-system/app applied our commit ${OURS.slice(0, 12)} and is ready, but none of its workloads runs ${IMAGE} (they run ghcr.io/podtato/head:0.1.0): the file we edited (apps/other/kustomization.yaml) is not part of what Kustomization flux-system/app deploys (spec.path ./apps/web)`,
    );
  });
  it('does not judge images when the inventory holds objects that may run them (a HelmRelease, a CronJob)', () => {
    const withRelease = kustomization(
      appliedStatus(OURS, { inventory: inventory('app_web_apps_Deployment', 'app_web_helm.toolkit.fluxcd.io_HelmRelease') }),
    );
    expect(
      evaluateKustomization(
        withRelease,
        expected(),
        ctx({ view: viewOf({ workloads: old }), images: [IMAGE], clock: clock(IMAGE_SETTLE_MS) }),
      ).state,
    ).toBe('passed');
  });
  it('does not judge images of a roll-back (it writes none)', () => {
    expect(evaluateKustomization(k, expected(), ctx({ view: viewOf({ workloads: old }), images: [] })).state).toBe('passed');
  });
  it.each([
    ['nginx:1.27', 'docker.io/library/nginx:1.27', true],
    ['docker.io/nginx:1.27', 'nginx:1.27', true],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.2.0@sha256:' + 'e'.repeat(64), true],
    ['ghcr.io/podtato/head@sha256:' + 'e'.repeat(64), 'ghcr.io/podtato/head:0.2.0@sha256:' + 'e'.repeat(64), true],
    ['ghcr.io/podtato/head@sha256:' + 'e'.repeat(64), 'ghcr.io/podtato/head:0.2.0', false],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.1.0', false],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/body:0.2.0', false],
    ['registry:5000/app', 'registry:5000/app:latest', true],
    ['ghcr.io/podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.2.0', true],
    ['ghcr.io/podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.1.0', false],
  ] as const)('image %s runs as %s: %s', (wrote, runs, same) => {
    expect(sameImage(wrote, runs)).toBe(same);
  });
});
