// The bad-input corpus: hostile or broken input at every door (the HTTP endpoint, the event's values, the settings
// file) gets a clear 4xx, or `.started` then an errored `.finished` that says what is wrong, and nothing is written
// to Git. The deployment cases run the real runner, settings loader and Git workspace against a real Git server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { buildApp } from '../../src/app.js';
import { deploy } from '../../src/tasks/deployment.js';
import { GitWorkspace } from '../../src/platform/git/workspace.js';
import type { DeploymentTriggeredData, OutgoingEvent, TriggeredEvent } from '../../src/keptn/events.js';
import { DeploymentRunner } from '../../src/tasks/runner.js';
import { DirectorySettings } from '../../src/platform/settings/source.js';
import { MemoryStore } from '../../src/platform/state/record.js';
import { SoloRegistry } from '../../src/platform/state/replicas.js';
import type { DeliveryTool } from '../../src/judge/tool.js';
import { startGitServer, type GitServer } from '../env/gitserver.js';
import { targetReading, triggeredCloudEvent } from './helpers.js';

const execFileAsync = promisify(execFile);
const CANARY_PASSWORD = 'CANARY-s3cr3t-7f1e2d';
let dir: string;
let git: GitServer;
let repoUrl: string;
let logText = '';
const sent: OutgoingEvent[] = [];
let toolCalls = 0;
let app: ReturnType<typeof buildApp>;
let runner: DeploymentRunner;
let eventCounter = 0;
let targetUrl = '';

