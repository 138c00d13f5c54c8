// The Flux HelmRelease rules on how an attempt ends: Helm tests (spec.test) and retries, one row per observed state
// (docs/verdicts.md (Flux, HelmRelease) is the same table for users). Objects here are built from helm-controller's
// source as each describe says.
import { describe, expect, it } from '@jest/globals';
import { evaluateHelmRelease, type FluxObject } from '../../../../src/tools/flux/evaluate.js';
import { OURS, expected, ctx, reconciling } from './builders.js';

describe('Flux HelmRelease with spec.test.enable: no pass before its tests ran (issue 18 item 1)', () => {
  // Built from helm-controller 1.6 internal/reconcile/{upgrade,test,release}.go: TestSuccess is Unknown AwaitingTests
  // after the upgrade, True TestSucceeded or False TestFailed after the test action; Ready summarises it first unless
  // spec.test.ignoreFailures. helmrelease-tests-*.json in test/fixtures/flux are the same states captured on the real
  // helm-controller (fixtures.test.ts).
  const released = (conditions: unknown[], test: Record<string, unknown> = { enable: true }): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'flux-system', generation: 1 },
    spec: {
      chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: 'fleet' } } },
      test,
    },
    status: { observedGeneration: 1, lastAttemptedRevision: `0.1.0+${OURS.slice(0, 12)}`, conditions: conditions as never },
  });
  const cond = (type: string, status: string, reason: string, message = `${reason} message`) => ({
    type,
    status,
    reason,
    message,
    observedGeneration: 1,
  });
  const upgraded = cond('Released', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release flux-system/web.v2');
  it.each([
    [
      'waits while the tests have not run (Ready=Unknown AwaitingTests, Reconciling: the test action runs)',
      [cond('Ready', 'Unknown', 'AwaitingTests'), cond('TestSuccess', 'Unknown', 'AwaitingTests'), upgraded, reconciling('Progressing')],
      { enable: true },
      'pending',
      /AwaitingTests/,
    ],
    [
      'waits with ignoreFailures while TestSuccess is Unknown, though Ready says True (Released decides Ready then)',
      [cond('Ready', 'True', 'UpgradeSucceeded'), cond('TestSuccess', 'Unknown', 'AwaitingTests'), upgraded],
      { enable: true, ignoreFailures: true },
      'pending',
      /waiting for its Helm tests \(spec.test.enable\): AwaitingTests/,
    ],
    [
      'waits when Ready=True but no TestSuccess condition exists yet',
      [cond('Ready', 'True', 'UpgradeSucceeded'), upgraded],
      { enable: true },
      'pending',
      /no TestSuccess condition yet/,
    ],
    [
      'passes once the tests succeeded, naming them',
      [
        cond(
          'Ready',
          'True',
          'TestSucceeded',
          'Helm test succeeded for release flux-system/web.v2 with chart web@0.1.0: 1 test hook completed successfully',
        ),
        cond('TestSuccess', 'True', 'TestSucceeded', '1 test hook completed successfully'),
        upgraded,
      ],
      { enable: true },
      'passed',
      /TestSucceeded: 1 test hook completed successfully/,
    ],
    [
      'fails on TestFailed (no remediation retries left: Ready=False TestFailed, not reconciling)',
      [cond('Ready', 'False', 'TestFailed'), cond('TestSuccess', 'False', 'TestFailed'), upgraded],
      { enable: true },
      'failed',
      /TestFailed/,
    ],
    [
      'fails on TestFailed even when an older TestSuccess generation lets Ready say True (summarize orders by generation)',
      [cond('Ready', 'True', 'UpgradeSucceeded'), cond('TestSuccess', 'False', 'TestFailed', 'pod web-test failed'), upgraded],
      { enable: true },
      'failed',
      /its Helm tests failed: TestFailed: pod web-test failed/,
    ],
    [
      'passes with ignoreFailures, naming the failed test',
      [cond('Ready', 'True', 'UpgradeSucceeded'), cond('TestSuccess', 'False', 'TestFailed', 'pod web-test failed'), upgraded],
      { enable: true, ignoreFailures: true },
      'passed',
      /spec.test.ignoreFailures accepts: TestFailed: pod web-test failed/,
    ],
    [
      'ignores a TestSuccess condition when tests are off',
      [cond('Ready', 'True', 'UpgradeSucceeded'), cond('TestSuccess', 'False', 'TestFailed'), upgraded],
      { enable: false },
      'passed',
      /UpgradeSucceeded/,
    ],
  ] as const)('%s', (_name, conditions, test, verdict, text) => {
    const v = evaluateHelmRelease(released([...conditions], { ...test }), expected(), ctx({ chartFromOurRepo: true }));
    expect(v.state).toBe(verdict);
    expect(v.state === 'pending' ? v.reason : v.message).toMatch(text);
  });
});

