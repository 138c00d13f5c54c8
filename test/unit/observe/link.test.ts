import { describe, expect, it } from '@jest/globals';
import { linkOf, observationGrant, observedSettings, type ObservedSettings } from '../../../src/observe/link.js';
import { SettingsError } from '../../../src/platform/settings/schema.js';
import { SettingsUnavailableError } from '../../../src/platform/settings/source.js';
import { mayTake } from '../../../src/observe/lease.js';
import { uuidFrom } from '../../../src/observe/announcer.js';
import { KEPTN_UUID } from '../../../src/keptn/parse.js';

const linked = {
  'gitops.keptn.sh/observe-project': 'podtato',
  'gitops.keptn.sh/observe-stage': 'dev',
  'gitops.keptn.sh/observe-service': 'web',
  'gitops.keptn.sh/projects': 'other,podtato',
};

describe('linkOf: which objects are observed, for which Keptn service', () => {
  it.each<[string, Record<string, string> | undefined, unknown]>([
    ['no annotations: not observed', undefined, undefined],
    ['only the grant: not observed', { 'gitops.keptn.sh/projects': 'podtato' }, undefined],
    // A hint of which settings to read, never a permission: the sequence is the project's choice (observationGrant).
    ['linked and granted: a hint of the Keptn service', linked, { link: { project: 'podtato', stage: 'dev', service: 'web' } }],
  ])('%s', (_, annotations, want) => {
    expect(linkOf('Kustomization', 'flux-system', 'app', annotations)).toEqual(want);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['stage missing', { ...linked, 'gitops.keptn.sh/observe-stage': undefined as unknown as string }, /observe-stage is missing/],
    [
      "the sequence asked by the object, which is the project's to choose (an annotation of the old link)",
      { ...linked, 'gitops.keptn.sh/observe-sequence': 'rollback' },
      /observe-sequence is no longer read: the project chooses the sequence in its settings \(observe.sequence/,
    ],
    ['a NATS wildcard as stage', { ...linked, 'gitops.keptn.sh/observe-stage': '>' }, /observe-stage must be a Keptn name/],
    [
      'not granted to the project',
      { ...linked, 'gitops.keptn.sh/projects': 'other' },
      /does not list it.*kubectl annotate --overwrite kustomizations/,
    ],
    ['no grant at all', { ...linked, 'gitops.keptn.sh/projects': '' }, /gitops.keptn.sh\/projects/],
  ])('refused: %s', (_, annotations, message) => {
    const clean = Object.fromEntries(Object.entries(annotations).filter(([, v]) => v !== undefined));
    const got = linkOf('Kustomization', 'flux-system', 'app', clean);
    expect(got).toHaveProperty('problem');
    expect((got as { problem: string }).problem).toMatch(message);
  });
});

describe("observationGrant: only the project's own settings let an object start its sequences (ADR 16)", () => {
  const object = { kind: 'Kustomization', namespace: 'flux-system', name: 'podtato-dev' } as const;
  const hint = { project: 'podtato', stage: 'dev', service: 'web' };
  const where = 'resource gitops/config.yaml of service web';
  const target = { kind: 'Kustomization', namespace: 'flux-system', name: 'podtato-dev' } as const;

  it.each<[string, ObservedSettings, unknown]>([
    ['the settings observe their own target: the delivery sequence by default', { settings: { target, observe: {} }, where }, 'delivery'],
    ['the settings choose another sequence', { settings: { target, observe: { sequence: 'gitops' } }, where }, 'gitops'],
  ])('allowed: %s', (_, found, sequence) => {
    expect(observationGrant(object, hint, found)).toEqual({ link: { ...hint, sequence } });
  });

  it.each<[string, typeof object | { kind: 'Kustomization' | 'Application'; namespace: string; name: string }, ObservedSettings, RegExp]>([
    [
      "a tenant's object in its own namespace, linked and self-granted to the project",
      { kind: 'Kustomization', namespace: 'tenant', name: 'podtato-dev' },
      { settings: { target, observe: {} }, where },
      /Kustomization tenant\/podtato-dev is linked to Keptn service podtato\/dev\/web.*name another object as target/,
    ],
    [
      'the same name under another kind',
      { kind: 'Application', namespace: 'flux-system', name: 'podtato-dev' },
      { settings: { target, observe: {} }, where },
      /name another object as target/,
    ],
    [
      'the target itself, but the project does not ask for changes made in Git (settings of the old link)',
      object,
      { settings: { target }, where },
      /do not ask for changes made in Git; the project's team adds "observe: \{\}".*with target Kustomization flux-system\/podtato-dev/,
    ],
    [
      'no settings for that service',
      object,
      { problem: 'settings for podtato/dev/web are not valid: no gitops/config.yaml at service, stage or project level' },
      /the settings of that service cannot be read \(settings for podtato\/dev\/web are not valid/,
    ],
  ])('refused: %s', (_, obj, found, message) => {
    const got = observationGrant(obj, hint, found);
    expect(got).toHaveProperty('problem');
    expect((got as { problem: string }).problem).toMatch(message);
    expect((got as { problem: string }).problem).toContain("Only the project's own settings can let an object start its sequences");
  });

  it('reads the settings of the linked service; missing or invalid settings refuse, an unreachable source is thrown', async () => {
    const asked: unknown[] = [];
    const found = await observedSettings(
      { load: async (scope) => (asked.push(scope), { settings: { target, observe: {} } as never, where }) },
      hint,
    );
    expect(asked).toEqual([hint]);
    expect(found).toMatchObject({ where });
    const invalid = await observedSettings(
      {
        load: async () => {
          throw new SettingsError(where, ['observe.sequence: must match pattern']);
        },
      },
      hint,
    );
    expect(invalid).toEqual({ problem: expect.stringMatching(/observe.sequence: must match pattern/) });
    await expect(
      observedSettings(
        {
          load: async () => {
            throw new SettingsUnavailableError('cannot reach the resource-service');
          },
        },
        hint,
      ),
    ).rejects.toBeInstanceOf(SettingsUnavailableError);
  });
});

describe('the observer Lease', () => {
  const now = Date.parse('2026-11-24T12:00:00Z');
  it.each<[string, Parameters<typeof mayTake>[0], boolean]>([
    ['nobody holds it', undefined, true],
    ['we hold it', { spec: { holderIdentity: 'me', renewTime: new Date(now) as never, leaseDurationSeconds: 20 } }, true],
    [
      'another holds it, renewed 5 s ago',
      { spec: { holderIdentity: 'other', renewTime: new Date(now - 5_000) as never, leaseDurationSeconds: 20 } },
      false,
    ],
    [
      'another held it, not renewed for 21 s',
      { spec: { holderIdentity: 'other', renewTime: new Date(now - 21_000) as never, leaseDurationSeconds: 20 } },
      true,
    ],
  ])('%s → may take: %s', (_, lease, want) => {
    expect(mayTake(lease, 'me', now, 20)).toBe(want);
  });
});

describe('announcement ids', () => {
  it('are Keptn-shaped UUIDs, the same for the same object and revision, different otherwise', () => {
    const a = uuidFrom('event Kustomization flux-system/app@abc');
    expect(a).toMatch(KEPTN_UUID);
    expect(uuidFrom('event Kustomization flux-system/app@abc')).toBe(a);
    expect(uuidFrom('event Kustomization flux-system/app@abd')).not.toBe(a);
  });
});
