// The Git workspace against hostile repositories, ids and settings (issue 8), on the real Git server of test/env
// (git http-backend with Basic authentication, and sshd with key authentication).
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CloneCache } from '../../../../src/platform/git/clones.js';
import { parseImageRef } from '../../../../src/platform/git/image.js';
import { GitWorkspace, type CommitRequest, type RepoRef } from '../../../../src/platform/git/workspace.js';
import { startGitServer, type GitServer } from '../../../env/gitserver.js';
import { startSshGitServer, type SshGitServer } from '../../../env/sshserver.js';

// Real git commands on a machine shared with other test runs: seconds, not milliseconds.
jest.setTimeout(60_000);

const execFileAsync = promisify(execFile);
const kustomization = `resources:\n  - deployment.yaml\nimages:\n  - name: ghcr.io/podtato/head\n    newTag: 0.3.1 # managed by Keptn\n`;
const author = { name: 'Keptn', email: 'keptn@example.test' };
const noSleep = async () => {};

let dir: string;
let server: GitServer;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-safety-'));
  server = await startGitServer({ root: join(dir, 'server') });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function git(cwd: string, args: string[]): Promise<string> {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Other',
    GIT_AUTHOR_EMAIL: 'o@example.test',
    GIT_COMMITTER_NAME: 'Other',
    GIT_COMMITTER_EMAIL: 'o@example.test',
  };
  return (await execFileAsync('git', args, { cwd, env })).stdout;
}

/** Pushes a commit that makes `path` a symbolic link to `target`, as a hostile team member could. */
async function pushSymlink(name: string, path: string, target: string, branch = 'main'): Promise<void> {
  const work = await mkdtemp(join(dir, 'link-'));
  await git(work, ['clone', '-q', '--branch', branch, join(server.root, 'repos', `${name}.git`), '.']);
  await rm(join(work, path), { recursive: true, force: true });
  await mkdir(join(work, path, '..'), { recursive: true });
  await execFileAsync('ln', ['-s', target, join(work, path)]);
  await git(work, ['add', '-A']);
  await git(work, ['commit', '-q', '-m', 'a link']);
  await git(work, ['push', '-q', 'origin', branch]);
}

