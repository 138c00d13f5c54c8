import { describe, expect, it } from '@jest/globals';
import {
  evaluateApplication,
  isTransportError,
  OPERATION_INFO_KEY,
  type Application,
  type ArgoExpectation,
} from '../../../../src/tools/argocd/evaluate.js';
import { isAutomated, syncOperation } from '../../../../src/tools/argocd/driver.js';
import { relationFrom } from '../../../../src/judge/verdict.js';

const OURS = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const LATER = 'c'.repeat(40);
const expected: ArgoExpectation = {
  commit: OURS,
  relation: relationFrom(
    OURS,
    new Map([
      [OLD, 'unrelated'],
      [LATER, 'descendant'],
    ]),
  ),
  sourceIndex: 0,
  operationTag: 'trig-1',
};

function app(status: Application['status'], extra: Partial<Application> = {}): Application {
  return {
    metadata: { name: 'podtato', namespace: 'argocd' },
    spec: { source: { repoURL: 'http://git/fleet.git', path: 'app', targetRevision: 'main' } },
    status,
    ...extra,
  };
}
const synced = (revision: string, health = 'Healthy', reconciledAt = '2026-11-24T10:00:10Z') => ({
  sync: { status: 'Synced', revision },
  health: { status: health, message: health === 'Degraded' ? 'Deployment "podtato" exceeded its progress deadline' : undefined },
  reconciledAt,
  operationState: {
    phase: 'Succeeded',
    message: 'successfully synced (all tasks run)',
    startedAt: '2026-11-24T10:00:00Z',
    finishedAt: '2026-11-24T10:00:05Z',
    syncResult: { revision },
    operation: { info: [{ name: OPERATION_INFO_KEY, value: 'trig-1' }] },
  },
});

describe('Argo CD Application', () => {
  it('passes when our revision is synced, health reassessed after the sync, and Healthy', () => {
    expect(evaluateApplication(app(synced(OURS)), expected)).toMatchObject({ state: 'passed', revision: OURS });
  });
  it('passes on a later revision that contains ours', () => {
    expect(evaluateApplication(app(synced(LATER)), expected).state).toBe('passed');
  });
  it('never passes on the previous revision, however healthy (the stale Synced/Healthy trap)', () => {
    expect(evaluateApplication(app(synced(OLD)), expected).state).toBe('pending');
  });
  it('waits until health was reassessed after the sync finished', () => {
    expect(evaluateApplication(app(synced(OURS, 'Healthy', '2026-11-24T10:00:01Z')), expected).state).toBe('pending');
  });
  it('waits while an operation is queued or running', () => {
    expect(evaluateApplication(app(synced(OURS), { operation: { sync: { revision: OURS } } }), expected).state).toBe('pending');
    const running = synced(OURS);
    running.operationState.phase = 'Running';
    expect(evaluateApplication(app(running), expected).state).toBe('pending');
  });
  it("fails with Argo CD's message when our sync fails", () => {
    const failed = synced(OURS, 'Missing');
    Object.assign(failed.operationState, {
      phase: 'Failed',
      message: 'one or more objects failed to apply, reason: Deployment.apps "podtato" is invalid',
    });
    expect(evaluateApplication(app(failed), expected)).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('Deployment.apps "podtato" is invalid'),
    });
  });
  it('does not blame us for an older failed operation', () => {
    const old = synced(OLD, 'Healthy');
    Object.assign(old.operationState, { phase: 'Failed', operation: { info: [] } });
    expect(evaluateApplication(app(old), expected).state).toBe('pending');
  });
  it('fails when Degraded after our revision outlasts the grace period', () => {
    expect(evaluateApplication(app(synced(OURS, 'Degraded')), { ...expected, degradedForMs: 60_000 })).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('exceeded its progress deadline'),
    });
  });
  it('waits while Progressing', () => {
    expect(evaluateApplication(app(synced(OURS, 'Progressing')), expected).state).toBe('pending');
  });
  it('fails on a comparison error at our revision', () => {
    const s = {
      ...synced(OURS),
      conditions: [{ type: 'ComparisonError', message: 'Failed to load target state: kustomize build failed' }],
    };
    expect(evaluateApplication(app(s), expected)).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('kustomize build failed'),
    });
  });
  it('reads the revision of our source in a multi-source Application', () => {
    const multi = app(
      {
        sync: { status: 'Synced', revisions: ['9.9.9', OURS] },
        health: { status: 'Healthy' },
        reconciledAt: '2026-11-24T10:00:10Z',
        operationState: { phase: 'Succeeded', finishedAt: '2026-11-24T10:00:05Z', syncResult: { revisions: ['9.9.9', OURS] } },
      },
      {
        spec: {
          sources: [
            { repoURL: 'https://charts.example.com', chart: 'app', targetRevision: '9.9.9' },
            { repoURL: 'http://git/fleet.git', targetRevision: 'main' },
          ],
        },
      },
    );
    expect(evaluateApplication(multi, { ...expected, sourceIndex: 1 }).state).toBe('passed');
    expect(syncOperation(multi, 1, OURS, 'trig-1')).toMatchObject({ sync: { revisions: ['9.9.9', OURS], sources: multi.spec.sources } });
  });
  it('fails at once when HEAD, resolved after our refresh, does not contain our commit', () => {
    const head = { ...expected, trackedHead: true, branch: 'main' };
    expect(evaluateApplication(app(synced(OLD)), { ...head, hardRefresh: 'handled' })).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('tracks HEAD, which resolves to bbbbbbbbbbbb, not to branch main'),
    });
    expect(evaluateApplication(app(synced(OLD)), { ...head, hardRefresh: 'requested' }).state).toBe('pending');
    expect(evaluateApplication(app(synced(OURS)), { ...head, hardRefresh: 'handled' }).state).toBe('passed');
  });
  it('fails when automated sync cannot run before the deadline because of a sync window, and only then', () => {
    const outOfSync = { ...synced(OURS), sync: { status: 'OutOfSync', revision: OURS } };
    const automated = app(outOfSync, {
      spec: { source: { repoURL: 'http://git/fleet.git', targetRevision: 'main' }, syncPolicy: { automated: {} } },
    });
    expect(evaluateApplication(automated, { ...expected, syncBlocked: 'sync window deny "0 22 * * *" for 8h' })).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('cannot sync Application argocd/podtato before the deadline: sync window deny'),
    });
    expect(evaluateApplication(automated, expected).state).toBe('pending');
    expect(evaluateApplication(app(outOfSync), { ...expected, syncBlocked: 'x' }).state).toBe('pending');
  });
  it('waits for the grace period when Degraded does not name the workload that runs our image', () => {
    expect(evaluateApplication(app(synced(OURS, 'Degraded')), { ...expected, degradedForMs: 59_000 }).state).toBe('pending');
    expect(evaluateApplication(app(synced(OURS, 'Degraded')), { ...expected, degradedForMs: 5_000, degradedGraceMs: 5_000 }).state).toBe(
      'failed',
    );
  });
});

