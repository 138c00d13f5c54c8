// Builders for the Flux rule tests: objects shaped after the controllers' API types and source (kustomize-controller
// 1.9, helm-controller 1.6, source-controller 1.9), and a view, clock and context to judge them with.
import type { Clock, FluxObject, FluxView, HelmReleaseContext } from '../../../../src/tools/flux/evaluate.js';
import type { WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';
import { relationFrom, type Expectation, type Relation } from '../../../../src/judge/verdict.js';

export const OURS = 'a'.repeat(40);
export const OLD = 'b'.repeat(40);
export const LATER = 'c'.repeat(40);
export const IMAGE = 'ghcr.io/podtato/head:0.2.0';
export const expected = (
  known: Record<string, Relation> = {
    [OLD]: 'unrelated',
    [LATER]: 'descendant',
    [OLD.slice(0, 12)]: 'unrelated',
    [OURS.slice(0, 12)]: 'same',
  },
): Expectation => ({
  commit: OURS,
  relation: relationFrom(OURS, new Map(Object.entries(known))),
});

export function viewOf(objects: { kustomizations?: FluxObject[]; charts?: FluxObject[]; workloads?: WorkloadObject[] } = {}): FluxView {
  const find = <T extends { metadata: { name: string; namespace?: string } }>(list: T[] | undefined, ns: string, name: string) =>
    list?.find((o) => o.metadata.name === name && (o.metadata.namespace ?? '') === ns);
  return {
    kustomization: (ns, name) => find(objects.kustomizations, ns, name),
    helmChart: (ns, name) => find(objects.charts, ns, name),
    workload: (ref) =>
      objects.workloads?.find((w) => w.kind === ref.kind && w.metadata.name === ref.name && w.metadata.namespace === ref.namespace),
  };
}
export const clock = (now = 0, firstSeen = 0): Clock => ({ now, since: () => firstSeen });
export const ctx = (extra: Partial<HelmReleaseContext> = {}): HelmReleaseContext => ({
  view: viewOf(),
  images: [],
  clock: clock(),
  chartFromOurRepo: false,
  ...extra,
});

export const ready = (status: 'True' | 'False' | 'Unknown', reason: string, message = '', observedGeneration = 2) => ({
  type: 'Ready',
  status,
  reason,
  message,
  observedGeneration,
});
export const stalled = (reason: string, message = '') => ({
  type: 'Stalled',
  status: 'True' as const,
  reason,
  message,
  observedGeneration: 2,
});
export const reconciling = (reason: string, message = '') => ({
  type: 'Reconciling',
  status: 'True' as const,
  reason,
  message,
  observedGeneration: 2,
});

export function kustomization(status: FluxObject['status'], spec: Record<string, unknown> = { wait: true }, name = 'app'): FluxObject {
  return {
    kind: 'Kustomization',
    metadata: { name, namespace: 'flux-system', generation: 2 },
    spec: { path: './apps/web', sourceRef: { kind: 'GitRepository', name: 'fleet' }, ...spec },
    status,
  };
}
export const appliedStatus = (sha = OURS, extra: Partial<NonNullable<FluxObject['status']>> = {}): FluxObject['status'] => ({
  observedGeneration: 2,
  lastAppliedRevision: `main@sha1:${sha}`,
  lastAttemptedRevision: `main@sha1:${sha}`,
  conditions: [ready('True', 'ReconciliationSucceeded', `Applied revision: main@sha1:${sha}`)],
  ...extra,
});
export const cast = (s: unknown) => s as FluxObject['status'];
export const deployment = (image: string, rollout: 'done' | 'rolling' | 'deadline' = 'done'): WorkloadObject => ({
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'app', generation: 5 },
  spec: {
    replicas: 1,
    progressDeadlineSeconds: 600,
    template: { spec: { containers: [{ name: 'web', image }] } },
  } as WorkloadObject['spec'],
  status:
    rollout === 'done'
      ? {
          observedGeneration: 5,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
          conditions: [
            { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
            { type: 'Available', status: 'True' },
          ],
        }
      : rollout === 'rolling'
        ? {
            observedGeneration: 5,
            replicas: 1,
            updatedReplicas: 1,
            readyReplicas: 0,
            availableReplicas: 0,
            conditions: [
              { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' },
              { type: 'Available', status: 'False' },
            ],
          }
        : {
            observedGeneration: 5,
            replicas: 1,
            updatedReplicas: 1,
            conditions: [
              {
                type: 'Progressing',
                status: 'False',
                reason: 'ProgressDeadlineExceeded',
                message: 'ReplicaSet "web-5d" has timed out progressing.',
              },
            ],
          },
});
export const inventory = (...ids: string[]) => ({ entries: ids.map((id) => ({ id, v: 'v1' })) });
