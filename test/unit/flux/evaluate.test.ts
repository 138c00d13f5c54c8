import { describe, expect, it } from '@jest/globals';
import { evaluateGitRepository, evaluateHelmRelease, evaluateKustomization, type FluxObject } from '../../../src/flux/evaluate.js';
import { relationFrom, type Relation, type Expectation } from '../../../src/readiness.js';

const OURS = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const LATER = 'c'.repeat(40);
const target = (known: Record<string, Relation> = { [OLD]: 'unrelated', [LATER]: 'descendant' }): Expectation => ({ commit: OURS, relation: relationFrom(OURS, new Map(Object.entries(known))) });

function kustomization(status: FluxObject['status'], extra: Partial<FluxObject> = {}): FluxObject {
  return { kind: 'Kustomization', metadata: { name: 'app', namespace: 'flux-system', generation: 2 }, spec: { sourceRef: { kind: 'GitRepository', name: 'fleet' } }, status, ...extra };
}
const ready = (status: 'True' | 'False' | 'Unknown', reason: string, message = '', observedGeneration = 2) => ({ type: 'Ready', status, reason, message, observedGeneration });

describe('Flux Kustomization', () => {
  it.each([
    ['passes once our commit is applied and Ready at the current generation', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OURS}`, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('True', 'ReconciliationSucceeded', `Applied revision: main@sha1:${OURS}`)] }, 'passed'],
    ['passes on a later commit that contains ours', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${LATER}`, lastAttemptedRevision: `main@sha1:${LATER}`, conditions: [ready('True', 'ReconciliationSucceeded')] }, 'passed'],
    ['waits while the old revision is still the Ready one (the stale-success trap)', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OLD}`, lastAttemptedRevision: `main@sha1:${OLD}`, conditions: [ready('True', 'ReconciliationSucceeded')] }, 'pending'],
    ['ignores a leftover failure of an older revision', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OLD}`, lastAttemptedRevision: `main@sha1:${OLD}`, conditions: [ready('False', 'BuildFailed', 'old breakage')] }, 'pending'],
    ['fails early when our revision cannot be built', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OLD}`, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('False', 'BuildFailed', 'kustomize build failed: accumulating resources')] }, 'failed'],
    ['fails when health checks fail at our revision', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OURS}`, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('False', 'HealthCheckFailed', 'timeout waiting for: [Deployment/default/app status: InProgress]')] }, 'failed'],
    ['waits while reconciling our revision', { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OLD}`, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('Unknown', 'Progressing', 'Reconciliation in progress'), { type: 'Reconciling', status: 'True', reason: 'Progressing' }] }, 'pending'],
    ['waits when Ready describes an older generation', { observedGeneration: 1, lastAppliedRevision: `main@sha1:${OURS}`, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('True', 'ReconciliationSucceeded', '', 1)] }, 'pending'],
    ['fails when stalled at our revision', { observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('False', 'InvalidPath'), { type: 'Stalled', status: 'True', reason: 'InvalidPath', message: 'path ./nope not found' }] }, 'failed'],
  ] as const)('%s', (_name, status, expected) => {
    expect(evaluateKustomization(kustomization(status as unknown as FluxObject["status"]), target()).state).toBe(expected);
  });

  it("reports Flux's own message when it fails", () => {
    const v = evaluateKustomization(kustomization({ observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('False', 'BuildFailed', 'kustomize build failed: missing resource x.yaml')] }), target());
    expect(v).toMatchObject({ state: 'failed', message: expect.stringContaining('BuildFailed: kustomize build failed: missing resource x.yaml') });
  });

  it('asks the waiter about a revision it cannot place', () => {
    const v = evaluateKustomization(kustomization({ observedGeneration: 2, lastAppliedRevision: `main@sha1:${'d'.repeat(40)}`, conditions: [ready('True', 'ReconciliationSucceeded')] }), target());
    expect(v).toEqual({ state: 'pending', reason: expect.any(String), unknownRevision: 'd'.repeat(40) });
  });

  it('reports a suspended Kustomization at once', () => {
    expect(evaluateKustomization(kustomization({}, { spec: { suspend: true } }), target())).toMatchObject({ state: 'failed', message: expect.stringContaining('suspended') });
  });
});

describe('Flux HelmRelease behind its Kustomization', () => {
  const applied = kustomization({ observedGeneration: 2, lastAppliedRevision: `main@sha1:${OURS}`, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('True', 'ReconciliationSucceeded')] });
  const release = (conditions: unknown[], observedGeneration = 3): FluxObject => ({ kind: 'HelmRelease', metadata: { name: 'app', namespace: 'apps', generation: 3 }, status: { observedGeneration, conditions: conditions as never } });

  it('passes when the Kustomization applied our commit and the release is Ready at the new generation', () => {
    expect(evaluateHelmRelease(release([{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', observedGeneration: 3 }]), applied, target()).state).toBe('passed');
  });
  it('waits for the release to observe the new spec', () => {
    expect(evaluateHelmRelease(release([{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', observedGeneration: 2 }], 2), applied, target()).state).toBe('pending');
  });
  it('fails with the upgrade failure (rolled back)', () => {
    const v = evaluateHelmRelease(release([{ type: 'Ready', status: 'False', reason: 'RollbackSucceeded', message: 'Helm rollback to previous release apps/app.v1 succeeded', observedGeneration: 3 }]), applied, target());
    expect(v).toMatchObject({ state: 'failed', message: expect.stringContaining('RollbackSucceeded') });
  });
  it('waits while the Kustomization has not applied our commit', () => {
    const stale = kustomization({ observedGeneration: 2, lastAppliedRevision: `main@sha1:${OLD}`, lastAttemptedRevision: `main@sha1:${OLD}`, conditions: [ready('True', 'ReconciliationSucceeded')] });
    expect(evaluateHelmRelease(release([{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', observedGeneration: 3 }]), stale, target()).state).toBe('pending');
  });
});

describe('Flux GitRepository', () => {
  const repo = (handled: string, conditions: unknown[]): FluxObject => ({ kind: 'GitRepository', metadata: { name: 'fleet', namespace: 'flux-system' }, status: { lastHandledReconcileAt: handled, conditions: conditions as never } });
  const failing = [{ type: 'FetchFailed', status: 'True', reason: 'AuthenticationFailed', message: 'authentication required' }, { type: 'Ready', status: 'False', reason: 'AuthenticationFailed' }];
  it('fails when the fetch after our request fails', () => {
    expect(evaluateGitRepository(repo('t1', failing), 't1')).toMatchObject({ state: 'failed', message: expect.stringContaining('authentication required') });
  });
  it('does not hold an older failure against us', () => {
    expect(evaluateGitRepository(repo('t0', failing), 't1')).toBeUndefined();
  });
});
