import { describe, expect, it } from '@jest/globals';
import { carriesAll, formatImageRef, parseImageRef, sameImage } from '../../../../src/platform/git/image.js';

describe('parseImageRef', () => {
  it.each([
    ['nginx:1.27', { name: 'nginx', tag: '1.27' }],
    ['ghcr.io/podtato/head:0.3.2', { name: 'ghcr.io/podtato/head', tag: '0.3.2' }],
    ['localhost:5000/app:v1', { name: 'localhost:5000/app', tag: 'v1' }],
    ['registry.example.com:443/team/app', { name: 'registry.example.com:443/team/app' }],
    [`app@sha256:${'b'.repeat(64)}`, { name: 'app', digest: `sha256:${'b'.repeat(64)}` }],
  ])('accepts %s', (input, expected) => {
    expect(parseImageRef(input)).toEqual(expected);
    expect(formatImageRef(parseImageRef(input))).toBe(input);
  });

  it.each([
    ['', 'empty'],
    ['app:1\nmalicious: true', 'white space'],
    ['--upload-pack=touch', 'repository path'],
    ['app:$(id)', 'tag'],
    ['App/Thing:1', 'repository path'],
    ['app:1;rm -rf /', 'white space'],
    ['app@sha256:xyz', 'digest'],
    ['a'.repeat(600), 'longer than'],
  ])('rejects %j', (input, why) => expect(() => parseImageRef(input)).toThrow(why));
});

// Item 9 of issue 18: one matcher for Flux, Argo CD, Rollouts and Flagger. Rows built from the reference grammar
// (distribution/reference: normalize.go, a digest names the content whatever the tag beside it).
describe('sameImage: written vs running', () => {
  const A = `sha256:${'a'.repeat(64)}`;
  const B = `sha256:${'b'.repeat(64)}`;
  it.each([
    ['the same reference', 'ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.2.0', true],
    ['another tag', 'ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.1.0', false],
    ['another repository', 'ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/body:0.2.0', false],
    ['Docker Hub short name', 'nginx:1.27', 'docker.io/library/nginx:1.27', true],
    ['Docker Hub without library/', 'docker.io/nginx:1.27', 'nginx:1.27', true],
    ['index.docker.io is Docker Hub', 'nginx:1.27', 'index.docker.io/library/nginx:1.27', true],
    ['no tag is latest', 'nginx', 'nginx:latest', true],
    ['registry with a port, no tag', 'registry:5000/app', 'registry:5000/app:latest', true],
    ['a mirror of the repository (part: tag)', 'ghcr.io/podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.2.0', true],
    ['a mirror at another tag', 'ghcr.io/podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.1.0', false],
    [
      'tag and digest vs digest alone (a chart that renders repo@digest)',
      `ghcr.io/podtato/head:0.2.0@${A}`,
      `ghcr.io/podtato/head@${A}`,
      true,
    ],
    [
      'digest alone vs tag and digest (a controller that keeps the tag text)',
      `ghcr.io/podtato/head@${A}`,
      `ghcr.io/podtato/head:0.2.0@${A}`,
      true,
    ],
    ['same digest, other tag text', `ghcr.io/podtato/head:0.2.0@${A}`, `ghcr.io/podtato/head:stable@${A}`, true],
    ['same digest, Docker Hub spelled out', `nginx@${A}`, `docker.io/library/nginx:1.27@${A}`, true],
    ['other digest, same tag', `ghcr.io/podtato/head:0.2.0@${A}`, `ghcr.io/podtato/head:0.2.0@${B}`, false],
    ['digest written, tag running: unknown content', `ghcr.io/podtato/head@${A}`, 'ghcr.io/podtato/head:0.2.0', false],
    ['tag written, tag and digest running', 'ghcr.io/podtato/head:0.2.0', `ghcr.io/podtato/head:0.2.0@${A}`, true],
    ['tag written, digest alone running: unknown tag', 'ghcr.io/podtato/head:0.2.0', `ghcr.io/podtato/head@${A}`, false],
    ['digest case', `ghcr.io/podtato/head@${A}`, `ghcr.io/podtato/head@${A.toUpperCase().replace('SHA256', 'sha256')}`, true],
    ['empty running image', 'nginx:1.27', '', false],
  ])('%s: %s runs as %s → %s', (_why, written, running, same) => {
    expect(sameImage(written, running)).toBe(same);
  });

  it('carriesAll: every written image is held; none written is trivially held', () => {
    expect(carriesAll(['nginx:1.27', 'ghcr.io/a/b:1'], ['ghcr.io/a/b:1', 'docker.io/library/nginx:1.27'])).toBe(true);
    expect(carriesAll(['nginx:1.27', 'ghcr.io/a/b:1'], ['docker.io/library/nginx:1.27'])).toBe(false);
    expect(carriesAll([], [])).toBe(true);
  });
});
