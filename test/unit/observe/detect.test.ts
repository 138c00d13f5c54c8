// Which revision an observed object has finished deploying, judged by the same rules as a Keptn-driven deployment,
// over objects captured from the real controllers (test/fixtures).
import { describe, expect, it } from '@jest/globals';
import type { Application } from '../../../src/tools/argocd/evaluate.js';
import type { FluxObject } from '../../../src/tools/flux/evaluate.js';
import { candidateRevision, detect, type Detection } from '../../../src/observe/detect.js';
import type { ObservedKind } from '../../../src/observe/link.js';
import { fixture } from '../fixtures.js';

const view = { kustomization: () => undefined, helmChart: () => undefined, workload: () => undefined };
const clock = { now: 0, since: () => 0 };

function detectFixture(kind: ObservedKind, tool: 'flux' | 'argocd', name: string): Detection {
  return detect({ kind, object: fixture<FluxObject | Application>(tool, name), view, clock });
}

describe('detect: Flux Kustomization', () => {
  it.each([
    // Applied and Ready at the revision it attempted: final, pass.
    ['kustomization-ready', 'final', 'pass'],
    ['kustomization-ready-second', 'final', 'pass'],
    // Ready still describes the previous revision while the new one is applied: not final yet.
    ['kustomization-progressing-new-revision', 'pending', undefined],
    ['kustomization-wait-progressing', 'pending', undefined],
    // The attempted revision failed: final, fail, with the controller's words.
    ['kustomization-build-failed', 'final', 'fail'],
    ['kustomization-health-check-failed', 'final', 'fail'],
  ])('%s → %s %s', (name, state, result) => {
    const d = detectFixture('Kustomization', 'flux', name);
    expect(d.state).toBe(state);
    if (d.state === 'final') expect(d.result).toBe(result);
    const obj = fixture<FluxObject>('flux', name);
    if (d.state !== 'none') expect(obj.status?.lastAttemptedRevision).toContain(d.revision);
  });

  it("a failure carries the tool's own message", () => {
    const obj = fixture<FluxObject>('flux', 'kustomization-build-failed');
    const d = detectFixture('Kustomization', 'flux', 'kustomization-build-failed');
    const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
    expect(d).toMatchObject({ state: 'final', result: 'fail' });
    expect((d as { message: string }).message).toContain(ready!.message!.slice(0, 60));
  });

  it('a suspended object announces nothing', () => {
    expect(detectFixture('Kustomization', 'flux', 'kustomization-suspended')).toEqual({ state: 'none' });
  });

  it('an object that attempted nothing yet announces nothing', () => {
    expect(detect({ kind: 'Kustomization', object: { metadata: { name: 'x' }, status: {} }, view, clock })).toEqual({ state: 'none' });
  });
});

describe('detect: Flux HelmRelease with a chart built from Git', () => {
  it.each([
    ['helmrelease-ready', 'final', 'pass'],
    ['helmrelease-upgrade-failed', 'final', 'fail'],
  ])('%s → %s %s', (name, state, result) => {
    const d = detectFixture('HelmRelease', 'flux', name);
    expect(d.state).toBe(state);
    if (d.state === 'final') {
      expect(d.result).toBe(result);
      // The chart version `<version>+<sha12>` names the commit by 12 digits.
      expect(d.revision).toMatch(/^[0-9a-f]{12}$/);
    }
  });
});

describe('detect: Argo CD Application', () => {
  it.each([
    ['synced-healthy', 'final', 'pass'],
    ['sync-running', 'pending', undefined],
    ['outofsync-new-revision', 'pending', undefined],
    ['sync-failed-invalid-manifest', 'final', 'fail'],
  ])('%s → %s %s', (name, state, result) => {
    const d = detectFixture('Application', 'argocd', name);
    expect(d.state).toBe(state);
    if (d.state === 'final') expect(d.result).toBe(result);
    expect(d.state === 'none' ? undefined : d.revision).toBe(candidateRevision('Application', fixture<Application>('argocd', name)));
  });

  it('Degraded counts only once it has lasted the grace period', () => {
    const app = fixture<Application>('argocd', 'degraded');
    expect(detect({ kind: 'Application', object: app, view, clock, degradedForMs: 0 }).state).toBe('pending');
    expect(detect({ kind: 'Application', object: app, view, clock, degradedForMs: 61_000 })).toMatchObject({
      state: 'final',
      result: 'fail',
    });
  });
});

