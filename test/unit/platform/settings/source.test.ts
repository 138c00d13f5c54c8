// The settings source against the resource-service stand-in of test/env (the real service's URL layout, answers and
// versions): the level order, and reading at the configuration version Keptn pins for a sequence.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SettingsError } from '../../../../src/platform/settings/schema.js';
import { ResourceServiceSettings, SettingsUnavailableError } from '../../../../src/platform/settings/source.js';
import { startResourceService, type ResourceService } from '../../../env/resourceservice.js';

const URI = 'gitops/config.yaml';
const scope = { project: 'podtato', stage: 'dev', service: 'helloservice' };
const noWait = async () => undefined;
const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 };

function settingsYaml(name: string, timeout = '5m'): string {
  return [
    'git: {url: "https://git.example.com/team/fleet.git", branch: main}',
    'images: [{file: apps/podtato/kustomization.yaml, kustomizeImage: ghcr.io/podtato/head}]',
    `target: {kind: Kustomization, name: ${name}, namespace: flux-system}`,
    `timeout: ${timeout}`,
    '',
  ].join('\n');
}

let rs: ResourceService;
let source: ResourceServiceSettings;

beforeAll(async () => {
  rs = await startResourceService('http://127.0.0.1:0');
  source = new ResourceServiceSettings(rs.url, URI, 2_000, policy, noWait);
});

afterAll(async () => {
  await rs.close();
});

describe('resource-service settings', () => {
  it('reads the latest when the event names no version', async () => {
    rs.put(scope, URI, settingsYaml('first'));
    rs.put(scope, URI, settingsYaml('second'));
    const loaded = await source.load(scope);
    expect(loaded.settings.target.name).toBe('second');
    expect(loaded.where).toBe('resource gitops/config.yaml of service helloservice');
    expect(rs.requests.at(-1)).toBe(`GET /v1/project/podtato/stage/dev/service/helloservice/resource/gitops%2Fconfig.yaml`);
  });

  it('reads the settings as they were at the configuration version Keptn pinned for the sequence', async () => {
    rs.put(scope, URI, settingsYaml('pinned', '7m'));
    const pinned = rs.version()!;
    rs.put(scope, URI, settingsYaml('changed-while-the-sequence-ran', '1m'));
    const loaded = await source.load(scope, pinned);
    expect(loaded.settings.target.name).toBe('pinned');
    expect(loaded.settings.timeout).toBe('7m');
    expect(loaded.where).toBe(`resource gitops/config.yaml of service helloservice at configuration version ${pinned}`);
    expect(rs.requests.at(-1)).toBe(
      `GET /v1/project/podtato/stage/dev/service/helloservice/resource/gitops%2Fconfig.yaml?gitCommitID=${pinned}`,
    );
    expect((await source.load(scope)).settings.target.name).toBe('changed-while-the-sequence-ran');
  });

  it('falls back from service to stage to project level at the same version', async () => {
    const other = { project: 'shop', stage: 'prod', service: 'cart' };
    rs.put({ project: 'shop' }, URI, settingsYaml('project-level'));
    const before = rs.version()!;
    rs.put({ project: 'shop', stage: 'prod', service: 'cart' }, URI, settingsYaml('service-level'));
    const seen = rs.requests.length;
    const loaded = await source.load(other, before);
    // The service-level file did not exist yet at that version.
    expect(loaded.settings.target.name).toBe('project-level');
    expect(loaded.where).toBe(`resource gitops/config.yaml of project shop at configuration version ${before}`);
    expect(rs.requests.slice(seen)).toEqual([
      `GET /v1/project/shop/stage/prod/service/cart/resource/gitops%2Fconfig.yaml?gitCommitID=${before}`,
      `GET /v1/project/shop/stage/prod/resource/gitops%2Fconfig.yaml?gitCommitID=${before}`,
      `GET /v1/project/shop/resource/gitops%2Fconfig.yaml?gitCommitID=${before}`,
    ]);
    expect((await source.load(other)).settings.target.name).toBe('service-level');
  });

  it('says which version when no level has settings there', async () => {
    const none = { project: 'empty', stage: 'dev', service: 'x' };
    rs.put({ project: 'elsewhere' }, URI, settingsYaml('x'));
    const err = await source.load(none, rs.version()!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SettingsError);
    expect((err as Error).message).toContain(
      `settings for empty/dev/x at configuration version ${rs.version()!} is not valid: no gitops/config.yaml at service, stage or project level`,
    );
  });

  it('an unknown version is an error of the resource-service (HTTP 500), retried, then reported with the version', async () => {
    const seen = rs.requests.length;
    const err = await source.load(scope, 'f00dbabe').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SettingsUnavailableError);
    // Not transient: a deployment does not wait until its deadline for a version that may not exist (issue 23).
    expect(err).toMatchObject({ code: 'SETTINGS_UNAVAILABLE', retryable: false });
    expect((err as Error).message).toBe(
      'resource-service answered HTTP 500 for resource gitops/config.yaml of service helloservice at configuration version f00dbabe; the configuration version may not exist in the Keptn configuration repository',
    );
    expect(rs.requests.length - seen).toBe(policy.attempts);
  });

  it('retries while the resource-service is briefly away, then reads', async () => {
    let failures = 2;
    const flaky: Server = createServer((req, res) => {
      if (failures-- > 0) return void res.writeHead(503).end();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ resourceURI: URI, resourceContent: Buffer.from(settingsYaml('after-a-restart')).toString('base64') }));
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    try {
      const s = new ResourceServiceSettings(`http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, URI, 2_000, policy, noWait);
      expect((await s.load(scope)).settings.target.name).toBe('after-a-restart');
    } finally {
      await new Promise<void>((resolve) => flaky.close(() => resolve()));
    }
  });

  it('gives up after the attempts when nothing answers, with an error the deployment waits out (issue 23)', async () => {
    const s = new ResourceServiceSettings('http://127.0.0.1:9', URI, 500, policy, noWait);
    await expect(s.load(scope)).rejects.toMatchObject({
      code: 'SETTINGS_UNAVAILABLE',
      retryable: true,
      message: expect.stringMatching(/^cannot reach the resource-service to read resource gitops\/config.yaml of service helloservice: /),
    });
  });
});
