// The Flux HelmRelease rules, one row per observed state (docs/verdicts.md (Flux) is the same table for users). Objects
// here are built from the controllers' API types and source (builders.ts); fixtures.test.ts runs the same rules over
// objects captured from the real controllers.
import { describe, expect, it } from '@jest/globals';
import { evaluateHelmRelease, type FluxObject } from '../../../../src/tools/flux/evaluate.js';
import { commitOf } from '../../../../src/judge/verdict.js';
import { OURS, OLD, expected, viewOf, ctx, ready, stalled, reconciling, kustomization, appliedStatus } from './builders.js';

describe('Flux HelmRelease applied by a Kustomization (items 1, 5, 6, 7, 18)', () => {
  const managerApplied = kustomization(appliedStatus(OURS), { wait: false }, 'apps');
  const managerWorking = kustomization(
    {
      observedGeneration: 2,
      lastAppliedRevision: `main@sha1:${OLD}`,
      lastAttemptedRevision: `main@sha1:${OURS}`,
      conditions: [ready('Unknown', 'Progressing', 'Health check in progress'), reconciling('Progressing')],
    },
    { wait: true },
    'apps',
  );
  const release = (
    conditions: unknown[],
    status: Partial<NonNullable<FluxObject['status']>> = {},
    generation = 3,
    spec: Record<string, unknown> = {},
  ): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'apps', generation },
    spec: { chart: { spec: { chart: 'web', sourceRef: { kind: 'HelmRepository', name: 'charts' } } }, ...spec },
    status: { observedGeneration: 3, lastAttemptedGeneration: 3, conditions: conditions as never, ...status },
  });
  const readyAt3 = [
    { type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'Helm upgrade succeeded', observedGeneration: 3 },
  ];
  const failedAt3 = (reason: string, message = `${reason} message`) => [
    { type: 'Ready', status: 'False', reason, message, observedGeneration: 3 },
  ];

  it.each([
    // item 1: evidence that helm-controller acted after our commit was applied
    [
      'waits for a reconcile after the manager applied our commit, though Ready at its generation',
      managerApplied,
      release(readyAt3),
      {},
      'pending',
    ],
    [
      'passes once helm-controller handled the request we made after the manager applied our commit',
      managerApplied,
      release(readyAt3, { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'passed',
    ],
    [
      'passes when a later request was handled (another deployment through the same release)',
      managerApplied,
      release(readyAt3, { lastHandledReconcileAt: '2026-11-24T12:00:05Z' }),
      { requestedAfterApply: '2026-11-24T12:00:00.000Z' },
      'passed',
    ],
    ['waits while the manager has not applied our commit', managerWorking, release(readyAt3), {}, 'pending'],
    // item 5: a leftover failure is not ours
    [
      'ignores a leftover upgrade failure while the manager starts on our commit',
      managerWorking,
      release([
        ...failedAt3('UpgradeFailed'),
        { ...stalled('RetriesExceeded', 'Failed to upgrade after 1 attempt(s)'), observedGeneration: 3 },
      ]),
      { startGeneration: 3 },
      'pending',
    ],
    [
      'counts a failure once the manager changed the spec and helm-controller attempted it',
      managerWorking,
      release([
        ...failedAt3('UpgradeFailed'),
        { ...stalled('RetriesExceeded', 'Failed to upgrade after 1 attempt(s)'), observedGeneration: 3 },
      ]),
      { startGeneration: 2 },
      'failed',
    ],
    [
      'counts a failure of the reconcile we requested after the manager applied our commit',
      managerApplied,
      release(failedAt3('UpgradeFailed'), { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'failed',
    ],
    // item 6: remediation retries left
    [
      'waits while helm-controller retries after a rolled-back upgrade',
      managerApplied,
      release(
        [
          ...failedAt3('RollbackSucceeded', 'Helm rollback to previous release apps/web.v1 succeeded'),
          reconciling('ProgressingWithRetry', 'retrying after 5s'),
        ],
        { lastHandledReconcileAt: 'after' },
      ),
      { requestedAfterApply: 'after' },
      'pending',
    ],
    [
      'fails when retries are exhausted',
      managerApplied,
      release(
        [
          ...failedAt3('RollbackSucceeded'),
          { ...stalled('RetriesExceeded', 'Failed to upgrade after 2 attempt(s)'), observedGeneration: 3 },
        ],
        { lastHandledReconcileAt: 'after' },
      ),
      { requestedAfterApply: 'after' },
      'failed',
    ],
    // item 7: transient reasons
    [
      'waits on ArtifactFailed',
      managerApplied,
      release(failedAt3('ArtifactFailed', 'Source not ready: artifact not found'), { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'pending',
    ],
    [
      'waits on ValuesError (a values ConfigMap not there yet)',
      managerApplied,
      release(failedAt3('ValuesError', 'could not resolve ConfigMap reference'), { lastHandledReconcileAt: 'after' }),
      { requestedAfterApply: 'after' },
      'pending',
    ],
    // item 18: helm-controller's own configuration errors and early stalls
    ...(['ChartMutateError', 'RESTClientError', 'ResourceManagerError', 'FactoryError'] as const).map(
      (reason) => [`fails at once on ${reason}`, managerWorking, release(failedAt3(reason)), {}, 'failed'] as const,
    ),
    [
      'fails at once when stalled on an invalid CEL health check',
      managerWorking,
      release([...failedAt3('InvalidCELExpression'), { ...stalled('InvalidCELExpression', 'bad expr'), observedGeneration: 3 }]),
      {},
      'failed',
    ],
  ] as const)('%s', (_name, manager, hr, extra, verdict) => {
    expect(evaluateHelmRelease(hr, expected(), ctx({ manager, ...extra })).state).toBe(verdict);
  });

  it('says why it still waits after the manager applied our commit', () => {
    expect(evaluateHelmRelease(release(readyAt3), expected(), ctx({ manager: managerApplied }))).toMatchObject({
      reason: expect.stringContaining(
        'waiting for helm-controller to reconcile it after Kustomization flux-system/apps applied our commit',
      ),
    });
  });

  it('with the chart in our repository, needs the chart built from our commit as well (item 1)', () => {
    const fromGit = (revision: string) =>
      release(readyAt3, { lastHandledReconcileAt: 'after', lastAttemptedRevision: revision }, 3, {
        chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: 'fleet' } } },
      });
    const c = ctx({ manager: managerApplied, requestedAfterApply: 'after', chartFromOurRepo: true });
    expect(evaluateHelmRelease(fromGit(`0.1.0+${OLD.slice(0, 12)}`), expected(), c).state).toBe('pending');
    expect(evaluateHelmRelease(fromGit(`0.1.0+${OURS.slice(0, 12)}`), expected(), c).state).toBe('passed');
  });
});

describe('Flux HelmRelease with its chart in our repository, no Kustomization (item 14)', () => {
  const release = (
    status: Partial<NonNullable<FluxObject['status']>>,
    chartSpec: Record<string, unknown> = { reconcileStrategy: 'Revision' },
  ): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'flux-system', generation: 1 },
    spec: { chart: { spec: { chart: './charts/web', sourceRef: { kind: 'GitRepository', name: 'fleet' }, ...chartSpec } } },
    status: {
      observedGeneration: 1,
      helmChart: 'flux-system/flux-system-web',
      conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', observedGeneration: 1 }],
      ...status,
    },
  });
  const chart = (conditions: unknown[], source: string): FluxObject => ({
    kind: 'HelmChart',
    metadata: { name: 'flux-system-web', namespace: 'flux-system', generation: 1 },
    status: { observedSourceArtifactRevision: `main@sha1:${source}`, conditions: conditions as never },
  });

  it.each([
    ['passes on a chart built from our commit', `0.1.0+${OURS.slice(0, 12)}`, 'passed'],
    ['passes on a chart built from our commit with valuesFiles (<ver>+<sha12>.<generation>)', `0.1.0+${OURS.slice(0, 12)}.3`, 'passed'],
    ['waits while the chart is an older build', `0.1.0+${OLD.slice(0, 12)}`, 'pending'],
  ] as const)('%s', (_name, revision, verdict) => {
    expect(evaluateHelmRelease(release({ lastAttemptedRevision: revision }), expected(), ctx({ chartFromOurRepo: true })).state).toBe(
      verdict,
    );
  });

  it('fails at once with the ChartVersion strategy, saying why', () => {
    const v = evaluateHelmRelease(release({ lastAttemptedRevision: '0.1.0' }, {}), expected(), ctx({ chartFromOurRepo: true }));
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(
        /reconcileStrategy ChartVersion \(the default\).*never produces a new chart; set spec.chart.spec.reconcileStrategy: Revision/,
      ),
    });
  });

  it('fails when the HelmChart cannot be built from our commit', () => {
    const broken = chart(
      [
        { type: 'BuildFailed', status: 'True', reason: 'ChartPackageError', message: 'values file not found: values-prod.yaml' },
        { type: 'Ready', status: 'False', reason: 'ChartPackageError' },
      ],
      OURS,
    );
    const v = evaluateHelmRelease(
      release({ lastAttemptedRevision: `0.1.0+${OLD.slice(0, 12)}` }),
      expected(),
      ctx({ chartFromOurRepo: true, view: viewOf({ charts: [broken] }) }),
    );
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('HelmChart flux-system/flux-system-web could not be built at'),
    });
  });

  it('does not hold an older chart build failure against us', () => {
    const broken = chart([{ type: 'BuildFailed', status: 'True', reason: 'ChartPackageError', message: 'old' }], OLD);
    expect(
      evaluateHelmRelease(
        release({ lastAttemptedRevision: `0.1.0+${OLD.slice(0, 12)}` }),
        expected(),
        ctx({ chartFromOurRepo: true, view: viewOf({ charts: [broken] }) }),
      ).state,
    ).toBe('pending');
  });

  it.each([
    ['0.1.0+86eb1df762d6', '86eb1df762d6'],
    ['0.1.0+86eb1df762d6.3', '86eb1df762d6'],
    ['0.1.0+3', undefined],
    ['main@sha1:' + OURS, OURS],
  ])('reads the commit in %s', (revision, sha) => {
    expect(commitOf(revision)).toBe(sha);
  });
});
