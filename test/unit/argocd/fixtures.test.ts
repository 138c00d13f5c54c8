// The Argo CD rule over Applications captured from the real controllers (Argo CD 3.5.3).
import { describe, expect, it } from '@jest/globals';
import { evaluateApplication, type Application, type ArgoExpectation } from '../../../src/argocd/evaluate.js';
import { fixture } from '../fixtures.js';

const C1 = 'bfccae246a6f0ad5d72a275f1d8c895151a5c509';
const C2 = '79dcd7668c6553cc0df8980468d181db7f45d580';
const INVALID = 'a4e988e29385b4804cb0229e8da1f3a0fe6e3395';
const UNPARSEABLE = 'a1c53c9c6f01546c2343a8ca846b041e0e957b26';
const UNSCHEDULABLE = 'c09c0409c389e634d645377b72dbd6950a40da56';
const WAVES = 'b8c674d6784fdd32a5a32359d96dee6d924b4e03';

const target = (commit: string, extra: Partial<ArgoExpectation> = {}): ArgoExpectation => ({ commit, relation: (sha) => (sha === commit ? 'same' : 'unrelated'), sourceIndex: 0, ...extra });

describe('Application, as Argo CD reports it', () => {
  it.each([
    ['outofsync-initial', C1, 'pending'],
    ['synced-healthy', C1, 'passed'],
    ['outofsync-new-revision', C2, 'pending'],
    ['sync-failed-invalid-manifest', INVALID, 'failed'],
    ['sync-error-unparseable', UNPARSEABLE, 'failed'],
    ['synced-progressing-rollout', UNSCHEDULABLE, 'pending'],
    ['degraded', UNSCHEDULABLE, 'failed'],
    ['sync-running', WAVES, 'pending'],
    ['sync-wave-blocked-by-degraded', WAVES, 'failed'],
  ] as const)('%s, waiting for %s → %s', (name, commit, expected) => {
    expect(evaluateApplication(fixture<Application>('argocd', name), target(commit)).state).toBe(expected);
  });

  it('fails on a comparison error seen after our refresh, though Argo CD names only the branch', () => {
    const app = fixture<Application>('argocd', 'comparison-error');
    expect(evaluateApplication(app, target(UNPARSEABLE, { refreshedAt: '2026-11-24T05:18:31.400Z' }))).toMatchObject({ state: 'failed', message: expect.stringContaining('Failed to unmarshal "bad.yaml"') });
    expect(evaluateApplication(app, target(UNPARSEABLE, { refreshedAt: '2026-11-24T05:18:35.000Z' })).state).toBe('pending');
  });

  it("reports Argo CD's message for a failed sync", () => {
    const v = evaluateApplication(fixture<Application>('argocd', 'sync-failed-invalid-manifest'), target(INVALID));
    expect(v.state === 'failed' && v.message).toMatch(/Bad_Name|one or more/);
  });
});
