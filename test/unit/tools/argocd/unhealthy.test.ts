// Synced to our commit but not Healthy (issue 24 item 2): the answer says our commit is applied and names what is not
// Healthy, with Argo CD's message. Applications captured from Argo CD 3.5.3 (test/fixtures/argocd/README.md);
// workloads built from the Deployment controller's status fields.
import { describe, expect, it } from '@jest/globals';
import { evaluateApplication, type Application, type ArgoExpectation } from '../../../../src/tools/argocd/evaluate.js';
import { argoWorkloadHealth } from '../../../../src/tools/argocd/unhealthy.js';
import type { WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';
import { fixture } from '../../fixtures.js';

const UNSCHEDULABLE = 'c09c0409c389e634d645377b72dbd6950a40da56';
const expectation = (extra: Partial<ArgoExpectation> = {}): ArgoExpectation => ({
  commit: UNSCHEDULABLE,
  relation: (sha) => (sha === UNSCHEDULABLE ? 'same' : 'unrelated'),
  sourceIndex: 0,
  ...extra,
});

describe('an Application synced to our commit but Progressing', () => {
  const app = fixture<Application>('argocd', 'synced-progressing-rollout');

  it('is applied, and names the workloads the driver read with why (resource health kept in the app tree)', () => {
    const v = evaluateApplication(
      app,
      expectation({ unhealthy: ['Deployment default/demo: Waiting for rollout to finish: 0 out of 1 new replicas have been updated...'] }),
    );
    expect(v).toEqual({
      state: 'pending',
      reason: `Application argocd/demo is Progressing at ${UNSCHEDULABLE}; not Healthy: Deployment default/demo: Waiting for rollout to finish: 0 out of 1 new replicas have been updated...`,
      applied: UNSCHEDULABLE,
    });
  });

  it('takes the resource health Argo CD persists when it does (controller.resource.health.persist)', () => {
    const persisted: Application = {
      ...app,
      status: {
        ...app.status,
        resources: app.status!.resources!.map((r) =>
          r.kind === 'Deployment'
            ? {
                ...r,
                health: { status: 'Progressing', message: 'Waiting for rollout to finish: 1 old replicas are pending termination...' },
              }
            : { ...r, health: { status: 'Healthy' } },
        ),
      },
    };
    expect(evaluateApplication(persisted, expectation({ unhealthy: ['ignored'] }))).toMatchObject({
      state: 'pending',
      reason: expect.stringMatching(
        /; not Healthy: Deployment default\/demo is Progressing: Waiting for rollout to finish: 1 old replicas are pending termination\.\.\.$/,
      ),
      applied: UNSCHEDULABLE,
    });
  });

  it('is applied while Degraded within its grace period too', () => {
    expect(evaluateApplication(fixture<Application>('argocd', 'degraded'), expectation())).toMatchObject({
      state: 'pending',
      applied: UNSCHEDULABLE,
    });
  });

  it('is not applied while it compares another revision', () => {
    expect(evaluateApplication(fixture<Application>('argocd', 'outofsync-initial'), expectation())).not.toHaveProperty('applied');
  });
});

describe("Argo CD's health message for a live workload (gitops-engine pkg/health/health_deployment.go)", () => {
  const deployment = (status: WorkloadObject['status'], spec: Partial<NonNullable<WorkloadObject['spec']>> = {}): WorkloadObject => ({
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', generation: 3 },
    spec: { replicas: 1, ...spec },
    status: { observedGeneration: 3, ...status },
  });
  it.each<[string, WorkloadObject, string | undefined]>([
    ['healthy', deployment({ replicas: 1, updatedReplicas: 1, availableReplicas: 1 }), undefined],
    [
      'no Pod of the new template (a quota full)',
      deployment({ replicas: 1, updatedReplicas: 0, availableReplicas: 1 }),
      'Waiting for rollout to finish: 0 out of 1 new replicas have been updated...',
    ],
    [
      'old Pods still there',
      deployment({ replicas: 2, updatedReplicas: 1, availableReplicas: 1 }),
      'Waiting for rollout to finish: 1 old replicas are pending termination...',
    ],
    [
      'new Pods not available',
      deployment({ replicas: 1, updatedReplicas: 1, availableReplicas: 0 }),
      'Waiting for rollout to finish: 0 of 1 updated replicas are available...',
    ],
    [
      'progress deadline exceeded',
      deployment({ conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] }),
      'Deployment "web" exceeded its progress deadline',
    ],
    [
      'spec not observed yet',
      deployment({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }),
      'Waiting for rollout to finish: observed deployment generation less than desired generation',
    ],
    ['paused', deployment({}, { paused: true }), 'Deployment is paused'],
  ])('%s', (_name, obj, want) => {
    expect(argoWorkloadHealth('Deployment', obj)).toBe(want);
  });

  it('reads other workloads by their rollout counts', () => {
    expect(
      argoWorkloadHealth('StatefulSet', {
        metadata: { name: 'db', generation: 1 },
        spec: { replicas: 2 },
        status: { observedGeneration: 1, replicas: 2, readyReplicas: 1 },
      }),
    ).toBe('ready 1/2');
  });
});