async function setup(files: Record<string, string> = { 'app/kustomization.yaml': kustomization }) {
  const name = `safe-${++counter}`;
  const { url, commit } = await server.createRepo(name, files);
  const root = join(dir, `ws-${counter}`);
  const repo: RepoRef = { url, branch: 'main', credentials: { kind: 'basic', username: server.username, password: server.password } };
  const request = (id: string, tag = '0.3.2', over: Partial<CommitRequest> = {}): CommitRequest => ({
    repo,
    edits: [
      {
        file: 'app/kustomization.yaml',
        write: { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
        image: parseImageRef(`ghcr.io/podtato/head:${tag}`),
      },
    ],
    message: `keptn: deploy ${tag}`,
    author,
    deploymentId: id,
    ...over,
  });
  return { name, url, repo, root, initial: commit, request };
}

describe('paths through symbolic links (issue 8, item 2)', () => {
  it("refuses a manifest that links into another team's cached clone, and leaves that clone intact", async () => {
    const victim = await setup();
    const attacker = await setup();
    const root = join(dir, 'shared-root');
    const ws = new GitWorkspace({ root, sleep: noSleep });
    await ws.commitImage(victim.request('v-1', '1.0.0')); // the victim's clone is now cached under the same root
    const victimDir = new CloneCache(root, 10_000).dirFor(victim.url);
    const victimFile = join(victimDir, 'app', 'kustomization.yaml');
    const before = await readFile(victimFile, 'utf8');
    await pushSymlink(attacker.name, 'app/kustomization.yaml', victimFile);
    const err = await ws.commitImage({ ...attacker.request('a-1', '6.6.6'), repo: { ...attacker.repo } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GIT_UNSAFE_PATH' });
    expect((err as Error).message).toContain('app/kustomization.yaml is a symbolic link');
    expect(await readFile(victimFile, 'utf8')).toBe(before);
    expect(await server.log(attacker.name)).toHaveLength(2); // the initial commit and the link: nothing pushed by us
    const next = await ws.commitImage(victim.request('v-2', '1.0.1'));
    expect(next.created).toBe(true);
    expect(await server.readFile(victim.name, 'app/kustomization.yaml')).toContain('newTag: 1.0.1');
  });

  it('refuses a linked directory on the way to the file, writing nothing outside the clone', async () => {
    const s = await setup();
    const outside = join(dir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'kustomization.yaml'), kustomization);
    await pushSymlink(s.name, 'app', outside);
    const err = await new GitWorkspace({ root: s.root, sleep: noSleep }).commitImage(s.request('d-1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GIT_UNSAFE_PATH' });
    expect((err as Error).message).toContain('app is a symbolic link');
    expect(await readFile(join(outside, 'kustomization.yaml'), 'utf8')).toBe(kustomization);
  });

  it('never reads through a link either (a file of the machine must not end up in a commit or a message)', async () => {
    const s = await setup();
    await writeFile(join(dir, 'secret.yaml'), 'images:\n  - name: ghcr.io/podtato/head\n    newTag: SECRET-CONTENT\n');
    await pushSymlink(s.name, 'app/kustomization.yaml', join(dir, 'secret.yaml'));
    const err = await new GitWorkspace({ root: s.root, sleep: noSleep }).commitImage(s.request('d-1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GIT_UNSAFE_PATH' });
    expect((err as Error).message).not.toContain('SECRET-CONTENT');
    expect(await server.log(s.name)).toHaveLength(2);
  });
});

describe('a corrupted cached clone is detected and made anew (issue 8, item 2)', () => {
  const corruptions: Array<[string, (clone: string, marker: string, other: string) => Promise<void>]> = [
    ['garbage in .git/config', async (clone) => writeFile(join(clone, '.git', 'config'), '[core\n\u0000garbage')],
    [
      'a hook planted in .git/hooks',
      async (clone, marker) => {
        await mkdir(join(clone, '.git', 'hooks'), { recursive: true });
        await writeFile(join(clone, '.git', 'hooks', 'post-checkout'), `#!/bin/sh\ntouch ${marker}\n`);
        await chmod(join(clone, '.git', 'hooks', 'post-checkout'), 0o755);
      },
    ],
    [
      'core.hooksPath pointing to planted hooks',
      async (clone, marker) => {
        await mkdir(join(clone, 'planted'), { recursive: true });
        await writeFile(join(clone, 'planted', 'post-checkout'), `#!/bin/sh\ntouch ${marker}\n`);
        await chmod(join(clone, 'planted', 'post-checkout'), 0o755);
        await git(clone, ['config', 'core.hooksPath', join(clone, 'planted')]);
      },
    ],
    [
      'origin pointing to another repository',
      async (clone, _marker, other) => {
        await git(clone, ['remote', 'set-url', 'origin', other]);
      },
    ],
    ['HEAD removed', async (clone) => rm(join(clone, '.git', 'HEAD'))],
    [
      'the object store truncated',
      async (clone) => {
        for (const sub of ['pack', ...(await readdir(join(clone, '.git', 'objects')))]) {
          const d = join(clone, '.git', 'objects', sub);
          for (const f of await readdir(d).catch(() => [])) await writeFile(join(d, f), 'x').catch(() => undefined);
        }
      },
    ],
    ['a broken index', async (clone) => writeFile(join(clone, '.git', 'index'), 'DIRC not an index')],
    [
      '.git replaced by a file',
      async (clone) => {
        await rm(join(clone, '.git'), { recursive: true });
        await writeFile(join(clone, '.git'), 'gitdir: /nowhere\n');
      },
    ],
  ];

  it.each(corruptions)('%s', async (_name, corrupt) => {
    const s = await setup();
    const other = await setup();
    const discarded: string[] = [];
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep, onDiscard: (_url, problem) => discarded.push(problem) });
    await ws.commitImage(s.request('d-1', '1.0.0'));
    const marker = join(dir, `hook-ran-${counter}`);
    await corrupt(new CloneCache(s.root, 10_000).dirFor(s.url), marker, other.url);
    const out = await ws.commitImage(s.request('d-2', '1.0.1'));
    expect(out.created).toBe(true);
    expect((await server.log(s.name))[0]?.sha).toBe(out.commit);
    expect(await server.readFile(s.name, 'app/kustomization.yaml')).toContain('newTag: 1.0.1');
    expect(await server.log(other.name)).toHaveLength(1);
    expect(discarded).toHaveLength(1);
    await expect(stat(marker)).rejects.toThrow();
  });
});