/** Built from the upstream code (no OCI registry or multi-source Application in test/env): the revisions each names. */
describe('candidateRevision: only commits of the linked service repository are revisions to announce (issue 18 item 5)', () => {
  const SHA = '86eb1df762d648ef6da4a944aeea85a41e50d9b7';
  const helmRelease = (spec: Record<string, unknown>, lastAttemptedRevision: string): FluxObject => ({
    kind: 'HelmRelease',
    metadata: { name: 'web', namespace: 'web' },
    spec,
    status: { lastAttemptedRevision },
  });
  const app = (sources: Array<{ repoURL: string; chart?: string }>, revisions: string[]): Application =>
    ({
      metadata: { name: 'web', namespace: 'argocd' },
      spec: { sources, destination: {} },
      status: { sync: { status: 'Synced', revisions } },
    }) as unknown as Application;

  it.each<[string, ObservedKind, FluxObject | Application, string | undefined, string | undefined]>([
    [
      'a chart built from a GitRepository: the commit in its version',
      'HelmRelease',
      helmRelease(
        { chart: { spec: { chart: './charts/web', sourceRef: { kind: 'GitRepository', name: 'app' } } } },
        `0.1.0+${SHA.slice(0, 12)}`,
      ),
      undefined,
      SHA.slice(0, 12),
    ],
    [
      // helm-controller internal/controller/helmrelease_controller.go mutateChartWithDigest: `<version>+<digest12>`.
      'an OCI chart (chartRef OCIRepository): its digest is no commit',
      'HelmRelease',
      helmRelease({ chartRef: { kind: 'OCIRepository', name: 'web' } }, '1.2.0+3f1a9c0d2b4e'),
      undefined,
      undefined,
    ],
    [
      'a chart from a HelmRepository: a version, no commit',
      'HelmRelease',
      helmRelease({ chart: { spec: { chart: 'web', sourceRef: { kind: 'HelmRepository', name: 'charts' } } } }, '1.2.0+3f1a9c0d2b4e'),
      undefined,
      undefined,
    ],
    [
      'a Kustomization fed by an OCIRepository: a digest, no commit',
      'Kustomization',
      {
        kind: 'Kustomization',
        metadata: { name: 'web' },
        spec: { sourceRef: { kind: 'OCIRepository', name: 'web' } },
        status: { lastAttemptedRevision: `latest@sha256:${'a'.repeat(64)}` },
      },
      undefined,
      undefined,
    ],
    [
      'a multi-source Application: the revision of the source that reads the linked service repository',
      'Application',
      app(
        [
          { repoURL: 'https://git.example/values.git' },
          { repoURL: 'https://charts.example', chart: 'web' },
          { repoURL: 'https://git.example/ops.git' },
        ],
        ['1'.repeat(40), '1.2.0', SHA],
      ),
      'https://git.example/ops',
      SHA,
    ],
    [
      'a multi-source Application with two Git sources and no settings to tell which: none',
      'Application',
      app([{ repoURL: 'https://git.example/values.git' }, { repoURL: 'https://git.example/ops.git' }], ['1'.repeat(40), SHA]),
      undefined,
      undefined,
    ],
    [
      'an Argo CD OCI source: a digest, no commit',
      'Application',
      app([{ repoURL: 'oci://registry.example/web' }], [`sha256:${'b'.repeat(64)}`]),
      undefined,
      undefined,
    ],
  ])('%s', (_, kind, object, repoUrl, want) => {
    expect(candidateRevision(kind, object, repoUrl ? { repoUrl } : undefined)).toBe(want);
  });
});

/** Built from Argo CD 3.5's Application status (controller/appcontroller.go): the observer's rows of issue 18 item 4. */
describe('detect: Argo CD, the same rules as a deployment (issue 18 item 4)', () => {
  const NEW = '2222222222222222222222222222222222222222';
  const OLD = '1111111111111111111111111111111111111111';
  const application = (status: Record<string, unknown>): Application =>
    ({
      metadata: { name: 'web', namespace: 'argocd' },
      spec: { source: { repoURL: 'https://git.example/ops.git', path: 'apps/web', targetRevision: 'main' }, destination: {} },
      status,
    }) as unknown as Application;

  it('a failed operation of an older revision is not the outcome of the new one', () => {
    const app = application({
      sync: { status: 'OutOfSync', revision: NEW },
      health: { status: 'Healthy' },
      operationState: { phase: 'Failed', message: 'one or more objects failed to apply', syncResult: { revision: OLD } },
    });
    expect(detect({ kind: 'Application', object: app, view, clock })).toMatchObject({ state: 'pending', revision: NEW });
  });

  it.each<[number, string]>([
    [0, 'pending'],
    [59_000, 'pending'],
    [61_000, 'final'],
  ])('Degraded right after the sync, seen for %i ms: %s (the deployment settle window, 60 s by default)', (degradedForMs, state) => {
    const app = application({
      sync: { status: 'Synced', revision: NEW },
      health: { status: 'Degraded' },
      reconciledAt: '2026-12-07T10:00:05Z',
      operationState: { phase: 'Succeeded', finishedAt: '2026-12-07T10:00:00Z', syncResult: { revision: NEW } },
    });
    const d = detect({ kind: 'Application', object: app, view, clock, degradedForMs });
    expect(d.state).toBe(state);
    if (d.state === 'final') expect(d.result).toBe('fail');
  });

  it("the linked service's argocd.degradedGrace sets the window, as for its deployments", () => {
    const app = application({
      sync: { status: 'Synced', revision: NEW },
      health: { status: 'Degraded' },
      reconciledAt: '2026-12-07T10:00:05Z',
      operationState: { phase: 'Succeeded', finishedAt: '2026-12-07T10:00:00Z', syncResult: { revision: NEW } },
    });
    const service = { repoUrl: 'https://git.example/ops', degradedGraceMs: 120_000 };
    expect(detect({ kind: 'Application', object: app, view, clock, degradedForMs: 61_000, service }).state).toBe('pending');
  });
});
