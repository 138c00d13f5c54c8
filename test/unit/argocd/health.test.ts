import { describe, expect, it } from '@jest/globals';
import { sameImage } from '../../../src/argocd/health.js';

describe('images', () => {
  it.each([
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.2.0', true],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/head:0.1.0', false],
    ['nginx:1.0', 'docker.io/library/nginx:1.0', true],
    ['nginx', 'nginx:latest', true],
    ['ghcr.io/podtato/head@sha256:' + 'a'.repeat(64), 'ghcr.io/podtato/head:0.2.0@sha256:' + 'a'.repeat(64), true],
    ['ghcr.io/podtato/head@sha256:' + 'a'.repeat(64), 'ghcr.io/podtato/head:0.2.0', false],
    ['localhost:5000/head:1', 'localhost:5000/head:1', true],
    ['ghcr.io/podtato/head:0.2.0', 'ghcr.io/podtato/body:0.2.0', false],
    ['podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.2.0', true],
    ['podtato/head:0.2.0', 'mirror.example.com/podtato/head:0.1.0', false],
  ])('sameImage(%s, %s) = %s', (written, running, same) => expect(sameImage(written, running)).toBe(same));
});
