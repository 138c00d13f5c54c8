// Bounds on what a team's `git.url` can make the service do (issue 19): a silent host holds a try for seconds, not
// minutes (item 4); the cache is partial, one clone per repository however spelled, trimmed to its limit (item 5);
// internal hosts are refused unless allowed and redirects are not followed (item 8); protocol overrides stay refused
// by the Git client (item 9). Against the real Git server of the test environment (git http-backend).
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gitIn } from '../../../../src/platform/git/command.js';
import { checkGitHost, isInternalAddress, isInternalName } from '../../../../src/platform/git/hosts.js';
import { parseImageRef } from '../../../../src/platform/git/image.js';
import { cloneKey } from '../../../../src/platform/git/clones.js';
import { GitWorkspace, type CommitRequest } from '../../../../src/platform/git/workspace.js';
import { startGitServer, type GitServer } from '../../../env/gitserver.js';

jest.setTimeout(120_000);
const run = promisify(execFile);

let dir: string;
let server: GitServer;
let counter = 0;
const noSleep = async () => {};
const author = { name: 'Keptn', email: 'keptn@example.test' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-bounds-'));
  server = await startGitServer({ root: join(dir, 'server') });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** A repository with some history whose server filters (uploadpack.allowFilter), as the forges do. */
async function repo(files = 3) {
  const name = `b-${++counter}`;
  const { url } = await server.createRepo(name, { 'app/kustomization.yaml': 'images:\n  - name: app\n    newTag: "1"\n' });
  // Large versions of one file in the history; the branch head holds a small one, so they are old history only.
  for (let i = 0; i < files; i++) await server.commitAsOther(name, { 'old/file.txt': `${i}`.repeat(50_000) }, `history ${i}`);
  if (files) await server.commitAsOther(name, { 'old/file.txt': 'small' }, 'history ends');
  await run('git', ['config', 'uploadpack.allowFilter', 'true'], { cwd: join(server.root, 'repos', `${name}.git`) });
  const credentials = { kind: 'basic' as const, username: server.username, password: server.password };
  const request = (id: string, tag: string, spelling = url): CommitRequest => ({
    repo: { url: spelling, branch: 'main', credentials },
    edits: [{ file: 'app/kustomization.yaml', write: { kind: 'kustomizeImage', name: 'app' }, image: parseImageRef(`app:${tag}`) }],
    message: `deploy ${tag}`,
    author,
    deploymentId: id,
  });
  return { name, url, credentials, request };
}

async function duBytes(path: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', path]);
  return Number(stdout.split('\t')[0]);
}

describe('a Git host that never answers (item 4)', () => {
  it('ends a try within the silence limit, not the command timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const ws = new GitWorkspace({ root: join(dir, 'silent'), transportAttempts: 1, gitTimeoutMs: 600_000, sleep: noSleep });
      const began = Date.now();
      await expect(ws.onBranch({ url: `http://127.0.0.1:${port}/a.git`, branch: 'main' }, 'a'.repeat(40))).rejects.toMatchObject({
        code: 'GIT_FETCH_FAILED',
        retryable: true,
      });
      // http.lowSpeedTime is 20 s; the command's own timeout (600 s here) never comes into it.
      expect(Date.now() - began).toBeLessThan(40_000);
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('ends a try at its overall bound, however the server trickles', async () => {
    const silent = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-git-upload-pack-advertisement' });
      // One byte a second: above nothing, below any useful speed; only the attempt's bound ends it.
      const t = setInterval(() => res.write('0'), 200);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const ws = new GitWorkspace({ root: join(dir, 'trickle'), transportAttempts: 1, attemptTimeoutMs: 3_000, sleep: noSleep });
      const began = Date.now();
      const port = (silent.address() as { port: number }).port;
      await expect(ws.onBranch({ url: `http://127.0.0.1:${port}/a.git`, branch: 'main' }, 'a'.repeat(40))).rejects.toThrow(
        /no answer within 3 s/,
      );
      expect(Date.now() - began).toBeLessThan(15_000);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('internal hosts and redirects (item 8)', () => {
  const lookupTo = (address: string) => async () => [{ address, family: address.includes(':') ? 6 : 4 }];

  it.each([
    ['http://169.254.169.254/latest/meta-data.git', 'internal address'],
    ['http://[fd00:ec2::254]/x.git', 'internal address'],
    ['https://10.0.0.1/team/fleet.git', 'internal address'],
    ['http://127.0.0.1:8081/x.git', 'internal address'],
    ['http://[::ffff:127.0.0.1]/x.git', 'internal address'],
    ['https://kubernetes/x.git', 'cluster-internal or local host name'],
    ['https://gitea.gitea.svc.cluster.local/fleet.git', 'cluster-internal or local host name'],
    ['ssh://git@gitea.gitea.svc:2222/fleet.git', 'cluster-internal or local host name'],
    ['https://localhost/fleet.git', 'cluster-internal or local host name'],
  ])('refuses %s, naming the setting that allows it', async (url, why) => {
    const check = checkGitHost(url, { allowed: [] }, lookupTo('93.184.215.14'));
    await expect(check).rejects.toMatchObject({ code: 'GIT_HOST_REFUSED', retryable: false });
    await expect(check).rejects.toThrow(new RegExp(`${why}.*ALLOWED_GIT_HOSTS`));
  });

  it('refuses a public-looking name that resolves inside, and pins HTTPS to the addresses it checked', async () => {
    await expect(checkGitHost('https://git.example.com/f.git', { allowed: [] }, lookupTo('10.96.0.1'))).rejects.toThrow(
      /git\.example\.com:443 resolves to the internal address 10\.96\.0\.1/,
    );
    await expect(checkGitHost('https://git.example.com/f.git', { allowed: [] }, lookupTo('93.184.215.14'))).resolves.toEqual([
      'git.example.com:443:93.184.215.14',
    ]);
    await expect(checkGitHost('https://git.example.com:8443/f.git', { allowed: [] }, lookupTo('2606:2800:21f::1'))).resolves.toEqual([
      'git.example.com:8443:[2606:2800:21f::1]',
    ]);
  });

  it.each([
    ['EAI_AGAIN', true],
    ['ENOTFOUND', false],
  ])('a name the resolver fails with %s: transient %s (issue 23: a temporary failure is waited out)', async (code, transient) => {
    const failing = async () => Promise.reject(Object.assign(new Error(`getaddrinfo ${code} git.example.com`), { code }));
    await expect(checkGitHost('https://git.example.com/f.git', { allowed: [] }, failing)).rejects.toMatchObject({
      code: 'GIT_HOST_UNRESOLVED',
      retryable: transient,
      message: `cannot resolve the Git host git.example.com: ${code}`,
    });
  });

  it('reaches an internal host the operator allowed, by host or host:port', async () => {
    await expect(checkGitHost('https://gitea.gitea.svc/f.git', { allowed: ['gitea.gitea.svc'] })).resolves.toEqual([]);
    await expect(checkGitHost('http://127.0.0.1:3000/f.git', { allowed: ['127.0.0.1:3000'] })).resolves.toEqual([]);
    await expect(checkGitHost('http://127.0.0.1:3001/f.git', { allowed: ['127.0.0.1:3000'] })).rejects.toThrow(/internal address/);
    await expect(checkGitHost('http://169.254.169.254/f.git', { allowed: ['*'] })).resolves.toEqual([]);
  });

  it.each([
    ['8.8.8.8', false],
    ['100.64.0.1', true],
    ['172.31.255.255', true],
    ['192.168.1.1', true],
    ['0.0.0.0', true],
    ['2001:4860:4860::8888', false],
    ['fe80::1', true],
    ['::1', true],
    ['::ffff:10.1.2.3', true],
    ['not-an-address', true],
  ])('%s is internal: %s', (address, internal) => expect(isInternalAddress(address)).toBe(internal));

  it.each([
    ['github.com', false],
    ['git.example.com', false],
    ['gitea', true],
    ['gitea.gitea', false],
    ['gitea.gitea.svc', true],
    ['metadata.google.internal', true],
    ['printer.local', true],
  ])('%s is an internal name: %s', (host, internal) => expect(isInternalName(host)).toBe(internal));

  it('fetches nothing from the host a Git server redirects to', async () => {
    const r = await repo(0);
    const target = new URL(r.url);
    const before = server.requests;
    const redirector: Server = createServer((req, res) => {
      res.writeHead(302, { Location: `${target.origin}${req.url}` }).end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const port = (redirector.address() as { port: number }).port;
      const ws = new GitWorkspace({ root: join(dir, 'redirect'), transportAttempts: 1, hosts: { allowed: ['127.0.0.1'] }, sleep: noSleep });
      await expect(
        ws.onBranch({ url: `http://127.0.0.1:${port}${target.pathname}`, branch: 'main', credentials: r.credentials }, 'a'.repeat(40)),
      ).rejects.toMatchObject({ code: 'GIT_FETCH_FAILED' });
      expect(server.requests).toBe(before);
    } finally {
      redirector.close();
    }
  });

  it('the service refuses the test Git server on loopback until it is allowed', async () => {
    const r = await repo(0);
    const refused = new GitWorkspace({ root: join(dir, 'refused'), hosts: { allowed: [] }, sleep: noSleep });
    const before = server.requests;
    await expect(refused.commitImage(r.request('d-1', '2'))).rejects.toMatchObject({ code: 'GIT_HOST_REFUSED' });
    expect(server.requests).toBe(before);
    const allowed = new GitWorkspace({ root: join(dir, 'allowed'), hosts: { allowed: ['127.0.0.1'] }, sleep: noSleep });
    await expect(allowed.commitImage(r.request('d-1', '2'))).resolves.toMatchObject({ created: true });
  });
});

describe('the Git client refuses protocol overrides (item 9)', () => {
  it('will not pass -c protocol.*.allow, and git itself refuses ext:: through GIT_ALLOW_PROTOCOL', async () => {
    const root = await mkdtemp(join(dir, 'proto-'));
    const git = gitIn(root, { PATH: process.env['PATH']!, GIT_ALLOW_PROTOCOL: 'https:http:ssh' }, 10_000);
    await git.raw(['init', '-q']);
    await expect(git.raw(['-c', 'protocol.ext.allow=always', 'ls-remote', 'ext::sh -c true'])).rejects.toThrow(
      /allowUnsafeProtocolOverride/,
    );
    await expect(git.raw(['ls-remote', 'ext::sh -c true'])).rejects.toThrow(/transport 'ext' not allowed/);
  });
});

describe('the clone cache (item 5)', () => {
  it('keeps a partial clone: no blobs of old history, yet ancestry, trailers and a roll-back work', async () => {
    const r = await repo(3);
    const root = join(dir, 'partial');
    const ws = new GitWorkspace({ root, sleep: noSleep });
    const first = await ws.commitImage(r.request('d-1', '2'));
    await server.commitAsOther(r.name, { 'later.txt': 'x' }, 'later');
    const second = await ws.commitImage(r.request('d-2', '3'));
    expect(await ws.relation(r.request('x', 'x').repo, first.commit, second.commit, ['app/kustomization.yaml'])).toBe('superseded');
    const clone = join(
      root,
      (await readdir(root)).find((n) => /^[0-9a-f]{16}$/.test(n))!,
    );
    const missing = (await run('git', ['rev-list', '--objects', '--all', '--missing=print'], { cwd: clone })).stdout
      .split('\n')
      .filter((l) => l.startsWith('?'));
    // The three old 50 kB versions were never needed: their blobs stayed on the server.
    expect(missing.length).toBeGreaterThanOrEqual(3);
    expect((await run('git', ['config', 'remote.origin.promisor'], { cwd: clone })).stdout.trim()).toBe('true');
    // The roll-back reads the reverted commit's files: fetched with credentials, not by a local command.
    const reverted = await ws.revertDeployment({
      repo: r.request('x', 'x').repo,
      match: ['Keptn-Deployment-Id: d-2'],
      message: () => 'roll back',
      author,
      deploymentId: 'r-1',
    });
    expect(reverted?.created).toBe(true);
    expect(await server.readFile(r.name, 'app/kustomization.yaml')).toContain('newTag: "2"');
  });

  it.each([
    ['https://Git.Example.com:443/team/fleet.git/', 'https://git.example.com/team/fleet'],
    ['HTTPS://git.example.com/team/fleet', 'https://git.example.com/team/fleet'],
    ['ssh://git@Git.Example.com:22/team/fleet', 'ssh://git@git.example.com/team/fleet'],
    ['git@Git.Example.com:team/fleet.git', 'git@git.example.com:team/fleet'],
    ['https://git.example.com:8443/fleet', 'https://git.example.com:8443/fleet'],
    ['https://git.example.com/Team/Fleet', 'https://git.example.com/Team/Fleet'],
  ])('the repository of %s is %s', (url, key) => expect(cloneKey(url)).toBe(key));

  it('one clone per repository, whatever the spelling', async () => {
    const r = await repo(0);
    const root = join(dir, `spell-${counter}`);
    const ws = new GitWorkspace({ root, sleep: noSleep });
    await ws.commitImage(r.request('d-1', '2'));
    await ws.commitImage(r.request('d-2', '3', `${r.url}/`));
    await ws.commitImage(r.request('d-3', '4'));
    expect((await readdir(root)).filter((n) => /^[0-9a-f]{16}$/.test(n))).toHaveLength(1);
    expect(await server.readFile(r.name, 'app/kustomization.yaml')).toContain('newTag: "4"');
  });

  it('stays under its limit across many repositories, dropping the least recently used', async () => {
    const repos = await Promise.all([repo(1), repo(1), repo(1), repo(1), repo(1)]);
    const probe = join(dir, 'probe');
    const one = new GitWorkspace({ root: probe, sleep: noSleep });
    await one.commitImage(repos[0]!.request('p-1', '9'));
    const size = await duBytes(probe);
    const limit = Math.floor(size * 2.5);
    const root = join(dir, 'bounded');
    const ws = new GitWorkspace({ root, cacheLimitBytes: limit, sleep: noSleep });
    for (const [i, r] of repos.entries()) {
      await ws.commitImage(r.request(`d-${i}`, '2'));
      await ws.settled();
      expect(await duBytes(root)).toBeLessThanOrEqual(limit + 4096);
    }
    const kept = (await readdir(root)).filter((n) => /^[0-9a-f]{16}$/.test(n));
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(repos.length);
    // The most recent repository's clone is among those kept; an evicted one is simply made anew when used again.
    await expect(ws.commitImage(repos[0]!.request('again', '5'))).resolves.toMatchObject({ created: true });
  });
});