describe('ancestry answers on a damaged clone (issue 8, item 2)', () => {
  it('onBranch and relation make the clone anew and answer', async () => {
    const s = await setup();
    const discarded: string[] = [];
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep, onDiscard: (_url, problem) => discarded.push(problem) });
    const out = await ws.commitImage(s.request('d-1', '1.0.0'));
    const later = await server.commitAsOther(s.name, { 'x.txt': 'x' }, 'later');
    const objects = join(new CloneCache(s.root, 10_000).dirFor(s.url), '.git', 'objects');
    for (const sub of await readdir(objects))
      for (const f of await readdir(join(objects, sub)).catch(() => [])) await writeFile(join(objects, sub, f), 'x').catch(() => undefined);
    expect(await ws.onBranch(s.repo, out.commit)).toBe(true);
    expect(await ws.relation(s.repo, out.commit, later)).toBe('descendant');
    expect(discarded.length).toBeGreaterThanOrEqual(1);
  });
});

describe('event ids and contexts are matched as exact trailer lines, never as patterns (issue 8, item 4)', () => {
  it('an id "x|" does not reuse another deployment\'s commit', async () => {
    const s = await setup();
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
    const foreign = await ws.commitImage(s.request('a-1', '1.0.0'));
    const out = await ws.commitImage(s.request('x|', '2.0.0'));
    expect(out).toMatchObject({ created: true, reused: false });
    expect(out.commit).not.toBe(foreign.commit);
    expect(await server.readFile(s.name, 'app/kustomization.yaml')).toContain('newTag: 2.0.0');
  });

  it('an id with "+" (or regex syntax of any kind) finds its own commit on redelivery: no duplicate', async () => {
    const s = await setup();
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
    for (const id of ['a+b', 'c.*', '[x]', 'd\\+e', 'trailing space ']) {
      const first = await ws.commitImage(s.request(id, `1.0.${counter++}`));
      const again = await ws.commitImage(s.request(id, '9.9.9'));
      expect(again).toEqual({ commit: first.commit, created: false, reused: true });
    }
    expect(await server.log(s.name)).toHaveLength(6);
  });

  it('a context "y|" does not revert another sequence\'s commit', async () => {
    const s = await setup();
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
    await ws.commitImage({ ...s.request('d-1'), message: 'keptn: deploy\n\nKeptn-Context: ctx-1\nKeptn-Stage: dev\nKeptn-Service: svc' });
    const revert = (context: string) =>
      ws.revertDeployment({
        repo: s.repo,
        match: [`Keptn-Context: ${context}`, 'Keptn-Stage: dev', 'Keptn-Service: svc'],
        message: (sha) => `revert ${sha}`,
        author,
        deploymentId: `r-${context}`,
      });
    expect(await revert('y|')).toBeUndefined();
    expect(await revert('ctx-')).toBeUndefined(); // a prefix is not the context
    expect(await revert('.*')).toBeUndefined();
    expect(await server.log(s.name)).toHaveLength(2);
    expect(await revert('ctx-1')).toMatchObject({ created: true });
  });

  it('refuses an id or context that would write other trailers into the commit', async () => {
    const s = await setup();
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
    await expect(ws.commitImage(s.request('x\nKeptn-Context: victim'))).rejects.toMatchObject({ code: 'GIT_INVALID_TRAILER' });
    await expect(
      ws.revertDeployment({ repo: s.repo, match: ['Keptn-Context: a\nb'], message: () => 'm', author, deploymentId: 'r' }),
    ).rejects.toMatchObject({ code: 'GIT_INVALID_TRAILER' });
    expect(await server.log(s.name)).toHaveLength(1);
  });
});

