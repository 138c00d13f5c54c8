// Never sync backwards (issue 18 item 16): which revisions an Application has synced or is syncing, and whether one
// already contains our commit. States built from Argo CD's own fields (pkg/apis/application/v1alpha1 types.go
// Operation, OperationState, SyncStatus), as the controller writes them after a sync of another deployment.
import { describe, expect, it } from '@jest/globals';
import { alreadyPastOurs, evaluateApplication, revisionsSyncedOrSyncing, type Application } from '../../../../src/tools/argocd/evaluate.js';
import { relationFrom } from '../../../../src/judge/verdict.js';

const OURS = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const LATER = 'c'.repeat(40);
const REWROTE = 'd'.repeat(40);
const relation = relationFrom(
  OURS,
  new Map([
    [OLD, 'unrelated'],
    [LATER, 'descendant'],
    [REWROTE, 'superseded'],
  ]),
);

function app(status: Application['status'], operation?: Application['operation']): Application {
  return {
    metadata: { name: 'podtato', namespace: 'argocd' },
    spec: { source: { repoURL: 'http://git/fleet.git', path: 'app', targetRevision: 'main' } },
    ...(operation ? { operation } : {}),
    status,
  };
}
const op = (revision: string, phase = 'Succeeded') => ({
  phase,
  startedAt: '2026-11-24T10:00:00Z',
  finishedAt: '2026-11-24T10:00:05Z',
  operation: { sync: { revision } },
  syncResult: { revision },
});

describe('never sync backwards', () => {
  it.each([
    [
      'another deployment synced a later commit that contains ours',
      app({ sync: { status: 'Synced', revision: LATER }, operationState: op(LATER) }),
      LATER,
    ],
    [
      '… one that rewrote our file (superseded) counts the same',
      app({ sync: { status: 'OutOfSync', revision: REWROTE }, operationState: op(REWROTE) }),
      REWROTE,
    ],
    ['a later sync is still running', app({ sync: { status: 'OutOfSync', revision: LATER }, operationState: op(LATER, 'Running') }), LATER],
    ['a later sync is queued', app({ sync: { status: 'OutOfSync', revision: OLD } }, { sync: { revision: LATER } }), LATER],
    ['live already matches a later compared revision', app({ sync: { status: 'Synced', revision: LATER } }), LATER],
    ['our own commit is synced already', app({ sync: { status: 'Synced', revision: OURS }, operationState: op(OURS) }), OURS],
  ])('starts no sync when %s', (_name, a, past) => {
    expect(alreadyPastOurs(a, 0, relation)).toBe(past);
  });
  it.each([
    ['the last sync is older (the usual case)', app({ sync: { status: 'OutOfSync', revision: OURS }, operationState: op(OLD) })],
    [
      'a later sync failed (nothing later was applied)',
      app({ sync: { status: 'OutOfSync', revision: LATER }, operationState: op(LATER, 'Failed') }),
    ],
    ['a later commit is only compared, not synced', app({ sync: { status: 'OutOfSync', revision: LATER }, operationState: op(OLD) })],
  ])('syncs ours when %s', (_name, a) => {
    expect(alreadyPastOurs(a, 0, relation)).toBeUndefined();
  });
  it('reads the revision of our source in a multi-source Application', () => {
    const multi: Application = {
      metadata: { name: 'podtato', namespace: 'argocd' },
      spec: {
        sources: [
          { repoURL: 'http://charts/x.git', targetRevision: 'v1' },
          { repoURL: 'http://git/fleet.git', targetRevision: 'main' },
        ],
      },
      status: { sync: { status: 'Synced', revisions: [OLD, LATER] } },
    };
    expect(revisionsSyncedOrSyncing(multi, 1)).toEqual([LATER]);
    expect(alreadyPastOurs(multi, 1, relation)).toBe(LATER);
  });
  it('passes on the later revision another deployment synced, without a sync of ours', () => {
    const a = app({
      sync: { status: 'Synced', revision: LATER },
      health: { status: 'Healthy' },
      reconciledAt: '2026-11-24T10:00:10Z',
      operationState: op(LATER),
      summary: { images: ['ghcr.io/podtato/head:0.3.0'] },
    });
    // The later commit rewrote our file: what it runs is its own image, and only its health is asked of it.
    expect(
      evaluateApplication(a, { commit: OURS, relation: () => 'superseded', sourceIndex: 0, images: ['ghcr.io/podtato/head:0.2.0'] }),
    ).toMatchObject({ state: 'passed', revision: LATER });
  });
});