describe('the sync operation we write', () => {
  const policy = {
    automated: { enabled: false, prune: true },
    syncOptions: ['CreateNamespace=true', 'PruneLast=true'],
    retry: { limit: 3, backoff: { duration: '5s' } },
  };
  it("carries the source, syncOptions, retry and prune setting, as Argo CD's own API sync does", () => {
    const a = app({}, { spec: { source: { repoURL: 'http://git/fleet.git', path: 'app', targetRevision: 'main' }, syncPolicy: policy } });
    expect(syncOperation(a, 0, OURS, 'trig-1')).toEqual({
      initiatedBy: { username: 'keptn-gitops-service' },
      info: [{ name: OPERATION_INFO_KEY, value: 'trig-1' }],
      sync: { source: a.spec.source, revision: OURS, prune: true, syncOptions: ['CreateNamespace=true', 'PruneLast=true'] },
      retry: policy.retry,
    });
  });
  it('does not prune and sets no retry when the Application says nothing', () => {
    expect(syncOperation(app({}), 0, OURS, 'trig-1')).toEqual(expect.objectContaining({ sync: expect.objectContaining({ prune: false }) }));
    expect(syncOperation(app({}), 0, OURS, 'trig-1')).not.toHaveProperty('retry');
    expect(syncOperation(app({}), 0, OURS, 'trig-1')).not.toHaveProperty('sync.syncOptions');
  });
});

describe('errors', () => {
  it.each([
    [
      'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:8081: connect: connection refused"',
      true,
    ],
    ['rpc error: code = DeadlineExceeded desc = context deadline exceeded', true],
    ['failed to list refs: Get "https://git.example.com/x.git/info/refs": dial tcp: lookup git.example.com: no such host', true],
    [
      'failed to list refs: unexpected client error: unexpected requesting "http://git/x.git/info/refs?service=git-upload-pack" status code: 503',
      true,
    ],
    ['rpc error: code = FailedPrecondition desc = Failed to unmarshal "bad.yaml"', false],
    ['rpc error: code = Unknown desc = authentication required', false],
  ])('isTransportError(%s) = %s', (message, transient) => expect(isTransportError(message)).toBe(transient));
});

describe('Argo CD helpers', () => {
  it('knows automated sync, including 3.x enabled: false', () => {
    expect(isAutomated(app({}, { spec: { source: { repoURL: 'x' }, syncPolicy: { automated: {} } } }))).toBe(true);
    expect(isAutomated(app({}, { spec: { source: { repoURL: 'x' }, syncPolicy: { automated: { enabled: false } } } }))).toBe(false);
    expect(isAutomated(app({}))).toBe(false);
  });
});
