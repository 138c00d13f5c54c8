// Status objects captured from the real controllers in the test environment (see test/fixtures/*/README.md).
import { readFileSync } from 'node:fs';

export function fixture<T>(tool: 'flux' | 'argocd', name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${tool}/${name}.json`, import.meta.url), 'utf8')) as T;
}
