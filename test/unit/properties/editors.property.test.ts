// Property-based tests of the manifest editors: what they write reads back, writing twice changes nothing the
// second time, and nothing but the target value changes.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parse } from 'yaml';
import { applyImageWrite, EditError } from '../../../src/platform/git/editors.js';
import { formatImageRef, parseImageRef, type ImageRef } from '../../../src/platform/git/image.js';

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
        expect(first.content.split('\n').filter((l) => !l.includes('repository:'))).toEqual(
          before.split('\n').filter((l) => !l.includes('repository:')),
        );
        expect(applyImageWrite(first.content, { kind: 'yamlPath', path: 'image.repository', part: 'ref' }, image)).toEqual({
          changed: false,
          content: first.content,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('writes tags that YAML would otherwise read as numbers or booleans as strings', () => {
    fc.assert(
      fc.property(fc.constantFrom('1.10', '1', '0.5', 'true', 'no', 'null', '1e3', '0x10', '0o17'), (tag) => {
        const out = applyImageWrite(
          'image:\n  tag: old\n',
          { kind: 'yamlPath', path: 'image.tag', part: 'tag' },
          parseImageRef(`app:${tag}`),
        );
        expect(parse(out.content).image.tag).toBe(tag);
      }),
    );
  });
});

describe('kustomize editor', () => {
  it('sets the entry so that the image reads back, idempotently', () => {
    fc.assert(
      fc.property(
        imageRef.filter((r) => r.tag !== undefined),
        (image) => {
          const src = 'resources: [deployment.yaml]\nimages:\n  - name: app\n    newTag: 0.0.1\n';
          const out = applyImageWrite(src, { kind: 'kustomizeImage', name: 'app' }, image);
          const entry = parse(out.content).images[0];
          expect(`${entry.newName ?? entry.name}:${entry.newTag}`).toBe(formatImageRef(image));
          expect(applyImageWrite(out.content, { kind: 'kustomizeImage', name: 'app' }, image).changed).toBe(false);
        },
      ),
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

// Issue 8, item 6: whatever style the value to replace is written in, the edited file parses again and reads back the
// value written, and nothing else changes; or the edit fails. A value written into a block scalar used to come back
// with a line break (`|`) or folded (`>`).
describe('every scalar style reads back (issue 8, item 6)', () => {
  const styles: Array<[string, (old: string) => string, string]> = [
    ['plain', (old) => `spec:\n  image: ${old}\n`, 'spec.image'],
    ['plain with a comment', (old) => `spec:\n  image: ${old} # the image\n`, 'spec.image'],
    ['single-quoted', (old) => `spec:\n  image: '${old}'\n`, 'spec.image'],
    ['double-quoted', (old) => `spec:\n  image: "${old}"\n`, 'spec.image'],
    ['literal block', (old) => `spec:\n  image: |\n    ${old}\n  next: 1\n`, 'spec.image'],
    ['literal block, strip', (old) => `spec:\n  image: |-\n    ${old}\n  next: 1\n`, 'spec.image'],
    ['literal block, keep', (old) => `spec:\n  image: |+\n    ${old}\n\n  next: 1\n`, 'spec.image'],
    ['folded block', (old) => `spec:\n  image: >\n    ${old}\n  next: 1\n`, 'spec.image'],
    ['folded block, strip', (old) => `spec:\n  image: >-\n    ${old}\n`, 'spec.image'],
    ['block scalar at the end of the file', (old) => `spec:\n  image: |\n    ${old}`, 'spec.image'],
    ['flow mapping', (old) => `spec: {image: ${old}, next: 1}\n`, 'spec.image'],
    ['flow mapping, quoted', (old) => `spec: {image: "${old}", next: 1}\n`, 'spec.image'],
    ['flow sequence', (old) => `images: [${old}, other]\n`, 'images[0]'],
    ['block sequence', (old) => `images:\n  - ${old}\n  - other\n`, 'images[0]'],
    ['empty value', () => `spec:\n  image:\n  next: 1\n`, 'spec.image'],
    ['tilde', () => `spec:\n  image: ~\n`, 'spec.image'],
    ['empty quoted', () => `spec:\n  image: ""\n`, 'spec.image'],
  ];
  // Old values include ones YAML reads as other types.
  const old = fc.constantFrom('old', '1.0', 'true', '0x1F', 'ghcr.io/a/b:1');
  const tag = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/),
    fc.constantFrom('1.10', '1', 'true', 'no', 'null', '1e3', '0x10', '0o17', 'NaN', 'Yes', '2024-01-01', 'TRUE', 'y', 'off'),
  );
  const part = fc.constantFrom<'ref' | 'tag' | 'name'>('ref', 'tag', 'name');

  it.each(styles)('%s', (_name, template, path) => {
    fc.assert(
      fc.property(old, imageRef, tag, part, (before, ref, t, which) => {
        const image = parseImageRef(`${formatImageRef({ ...ref, tag: undefined })}:${t}`);
        const expected = which === 'ref' ? formatImageRef(image) : which === 'tag' ? t : image.name;
        const src = template(before);
        const write = { kind: 'yamlPath' as const, path, part: which };
        const out = applyImageWrite(src, write, image);
        const read = parse(out.content);
        const at = path === 'images[0]' ? read.images[0] : read.spec.image;
        expect(at).toBe(expected);
        // Nothing else changed.
        const strip = (v: ReturnType<typeof parse>) =>
          path === 'images[0]' ? { ...v, images: v.images.slice(1) } : { ...v, spec: { ...v.spec, image: undefined } };
        expect(strip(read)).toEqual(strip(parse(src)));
        expect(applyImageWrite(out.content, write, image).changed).toBe(false);
      }),
      // A value that reads as another type but prints the same (`true`, `1.0`): it must still become the string.
      {
        numRuns: 150,
        examples: [
          ['true', parseImageRef('a'), 'true', 'tag'],
          ['1.0', parseImageRef('a'), '1.0', 'tag'],
          ['0x1F', parseImageRef('a'), '0x1F', 'tag'],
        ],
      },
    );
  });
});