describe('what counts as created (issue 8, item 8)', () => {
  it('edits that cancel out make no commit and are not reported as created', async () => {
    const s = await setup();
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
    const there = s.request('d-1', '0.3.2').edits[0]!;
    const back = {
      file: 'app/kustomization.yaml',
      write: { kind: 'yamlPath' as const, path: 'images[0].newTag', part: 'tag' as const },
      image: parseImageRef('ghcr.io/podtato/head:0.3.1'),
    };
    const out = await ws.commitImage(s.request('d-1', '0.3.2', { edits: [there, back] }));
    expect(out).toEqual({ commit: s.initial, created: false, reused: false });
    expect(await server.log(s.name)).toHaveLength(1);
  });
});

describe('process hygiene (issue 8, item 8)', () => {
  it('removes SSH key files a crashed process left behind, before its first command', async () => {
    const s = await setup();
    const stale = join(s.root, '.auth', 'ssh-left-by-a-crash');
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'identity'), '-----BEGIN OPENSSH PRIVATE KEY-----\nstale\n-----END OPENSSH PRIVATE KEY-----\n');
    await new GitWorkspace({ root: s.root, sleep: noSleep }).commitImage(s.request('d-1'));
    expect(await readdir(join(s.root, '.auth')).catch(() => [])).toEqual([]);
  });

  it('gives credentials to fetch and push only, never to a local git command', async () => {
    const s = await setup();
    const bin = join(dir, 'git-spy');
    const log = join(bin, 'calls.log');
    await mkdir(bin, { recursive: true });
    await writeFile(
      join(bin, 'git'),
      `#!/bin/sh\necho "$1 $(env | grep -q '^GIT_CONFIG_VALUE_[0-9]*=Authorization' && echo credentials)" >> ${log}\nexec /usr/bin/git "$@"\n`,
    );
    await chmod(join(bin, 'git'), 0o755);
    const path = process.env['PATH'];
    process.env['PATH'] = `${bin}:${path}`;
    try {
      const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
      const out = await ws.commitImage(s.request('d-1'));
      await ws.revertDeployment({
        repo: s.repo,
        match: [`Keptn-Deployment-Id: d-1`],
        message: () => 'revert',
        author,
        deploymentId: 'r-1',
      });
      await ws.onBranch(s.repo, out.commit);
    } finally {
      process.env['PATH'] = path;
    }
    const calls = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.trim().split(' '));
    const withCredentials = new Set(calls.filter((c) => c[1] === 'credentials').map((c) => c[0]));
    const without = new Set(calls.filter((c) => c[1] === undefined).map((c) => c[0]));
    expect([...withCredentials].sort()).toEqual(['fetch', 'push']);
    expect(without).toEqual(expect.objectContaining({}));
    for (const local of ['init', 'checkout', 'clean', 'log', 'add', 'commit', 'revert', 'rev-parse', 'merge-base'])
      expect(without.has(local)).toBe(true);
  });
});

