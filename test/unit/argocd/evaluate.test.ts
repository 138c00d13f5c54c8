import { describe, expect, it } from '@jest/globals';
import { evaluateApplication, OPERATION_INFO_KEY, sameRepo, type Application, type ArgoExpectation } from '../../../src/argocd/evaluate.js';
import { isAutomated, syncOperation } from '../../../src/argocd/driver.js';
import { relationFrom } from '../../../src/readiness.js';

const OURS = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const LATER = 'c'.repeat(40);
const target: ArgoExpectation = { commit: OURS, relation: relationFrom(OURS, new Map([[OLD, 'unrelated'], [LATER, 'descendant']])), sourceIndex: 0, operationTag: 'trig-1' };

function app(status: Application['status'], extra: Partial<Application> = {}): Application {
  return { metadata: { name: 'podtato', namespace: 'argocd' }, spec: { source: { repoURL: 'http://git/fleet.git', path: 'app', targetRevision: 'main' } }, status, ...extra };
}
const synced = (revision: string, health = 'Healthy', reconciledAt = '2026-11-24T10:00:10Z') => ({
  sync: { status: 'Synced', revision },
  health: { status: health, message: health === 'Degraded' ? 'Deployment "podtato" exceeded its progress deadline' : undefined },
  reconciledAt,
  operationState: { phase: 'Succeeded', message: 'successfully synced (all tasks run)', startedAt: '2026-11-24T10:00:00Z', finishedAt: '2026-11-24T10:00:05Z', syncResult: { revision }, operation: { info: [{ name: OPERATION_INFO_KEY, value: 'trig-1' }] } },
});

describe('Argo CD Application', () => {
  it('passes when our revision is synced, health reassessed after the sync, and Healthy', () => {
    expect(evaluateApplication(app(synced(OURS)), target)).toMatchObject({ state: 'passed', revision: OURS });
  });
  it('passes on a later revision that contains ours', () => {
    expect(evaluateApplication(app(synced(LATER)), target).state).toBe('passed');
  });
  it('never passes on the previous revision, however healthy (the stale Synced/Healthy trap)', () => {
    expect(evaluateApplication(app(synced(OLD)), target).state).toBe('pending');
  });
  it('waits until health was reassessed after the sync finished', () => {
    expect(evaluateApplication(app(synced(OURS, 'Healthy', '2026-11-24T10:00:01Z')), target).state).toBe('pending');
  });
  it('waits while an operation is queued or running', () => {
    expect(evaluateApplication(app(synced(OURS), { operation: { sync: { revision: OURS } } }), target).state).toBe('pending');
    const running = synced(OURS);
    running.operationState.phase = 'Running';
    expect(evaluateApplication(app(running), target).state).toBe('pending');
  });
  it("fails with Argo CD's message when our sync fails", () => {
    const failed = synced(OURS, 'Missing');
    Object.assign(failed.operationState, { phase: 'Failed', message: 'one or more objects failed to apply, reason: Deployment.apps "podtato" is invalid' });
    expect(evaluateApplication(app(failed), target)).toMatchObject({ state: 'failed', message: expect.stringContaining('Deployment.apps "podtato" is invalid') });
  });
  it('does not blame us for an older failed operation', () => {
    const old = synced(OLD, 'Healthy');
    Object.assign(old.operationState, { phase: 'Failed', operation: { info: [] } });
    expect(evaluateApplication(app(old), target).state).toBe('pending');
  });
  it('fails when Degraded after our revision', () => {
    expect(evaluateApplication(app(synced(OURS, 'Degraded')), target)).toMatchObject({ state: 'failed', message: expect.stringContaining('exceeded its progress deadline') });
  });
  it('waits while Progressing', () => {
    expect(evaluateApplication(app(synced(OURS, 'Progressing')), target).state).toBe('pending');
  });
  it('fails on a comparison error at our revision', () => {
    const s = { ...synced(OURS), conditions: [{ type: 'ComparisonError', message: 'Failed to load target state: kustomize build failed' }] };
    expect(evaluateApplication(app(s), target)).toMatchObject({ state: 'failed', message: expect.stringContaining('kustomize build failed') });
  });
  it('reads the revision of our source in a multi-source Application', () => {
    const multi = app(
      { sync: { status: 'Synced', revisions: ['9.9.9', OURS] }, health: { status: 'Healthy' }, reconciledAt: '2026-11-24T10:00:10Z', operationState: { phase: 'Succeeded', finishedAt: '2026-11-24T10:00:05Z', syncResult: { revisions: ['9.9.9', OURS] } } },
      { spec: { sources: [{ repoURL: 'https://charts.example.com', chart: 'app', targetRevision: '9.9.9' }, { repoURL: 'http://git/fleet.git', targetRevision: 'main' }] } },
    );
    expect(evaluateApplication(multi, { ...target, sourceIndex: 1 }).state).toBe('passed');
    expect(syncOperation(multi, 1, OURS, 'trig-1')).toMatchObject({ sync: { revisions: ['9.9.9', OURS] } });
  });
});

describe('Argo CD helpers', () => {
  it.each([
    ['https://git.example.com/team/fleet.git', 'https://git.example.com/team/fleet', true],
    ['git@git.example.com:team/fleet.git', 'ssh://git@git.example.com/team/fleet.git', true],
    ['https://git.example.com/team/fleet.git', 'https://git.example.com/team/other.git', false],
  ])('sameRepo(%s, %s) = %s', (a, b, same) => expect(sameRepo(a, b)).toBe(same));
  it('knows automated sync, including 3.x enabled: false', () => {
    expect(isAutomated(app({}, { spec: { source: { repoURL: 'x' }, syncPolicy: { automated: {} } } }))).toBe(true);
    expect(isAutomated(app({}, { spec: { source: { repoURL: 'x' }, syncPolicy: { automated: { enabled: false } } } }))).toBe(false);
    expect(isAutomated(app({}))).toBe(false);
  });
});
