// The Flux dependsOn rules (issue 18 item 15), one row per observed state (docs/verdicts.md (Flux) is the same table for
// users). Objects here are built from kustomize-controller 1.9.4 and helm-controller 1.6 checkDependencies (cited in
// src/tools/flux/dependencies.ts).
import { describe, expect, it } from '@jest/globals';
import { evaluateHelmRelease, evaluateKustomization, type FluxObject } from '../../../../src/tools/flux/evaluate.js';
import { OURS, OLD, expected, viewOf, ctx, ready, stalled, reconciling, kustomization } from './builders.js';

describe('Flux Kustomization: a dependsOn dependency that failed at our commit (turn-1 item 18)', () => {
  const waiting = kustomization(
    {
      observedGeneration: 2,
      lastAppliedRevision: `main@sha1:${OLD}`,
      lastAttemptedRevision: `main@sha1:${OLD}`,
      conditions: [ready('False', 'DependencyNotReady', "dependency 'flux-system/infra' is not ready")],
    },
    { wait: true, dependsOn: [{ name: 'infra' }] },
  );
  it.each([
    [
      'fails when the dependency failed at our commit',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OURS}`,
          lastAppliedRevision: `main@sha1:${OLD}`,
          conditions: [ready('False', 'BuildFailed', 'infra build failed')],
        },
        {},
        'infra',
      ),
      'failed',
    ],
    [
      'waits while the dependency works on our commit',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OURS}`,
          lastAppliedRevision: `main@sha1:${OLD}`,
          conditions: [ready('Unknown', 'Progressing'), reconciling('Progressing')],
        },
        {},
        'infra',
      ),
      'pending',
    ],
    [
      'waits when the dependency failed at an older commit',
      kustomization(
        { observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OLD}`, conditions: [ready('False', 'BuildFailed', 'old')] },
        {},
        'infra',
      ),
      'pending',
    ],
  ] as const)('%s', (_name, dependency, verdict) => {
    const v = evaluateKustomization(waiting, expected(), ctx({ view: viewOf({ kustomizations: [dependency] }) }));
    expect(v.state).toBe(verdict);
    if (verdict === 'failed')
      expect(v).toMatchObject({
        message: expect.stringMatching(
          /waits for its dependency Kustomization flux-system\/infra, which failed at main@sha1:a{40} and cannot become ready until it is fixed: BuildFailed: infra build failed/,
        ),
      });
  });
});

describe("Flux dependsOn: judged by the dependency's own current state (issue 18 item 15)", () => {
  const waiting = (spec: Record<string, unknown> = {}) =>
    kustomization(
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'DependencyNotReady', "dependency 'flux-system/infra' is not ready")],
      },
      { wait: true, dependsOn: [{ name: 'infra' }], ...spec },
    );
  const otherSource = { sourceRef: { kind: 'GitRepository', name: 'platform' } };
  it.each([
    [
      'a stale DependencyNotReady: the dependency is Ready now (Flux retries after --requeue-dependency)',
      kustomization(
        { observedGeneration: 2, lastAppliedRevision: `main@sha1:${OLD}`, conditions: [ready('True', 'ReconciliationSucceeded')] },
        otherSource,
        'infra',
      ),
      'pending',
      /DependencyNotReady/,
    ],
    [
      'a dependency on another source that failed and is not retried can no longer become ready: fail, naming it',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OLD}`,
          conditions: [ready('False', 'BuildFailed', 'platform broken')],
        },
        otherSource,
        'infra',
      ),
      'failed',
      /waits for its dependency Kustomization flux-system\/infra, which failed at main@sha1:b{40} and cannot become ready until it is fixed: BuildFailed: platform broken/,
    ],
    [
      'a failed dependency that Flux is retrying (Reconciling) may still become ready',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OLD}`,
          conditions: [ready('False', 'HealthCheckFailed', 'x'), reconciling('Progressing')],
        },
        otherSource,
        'infra',
      ),
      'pending',
      /DependencyNotReady/,
    ],
    [
      'a failed dependency whose only retry is of the same revision (ProgressingWithRetry, as finalizeStatus leaves every failure) cannot become ready',
      kustomization(
        {
          observedGeneration: 2,
          lastAttemptedRevision: `main@sha1:${OLD}`,
          conditions: [ready('False', 'BuildFailed', 'platform broken'), reconciling('ProgressingWithRetry', 'retrying')],
        },
        otherSource,
        'infra',
      ),
      'failed',
      /which failed at main@sha1:b{40} and cannot become ready until it is fixed: BuildFailed: platform broken/,
    ],
    [
      'a suspended dependency: fail, naming it',
      kustomization(
        { observedGeneration: 2, conditions: [ready('True', 'ReconciliationSucceeded')] },
        { ...otherSource, suspend: true },
        'infra',
      ),
      'failed',
      /dependency Kustomization flux-system\/infra, which is suspended/,
    ],
    [
      'a stalled dependency: fail, naming it',
      kustomization(
        { observedGeneration: 2, conditions: [ready('False', 'AccessDenied', 'x'), stalled('AccessDenied', 'cross-namespace ref')] },
        otherSource,
        'infra',
      ),
      'failed',
      /dependency Kustomization flux-system\/infra, which is stalled: AccessDenied: cross-namespace ref/,
    ],
    [
      'a dependency whose status is for an older generation may still change',
      {
        ...kustomization({ observedGeneration: 1, conditions: [ready('False', 'BuildFailed', 'x', 1)] }, otherSource, 'infra'),
        metadata: { name: 'infra', namespace: 'flux-system', generation: 2 },
      },
      'pending',
      /DependencyNotReady/,
    ],
  ] as const)('%s', (_name, dependency, verdict, text) => {
    const v = evaluateKustomization(waiting(), expected(), ctx({ view: viewOf({ kustomizations: [dependency as FluxObject] }) }));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });

  it('a dependency not there (yet) keeps the wait going: Flux retries and it may be created', () => {
    expect(evaluateKustomization(waiting(), expected(), ctx()).state).toBe('pending');
  });

  it('follows a chain: the dependency waits on its own dependency, which failed', () => {
    const infra = kustomization(
      { observedGeneration: 2, conditions: [ready('False', 'DependencyNotReady', "dependency 'flux-system/crds' is not ready")] },
      { ...otherSource, dependsOn: [{ name: 'crds' }] },
      'infra',
    );
    const crds = kustomization(
      { observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OLD}`, conditions: [ready('False', 'BuildFailed', 'bad CRD')] },
      otherSource,
      'crds',
    );
    const v = evaluateKustomization(waiting(), expected(), ctx({ view: viewOf({ kustomizations: [infra, crds] }) }));
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(
        /infra: Kustomization flux-system\/infra waits for its dependency Kustomization flux-system\/crds, which failed .*bad CRD/,
      ),
    });
  });

  it('a cycle in dependsOn ends (depth limit) and keeps waiting', () => {
    const a = kustomization(
      { observedGeneration: 2, conditions: [ready('False', 'DependencyNotReady', 'x')] },
      { ...otherSource, dependsOn: [{ name: 'app' }] },
      'infra',
    );
    expect(evaluateKustomization(waiting(), expected(), ctx({ view: viewOf({ kustomizations: [a, waiting()] }) })).state).toBe('pending');
  });

  describe('HelmRelease dependsOn (helm-controller 1.6 checkDependencies)', () => {
    const hr = (name: string, conditions: unknown[], spec: Record<string, unknown> = {}): FluxObject => ({
      kind: 'HelmRelease',
      metadata: { name, namespace: 'flux-system', generation: 1 },
      spec: {
        chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: 'fleet' } } },
        ...spec,
      },
      status: { observedGeneration: 1, lastAttemptedRevision: `0.1.0+${OURS.slice(0, 12)}`, conditions: conditions as never },
    });
    const at1 = (type: string, status: string, reason: string, message = reason) => ({
      type,
      status,
      reason,
      message,
      observedGeneration: 1,
    });
    const web = hr(
      'web',
      [at1('Ready', 'False', 'DependencyNotReady', "dependency 'flux-system/db' is not ready"), at1('Reconciling', 'True', 'Progressing')],
      {
        dependsOn: [{ name: 'db' }],
      },
    );
    const judge = (db: FluxObject | undefined) =>
      evaluateHelmRelease(
        web,
        expected(),
        ctx({ chartFromOurRepo: true, view: { ...viewOf(), helmRelease: (_ns, name) => (name === 'db' ? db : undefined) } }),
      );
    it.each([
      ['the dependency is Ready (a stale message)', hr('db', [at1('Ready', 'True', 'UpgradeSucceeded')]), 'pending'],
      [
        'the dependency retries after a failed upgrade',
        hr('db', [at1('Ready', 'False', 'UpgradeFailed'), at1('Reconciling', 'True', 'ProgressingWithRetry')]),
        'pending',
      ],
      [
        'the dependency ran out of retries (Stalled RetriesExceeded)',
        hr('db', [
          at1('Ready', 'False', 'UpgradeFailed'),
          at1('Stalled', 'True', 'RetriesExceeded', 'Failed to upgrade after 1 attempt(s)'),
        ]),
        'failed',
      ],
      ['the dependency failed its Helm tests, no retry left', hr('db', [at1('Ready', 'False', 'TestFailed')]), 'failed'],
      ['the dependency is not there (yet)', undefined, 'pending'],
    ] as const)('%s: %s', (_name, db, verdict) => {
      const v = judge(db);
      expect(v.state).toBe(verdict);
      if (verdict === 'failed')
        expect(v).toMatchObject({
          message: expect.stringContaining('HelmRelease flux-system/web waits for its dependency HelmRelease flux-system/db'),
        });
    });
  });
});
