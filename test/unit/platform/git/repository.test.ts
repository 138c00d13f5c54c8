// Which URLs name the same Git repository (src/platform/git/repository.ts): the rule that ties the settings' git.url to what the
// project's target reads, and that the Flux and Argo CD drivers use.
import { describe, expect, it } from '@jest/globals';
import { repositoryKey, sameRepository } from '../../../../src/platform/git/repository.js';

describe('sameRepository', () => {
  it.each([
    // Spellings of one repository.
    ['https://git.example.com/org/repo.git', 'https://git.example.com/org/repo', true],
    ['https://git.example.com/org/repo/', 'https://GIT.example.com/org/repo.git', true],
    ['https://user@git.example.com:443/org/repo', 'https://git.example.com/org/repo', true],
    ['http://git.example.com/org/repo', 'https://git.example.com/org/repo', true],
    ['git@git.example.com:org/repo.git', 'ssh://git@git.example.com/org/repo', true],
    ['git@git.example.com:org/repo.git', 'https://git.example.com/org/repo', true],
    // Issue 18's leftover: SSH on its own port and HTTPS are one forge serving one repository.
    ['ssh://git@git.example.com:2222/org/repo.git', 'https://git.example.com/org/repo', true],
    ['https://git.example.com:8443/org/repo', 'ssh://git@git.example.com:2222/org/repo.git', true],
    // Two servers, two repositories.
    ['ssh://git@git.example.com:2222/org/repo.git', 'ssh://git@git.example.com/org/repo.git', false],
    ['https://git.example.com:8443/org/repo', 'https://git.example.com/org/repo', false],
    ['http://127.0.0.1:3000/fleet.git', 'http://127.0.0.1:3001/fleet.git', false],
    ['https://git.example.com/org/repo', 'https://git.other.example/org/repo', false],
    // Paths: case-sensitive (plain Git servers keep them apart), no prefix matches.
    ['https://git.example.com/org/Repo', 'https://git.example.com/org/repo', false],
    ['https://git.example.com/org/repo', 'https://git.example.com/org/repo-2', false],
    ['https://git.example.com/team-a/repo', 'https://git.example.com/team-b/repo', false],
    // What git and a text comparison read differently matches nothing, not even itself.
    ['https://git.example.com/team-a/repo/../../team-b/repo', 'https://git.example.com/team-a/repo/../../team-b/repo', false],
    ['https://git.example.com/org/%72epo', 'https://git.example.com/org/%72epo', false],
    ['https://git.example.com\\@other.example/org/repo', 'https://git.example.com/org/repo', false],
    ['https://git.example.com/org/repo?x=1', 'https://git.example.com/org/repo', false],
    ['file:///srv/git/repo', 'file:///srv/git/repo', false],
  ])('%s and %s: %s', (a, b, same) => {
    expect(sameRepository(a, b)).toBe(same);
    expect(sameRepository(b, a)).toBe(same);
  });

  it('says why a URL cannot be told', () => {
    expect(repositoryKey('https://git.example.com/a/./b')).toEqual({ problem: 'has "." or ".." in its path' });
    expect(repositoryKey('https://git.example.com/')).toEqual({ problem: 'names no repository path' });
    expect(repositoryKey('ext::git-remote-x')).toMatchObject({ problem: expect.stringContaining('is not an https://') });
    expect(repositoryKey('ssh://git@[::1]:2222/org/repo.git')).toEqual({ transport: 'ssh', host: '[::1]', port: 2222, path: 'org/repo' });
  });
});
