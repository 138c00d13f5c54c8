// Group commit (issue 11): changes queued for one branch go out in one commit and one push, each deployment still
// finding "its" commit by its trailer, against a real Git server over HTTP.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupMessage, messageBlocks } from '../../../../src/platform/git/trailers.js';
import { parseImageRef } from '../../../../src/platform/git/image.js';
import { DEPLOYMENT_TRAILER, GATHER_MS, GitWorkspace, type CommitRequest } from '../../../../src/platform/git/workspace.js';
import { startGitServer, type GitServer } from '../../../env/gitserver.js';

const kustomization = (tag: string) => `resources:\n  - deployment.yaml\nimages:\n  - name: ghcr.io/podtato/head\n    newTag: ${tag}\n`;
const SERVICES = ['a', 'b', 'c', 'd', 'e'];

let dir: string;
let server: GitServer;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-group-'));
  server = await startGitServer({ root: join(dir, 'server') });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function setup() {
  const name = `group-${++counter}`;
  const files = Object.fromEntries(SERVICES.map((s) => [`apps/${s}/kustomization.yaml`, kustomization('0.1.0')]));
  const { url } = await server.createRepo(name, files);
  const ws = new GitWorkspace({ root: join(dir, `ws-${counter}`) });
  const request = (service: string, id: string, tag = '0.2.0'): CommitRequest => ({
    repo: { url, branch: 'main', credentials: { kind: 'basic', username: server.username, password: server.password } },
    edits: [
      {
        file: `apps/${service}/kustomization.yaml`,
        write: { kind: 'kustomizeImage', name: 'ghcr.io/podtato/head' },
        image: parseImageRef(`ghcr.io/podtato/head:${tag}`),
      },
    ],
    message: `keptn: deploy ${tag} to ${service}\n\nKeptn-Context: ctx-${id}\nKeptn-Stage: dev\nKeptn-Service: ${service}`,
    author: { name: 'Keptn', email: 'keptn@example.test' },
    deploymentId: id,
  });
  return { name, url, ws, request };
}

