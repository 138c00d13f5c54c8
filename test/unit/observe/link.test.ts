import { describe, expect, it } from '@jest/globals';
import { linkOf } from '../../../src/observe/link.js';
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
    [
      'linked and granted: the delivery sequence by default',
      linked,
      { link: { project: 'podtato', stage: 'dev', service: 'web', sequence: 'delivery' } },
    ],
    [
      'another sequence',
      { ...linked, 'gitops.keptn.sh/observe-sequence': 'gitops' },
      { link: { project: 'podtato', stage: 'dev', service: 'web', sequence: 'gitops' } },
    ],
  ])('%s', (_, annotations, want) => {
    expect(linkOf('Kustomization', 'flux-system', 'app', annotations)).toEqual(want);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['stage missing', { ...linked, 'gitops.keptn.sh/observe-stage': undefined as unknown as string }, /observe-stage is missing/],
    [
      'a sequence name that would change the event type',
      { ...linked, 'gitops.keptn.sh/observe-sequence': 'a.b' },
      /observe-sequence must be a Keptn name/,
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
