// Property-based tests of the manifest editors: what they write reads back, writing twice changes nothing the
// second time, and nothing but the target value changes.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parse } from 'yaml';
import { applyImageWrite, EditError } from '../../../src/git/editors.js';
import { formatImageRef, parseImageRef, type ImageRef } from '../../../src/git/image.js';

const component = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const imageRef: fc.Arbitrary<ImageRef> = fc
  .record({
    registry: fc.option(fc.constantFrom('ghcr.io', 'registry.example.com:5000', 'localhost:5000'), { nil: undefined }),
    path: fc.array(component, { minLength: 1, maxLength: 3 }),
    tag: fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
  })
  .map(({ registry, path, tag }) => parseImageRef(`${registry ? `${registry}/` : ''}${path.join('/')}${tag ? `:${tag}` : ''}`));

const values = (tag: string) => `# chart values
replicaCount: 2
image:
  repository: ghcr.io/podtato/head # where from
  tag: "${tag}"
  pullPolicy: IfNotPresent
ingress: { enabled: false }
`;

describe('yamlPath editor', () => {
  it('writes a value that reads back, keeps every other value, and is idempotent', () => {
    fc.assert(
      fc.property(imageRef, (image) => {
        const before = values('0.1.0');
        const first = applyImageWrite(before, { kind: 'yamlPath', path: 'image.repository', part: 'ref' }, image);
        const read = parse(first.content);
        expect(read.image.repository).toBe(formatImageRef(image));
        const { image: _a, ...restAfter } = read;
        const { image: _b, ...restBefore } = parse(before);
        expect(restAfter).toEqual(restBefore);
        expect(read.image.tag).toBe('0.1.0');
        expect(first.content.split('\n').filter((l) => !l.includes('repository:'))).toEqual(before.split('\n').filter((l) => !l.includes('repository:')));
        expect(applyImageWrite(first.content, { kind: 'yamlPath', path: 'image.repository', part: 'ref' }, image)).toEqual({ changed: false, content: first.content });
      }),
      { numRuns: 300 },
    );
  });

  it('writes tags that YAML would otherwise read as numbers or booleans as strings', () => {
    fc.assert(
      fc.property(fc.constantFrom('1.10', '1', '0.5', 'true', 'no', 'null', '1e3', '0x10', '0o17'), (tag) => {
        const out = applyImageWrite('image:\n  tag: old\n', { kind: 'yamlPath', path: 'image.tag', part: 'tag' }, parseImageRef(`app:${tag}`));
        expect(parse(out.content).image.tag).toBe(tag);
      }),
    );
  });
});

describe('kustomize editor', () => {
  it('sets the entry so that the image reads back, idempotently', () => {
    fc.assert(
      fc.property(imageRef.filter((r) => r.tag !== undefined), (image) => {
        const src = 'resources: [deployment.yaml]\nimages:\n  - name: app\n    newTag: 0.0.1\n';
        const out = applyImageWrite(src, { kind: 'kustomizeImage', name: 'app' }, image);
        const entry = parse(out.content).images[0];
        expect(`${entry.newName ?? entry.name}:${entry.newTag}`).toBe(formatImageRef(image));
        expect(applyImageWrite(out.content, { kind: 'kustomizeImage', name: 'app' }, image).changed).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe('editors on arbitrary text', () => {
  it('never throw anything but a clear EditError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.constantFrom('a', 'a.b', 'images[0].newTag'), (text, path) => {
        try {
          applyImageWrite(text, { kind: 'yamlPath', path, part: 'ref' }, parseImageRef('app:1'));
          applyImageWrite(text, { kind: 'kustomizeImage', name: 'app' }, parseImageRef('app:1'));
          applyImageWrite(text, { kind: 'imagePolicy', policy: 'ns:p' }, parseImageRef('app:1'));
        } catch (err: unknown) {
          expect(err).toBeInstanceOf(EditError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
