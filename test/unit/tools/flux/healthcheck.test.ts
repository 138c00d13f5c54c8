// kustomize-controller's running health check (issue 24 items 1 and 2). Objects built from kustomize-controller 1.9.5
// kustomization_controller.go: `reconcile` writes the new inventory before `checkHealth`, which marks Reconciling=True and
// Healthy=Unknown "Running health checks for revision <rev> with a timeout of <GetTimeout()>" while it waits.
import { describe, expect, it } from '@jest/globals';
import { evaluateKustomization } from '../../../../src/tools/flux/evaluate.js';
import { runningHealthCheck } from '../../../../src/tools/flux/healthcheck.js';
import type { WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';
import { OURS, OLD, IMAGE, expected, ctx, clock, ready, reconciling, kustomization, viewOf, deployment, inventory } from './builders.js';

const FAILING = 'e'.repeat(40);
const START = Date.parse('2026-12-07T10:00:00Z');

/** A Kustomization checking the health of `revision`, begun at START (both conditions' transitions). */
const checking = (revision: string, timeout = '5m0s', healthySince = '2026-12-07T10:00:00Z') => {
  const message = `Running health checks for revision main@sha1:${revision} with a timeout of ${timeout}`;
  return kustomization(
    {
      observedGeneration: 2,
      lastAppliedRevision: `main@sha1:${OLD}`,
      lastAttemptedRevision: `main@sha1:${revision}`,
      inventory: inventory('app_web_apps_Deployment'),
      conditions: [
        ready('Unknown', 'Progressing', 'Reconciliation in progress'),
        { ...reconciling('Progressing', message), lastTransitionTime: '2026-12-07T10:00:00Z' },
        { type: 'Healthy', status: 'Unknown', reason: 'Progressing', message, lastTransitionTime: healthySince },
      ],
    },
    { wait: true, timeout: '5m' },
  );
};

/** The Deployment while no Pod of the new template can be created (a quota full): kstatus "updated 0/1". */
const stuck: WorkloadObject = {
  ...deployment(IMAGE),
  status: {
    observedGeneration: 5,
    replicas: 1,
    updatedReplicas: 0,
    readyReplicas: 1,
    availableReplicas: 1,
    conditions: [
      { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' },
      { type: 'Available', status: 'True' },
      { type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "web-6c" is forbidden: exceeded quota' },
    ],
  },
};

describe('Flux Kustomization still checking the health of an earlier revision (issue 24 item 1)', () => {
  const known = expected({ [OLD]: 'unrelated', [FAILING]: 'unrelated', [OURS.slice(0, 12)]: 'same' });

  it('says which revision, which workload fails there, until when, and how to shorten it; the tool is busy until then', () => {
    const v = evaluateKustomization(checking(FAILING), known, ctx({ view: viewOf({ workloads: [stuck] }), clock: clock(START + 20_000) }));
    expect(v).toEqual({
      state: 'pending',
      reason:
        'Kustomization flux-system/app is still checking the health of the failing revision eeeeeeeeeeee (Deployment app/web is not ready: updated 0/1) until about 2026-12-07T10:05:00.000Z (spec.timeout 5m0s); our commit is applied after that, and the deadline counts from then (kustomize-controller checks one revision at a time: a shorter spec.timeout, or its CancelHealthCheckOnNewRevision feature gate, ends such a wait sooner)',
      busyUntil: START + 300_000,
    });
  });

  it('counts from Healthy when it turned Unknown later than Reconciling turned True (an earlier attempt left Reconciling)', () => {
    expect(runningHealthCheck(checking(FAILING, '30s', '2026-12-07T10:02:00Z'))).toEqual({
      revision: `main@sha1:${FAILING}`,
      sha: FAILING,
      timeout: '30s',
      until: START + 120_000 + 30_000,
    });
  });

  it('is busy only until the end the controller gave, also when its status outlives it (a controller stopped mid-check)', () => {
    const v = evaluateKustomization(checking(FAILING, '30s'), known, ctx({ clock: clock(START + 90_000) }));
    expect(v).toMatchObject({ state: 'pending', busyUntil: START + 30_000 });
  });

  it('leaves the time and busyUntil out when the timeout is not one the service reads (a fraction)', () => {
    const v = evaluateKustomization(checking(FAILING, '1m30.5s'), known, ctx());
    expect(v).toMatchObject({ state: 'pending', reason: expect.stringContaining('revision eeeeeeeeeeee (spec.timeout 1m30.5s)') });
    expect(v).not.toHaveProperty('busyUntil');
  });

  it('asks how the checked revision relates to ours before it says anything of it', () => {
    const v = evaluateKustomization(checking(FAILING), expected(), ctx());
    expect(v).toMatchObject({ state: 'pending', unknownRevision: FAILING });
  });
});

describe('Flux Kustomization checking the health of our own revision (issue 24 item 2)', () => {
  it('says it applied ours and names the workload the check waits for, in kstatus words', () => {
    const v = evaluateKustomization(checking(OURS), expected(), ctx({ view: viewOf({ workloads: [stuck] }) }));
    expect(v).toEqual({
      state: 'pending',
      reason:
        'Kustomization flux-system/app applied aaaaaaaaaaaa and kustomize-controller is checking its health until about 2026-12-07T10:05:00.000Z (spec.timeout 5m0s): Deployment app/web is not ready: updated 0/1',
      applied: `main@sha1:${OURS}`,
    });
  });

  it('names no workload when every checked one is ready (the check has yet to see it)', () => {
    const v = evaluateKustomization(checking(OURS), expected(), ctx({ view: viewOf({ workloads: [deployment(IMAGE)] }) }));
    expect(v).toMatchObject({
      state: 'pending',
      reason: expect.stringMatching(/checking its health until about \S+ \(spec.timeout 5m0s\)$/),
    });
  });
});