describe('group commit', () => {
  it('sends changes queued together in one commit; each caller gets it, and the message lists every change', async () => {
    const { name, ws, request } = await setup();
    const outs = await Promise.all(SERVICES.map((s) => ws.commitImage(request(s, `d-${s}`))));
    const log = await server.log(name);
    expect(log).toHaveLength(2);
    for (const out of outs) expect(out).toEqual({ commit: log[0]!.sha, created: true, reused: false });
    const body = `${log[0]!.subject}\n\n${log[0]!.body}`;
    expect(messageBlocks(body).map((b) => [b.deploymentId, b.files])).toEqual(
      SERVICES.map((s) => [`d-${s}`, [`apps/${s}/kustomization.yaml`]]),
    );
    for (const s of SERVICES) {
      expect(body.split('\n')).toContain(`keptn: deploy 0.2.0 to ${s}`);
      expect(await server.readFile(name, `apps/${s}/kustomization.yaml`)).toBe(kustomization('0.2.0'));
    }
  });

  it('changes that arrive while the group fetches join its commit (a burst reaching Git over a moment: one commit, issue 22)', async () => {
    const { name, ws, request } = await setup();
    const first = ws.commitImage(request('a', 'd-a'));
    // The first change holds the lock and fetches now; b and c arrive meanwhile.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const rest = Promise.all([ws.commitImage(request('b', 'd-b')), ws.commitImage(request('c', 'd-c'))]);
    const [a, [b, c]] = await Promise.all([first, rest]);
    const log = await server.log(name);
    expect(log).toHaveLength(2);
    expect([b.commit, c.commit]).toEqual([a.commit, a.commit]);
    expect(log[0]!.sha).toBe(a.commit);
  });

  it('waits for the changes on their way (their checks still running) and takes them in its commit; a withdrawn one is not waited for', async () => {
    const { name, ws, request } = await setup();
    const repo = request('a', 'x').repo;
    const author = request('a', 'x').author;
    const onTheWay = ['d-b', 'd-c', 'd-d'].map((id) => ws.expectCommit(repo, author, id));
    const first = ws.commitImage(request('a', 'd-a'));
    // b arrives long after a's fetch would have closed a group that did not wait; d's checks fail.
    const late = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
    const b = late(600).then(() => ws.commitImage(request('b', 'd-b')));
    const c = ws.commitImage(request('c', 'd-c'));
    await late(300);
    onTheWay[2]!();
    const [a, ...others] = await Promise.all([first, b, c]);
    const log = await server.log(name);
    expect(log).toHaveLength(2);
    expect(others.map((o) => o.commit)).toEqual([a.commit, a.commit]);
    expect(messageBlocks(`${log[0]!.subject}\n\n${log[0]!.body}`).map((m) => m.deploymentId)).toEqual(['d-a', 'd-c', 'd-b']);
  });

  it('closes at its deadline when a change on its way never comes (GATHER_MS)', async () => {
    const { name, ws, request } = await setup();
    ws.expectCommit(request('b', 'x').repo, request('b', 'x').author, 'd-never');
    const began = Date.now();
    const a = await ws.commitImage(request('a', 'd-a'));
    expect(Date.now() - began).toBeGreaterThanOrEqual(GATHER_MS - 50);
    expect((await server.log(name))[0]!.sha).toBe(a.commit);
  });

  it('pushes the next change of a branch it pushed without fetching first; when someone else wrote meanwhile, the push is refused and the change is made again on the fetched head (issue 22, item 4)', async () => {
    const { name, ws, request } = await setup();
    await ws.commitImage(request('a', 'd-1', '0.2.0'));
    const fetches = () => server.requestLog.filter((r) => r.repo === name && r.path.includes('git-upload-pack')).length;
    const before = fetches();
    const second = await ws.commitImage(request('b', 'd-2', '0.2.0'));
    expect(fetches()).toBe(before);
    expect((await server.log(name))[0]!.sha).toBe(second.commit);
    const theirs = await server.commitAsOther(name, { 'apps/c/kustomization.yaml': kustomization('9.9.9') }, 'theirs');
    const third = await ws.commitImage(request('c', 'd-3', '0.3.0'));
    expect(fetches()).toBeGreaterThan(before);
    const log = await server.log(name);
    expect(log.map((c) => c.sha).slice(0, 2)).toEqual([third.commit, theirs]);
    expect(await server.readFile(name, 'apps/c/kustomization.yaml')).toBe(kustomization('0.3.0'));
  });

  it('judges a change the unfetched tree already holds on the fetched head (someone else set another image since)', async () => {
    const { name, ws, request } = await setup();
    await ws.commitImage(request('a', 'd-1', '0.2.0'));
    await server.commitAsOther(name, { 'apps/a/kustomization.yaml': kustomization('0.1.0') }, 'back to 0.1.0');
    // Our tree still says 0.2.0; the remote says 0.1.0: the change is needed and made.
    const again = await ws.commitImage(request('a', 'd-2', '0.2.0'));
    expect(again.created).toBe(true);
    expect(await server.readFile(name, 'apps/a/kustomization.yaml')).toBe(kustomization('0.2.0'));
  });

  it('never commits a deployment twice: asked again (a resume), each finds the group commit by its trailer', async () => {
    const { name, ws, request } = await setup();
    const outs = await Promise.all(SERVICES.map((s) => ws.commitImage(request(s, `d-${s}`))));
    const again = await Promise.all(SERVICES.map((s) => ws.commitImage(request(s, `d-${s}`, '0.9.9'))));
    for (const out of again) expect(out).toEqual({ commit: outs[0]!.commit, created: false, reused: true });
    expect(await server.log(name)).toHaveLength(2);
  });

  it('after a restart (new process, new clone), asking again finds the group commit and commits nothing', async () => {
    const { name, ws, request } = await setup();
    const outs = await Promise.all(SERVICES.map((s) => ws.commitImage(request(s, `d-${s}`))));
    const restarted = new GitWorkspace({ root: join(dir, `ws-restarted-${counter}`) });
    const again = await Promise.all(SERVICES.map((s) => restarted.commitImage(request(s, `d-${s}`))));
    for (const out of again) expect(out).toEqual({ commit: outs[0]!.commit, created: false, reused: true });
    expect(await server.log(name)).toHaveLength(2);
  });

  it('a group made after someone else pushed lands on top of their commit, losing neither', async () => {
    const { name, ws, request } = await setup();
    await ws.commitImage(request('a', 'warm-up', '0.1.0')); // a clone now, so the group starts from a stale head
    const foreign = await server.commitAsOther(name, { 'README.md': 'someone else\n' }, 'docs: readme');
    const outs = await Promise.all(['b', 'c'].map((s) => ws.commitImage(request(s, `d-${s}`))));
    const log = await server.log(name);
    expect(log.map((c) => c.sha).slice(0, 2)).toEqual([outs[0]!.commit, foreign]);
    expect(outs[1]!.commit).toBe(outs[0]!.commit);
  });

  it('puts two changes of the same file in two commits, in arrival order', async () => {
    const { name, ws, request } = await setup();
    const [x, y] = await Promise.all([ws.commitImage(request('a', 'd-1', '0.3.0')), ws.commitImage(request('a', 'd-2', '0.4.0'))]);
    const log = await server.log(name);
    expect(log.map((l) => l.sha)).toEqual([y.commit, x.commit, log[2]!.sha]);
    expect(log[1]!.body).toContain(`${DEPLOYMENT_TRAILER}: d-1`);
    expect(log[0]!.body).toContain(`${DEPLOYMENT_TRAILER}: d-2`);
    expect(await server.readFile(name, 'apps/a/kustomization.yaml')).toBe(kustomization('0.4.0'));
  });

  it('the very same change asked by several deployments goes in one commit that names each of them', async () => {
    const { name, ws, request } = await setup();
    const outs = await Promise.all([
      ws.commitImage(request('a', 'd-1')),
      ws.commitImage(request('a', 'd-2')),
      ws.commitImage(request('b', 'd-3')),
      ws.commitImage(request('a', 'd-4')),
    ]);
    const log = await server.log(name);
    expect(log).toHaveLength(2);
    for (const out of outs) expect(out).toEqual({ commit: log[0]!.sha, created: true, reused: false });
    expect(messageBlocks(`${log[0]!.subject}\n\n${log[0]!.body}`).map((b) => [b.deploymentId, b.files])).toEqual([
      ['d-1', ['apps/a/kustomization.yaml']],
      ['d-2', ['apps/a/kustomization.yaml']],
      ['d-3', ['apps/b/kustomization.yaml']],
      ['d-4', ['apps/a/kustomization.yaml']],
    ]);
    // Asked again (a resume), each twin finds the commit by its own trailer.
    for (const id of ['d-2', 'd-4']) expect(await ws.commitImage(request('a', id))).toEqual({ ...outs[0], created: false, reused: true });
  });

  it('twins whose change is in Git already make no commit and all get the head', async () => {
    const { name, ws, request } = await setup();
    const head = (await server.log(name))[0]!.sha;
    const outs = await Promise.all(['d-1', 'd-2', 'd-3'].map((id) => ws.commitImage(request('a', id, '0.1.0'))));
    expect(await server.log(name)).toHaveLength(1);
    for (const out of outs) expect(out).toEqual({ commit: head, created: false, reused: false });
  });

  it('a change that cannot be made fails alone; the others are committed', async () => {
    const { name, ws, request } = await setup();
    const bad = { ...request('a', 'd-bad'), edits: [{ ...request('a', 'd-bad').edits[0]!, file: 'apps/missing/kustomization.yaml' }] };
    const results = await Promise.allSettled([
      ws.commitImage(bad),
      ws.commitImage(request('b', 'd-b')),
      ws.commitImage(request('c', 'd-c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    const log = await server.log(name);
    expect(log).toHaveLength(2);
    expect(log[0]!.body).not.toContain('d-bad');
  });

  it('a roll-back of one deployment of a group commit undoes only that deployment’s files', async () => {
    const { name, ws, request } = await setup();
    await Promise.all(SERVICES.map((s) => ws.commitImage(request(s, `d-${s}`))));
    const out = await ws.revertDeployment({
      repo: request('b', 'x').repo,
      author: { name: 'Keptn', email: 'keptn@example.test' },
      deploymentId: 'r-b',
      match: ['Keptn-Context: ctx-d-b', 'Keptn-Stage: dev', 'Keptn-Service: b'],
      message: (sha) => `keptn: roll back b (revert ${sha.slice(0, 12)})`,
    });
    expect(out?.created).toBe(true);
    expect(await server.readFile(name, 'apps/b/kustomization.yaml')).toBe(kustomization('0.1.0'));
    for (const s of SERVICES.filter((x) => x !== 'b'))
      expect(await server.readFile(name, `apps/${s}/kustomization.yaml`)).toBe(kustomization('0.2.0'));
  });
});

describe('groupMessage and messageBlocks', () => {
  it('round-trip: each block keeps its own lines, files and deployment id', () => {
    const members = [
      { deploymentId: 'id-1', message: 'keptn: deploy x\n\nKeptn-Service: x', files: ['apps/x/k.yaml'] },
      { deploymentId: 'id-2', message: 'keptn: deploy y\n\nKeptn-Service: y', files: ['apps/y/k.yaml', 'apps/y/v.yaml'] },
    ];
    const blocks = messageBlocks(groupMessage(members));
    expect(
      blocks.map((b) => [b.deploymentId, b.files, b.lines.includes(`Keptn-Service: ${b.deploymentId === 'id-1' ? 'x' : 'y'}`)]),
    ).toEqual([
      ['id-1', ['apps/x/k.yaml'], true],
      ['id-2', ['apps/y/k.yaml', 'apps/y/v.yaml'], true],
    ]);
    expect(blocks[1]!.lines).not.toContain('Keptn-Service: x');
  });

  it('refuses a file name that could forge a trailer line', () => {
    expect(() => groupMessage([{ deploymentId: 'id', message: 'm', files: ['a\nKeptn-Deployment-Id: other'] }])).toThrow(/one line/);
  });
});
