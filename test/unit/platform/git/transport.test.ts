// Retries of the Git rooms against the real Git server: a server briefly away gets the one retry policy, a refusal
// does not, and a push rejected because the branch moved starts the commit protocol over after a jittered pause.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseImageRef } from '../../../../src/platform/git/image.js';
import { TreeLock } from '../../../../src/platform/git/lock.js';
import { isPermanentTransportFailure } from '../../../../src/platform/git/transport.js';
import { GitWorkspace, type CommitRequest } from '../../../../src/platform/git/workspace.js';
import { startGitServer, type GitServer } from '../../../env/gitserver.js';

jest.setTimeout(60_000);

let dir: string;
let server: GitServer;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-transport-'));
  server = await startGitServer({ root: join(dir, 'server') });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function setup() {
  const name = `t-${++counter}`;
  const { url } = await server.createRepo(name, { 'app/kustomization.yaml': 'images:\n  - name: app\n    newTag: "1"\n' });
  const request = (id: string, tag = '2'): CommitRequest => ({
    repo: { url, branch: 'main', credentials: { kind: 'basic', username: server.username, password: server.password } },
    edits: [{ file: 'app/kustomization.yaml', write: { kind: 'kustomizeImage', name: 'app' }, image: parseImageRef(`app:${tag}`) }],
    message: `deploy ${tag}`,
    author: { name: 'Keptn', email: 'keptn@example.test' },
    deploymentId: id,
  });
  return { name, root: join(dir, `ws-${counter}`), request };
}

/** Runs `work` with a `git` on PATH that lands someone else's commit on the branch before each of the first `times` pushes. */
async function withForeignCommitBeforePush<T>(repo: string, times: number, work: () => Promise<T>): Promise<T> {
  const bin = await mkdtemp(join(dir, 'bin-'));
  const bare = join(server.root, 'repos', `${repo}.git`);
  await writeFile(
    join(bin, 'git'),
    `#!/bin/sh
if [ "$1" = push ] && [ "$(cat ${bin}/count 2>/dev/null || echo 0)" -lt ${times} ]; then
  echo $(( $(cat ${bin}/count 2>/dev/null || echo 0) + 1 )) > ${bin}/count
  export GIT_DIR=${bare} GIT_AUTHOR_NAME=Other GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=Other GIT_COMMITTER_EMAIL=o@x
  sha=$(/usr/bin/git commit-tree -p main -m "someone else" "main^{tree}")
  /usr/bin/git update-ref refs/heads/main "$sha"
  unset GIT_DIR
fi
exec /usr/bin/git "$@"
`,
  );
  await chmod(join(bin, 'git'), 0o755);
  const path = process.env['PATH'];
  process.env['PATH'] = `${bin}:${path}`;
  try {
    return await work();
  } finally {
    process.env['PATH'] = path;
  }
}

describe('a push rejected because the branch moved', () => {
  it('starts over on the new head after a jittered pause, losing no commit', async () => {
    const s = await setup();
    const pauses: number[] = [];
    const ws = new GitWorkspace({ root: s.root, sleep: async (ms) => void pauses.push(ms) });
    const out = await withForeignCommitBeforePush(s.name, 1, () => ws.commitImage(s.request('d-1')));
    expect(out).toMatchObject({ created: true, reused: false });
    const log = await server.log(s.name);
    expect(log.map((c) => c.subject)).toEqual(['deploy 2', 'someone else', 'initial manifests']);
    expect(log[0]?.sha).toBe(out.commit);
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toBeGreaterThanOrEqual(0);
    expect(pauses[0]).toBeLessThanOrEqual(250);
  });

  it('gives up after the configured rounds with a retryable GIT_PUSH_FAILED that says why', async () => {
    const s = await setup();
    const pauses: number[] = [];
    const ws = new GitWorkspace({ root: s.root, pushAttempts: 3, sleep: async (ms) => void pauses.push(ms) });
    const err = await withForeignCommitBeforePush(s.name, 10, () => ws.commitImage(s.request('d-1'))).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GIT_PUSH_FAILED', retryable: true });
    expect((err as Error).message).toMatch(/push to main was rejected 3 times \(the branch kept moving\)/);
    expect(pauses).toHaveLength(2);
    expect(pauses[1]).toBeLessThanOrEqual(500);
    expect((await server.log(s.name)).every((c) => c.subject !== 'deploy 2')).toBe(true);
  });
});

describe('a server briefly away', () => {
  it('is tried again under the retry policy until it answers', async () => {
    const s = await setup();
    server.failWith(503);
    const pauses: number[] = [];
    const ws = new GitWorkspace({
      root: s.root,
      sleep: async (ms) => {
        pauses.push(ms);
        server.failWith(undefined);
      },
    });
    try {
      const out = await ws.commitImage(s.request('d-1'));
      expect(out.created).toBe(true);
    } finally {
      server.failWith(undefined);
    }
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toBeLessThanOrEqual(1_000);
  });

  it('but wrong credentials are not retried', async () => {
    const s = await setup();
    const pauses: number[] = [];
    const req = s.request('d-1');
    req.repo.credentials = { kind: 'basic', username: 'keptn', password: 'wrong' };
    const err = await new GitWorkspace({ root: s.root, sleep: async (ms) => void pauses.push(ms) })
      .commitImage(req)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GIT_FETCH_FAILED', retryable: false });
    expect(pauses).toEqual([]);
  });
});

describe('which transport failures are permanent', () => {
  it.each([
    ['fatal: Authentication failed for https://x/', true],
    ["fatal: could not read Username for 'https://x': terminal prompts disabled", true],
    ['git@x: Permission denied (publickey).', true],
    ['Host key verification failed.', true],
    ["fatal: couldn't find remote ref refs/heads/nope", true],
    ['fatal: unable to access https://x/: The requested URL returned error: 403', true],
    ['fatal: unable to access https://x/: The requested URL returned error: 503', false],
    ['fatal: unable to access https://x/: Could not resolve host: x', false],
    ['ssh: connect to host x port 22: Connection refused', false],
  ])('%s', (message, permanent) => expect(isPermanentTransportFailure(message)).toBe(permanent));
});

describe('TreeLock', () => {
  it('runs work for one tree one at a time, in order, and other trees beside it', async () => {
    const lock = new TreeLock();
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = lock.run('a', async () => {
      events.push('a1 start');
      await gate;
      events.push('a1 end');
    });
    const second = lock.run('a', async () => void events.push('a2'));
    const other = lock.run('b', async () => void events.push('b1'));
    await other;
    expect(events).toEqual(['a1 start', 'b1']);
    release();
    await Promise.all([first, second]);
    expect(events).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
    expect(lock.busy('a')).toBe(false);
  });

  it('goes on after a failure', async () => {
    const lock = new TreeLock();
    await expect(lock.run('a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.run('a', async () => 'next')).resolves.toBe('next');
  });
});
