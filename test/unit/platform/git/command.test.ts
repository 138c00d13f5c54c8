// How one git command runs (command.ts): every command ends by saying something on stderr (git's performance trace),
// so simple-git never waits its extra 50 ms for a silent one (issue 22, item 4); what an error reports is git's own
// words, without the trace.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gitIn, withoutTrace } from '../../../../src/platform/git/command.js';
import { localGitEnv } from '../../../../src/platform/git/credentials.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-command-'));
  await gitIn(dir, localGitEnv(), 10_000).raw(['init', '-q']);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a git command', () => {
  it('reports a failure in git words only, without the trace that ends every command', async () => {
    const err = (await gitIn(dir, localGitEnv(), 10_000)
      .raw(['checkout', 'no-such-branch'])
      .catch((e: unknown) => e)) as Error;
    expect(err.message).toContain("pathspec 'no-such-branch' did not match");
    expect(err.message).not.toMatch(/performance:/);
  });

  it('returns stdout untouched by the trace', async () => {
    expect((await gitIn(dir, localGitEnv(), 10_000).raw(['rev-parse', '--is-inside-work-tree'])).trim()).toBe('true');
  });

  it('is no error when it fails saying nothing but the trace (as simple-git treats a silent failure)', async () => {
    await expect(gitIn(dir, localGitEnv(), 10_000).raw(['symbolic-ref', '-q', 'refs/heads/none'])).resolves.toBe('');
  });

  it('takes the trace lines out and keeps every other line', () => {
    const text = [
      '01:46:36.704366 read-cache.c:2447       performance: 0.000040887 s:  read cache .git/index',
      "error: pathspec 'x' did not match any file(s) known to git",
      '01:46:36.704469 trace.c:411             performance: 0.000706509 s: git command: git checkout x',
      'hint: performance: is a word a hint may use',
      '',
    ].join('\n');
    expect(withoutTrace(text)).toBe(
      "error: pathspec 'x' did not match any file(s) known to git\nhint: performance: is a word a hint may use\n",
    );
  });
});