const goodSettings = () => `git:
  url: ${repoUrl}
  branch: main
  secretRef: { name: fleet-git }
images:
  - file: app/kustomization.yaml
    kustomizeImage: ghcr.io/podtato/head
target: { kind: Kustomization, name: app, namespace: flux-system }
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gitops-corpus-'));
  git = await startGitServer({ root: join(dir, 'git'), password: CANARY_PASSWORD });
  repoUrl = (await git.createRepo('fleet', { 'app/kustomization.yaml': 'images:\n  - name: ghcr.io/podtato/head\n    newTag: 0.1.0\n' }))
    .url;
  const log = pino(
    { level: 'debug' },
    new Writable({
      write: (chunk, _enc, done) => {
        logText += chunk.toString();
        done();
      },
    }),
  );
  const tool: DeliveryTool = {
    kinds: ['Kustomization', 'HelmRelease', 'Application'],
    deliver: async () => {
      toolCalls++;
      return { state: 'passed', message: 'ok', revision: 'x' };
    },
  };
  const deps = {
    settings: new DirectorySettings(join(dir, 'settings')),
    git: new GitWorkspace({ root: join(dir, 'ws'), transportAttempts: 1 }),
    tools: [tool],
    secretData: async (_ns: string, name: string): Promise<Record<string, string>> => {
      // An SSH Secret without known_hosts: refused before any connection (issue 8, item 5).
      if (name === 'ssh-without-known-hosts')
        return { identity: '-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----\n' };
      if (name !== 'fleet-git') throw new Error(`Secret keptn/${name} not found`);
      return { username: 'keptn', password: CANARY_PASSWORD };
    },
    // Grants as a platform engineer sets them (src/platform/grants.ts): the Secret and every target, to project podtato.
    objectMetadata: async (ref: { kind: string; name: string }) => {
      if (ref.kind === 'Secret' && !['fleet-git', 'ssh-without-known-hosts'].includes(ref.name))
        throw new Error(`Secret keptn/${ref.name} not found`);
      return { labels: {}, annotations: { 'gitops.keptn.sh/projects': 'podtato', 'gitops.keptn.sh/git-hosts': '127.0.0.1' } };
    },
    // The target reads whatever repository the case's settings name: the corpus is about their other fields.
    readObject: targetReading(() => ({ url: targetUrl, branch: 'main' })),
    secretNamespace: 'keptn',
    defaultTimeoutMs: 10_000,
    author: { name: 'Keptn', email: 'keptn@example.test' },
  };
  runner = new DeploymentRunner({
    sink: { send: async (e) => void sent.push(e) },
    handle: (e, l, context) => deploy(e as TriggeredEvent<DeploymentTriggeredData>, deps, l, context),
    log,
    source: 'gitops-service',
    store: new MemoryStore(),
    replicas: new SoloRegistry(),
  });
  app = buildApp({ accept: (e) => runner.accept(e) }, { loggerInstance: log });
});

afterAll(async () => {
  await git.close();
  await rm(dir, { recursive: true, force: true });
});

async function settingsFor(service: string, text: string): Promise<void> {
  const path = join(dir, 'settings', 'podtato', 'dev', service, 'gitops');
  await mkdir(path, { recursive: true });
  await writeFile(join(path, 'config.yaml'), text);
}

/** Posts a deployment.triggered through the HTTP endpoint and returns the .finished it ends with. */
async function deployThroughEndpoint(values: Record<string, unknown>, settings = goodSettings()) {
  const service = `svc-${++eventCounter}`;
  await settingsFor(service, settings);
  targetUrl = /^\s*url: ['"]?([^'"\n]*)/m.exec(settings)?.[1] ?? '';
  const id = `00000000-0000-4000-8000-${String(eventCounter).padStart(12, '0')}`; // ids are UUIDs, as Keptn sends them
  const res = await app.inject({
    method: 'POST',
    url: '/',
    headers: { 'content-type': 'application/cloudevents+json' },
    payload: JSON.stringify(triggeredCloudEvent({ id }, { service, configurationChange: { values } })),
  });
  expect(res.statusCode).toBe(202);
  await runner.drain();
  const answers = sent.filter((e) => e.triggeredid === id);
  expect(answers.map((e) => e.type)).toEqual(['sh.keptn.event.deployment.started', 'sh.keptn.event.deployment.finished']);
  return answers[1]!;
}

describe('bad input at the HTTP endpoint: 4xx with the reason, nothing started', () => {
  const ce = (over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) => JSON.stringify(triggeredCloudEvent(over, data));
  it.each([
    ['empty body', 'application/cloudevents+json', '', 400, /not a CloudEvent/],
    ['not JSON', 'application/cloudevents+json', '{"specversion":', 400, /not JSON/],
    ['a JSON array', 'application/cloudevents+json', '[1,2]', 400, /JSON object/],
    ['JSON null', 'application/cloudevents+json', 'null', 400, /JSON object/],
    ['no specversion', 'application/cloudevents+json', ce({ specversion: undefined }), 400, /specversion must be/],
    ['specversion 0.3', 'application/cloudevents+json', ce({ specversion: '0.3' }), 400, /specversion must be/],
    ['plain JSON without ce- headers', 'application/json', ce(), 400, /ce-\* headers/],
    ['text/plain', 'text/plain', ce(), 415, /./],
    ['XML', 'application/xml', '<event/>', 415, /./],
    ['a batch', 'application/cloudevents-batch+json', `[${ce()}]`, 400, /batched CloudEvents are not supported/],
    ['no id', 'application/cloudevents+json', ce({ id: undefined }), 400, /required attribute id missing/],
    ['no source', 'application/cloudevents+json', ce({ source: undefined }), 400, /required attribute source missing/],
    ['no type', 'application/cloudevents+json', ce({ type: undefined }), 400, /required attribute type missing/],
    ['id a number', 'application/cloudevents+json', ce({ id: 7 }), 400, /required attribute id missing or not a string/],
    ['no shkeptncontext', 'application/cloudevents+json', ce({ shkeptncontext: undefined }), 400, /shkeptncontext is required/],
    [
      'data a string',
      'application/cloudevents+json',
      JSON.stringify({ ...triggeredCloudEvent(), data: 'x' }),
      400,
      /data must be a JSON object/,
    ],
    ['no project', 'application/cloudevents+json', ce({}, { project: undefined }), 400, /data.project is required/],
    ['project escaping a path', 'application/cloudevents+json', ce({}, { project: '../../etc' }), 400, /not a valid Keptn name/],
    ['stage a number', 'application/cloudevents+json', ce({}, { stage: 7 }), 400, /data.stage is required/],
    ['service with a newline', 'application/cloudevents+json', ce({}, { service: 'a\nb' }), 400, /not a valid Keptn name/],
    ['labels with numbers', 'application/cloudevents+json', ce({}, { labels: { a: 1 } }), 400, /labels must map strings/],
    ['values a list', 'application/cloudevents+json', ce({}, { configurationChange: { values: [] } }), 400, /values must be an object/],
    ['oversized body', 'application/cloudevents+json', ce({}, { blob: 'x'.repeat(1_100_000) }), 413, /./],
  ])('%s', async (_name, type, payload, status, reason) => {
    const before = sent.length;
    const res = await app.inject({ method: 'POST', url: '/', headers: { 'content-type': type }, payload });
    expect(res.statusCode).toBe(status);
    expect(res.body).toMatch(reason);
    expect(sent.length).toBe(before);
  });
});

describe('bad images in a well-formed event: .started, then .finished errored with the reason, no commit', () => {
  it.each([
    ['a newline', 'ghcr.io/podtato/head:1\nkind: Secret', /white space/],
    ['an option for git', '--upload-pack=touch /tmp/pwned', /white space|repository path/],
    ['a command substitution', 'app:$(id)', /tag/],
    ['a backtick', 'app:`id`', /tag/],
    ['a semicolon', 'app:1;rm', /tag/],
    ['upper-case repository', 'App:1', /repository path/],
    ['an empty string', '', /empty/],
    ['a number', 42, /must be an image reference string/],
    ['far too long', `app:${'1'.repeat(600)}`, /longer than/],
    ['no image at all', undefined, /configurationChange.values.image is missing/],
  ])('%s', async (_name, image, reason) => {
    const finished = await deployThroughEndpoint(image === undefined ? {} : { image });
    expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(finished.data.message).toMatch(reason);
    expect(await git.log('fleet')).toHaveLength(1);
  });
});

describe('bad settings: .started, then .finished errored naming the field, no commit', () => {
  it.each([
    [
      'ext:: transport',
      (s: string) => s.replace(/url: .*/, 'url: "ext::sh -c touch% /tmp/pwned"'),
      /git.url: must not contain white space/,
    ],
    ['file:// URL', (s: string) => s.replace(/url: .*/, 'url: file:///srv/git/fleet.git'), /git.url: scheme file:\/\/ is not allowed/],
    ['option-like URL', (s: string) => s.replace(/url: .*/, 'url: --upload-pack=id'), /git.url: must not start with "-"/],
    ['credentials in the URL', (s: string) => s.replace(/url: http:\/\//, 'url: http://keptn:hunter2@'), /must not carry credentials/],
    [
      'a path leaving the repository',
      (s: string) => s.replace('file: app/kustomization.yaml', 'file: ../../etc/passwd'),
      /images.0.file: must not contain ".."/,
    ],
    ['a path into .git', (s: string) => s.replace('file: app/kustomization.yaml', 'file: .git/config'), /must not point into .git/],
    ['an absolute path', (s: string) => s.replace('file: app/kustomization.yaml', 'file: /etc/passwd'), /must be relative/],
    [
      'a YAML alias bomb',
      () =>
        'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
      /not valid YAML/,
    ],
    ['no target', (s: string) => s.replace(/target: .*/, ''), /must have required property 'target'/],
    ['an unknown tool', (s: string) => s.replace('kind: Kustomization', 'kind: Flagger'), /target.kind: must be one of/],
    ['an unknown field', (s: string) => `${s}colour: blue\n`, /unknown field "colour"/],
    ['a timeout of two days', (s: string) => `${s}timeout: 48h\n`, /timeout: at most 24h/],
    ['a missing Secret', (s: string) => s.replace('fleet-git', 'nope-git'), /Secret keptn\/nope-git not found/],
    [
      'a file that does not exist',
      (s: string) => s.replace('file: app/kustomization.yaml', 'file: app/nope.yaml'),
      /app\/nope.yaml does not exist on the branch/,
    ],
    [
      'a YAML path that does not exist',
      (s: string) => s.replace('kustomizeImage: ghcr.io/podtato/head', 'yamlPath: spec.image'),
      /key spec.image not found/,
    ],
    ['not YAML', () => 'git: [unclosed\n', /not valid YAML/],
    [
      'a token in the URL query',
      (s: string) => s.replace(/url: (.*)/, 'url: $1?private_token=CANARY-query-token'),
      /git.url: must not carry a query string/,
    ],
    [
      'a password in an ssh:// URL',
      (s: string) => s.replace(/url: .*/, 'url: ssh://git:hunter2@127.0.0.1/fleet.git'),
      /git.url: must not carry credentials/,
    ],
    [
      'an SSH Secret without known_hosts',
      (s: string) => s.replace(/url: .*/, 'url: ssh://git@127.0.0.1:1/fleet.git').replace('fleet-git', 'ssh-without-known-hosts'),
      /no "known_hosts".*git.insecureAcceptNewHostKey: true/,
    ],
    [
      '250 KB of unknown fields',
      (s: string) => s + Array.from({ length: 7_500 }, (_, i) => `unknown${i}: ${'x'.repeat(20)}`).join('\n'),
      /unknown field "unknown0".*and \d+ more$/,
    ],
  ])('%s', async (_name, breakIt, reason) => {
    const finished = await deployThroughEndpoint({ image: 'ghcr.io/podtato/head:0.2.0' }, breakIt(goodSettings()));
    expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(finished.data.message).toMatch(reason);
    expect(await git.log('fleet')).toHaveLength(1);
    expect(toolCalls).toBe(0);
  });
});

describe('a hostile repository: .started, then .finished errored, nothing written (issue 8, items 2 and 6)', () => {
  it('a manifest that is a symbolic link out of the clone is refused, and the file it points to is untouched', async () => {
    const outside = join(dir, 'outside-kustomization.yaml');
    const content = 'images:\n  - name: ghcr.io/podtato/head\n    newTag: 0.1.0\n';
    await writeFile(outside, content);
    const { url } = await git.createRepo('linked', { 'README.md': 'fleet\n' });
    const work = join(dir, 'linked-work');
    const run = (args: string[]) =>
      execFileAsync('git', args, {
        cwd: work,
        env: { ...process.env, GIT_AUTHOR_NAME: 'x', GIT_AUTHOR_EMAIL: 'x@x', GIT_COMMITTER_NAME: 'x', GIT_COMMITTER_EMAIL: 'x@x' },
      });
    await mkdir(work, { recursive: true });
    await run(['clone', '-q', join(git.root, 'repos', 'linked.git'), '.']);
    await mkdir(join(work, 'app'));
    await symlink(outside, join(work, 'app', 'kustomization.yaml'));
    await run(['add', '-A']);
    await run(['commit', '-q', '-m', 'link']);
    await run(['push', '-q', 'origin', 'main']);
    const finished = await deployThroughEndpoint({ image: 'ghcr.io/podtato/head:0.2.0' }, goodSettings().replace(repoUrl, url));
    expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
    expect(finished.data.message).toMatch(/app\/kustomization.yaml is a symbolic link/);
    expect(await readFile(outside, 'utf8')).toBe(content);
    expect(await git.log('linked')).toHaveLength(2);
    expect(toolCalls).toBe(0);
  });
});

describe('secret canary', () => {
  it('the Git password appears in no log line, event or message, even when Git rejects it', async () => {
    const wrong = `${CANARY_PASSWORD}-WRONG`;
    const finished = await deployThroughEndpoint({ image: 'ghcr.io/podtato/head:0.2.0' }, goodSettings());
    expect(finished.data).toMatchObject({ result: 'pass' }); // the right password worked
    const service = `svc-${++eventCounter}`;
    await settingsFor(service, goodSettings());
    // A second Git server that rejects it: the failure path must not echo credentials either.
    const other = await startGitServer({ root: join(dir, 'git2'), password: 'another-password' });
    try {
      const url = (await other.createRepo('fleet', { 'app/kustomization.yaml': 'images: []\n' })).url;
      const rejected = await deployThroughEndpoint({ image: 'ghcr.io/podtato/head:0.2.0' }, goodSettings().replace(repoUrl, url));
      expect(rejected.data.message).toMatch(/cannot fetch branch main/);
    } finally {
      await other.close();
    }
    const everything = `${logText}\n${JSON.stringify(sent)}`;
    expect(everything).not.toContain(CANARY_PASSWORD);
    expect(everything).not.toContain(Buffer.from(`keptn:${CANARY_PASSWORD}`).toString('base64'));
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain('CANARY-query-token'); // from the refused URL with a token in its query
  });
});
