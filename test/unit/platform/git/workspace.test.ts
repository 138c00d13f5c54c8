// The Git workspace against a real Git server over HTTP (git http-backend) with Basic authentication.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseImageRef } from '../../../../src/platform/git/image.js';
import { DEPLOYMENT_TRAILER, GitError, GitWorkspace, type CommitRequest } from '../../../../src/platform/git/workspace.js';
import { startGitServer, type GitServer } from '../../../env/gitserver.js';
import { startSshGitServer, type SshGitServer } from '../../../env/sshserver.js';

const kustomization = `resources:\n  - deployment.yaml\nimages:\n  - name: ghcr.io/podtato/head\n    newTag: 0.3.1 # managed by Keptn\n`;

let dir: string;
let server: GitServer;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-ws-'));
  server = await startGitServer({ root: join(dir, 'server') });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function setup(tag = '0.3.2') {
  const name = `fleet-${++counter}`;
  const { url, commit } = await server.createRepo(name, { 'app/kustomization.yaml': kustomization });
  const ws = new GitWorkspace({ root: join(dir, `ws-${counter}`) });
  const request = (id: string, image = tag): CommitRequest => ({
    repo: { url, branch: 'main', credentials: { kind: 'basic', username: server.username, password: server.password } },
    edits: [
      {
        file: 'app/kustomization.yaml',
        write: { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
        image: parseImageRef(`ghcr.io/podtato/head:${image}`),
      },
    ],
    message: `keptn: deploy ${image}`,
    author: { name: 'Keptn', email: 'keptn@example.test' },
    deploymentId: id,
  });
  return { name, url, initial: commit, ws, request };
}

describe('GitWorkspace', () => {
  it('commits the new tag, pushes it, and keeps the file as written otherwise', async () => {
    const { name, ws, request } = await setup();
    const out = await ws.commitImage(request('d-1'));
    expect(out.created).toBe(true);
    const log = await server.log(name);
    expect(log[0]?.sha).toBe(out.commit);
    expect(log[0]?.body).toContain(`${DEPLOYMENT_TRAILER}: d-1`);
    expect(await server.readFile(name, 'app/kustomization.yaml')).toBe(kustomization.replace('0.3.1', '0.3.2'));
  });

  it('makes no commit when the tag is already there, and names the head to wait for', async () => {
    const { name, ws, request, initial } = await setup('0.3.1');
    const out = await ws.commitImage(request('d-1'));
    expect(out).toEqual({ commit: initial, created: false, reused: false });
    expect(await server.log(name)).toHaveLength(1);
  });

  it('never commits the same deployment twice', async () => {
    const { name, ws, request } = await setup();
    const first = await ws.commitImage(request('d-1'));
    const again = await ws.commitImage(request('d-1', '0.3.9'));
    expect(again).toEqual({ commit: first.commit, created: false, reused: true });
    expect(await server.log(name)).toHaveLength(2);
  });

  it('re-applies its change on top when someone else pushed meanwhile, losing neither commit', async () => {
    const { name, ws, request } = await setup();
    await ws.commitImage(request('warm-up', '0.3.1')); // clone the repository now, so the next push starts from a stale head
    const foreign = await server.commitAsOther(name, { 'README.md': 'someone else\n' }, 'docs: readme');
    const out = await ws.commitImage(request('d-2'));
    const log = await server.log(name);
    expect(log.map((c) => c.sha)).toEqual(expect.arrayContaining([out.commit, foreign]));
    expect(log[0]?.sha).toBe(out.commit);
    expect(await ws.relation(request('x').repo, foreign, out.commit)).toBe('descendant');
  });

  it('serialises concurrent deployments to one branch: both land', async () => {
    const { name, ws, request } = await setup();
    const a = request('d-a', '1.0.0');
    const b = {
      ...request('d-b', '1.0.0'),
      edits: [
        {
          ...request('d-b').edits[0]!,
          file: 'app/kustomization.yaml',
          write: { kind: 'yamlPath' as const, path: 'resources[0]', part: 'ref' as const },
          image: parseImageRef('ghcr.io/x/y:1'),
        },
      ],
    };
    const [ra, rb] = await Promise.all([ws.commitImage(a), ws.commitImage(b)]);
    const shas = (await server.log(name)).map((c) => c.sha);
    expect(shas).toEqual(expect.arrayContaining([ra.commit, rb.commit]));
    expect(shas).toHaveLength(3);
  });

  it('answers ancestry questions: same, descendant, unrelated', async () => {
    const { name, ws, request, initial } = await setup();
    const out = await ws.commitImage(request('d-1'));
    const later = await server.commitAsOther(name, { 'x.txt': 'x' }, 'later');
    const repo = request('d-1').repo;
    expect(await ws.relation(repo, out.commit, out.commit)).toBe('same');
    expect(await ws.relation(repo, out.commit, later)).toBe('descendant');
    expect(await ws.relation(repo, out.commit, initial)).toBe('unrelated');
    expect(await ws.relation(repo, out.commit, 'f'.repeat(40))).toBe('unknown');
  });

  it('answers a question it answered before from memory, without Git; a revision it could not find is asked anew', async () => {
    const { name, ws, request } = await setup();
    const out = await ws.commitImage(request('d-1'));
    const later = await server.commitAsOther(name, { 'x.txt': 'x' }, 'later');
    const repo = request('d-1').repo;
    const [a, b] = await Promise.all([ws.relation(repo, out.commit, later), ws.relation(repo, out.commit, later)]);
    expect([a, b]).toEqual(['descendant', 'descendant']);
    // The clone gone and the server refusing us: only a remembered answer can still come.
    await rm(join(dir, `ws-${counter}`), { recursive: true, force: true });
    const refused = { ...repo, credentials: { kind: 'basic' as const, username: server.username, password: 'wrong' } };
    expect(await ws.relation(refused, out.commit, later)).toBe('descendant');
    // A question not asked before cannot be answered so; its 'unknown' is not kept, and asked again it is answered.
    expect(await ws.relation(refused, out.commit, later, ['app/kustomization.yaml'])).toBe('unknown');
    expect(await ws.relation(repo, out.commit, later, ['app/kustomization.yaml'])).toBe('descendant');
  });

  it('tells whether a commit made in Git still stands on the branch: not once a later commit reverted it (issue 18 item 6)', async () => {
    const { name, ws, request } = await setup();
    const repo = request('d-1').repo;
    const change = await server.commitAsOther(name, { 'app/kustomization.yaml': kustomization.replace('0.3.1', '0.4.0') }, 'bump');
    expect(await ws.changedAgain(repo, change)).toBeUndefined();
    // A commit of other files leaves it standing.
    await server.commitAsOther(name, { 'x.txt': 'x' }, 'unrelated change');
    expect(await ws.changedAgain(repo, change)).toBeUndefined();
    const revert = await server.commitAsOther(name, { 'app/kustomization.yaml': kustomization }, 'revert the bump');
    expect(await ws.changedAgain(repo, change)).toEqual({ by: revert, files: ['app/kustomization.yaml'] });
  });

  it('calls a descendant superseded once a later commit rewrote a file we edited, and only then', async () => {
    const { name, ws, request } = await setup();
    const out = await ws.commitImage(request('d-1'));
    const repo = request('d-1').repo;
    const elsewhere = await server.commitAsOther(name, { 'x.txt': 'x' }, 'unrelated change');
    expect(await ws.relation(repo, out.commit, elsewhere, ['app/kustomization.yaml'])).toBe('descendant');
    const rewrite = await server.commitAsOther(name, { 'app/kustomization.yaml': kustomization }, 'someone else deploys');
    expect(await ws.relation(repo, out.commit, rewrite, ['app/kustomization.yaml'])).toBe('superseded');
    expect(await ws.relation(repo, out.commit, rewrite)).toBe('descendant');
  });

  it('fails with a clear message on wrong credentials, and never shows the password', async () => {
    const { ws, request } = await setup();
    const req = request('d-1');
    req.repo.credentials = { kind: 'basic', username: 'keptn', password: 'wrong-secret-canary' };
    const err = await ws.commitImage(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as GitError).code).toBe('GIT_FETCH_FAILED');
    expect((err as Error).message).toMatch(/cannot fetch branch main of http:\/\/127\.0\.0\.1:\d+\/fleet-\d+\.git/);
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain('wrong-secret-canary');
  });

  it('reports a missing file by name', async () => {
    const { ws, request } = await setup();
    const req = request('d-1');
    req.edits = [{ ...req.edits[0]!, file: 'nope/kustomization.yaml' }];
    await expect(ws.commitImage(req)).rejects.toThrow('nope/kustomization.yaml does not exist on the branch');
  });
});

