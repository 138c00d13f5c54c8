import { describe, expect, it } from '@jest/globals';
import { applyImageWrite, parsePath } from '../../../../src/platform/git/editors.js';
import { parseImageRef } from '../../../../src/platform/git/image.js';

const image = parseImageRef('ghcr.io/podtato/head:0.3.2');

describe('kustomize images: entry', () => {
  const source = `# team's kustomization
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml   # the app
images:
  - name: ghcr.io/podtato/head
    newTag: "0.3.1"   # bumped by Keptn
`;

  it('changes only the tag, keeping comments, quoting and spacing', () => {
    const out = applyImageWrite(source, { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' }, image);
    expect(out.changed).toBe(true);
    expect(out.content).toBe(source.replace('"0.3.1"', '"0.3.2"'));
  });

  it('reports no change when the tag is already there', () => {
    const already = source.replace('0.3.1', '0.3.2');
    expect(applyImageWrite(already, { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' }, image)).toEqual({
      changed: false,
      content: already,
    });
  });

  it('adds an entry, and newName when the repository differs', () => {
    const out = applyImageWrite('resources:\n  - d.yaml\n', { kind: 'kustomizeImage', name: 'podtato' }, image);
    expect(out.content).toContain('images:\n  - name: podtato\n    newName: ghcr.io/podtato/head\n    newTag: 0.3.2\n');
  });

  it('writes a digest and drops a stale one', () => {
    const digest = 'sha256:' + 'a'.repeat(64);
    const withDigest = applyImageWrite(
      source,
      { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
      parseImageRef(`ghcr.io/podtato/head:0.3.2@${digest}`),
    );
    expect(withDigest.content).toContain(`digest: ${digest}`);
    const back = applyImageWrite(withDigest.content, { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' }, image);
    expect(back.content).not.toContain('digest');
  });
});

describe('yaml path', () => {
  const values = `image:
  repository: ghcr.io/podtato/head # repo
  tag: 0.3.1
replicas: 2
`;
  it('writes one part of the image at a path', () => {
    const out = applyImageWrite(values, { kind: 'yamlPath', path: 'image.tag', part: 'tag' }, image);
    expect(out.content).toBe(values.replace('0.3.1', '0.3.2'));
  });

  it('quotes a plain value that would otherwise read back as a number', () => {
    const out = applyImageWrite(values, { kind: 'yamlPath', path: 'image.tag', part: 'tag' }, parseImageRef('ghcr.io/podtato/head:1.10'));
    expect(out.content).toContain('tag: "1.10"');
  });

  it('fails on a path that does not exist instead of creating it', () => {
    expect(() => applyImageWrite(values, { kind: 'yamlPath', path: 'image.tagg', part: 'tag' }, image)).toThrow('key image.tagg not found');
  });

  it('fails on a path that holds a mapping', () => {
    expect(() => applyImageWrite(values, { kind: 'yamlPath', path: 'image', part: 'ref' }, image)).toThrow('holds a mapping');
  });

  it('addresses list items and later documents', () => {
    const manifests = `kind: Service\n---\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: old:1\n`;
    const out = applyImageWrite(
      manifests,
      { kind: 'yamlPath', path: 'spec.template.spec.containers[0].image', part: 'ref', document: 1 },
      image,
    );
    expect(out.content).toBe(manifests.replace('old:1', 'ghcr.io/podtato/head:0.3.2'));
  });

  it('does not expand aliases (no alias bombs)', () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nimage: old:1\n`;
    expect(applyImageWrite(bomb, { kind: 'yamlPath', path: 'image', part: 'ref' }, image).content).toContain(
      'image: ghcr.io/podtato/head:0.3.2',
    );
  });

  it('rejects invalid YAML with the parser reason', () => {
    expect(() => applyImageWrite('a: [1,\n', { kind: 'yamlPath', path: 'a', part: 'ref' }, image)).toThrow(/not valid YAML/);
  });
});

describe('Flux image policy markers', () => {
  const release = `spec:
  values:
    image:
      repository: ghcr.io/podtato/head # {"$imagepolicy": "flux-system:podtato:name"}
      tag: 0.3.1 # {"$imagepolicy": "flux-system:podtato:tag"}
    sidecar: busybox:1 # {"$imagepolicy": "flux-system:other"}
`;
  it('sets every marked field of the named policy and nothing else', () => {
    const out = applyImageWrite(release, { kind: 'imagePolicy', policy: 'flux-system:podtato' }, image);
    expect(out.content).toBe(release.replace('0.3.1', '0.3.2'));
  });
  it('sets the whole reference for a bare marker', () => {
    const out = applyImageWrite(release, { kind: 'imagePolicy', policy: 'flux-system:other' }, image);
    expect(out.content).toContain('sidecar: ghcr.io/podtato/head:0.3.2 # {"$imagepolicy": "flux-system:other"}');
  });
  it('fails when no marker names the policy', () => {
    expect(() => applyImageWrite(release, { kind: 'imagePolicy', policy: 'flux-system:none' }, image)).toThrow(
      'no {"$imagepolicy": "flux-system:none"} marker found',
    );
  });
});

describe('parsePath', () => {
  it.each([
    ['a.b.c', ['a', 'b', 'c']],
    ['spec.containers[0].image', ['spec', 'containers', 0, 'image']],
    ['metadata.annotations["x.io/y"]', ['metadata', 'annotations', 'x.io/y']],
  ])('%s', (path, expected) => expect(parsePath(path)).toEqual(expected));
  it.each(['', 'a..b', '.a', 'a.', 'a[x]'])('rejects %j', (path) => expect(() => parsePath(path)).toThrow('malformed'));
});

// Issue 8, item 7. Measured on the 2-core test machine under jest: a 40,000-key mapping (389 KB) took 53.7 s and a
// 1 MB file of plain keys 84.8 s, both in `yaml`'s pairwise duplicate-key check; with the linear check (src/shared/yaml.ts)
// 1.6 s and 1.9 s, most of it the YAML parser itself, run twice (the edit is parsed again to check it reads back).
describe('hostile sizes', () => {
  const manyKeys = (n: number, extra = '') => {
    const lines = ['images:', '  - name: app', '    newTag: "1"'];
    for (let i = 0; i < n; i++) lines.push(`k${i}: v`);
    return `${lines.join('\n')}\n${extra}`;
  };

  it('handles a 40,000-key mapping', () => {
    const out = applyImageWrite(manyKeys(40_000), { kind: 'kustomizeImage', name: 'app' }, parseImageRef('app:2'));
    expect(out.content).toContain('newTag: "2"');
  });

  it('finds a duplicate key among 40,000, naming it', () => {
    expect(() =>
      applyImageWrite(manyKeys(40_000, 'k17: again\n'), { kind: 'kustomizeImage', name: 'app' }, parseImageRef('app:2')),
    ).toThrow('map keys must be unique ("k17" appears twice)');
  });

  it('refuses a file over 1 MB before parsing it', () => {
    expect(() =>
      applyImageWrite(`a: ${'x'.repeat(1024 * 1024)}\n`, { kind: 'yamlPath', path: 'a', part: 'ref' }, parseImageRef('app:2')),
    ).toThrow('larger than 1048576 bytes');
  });

  it('turns nesting too deep for the parser into an EditError', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}\n`;
    expect(() => applyImageWrite(deep, { kind: 'yamlPath', path: 'a', part: 'ref' }, parseImageRef('app:2'))).toThrow(
      /not valid YAML|not found|holds a/,
    );
  });
});

describe('read-back check (issue 8, item 6)', () => {
  it('a value in a block scalar is written as a plain scalar, never into the block', () => {
    const out = applyImageWrite(
      'spec:\n  image: |\n    old\n  replicas: 2\n',
      { kind: 'yamlPath', path: 'spec.image', part: 'ref' },
      image,
    );
    expect(out.content).toBe('spec:\n  image: ghcr.io/podtato/head:0.3.2\n  replicas: 2\n');
  });

  it('a value YAML reads as a boolean is replaced by the string, quoted', () => {
    const out = applyImageWrite('tag: true\n', { kind: 'yamlPath', path: 'tag', part: 'tag' }, parseImageRef('app:true'));
    expect(out.content).toBe('tag: "true"\n');
  });
});
