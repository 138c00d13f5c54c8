// The Flux GitRepository rules, one row per observed state (docs/verdicts.md (Flux) is the same table for users).
// Objects here are built from the controllers' API types and source (builders.ts); fixtures.test.ts runs the same rules
// over objects captured from the real controllers.
import { describe, expect, it } from '@jest/globals';
import { checkGitRepositoryRef, evaluateGitRepository, handledSince, type FluxObject } from '../../../../src/tools/flux/evaluate.js';
import { sameRepository } from '../../../../src/platform/git/repository.js';
import { OLD, LATER, expected, cast } from './builders.js';

describe('Flux GitRepository', () => {
  const repo = (spec: Record<string, unknown>, status: FluxObject['status'] = {}): FluxObject => ({
    kind: 'GitRepository',
    metadata: { name: 'fleet', namespace: 'flux-system', generation: 1 },
    spec: { url: 'https://git.example.com/team/fleet.git', ...spec },
    status,
  });
  const wanted = { repoUrl: 'https://git.example.com/team/fleet', branch: 'main' };

  describe('reads our repository and branch, checked at the start (item 13)', () => {
    it.each([
      ['our branch', { ref: { branch: 'main' } }, undefined],
      ['our branch by ref name', { ref: { name: 'refs/heads/main' } }, undefined],
      ['another branch', { ref: { branch: 'dev' } }, /tracks branch dev, not branch main/],
      ['no ref: master by default', {}, /tracks branch master, not branch main/],
      ['a tag', { ref: { tag: 'v1.4.0', branch: 'main' } }, /tracks tag v1.4.0/],
      ['a semver range', { ref: { semver: '>=1.0.0' } }, /tracks semver >=1.0.0/],
      ['a pinned commit', { ref: { branch: 'main', commit: OLD } }, /tracks commit/],
      [
        'another repository',
        { url: 'https://git.example.com/team/other.git', ref: { branch: 'main' } },
        /reads https:\/\/git.example.com\/team\/other.git, not our repository/,
      ],
    ] as const)('%s', (_name, spec, message) => {
      const v = checkGitRepositoryRef(repo(spec), wanted);
      if (message) expect(v).toMatchObject({ state: 'failed', message: expect.stringMatching(message) });
      else expect(v).toBeUndefined();
    });

    it.each([
      ['https://git.example.com/team/fleet.git', 'https://user@git.example.com:443/team/fleet/', true],
      ['git@github.com:team/fleet.git', 'ssh://git@github.com/team/fleet', true],
      ['http://127.0.0.1:3000/fleet.git', 'http://127.0.0.1:3001/fleet.git', false],
      ['https://git.example.com/team/fleet', 'https://git.example.com/team/fleet-2', false],
    ])('%s and %s are the same repository: %s', (a, b, same) => {
      expect(sameRepository(a, b)).toBe(same);
    });
  });

  const readyAt = (sha: string) =>
    [
      { type: 'Ready', status: 'True' as const, reason: 'Succeeded', observedGeneration: 1 },
      { type: 'ArtifactInStorage', status: 'True' as const, reason: 'Succeeded' },
    ].map((c) => ({ ...c, message: `stored artifact for revision 'main@sha1:${sha}'` }));
  it.each([
    [
      'fails when the fetch after our request fails',
      {
        lastHandledReconcileAt: 't1',
        conditions: [
          { type: 'FetchFailed', status: 'True', reason: 'AuthenticationFailed', message: 'authentication required' },
          { type: 'Ready', status: 'False', reason: 'AuthenticationFailed' },
        ],
      },
      'failed',
    ],
    [
      'does not hold an older failure against us',
      {
        lastHandledReconcileAt: 't0',
        conditions: [
          { type: 'FetchFailed', status: 'True', reason: 'AuthenticationFailed' },
          { type: 'Ready', status: 'False', reason: 'AuthenticationFailed' },
        ],
      },
      undefined,
    ],
    // item 15
    [
      'fails when the signature of our commit cannot be verified',
      {
        lastHandledReconcileAt: 't1',
        conditions: [
          { type: 'SourceVerified', status: 'False', reason: 'VerificationError', message: 'signature verification of commit failed' },
        ],
      },
      'failed',
    ],
    // item 13: after our request is handled, an artifact without our commit is final
    [
      'fails when the artifact fetched after our request does not contain our commit',
      { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${OLD}` }, conditions: readyAt(OLD) },
      'failed',
    ],
    [
      // Seen in faults.e2e: kube-apiserver went away between source-controller storing our artifact and its status
      // write; the retried reconcile (Reconciling=True, ProgressingWithRetry: fluxcd/source-controller
      // gitrepository_controller.go reconcile → ProgressiveStatus) showed our token beside the old artifact.
      'says nothing while Reconciling is True, even with our token handled and an old artifact',
      {
        lastHandledReconcileAt: 't1',
        artifact: { revision: `main@sha1:${OLD}` },
        conditions: [...readyAt(OLD), { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry' }],
      },
      undefined,
    ],
    [
      // Seen in faults.e2e (kube-apiserver away after source-controller stored our artifact): a later status write
      // carried our token beside the artifact from before our request, Ready=True, no Reconciling.
      'says nothing when the artifact is still the one from before our request, even with our token handled',
      { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${OLD}` }, conditions: readyAt(OLD), before: `main@sha1:${OLD}` },
      undefined,
    ],
    [
      'says nothing when the artifact contains our commit',
      { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${LATER}` }, conditions: readyAt(LATER) },
      undefined,
    ],
    [
      'says nothing about an artifact from before our request',
      { lastHandledReconcileAt: 't0', artifact: { revision: `main@sha1:${OLD}` }, conditions: readyAt(OLD) },
      undefined,
    ],
  ] as const)('%s', (_name, { before, ...status }: Record<string, unknown> & { before?: string }, verdict) => {
    expect(
      evaluateGitRepository(repo({ ref: { branch: 'main' } }, cast(status)), 't1', expected(), before ?? `main@sha1:${'9'.repeat(40)}`)
        ?.state,
    ).toBe(verdict);
  });

  it('asks the waiter about the artifact it cannot place', () => {
    const v = evaluateGitRepository(
      repo(
        {},
        { lastHandledReconcileAt: 't1', artifact: { revision: `main@sha1:${'d'.repeat(40)}` }, conditions: readyAt('d'.repeat(40)) },
      ),
      't1',
      expected(),
    );
    expect(v).toMatchObject({ state: 'pending', unknownRevision: 'd'.repeat(40) });
  });

  it.each([
    ['2026-11-24T12:00:00.000Z', '2026-11-24T12:00:00.000Z', true],
    ['2026-11-24T12:00:01.123456789Z', '2026-11-24T12:00:00.000Z', true],
    ['2026-11-24T11:59:59.000Z', '2026-11-24T12:00:00.000Z', false],
    ['someone-else', 'ours', false],
    [undefined, 'ours', false],
  ] as const)('a handled request %s answers ours %s: %s (item 15)', (handled, requested, answered) => {
    expect(handledSince(handled, requested)).toBe(answered);
  });
});