describe('GitWorkspace.revertDeployment', () => {
  it("reverts the sequence's deployment commit, once, and finds nothing to undo for another sequence", async () => {
    const { name, ws, request } = await setup();
    const deployment = request('d-1');
    deployment.message = 'keptn: deploy 0.3.2\n\nKeptn-Context: ctx-1\nKeptn-Stage: dev\nKeptn-Service: svc';
    const deployed = await ws.commitImage(deployment);
    const revert = (id: string, context = 'ctx-1') =>
      ws.revertDeployment({
        repo: deployment.repo,
        match: [`Keptn-Context: ${context}`, 'Keptn-Stage: dev', 'Keptn-Service: svc'],
        message: (sha) => `keptn: roll back (revert ${sha})`,
        author: deployment.author,
        deploymentId: id,
      });
    const out = await revert('r-1');
    expect(out?.created).toBe(true);
    expect(await server.readFile(name, 'app/kustomization.yaml')).toBe(kustomization);
    const log = await server.log(name);
    expect(log[0]?.subject).toBe(`keptn: roll back (revert ${deployed.commit})`);
    expect(await revert('r-1')).toEqual({ commit: out!.commit, created: false, reused: true });
    expect(await revert('r-2', 'ctx-other')).toBeUndefined();
    expect(await server.log(name)).toHaveLength(3);
  });
});

