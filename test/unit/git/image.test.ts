import { describe, expect, it } from '@jest/globals';
import { formatImageRef, parseImageRef } from '../../../src/git/image.js';

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
