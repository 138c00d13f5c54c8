// test/env/peers/build-all.sh, what `npm test` and `npm run demo` print on a fresh machine while the peers build: the
// real script and the real build.sh beside it, on two tiny Go families in a cache of the test's own (a Go build of a
// hello-world program, a few seconds cold).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PEERS = join(dirname(fileURLToPath(import.meta.url)), '..', 'env', 'peers');

let dir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function buildAll(...families: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [join(dir, 'peers', 'build-all.sh'), ...families],
      { env: { ...process.env, PEERS_CACHE: join(dir, 'cache'), TMPDIR: dir }, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A tool module like the real families (go.mod, targets), whose one program is in the module itself. */
async function family(name: string, mainGo: string): Promise<void> {
  const at = join(dir, 'peers', name);
  await mkdir(at, { recursive: true });
  await writeFile(join(at, 'go.mod'), `module example.com/${name}\n\ngo 1.26\n`);
  await writeFile(join(at, 'targets'), `${name} .\n`);
  await writeFile(join(at, 'main.go'), mainGo);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keptn-gitops-build-all-'));
  await mkdir(join(dir, 'peers'));
  // The scripts as they are: build.sh's cache key covers its own text, so the copy keys exactly as the original does.
  for (const script of ['build.sh', 'build-all.sh']) await copyFile(join(PEERS, script), join(dir, 'peers', script));
  await family('hello', 'package main\n\nfunc main() { println("hello") }\n');
  await family('world', 'package main\n\nfunc main() { println("world") }\n');
  await family('broken', 'package main\n\nfunc main() { notDefined() }\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('build-all.sh', () => {
  it('on a cold machine names each family as it builds it, how many are left, and about how long each takes', async () => {
    const run = await buildAll('hello', 'world');
    expect(run.code).toBe(0);
    const lines = run.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^peers: building 2 of 2 peer families from their Go modules, about 4 min on 2 cores/);
    expect(lines).toContain('peers: [1/2] hello: building, about 2 min; then world (about 2 min)');
    expect(lines).toContain('peers: [2/2] world: building, about 2 min; the last one');
    expect(lines.filter((l) => /^peers: \[\d\/2\] (hello|world): built in \d+ s$/.test(l))).toHaveLength(2);
    // The Go toolchain's own output stays in the log.
    expect(run.stderr).not.toContain('build.sh:');
  }, 120_000);

  it('is silent when every family is in the cache, and counts only the missing ones', async () => {
    expect(await buildAll('hello', 'world')).toEqual({ code: 0, stdout: '', stderr: '' });
    await family('again', 'package main\n\nfunc main() { println("again") }\n');
    const run = await buildAll('hello', 'again', 'world');
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^peers: building 1 of 3 peer families/);
    expect(run.stderr).toContain('peers: [1/1] again: building, about 2 min; the last one');
  }, 120_000);

  it("shows the toolchain's output when a build fails, and fails", async () => {
    const run = await buildAll('hello', 'broken');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('peers: [1/1] broken: build failed after');
    expect(run.stderr).toContain('undefined: notDefined');
    expect(run.stderr).toMatch(/whole log: .*keptn-gitops-peers-broken\./);
  }, 120_000);
});