describe('GitWorkspace over SSH (a real sshd with key authentication)', () => {
  let ssh: SshGitServer;
  beforeAll(async () => {
    ssh = await startSshGitServer({ reposRoot: join(server.root, 'repos'), workDir: join(dir, 'sshd'), logDir: join(dir, 'logs') });
  });
  afterAll(async () => {
    await ssh?.stop();
  });

  const request = (name: string, credentials: CommitRequest['repo']['credentials'], id = 'ssh-1'): CommitRequest => ({
    repo: { url: ssh.urlOf(name), branch: 'main', credentials },
    edits: [
      {
        file: 'app/kustomization.yaml',
        write: { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
        image: parseImageRef('ghcr.io/podtato/head:0.4.0'),
      },
    ],
    message: 'keptn: deploy 0.4.0',
    author: { name: 'Keptn', email: 'keptn@example.test' },
    deploymentId: id,
  });

  it("commits and pushes with the Secret's identity, checking the host against its known_hosts", async () => {
    const { name } = await setup();
    const out = await new GitWorkspace({ root: join(dir, 'ssh-ws-1') }).commitImage(
      request(name, { kind: 'ssh', identity: ssh.identity, knownHosts: ssh.knownHosts }),
    );
    expect(out.created).toBe(true);
    expect((await server.log(name))[0]?.sha).toBe(out.commit);
  });

  it('refuses a host whose key is not the one in known_hosts', async () => {
    const { name } = await setup();
    const wrongHost = ssh.knownHosts.replace(
      /ssh-ed25519 \S+/,
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    );
    const err = await new GitWorkspace({ root: join(dir, 'ssh-ws-2'), transportAttempts: 1 })
      .commitImage(request(name, { kind: 'ssh', identity: ssh.identity, knownHosts: wrongHost }))
      .catch((e: unknown) => e);
    expect((err as GitError).code).toBe('GIT_FETCH_FAILED');
    expect((err as Error).message).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
    expect((err as Error).message).not.toContain(ssh.identity.split('\n')[1]!);
    expect(await server.log(name)).toHaveLength(1);
  });

  it('fails clearly with a key the server does not know, and never echoes the key', async () => {
    const { name } = await setup();
    const stranger = ssh.identity.replace(/\n[A-Za-z0-9+/]{20}/, (m) => m.split('').reverse().join(''));
    const err = await new GitWorkspace({ root: join(dir, 'ssh-ws-3'), transportAttempts: 1 })
      .commitImage(request(name, { kind: 'ssh', identity: stranger, knownHosts: ssh.knownHosts }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitError);
    expect((err as Error).message).toMatch(/cannot fetch branch main of ssh:\/\/root@127\.0\.0\.1:\d+/);
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain('PRIVATE KEY');
  });
});
