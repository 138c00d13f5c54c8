// The Flux Kustomization rules, one row per observed state (docs/verdicts.md (Flux) is the same table for users).
// Objects here are built from the controllers' API types and source (builders.ts); fixtures.test.ts runs the same rules
// over objects captured from the real controllers.
import { describe, expect, it } from '@jest/globals';
import { evaluateKustomization, specMayCarryImage } from '../../../../src/tools/flux/evaluate.js';
import { OURS, OLD, LATER, expected, ctx, ready, stalled, reconciling, kustomization, appliedStatus, cast } from './builders.js';

describe('Flux Kustomization: has our commit been applied?', () => {
  it.each([
    ['passes once our commit is applied and Ready at the current generation', appliedStatus(), 'passed'],
    ['passes on a later commit that contains ours', appliedStatus(LATER), 'passed'],
    ['waits while the old revision is still the Ready one (the stale-success trap)', appliedStatus(OLD), 'pending'],
    [
      'ignores a leftover failure of an older revision',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'BuildFailed', 'old breakage')],
      },
      'pending',
    ],
    [
      'fails early when our revision cannot be built',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'BuildFailed', 'kustomize build failed: accumulating resources')],
      },
      'failed',
    ],
    [
      'fails when health checks fail at our revision',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'HealthCheckFailed', 'timeout waiting for: [Deployment/default/app status: InProgress]')],
      },
      'failed',
    ],
    [
      'waits while reconciling our revision',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('Unknown', 'Progressing', 'Reconciliation in progress'), reconciling('Progressing')],
      },
      'pending',
    ],
    [
      'waits when Ready describes an older generation',
      { ...appliedStatus(), conditions: [ready('True', 'ReconciliationSucceeded', '', 1)] },
      'pending',
    ],
    [
      'fails when stalled at our revision',
      {
        observedGeneration: 2,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'InvalidPath'), stalled('InvalidPath', 'path ./nope not found')],
      },
      'failed',
    ],
    // item 7: transient reasons are not final
    [
      'waits when health checks were canceled by a newer revision (HealthCheckCanceled)',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'HealthCheckCanceled', 'New reconciliation triggered by GitRepository/flux-system/fleet')],
      },
      'pending',
    ],
    [
      'waits while the source artifact is missing (ArtifactFailed)',
      {
        observedGeneration: 2,
        lastAppliedRevision: `main@sha1:${OLD}`,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'ArtifactFailed', 'Source artifact not found, retrying in 30s')],
      },
      'pending',
    ],
    // item 18: stalled before our revision was attempted
    [
      'fails when stalled on an invalid CEL expression before trying our commit',
      {
        observedGeneration: 2,
        lastAttemptedRevision: `main@sha1:${OLD}`,
        conditions: [ready('False', 'InvalidCELExpression', 'terminal error'), stalled('InvalidCELExpression', 'invalid expression')],
      },
      'failed',
    ],
    [
      'fails when stalled on a denied cross-namespace source before trying our commit',
      {
        observedGeneration: -1,
        conditions: [
          ready('False', 'AccessDenied', 'cross-namespace references are not allowed'),
          stalled('AccessDenied', 'cross-namespace references are not allowed'),
        ],
      },
      'failed',
    ],
  ] as const)('%s', (_name, status, verdict) => {
    expect(evaluateKustomization(kustomization(cast(status)), expected(), ctx()).state).toBe(verdict);
  });

  it("reports Flux's own message when it fails", () => {
    const v = evaluateKustomization(
      kustomization({
        observedGeneration: 2,
        lastAttemptedRevision: `main@sha1:${OURS}`,
        conditions: [ready('False', 'BuildFailed', 'kustomize build failed: missing resource x.yaml')],
      }),
      expected(),
      ctx(),
    );
    expect(v).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('BuildFailed: kustomize build failed: missing resource x.yaml'),
    });
  });

  it('asks the waiter about a revision it cannot place', () => {
    const v = evaluateKustomization(kustomization(appliedStatus('d'.repeat(40))), expected(), ctx());
    expect(v).toEqual({ state: 'pending', reason: expect.any(String), unknownRevision: 'd'.repeat(40) });
  });

  it('reports a suspended Kustomization at once', () => {
    expect(evaluateKustomization(kustomization({}, { suspend: true }), expected(), ctx())).toMatchObject({
      state: 'failed',
      message: expect.stringContaining('suspended'),
    });
  });
});

describe('Flux Kustomization applied by another Kustomization (item 4)', () => {
  it.each([
    ['spec.images', { images: [{ name: 'ghcr.io/podtato/head', newTag: '0.1.0' }] }, true],
    ['postBuild.substitute', { postBuild: { substitute: { TAG: '0.1.0' } } }, true],
    [
      'neither: our change is in the files it reads',
      { images: [], postBuild: { substituteFrom: [{ kind: 'ConfigMap', name: 'vars' }] } },
      false,
    ],
  ] as const)('follows the manager when its own spec holds %s: %s', (_name, spec, follow) => {
    expect(specMayCarryImage(kustomization({}, spec))).toBe(follow);
  });

  const parentApplied = kustomization(appliedStatus(OURS), { wait: true }, 'flux-system');
  const child = kustomization(appliedStatus(OURS, { lastHandledReconcileAt: 'after' }), {
    wait: true,
    images: [{ name: 'ghcr.io/podtato/head', newTag: '0.2.0' }],
  });
  it.each([
    [
      'waits while the manager has not applied our commit',
      kustomization(appliedStatus(OLD), {}, 'flux-system'),
      child,
      undefined,
      'pending',
    ],
    [
      'fails when the manager failed at our commit',
      kustomization(
        { observedGeneration: 2, lastAttemptedRevision: `main@sha1:${OURS}`, conditions: [ready('False', 'BuildFailed', 'parent broken')] },
        {},
        'flux-system',
      ),
      child,
      undefined,
      'failed',
    ],
    [
      'waits when the child applied our revision but not since the manager applied its new spec',
      parentApplied,
      child,
      'later-token',
      'pending',
    ],
    ['passes once the child reconciled after the manager applied our commit', parentApplied, child, 'after', 'passed'],
  ] as const)('%s', (_name, manager, target, requestedAfterApply, verdict) => {
    expect(evaluateKustomization(target, expected(), ctx({ manager, ...(requestedAfterApply ? { requestedAfterApply } : {}) })).state).toBe(
      verdict,
    );
  });
});
