import { describe, expect, it } from '@jest/globals';
import { trackedSource, type Application } from '../../../../src/tools/argocd/application.js';
import { sameRepository as sameRepo } from '../../../../src/platform/git/repository.js';

describe('which source follows our branch', () => {
  const source = (targetRevision?: string, repoURL = 'http://git/fleet.git') => ({
    repoURL,
    path: 'app',
    ...(targetRevision !== undefined ? { targetRevision } : {}),
  });
  const withSources = (...sources: Array<ReturnType<typeof source>>): Application => ({
    metadata: { name: 'podtato', namespace: 'argocd' },
    spec: sources.length === 1 ? { source: sources[0]! } : { sources },
  });
  it.each([
    ['the branch', [source('main')], { index: 0, tracksHead: false }],
    ['refs/heads/<branch>', [source('refs/heads/main')], { index: 0, tracksHead: false }],
    ['HEAD', [source('HEAD')], { index: 0, tracksHead: true }],
    ['no targetRevision (HEAD)', [source()], { index: 0, tracksHead: true }],
    ['our branch among sources of the same repository', [source('v1.4.0'), source('main')], { index: 1, tracksHead: false }],
    ['another repository first', [source('main', 'https://charts.example.com/x.git'), source('main')], { index: 1, tracksHead: false }],
  ] as const)('%s', (_name, sources, picked) => {
    expect(trackedSource(withSources(...sources), 'http://git/fleet', 'main')).toEqual(picked);
  });
  it.each([
    ['a tag', [source('v1.4.0')], 'Application argocd/podtato tracks v1.4.0, not branch main'],
    ['another branch', [source('release')], 'tracks release, not branch main'],
    ['a commit', [source('0123456789abcdef0123456789abcdef01234567')], 'not branch main'],
    ['another repository', [source('main', 'http://git/other.git')], 'does not read the GitOps repository http://git/fleet'],
  ] as const)('fails at once on %s', (_name, sources, message) => {
    const picked = trackedSource(withSources(...sources), 'http://git/fleet', 'main');
    expect('problem' in picked && picked.problem).toContain(message);
  });
});

describe('repository URLs', () => {
  it.each([
    ['https://git.example.com/team/fleet.git', 'https://git.example.com/team/fleet', true],
    ['git@git.example.com:team/fleet.git', 'ssh://git@git.example.com/team/fleet.git', true],
    ['https://git.example.com/team/fleet.git', 'https://git.example.com/team/other.git', false],
  ])('sameRepo(%s, %s) = %s', (a, b, same) => expect(sameRepo(a, b)).toBe(same));
});
