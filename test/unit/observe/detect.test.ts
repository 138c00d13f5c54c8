// Which revision an observed object has finished deploying, judged by the same rules as a Keptn-driven deployment,
// over objects captured from the real controllers (test/fixtures).
import { describe, expect, it } from '@jest/globals';
import type { Application } from '../../../src/argocd/evaluate.js';
import type { FluxObject } from '../../../src/flux/evaluate.js';
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