describe('one lock per working tree (issue 8, item 9)', () => {
  it('deployments to two branches of one repository, with ancestry questions in between, never mix', async () => {
    const s = await setup();
    await git(join(server.root, 'repos', `${s.name}.git`), ['branch', 'staging', 'main']);
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep });
    const to = (branch: string, i: number) =>
      ws.commitImage(s.request(`${branch}-${i}`, `${branch === 'main' ? 1 : 2}.0.${i}`, { repo: { ...s.repo, branch } }));
    const runs = [];
    for (let i = 0; i < 4; i++)
      runs.push(
        to('main', i),
        to('staging', i),
        ws.relation(s.repo, s.initial, s.initial.slice(0, 12)),
        ws.onBranch({ ...s.repo, branch: 'staging' }, s.initial),
      );
    const results = await Promise.all(runs);
    const commits = results.filter((r): r is { commit: string; created: boolean; reused: boolean } => typeof r === 'object');
    expect(commits.every((c) => c.created)).toBe(true);
    expect(results.filter((r) => r === 'same')).toHaveLength(4);
    expect(results.filter((r) => r === true)).toHaveLength(4);
    const main = await server.log(s.name, 'main');
    const staging = await server.log(s.name, 'staging');
    expect(main).toHaveLength(5);
    expect(staging).toHaveLength(5);
    expect(main.slice(0, 4).every((c) => c.body.includes('Keptn-Deployment-Id: main-'))).toBe(true);
    expect(staging.slice(0, 4).every((c) => c.body.includes('Keptn-Deployment-Id: staging-'))).toBe(true);
    expect(await server.readFile(s.name, 'app/kustomization.yaml', 'main')).toContain('newTag: 1.0.3');
    expect(await server.readFile(s.name, 'app/kustomization.yaml', 'staging')).toContain('newTag: 2.0.3');
  });
});

describe('SSH host keys are pinned (issue 8, item 5)', () => {
  let ssh: SshGitServer;
  beforeAll(async () => {
    ssh = await startSshGitServer({ reposRoot: join(server.root, 'repos'), workDir: join(dir, 'sshd'), logDir: join(dir, 'logs') });
  });
  afterAll(async () => {
    await ssh?.stop();
  });
  const sshRequest = (name: string, id: string, insecure?: boolean): CommitRequest => ({
    repo: {
      url: ssh.urlOf(name),
      branch: 'main',
      credentials: { kind: 'ssh', identity: ssh.identity },
      ...(insecure ? { insecureAcceptNewHostKey: true } : {}),
    },
    edits: [
      {
        file: 'app/kustomization.yaml',
        write: { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
        image: parseImageRef(`ghcr.io/podtato/head:4.0.${counter}`),
      },
    ],
    message: 'keptn: deploy',
    author,
    deploymentId: id,
  });

  it('refuses a Secret without known_hosts, saying how to fix it', async () => {
    const s = await setup();
    const err = await new GitWorkspace({ root: s.root, sleep: noSleep }).commitImage(sshRequest(s.name, 'd-1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_CREDENTIALS', retryable: false });
    expect((err as Error).message).toMatch(/no "known_hosts".*ssh-keyscan.*git\.insecureAcceptNewHostKey: true/);
    expect(await server.log(s.name)).toHaveLength(1);
  });

  it('with git.insecureAcceptNewHostKey, trusts the first key and then holds the host to it', async () => {
    const s = await setup();
    const ws = new GitWorkspace({ root: s.root, sleep: noSleep, transportAttempts: 1 });
    const out = await ws.commitImage(sshRequest(s.name, 'd-1', true));
    expect(out.created).toBe(true);
    const pinned = `${new CloneCache(s.root, 10_000).dirFor(ssh.urlOf(s.name))}.known_hosts`;
    expect(await readFile(pinned, 'utf8')).toContain(ssh.knownHosts.split(' ').slice(-1)[0]!);
    // Another host answering at the same address with another key: refused, whatever the opt-out says.
    await writeFile(
      pinned,
      (await readFile(pinned, 'utf8')).replace(
        /ssh-ed25519 \S+/,
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
      ),
    );
    const err = await ws.commitImage(sshRequest(s.name, 'd-2', true)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GIT_FETCH_FAILED', retryable: false });
    expect((err as Error).message).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
    expect(await server.log(s.name)).toHaveLength(2);
  });
});
