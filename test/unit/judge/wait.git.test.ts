// The waiter's ancestry answers and on-branch check from the real Git workspace against a real Git server, wired as
// deployment.ts wires a delivery request: what a tool reports is judged against what the branch really holds.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseImageRef } from '../../../src/platform/git/image.js';
import { GitWorkspace, type RepoRef } from '../../../src/platform/git/workspace.js';
import type { Expectation, Verdict } from '../../../src/judge/verdict.js';
import { waitForVerdict } from '../../../src/judge/wait.js';
import { startGitServer, type GitServer } from '../../env/gitserver.js';

const run = promisify(execFile);
let dir: string;
let server: GitServer;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-wait-'));
  server = await startGitServer({ root: join(dir, 'server') });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** A repository with our deployment commit pushed on top of the initial one. */
async function pushed() {
  const name = `fleet-${++counter}`;
  const { url, commit: initial } = await server.createRepo(name, {
    'app/kustomization.yaml': 'images:\n  - name: ghcr.io/podtato/head\n    newTag: 0.1.0\n',
  });
  const repo: RepoRef = { url, branch: 'main', credentials: { kind: 'basic', username: server.username, password: server.password } };
  const ws = new GitWorkspace({ root: join(dir, `ws-${counter}`) });
  const { commit } = await ws.commitImage({
    repo,
    edits: [
      {
        file: 'app/kustomization.yaml',
        write: { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
        image: parseImageRef('ghcr.io/podtato/head:0.2.0'),
      },
    ],
    message: 'keptn: deploy 0.2.0',
    author: { name: 'Keptn', email: 'keptn@example.test' },
    deploymentId: `d-${counter}`,
  });
  return { name, initial, repo, ws, commit };
}

/** Follows the tool's reported revision like the Flux and Argo CD rules do. */
function wait(p: Awaited<ReturnType<typeof pushed>>, reported: () => string) {
  return waitForVerdict({
    commit: p.commit,
    deadline: Date.now() + 30_000,
    branch: 'main',
    observe: () => () => undefined,
    evaluate: (e: Expectation): Verdict => {
      const revision = reported();
      const relation = e.relation(revision);
      if (relation === 'unknown') return { state: 'pending', reason: 'checking', unknownRevision: revision };
      if (relation === 'same' || relation === 'descendant') return { state: 'passed', message: `applied ${revision}`, revision };
      return { state: 'pending', reason: `at ${revision}` };
    },
    relation: (sha) => p.ws.relation(p.repo, p.commit, sha),
    onBranch: () => p.ws.onBranch(p.repo, p.commit),
    timeoutMessage: (last) => `timed out: ${last}`,
  });
}

describe('the waiter with real Git', () => {
  it('fails at once when the branch was rewritten without our commit and the tool applies the new history', async () => {
    const p = await pushed();
    // Someone resets main to before our commit and pushes their own work: our commit is on no branch any more.
    await run('git', ['update-ref', 'refs/heads/main', p.initial], { cwd: join(server.root, 'repos', `${p.name}.git`) });
    const theirs = await server.commitAsOther(p.name, { 'NOTES.md': 'rewritten\n' }, 'docs: rewrite');
    const t0 = Date.now();
    const verdict = await wait(p, () => theirs);
    expect(verdict).toEqual({
      state: 'failed',
      message: `commit ${p.commit} is no longer on branch main: its history was rewritten after our push, so no revision the tool applies will contain it (the tool reports ${theirs}); trigger the delivery again to write on the new history`,
    });
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 30_000);

  it('passes on a later commit that contains ours, without asking about the branch', async () => {
    const p = await pushed();
    const later = await server.commitAsOther(p.name, { 'NOTES.md': 'later\n' }, 'docs: later');
    expect(await wait(p, () => later)).toEqual({ state: 'passed', message: `applied ${later}`, revision: later });
  }, 30_000);
});