describe('Flux HelmRelease: a failed attempt with retries left, and transient reasons, keep the wait going (issue 18 item 3)', () => {
  // Built from helm-controller 1.6 internal/reconcile/atomic_release.go Reconcile (remediation or RetryOnFailure
  // retries left: Reconciling=True ProgressingWithRetry; exhausted: Stalled=True RetriesExceeded) and
  // internal/controller/helmrelease_controller.go reconcileRelease (ValuesError, ArtifactFailed, SourceNotReady,
  // DependencyNotReady, HealthCheckCanceled are retried; Reconciling stays True from "Fulfilling prerequisites").
  const attempt = (conditions: unknown[]): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'flux-system', generation: 1 },
    spec: {
      chart: { spec: { chart: './charts/web', reconcileStrategy: 'Revision', sourceRef: { kind: 'GitRepository', name: 'fleet' } } },
    },
    status: { observedGeneration: 1, lastAttemptedRevision: `0.1.0+${OURS.slice(0, 12)}`, conditions: conditions as never },
  });
  const at1 = (type: string, status: string, reason: string) => ({
    type,
    status,
    reason,
    message: `${reason} message`,
    observedGeneration: 1,
  });
  it.each([
    [
      'UpgradeFailed, RetryOnFailure strategy retrying',
      [at1('Ready', 'False', 'UpgradeFailed'), at1('Reconciling', 'True', 'ProgressingWithRetry')],
      'pending',
    ],
    [
      'RollbackSucceeded after a remediation, retries left',
      [at1('Ready', 'False', 'RollbackSucceeded'), at1('Reconciling', 'True', 'ProgressingWithRetry')],
      'pending',
    ],
    [
      'TestFailed, remediation retries left',
      [at1('Ready', 'False', 'TestFailed'), at1('Reconciling', 'True', 'ProgressingWithRetry')],
      'pending',
    ],
    [
      'InstallFailed, retries left',
      [at1('Ready', 'False', 'InstallFailed'), at1('Reconciling', 'True', 'ProgressingWithRetry')],
      'pending',
    ],
    ...(['ValuesError', 'ArtifactFailed', 'SourceNotReady', 'HealthCheckCanceled', 'ReconcileError', 'StateError'] as const).map(
      (reason) =>
        [
          `${reason} (retried by helm-controller)`,
          [at1('Ready', 'False', reason), at1('Reconciling', 'True', 'Progressing')],
          'pending',
        ] as const,
    ),
    ['ValuesError even without Reconciling', [at1('Ready', 'False', 'ValuesError')], 'pending'],
    [
      'retries exhausted: Stalled RetriesExceeded',
      [at1('Ready', 'False', 'UpgradeFailed'), at1('Stalled', 'True', 'RetriesExceeded')],
      'failed',
    ],
    ['a failed attempt no longer reconciling (no retries configured)', [at1('Ready', 'False', 'UpgradeFailed')], 'failed'],
  ] as const)('%s: %s', (_name, conditions, verdict) => {
    expect(evaluateHelmRelease(attempt([...conditions]), expected(), ctx({ chartFromOurRepo: true })).state).toBe(verdict);
  });
});
