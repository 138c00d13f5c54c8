import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { buildApp, buildProbeApp } from '../../src/app.js';
import type { TriggeredEvent } from '../../src/keptn/events.js';
import { MAX_DATA_BYTES, MAX_DATA_DEPTH } from '../../src/keptn/parse.js';
import { PrometheusMetrics } from '../../src/platform/metrics.js';
import { RecordTooLargeError, StoreUnavailableError } from '../../src/platform/state/record.js';
import { triggeredCloudEvent } from './helpers.js';

function appWith() {
  const accepted: TriggeredEvent[] = [];
  const seen = new Set<string>();
  const app = buildApp({
    accept: async (e) => {
      if (seen.has(e.id)) return 'duplicate';
      seen.add(e.id);
      accepted.push(e);
      return 'accepted';
    },
  });
  return { app, accepted };
}

const structured = (body: unknown, type = 'application/cloudevents+json') => ({
  method: 'POST' as const,
  url: '/',
  headers: { 'content-type': type },
  payload: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('POST /', () => {
  it('accepts a structured deployment.triggered with 202 and hands it over', async () => {
    const { app, accepted } = appWith();
    const res = await app.inject(structured(triggeredCloudEvent()));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ status: 'accepted', id: 'c4f1b6b2-1111-4a5e-9c1b-000000000001' });
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatchObject({
      task: 'deployment',
      shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
      gitcommitid: 'f00dbabe',
      data: { project: 'podtato' },
    });
  });

  it('accepts binary mode, with ce- headers', async () => {
    const { app, accepted } = appWith();
    const { data, ...attrs } = triggeredCloudEvent();
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(attrs)) if (k !== 'datacontenttype') headers[`ce-${k}`] = String(v);
    const res = await app.inject({ method: 'POST', url: '/', headers, payload: JSON.stringify(data) });
    expect(res.statusCode).toBe(202);
    expect(accepted[0]?.data.service).toBe('helloservice');
  });

  it('treats a repeated event id as the same deployment', async () => {
    const { app, accepted } = appWith();
    await app.inject(structured(triggeredCloudEvent()));
    const again = await app.inject(structured(triggeredCloudEvent()));
    expect(again.statusCode).toBe(202);
    expect(again.json().status).toBe('duplicate');
    expect(accepted).toHaveLength(1);
  });

  it('acknowledges and ignores event types it does not handle', async () => {
    const { app, accepted } = appWith();
    const res = await app.inject(structured(triggeredCloudEvent({ type: 'sh.keptn.event.test.triggered' })));
    expect(res.statusCode).toBe(202);
    expect(res.json().status).toBe('ignored');
    expect(accepted).toHaveLength(0);
  });

  it.each([
    ['not JSON at all', '{{{', /not a CloudEvent|JSON/i],
    [
      'missing specversion',
      (() => {
        const { specversion: _, ...e } = triggeredCloudEvent();
        return e;
      })(),
      /specversion|not a CloudEvent/i,
    ],
    ['missing shkeptncontext', triggeredCloudEvent({ shkeptncontext: undefined }), /shkeptncontext is required/],
    ['missing project', triggeredCloudEvent({}, { project: undefined }), /data.project is required/],
    ['project with a slash', triggeredCloudEvent({}, { project: '../etc' }), /not a valid Keptn name/],
    ['data is a string', { ...triggeredCloudEvent(), data: 'hello' }, /data/],
    [
      'values is a list',
      triggeredCloudEvent({}, { configurationChange: { values: ['x'] } }),
      /configurationChange.values must be an object/,
    ],
    ['labels not strings', triggeredCloudEvent({}, { labels: { a: 1 } }), /labels must map strings/],
    ['an id that is a pattern', triggeredCloudEvent({ id: 'x|' }), /attribute id must be a UUID.*got .{0,2}x\|/],
    ['an id with a plus', triggeredCloudEvent({ id: 'c4f1b6b2-1111-4a5e-9c1b-00000000000+' }), /attribute id must be a UUID/],
    [
      'a context that is a pattern',
      triggeredCloudEvent({ shkeptncontext: 'y|' }),
      /attribute shkeptncontext must be a UUID.*got .{0,2}y\|/,
    ],
    ['an oversized id', triggeredCloudEvent({ id: 'a'.repeat(300_000) }), /attribute id must be a UUID.*\(300000 characters\)/],
    [
      'data nested too deep',
      JSON.stringify(triggeredCloudEvent()).replace('"labels"', `"deep":${'['.repeat(10_000)}${']'.repeat(10_000)},"labels"`),
      new RegExp(`data nests deeper than ${MAX_DATA_DEPTH} levels`),
    ],
  ])('answers 400 naming the problem: %s', async (_name, body, reason) => {
    const { app, accepted } = appWith();
    const res = await app.inject(structured(body));
    expect(res.statusCode).toBe(400);
    expect(JSON.stringify(res.json())).toMatch(reason);
    expect(accepted).toHaveLength(0);
  });

  it('answers 415 to a content type it cannot read', async () => {
    const { app } = appWith();
    const res = await app.inject({ method: 'POST', url: '/', headers: { 'content-type': 'text/plain' }, payload: 'hi' });
    expect(res.statusCode).toBe(415);
  });

  it('answers 413 to an oversized body', async () => {
    const { app } = appWith();
    const res = await app.inject(structured(triggeredCloudEvent({}, { blob: 'x'.repeat(2 * 1024 * 1024) })));
    expect(res.statusCode).toBe(413);
  });

  it('answers 413 with the reason to data too large to record, without trying to', async () => {
    const { app, accepted } = appWith();
    const res = await app.inject(structured(triggeredCloudEvent({}, { blob: 'x'.repeat(MAX_DATA_BYTES) })));
    expect(res.statusCode).toBe(413);
    expect(res.json().reason).toMatch(new RegExp(`event data is \\d+ bytes; at most ${MAX_DATA_BYTES} can be recorded`));
    expect(accepted).toHaveLength(0);
  });

  it('accepts the UUID spellings Keptn keeps (braces, urn:uuid:, 32 hex digits, upper case)', async () => {
    for (const [id, shkeptncontext] of [
      ['C4F1B6B2-1111-4A5E-9C1B-000000000001', '{a1b2c3d4-0000-4000-8000-00000000c0de}'],
      ['c4f1b6b211114a5e9c1b000000000002', 'urn:uuid:a1b2c3d4-0000-4000-8000-00000000c0de'],
    ]) {
      const { app, accepted } = appWith();
      const res = await app.inject(structured(triggeredCloudEvent({ id, shkeptncontext })));
      expect(res.statusCode).toBe(202);
      expect(accepted[0]).toMatchObject({ id, shkeptncontext });
    }
  });

  it('refuses a request from outside the pod (not loopback) before reading it', async () => {
    const { app, accepted } = appWith();
    for (const remoteAddress of ['192.0.2.7', '10.244.1.5', 'fd00::2', '::ffff:192.0.2.7']) {
      const res = await app.inject({ ...structured(triggeredCloudEvent()), remoteAddress });
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toMatch(/only from the distributor in the same pod/);
    }
    expect(accepted).toHaveLength(0);
    for (const remoteAddress of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1']) {
      expect((await app.inject({ method: 'GET', url: '/health', remoteAddress })).statusCode).toBe(200);
    }
  });
});

describe('when the deployment cannot be recorded', () => {
  const failing = (err: Error) => buildApp({ accept: async () => Promise.reject(err) });

  it('answers 503 while the store is away, so the distributor delivers it again', async () => {
    const res = await failing(
      new StoreUnavailableError('cannot record the deployment in Kubernetes: connect ECONNREFUSED', { retryable: true }),
    ).inject(structured(triggeredCloudEvent()));
    expect(res.statusCode).toBe(503);
    expect(res.json().reason).toContain('ECONNREFUSED');
  });

  it('answers 413 to a record that can never be stored: retrying cannot help', async () => {
    const res = await failing(
      new RecordTooLargeError('the deployment record would be 1100000 bytes; a ConfigMap holds at most 1048576'),
    ).inject(structured(triggeredCloudEvent()));
    expect(res.statusCode).toBe(413);
    expect(res.json().reason).toMatch(/holds at most 1048576/);
  });
});

describe('probes', () => {
  function probesWith(ready: boolean) {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const app = buildProbeApp({ ready: () => ready }, { loggerInstance: pino({ level: 'trace' }, sink) });
    return { app, lines };
  }

  it('answers liveness and readiness, and logs none of these requests', async () => {
    const { app, lines } = probesWith(true);
    for (let i = 0; i < 3; i++) {
      expect((await app.inject({ method: 'GET', url: '/health', remoteAddress: '10.244.0.1' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/ready', remoteAddress: '10.244.0.1' })).statusCode).toBe(200);
    }
    expect(lines.filter((l) => l['req'] || l['res'])).toEqual([]);
  });

  it('answers 503 on /ready until the watches have synced', async () => {
    const { app } = probesWith(false);
    expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(503);
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });

  it('does not take events', async () => {
    const { app } = probesWith(true);
    expect((await app.inject(structured(triggeredCloudEvent()))).statusCode).toBe(404);
  });
});

describe('GET /metrics', () => {
  it('serves the registry in the Prometheus text format on the probe app, unlogged', async () => {
    const metrics = new PrometheusMetrics();
    metrics.deploymentFinished({ task: 'deployment', tool: 'flux', result: 'pass' }, 12);
    metrics.pushRetried();
    const lines: unknown[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const app = buildProbeApp({ ready: () => true, metrics }, { loggerInstance: pino({ level: 'trace' }, sink) });
    const res = await app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.244.0.9' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(metrics.contentType);
    expect(res.body).toMatch(/^keptn_gitops_deployments_total\{task="deployment",tool="flux",result="pass"\} 1$/m);
    expect(res.body).toMatch(/^keptn_gitops_git_push_retries_total 1$/m);
    expect(res.body).toMatch(/^# HELP keptn_gitops_deployment_duration_seconds /m);
    // A later scrape sees later counts: nothing is cached between requests.
    metrics.pushRetried();
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^keptn_gitops_git_push_retries_total 2$/m);
    expect(lines).toEqual([]);
  });

  it('is not served on the event port', async () => {
    const app = buildApp({ accept: async () => 'accepted' });
    expect((await app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).statusCode).toBe(404);
  });
});

describe('Flagger gates on the probe port', () => {
  function gatesWith(answer: (gate: string, ns: string, name: string) => Promise<{ open: boolean; reason: string }>) {
    const asked: string[] = [];
    const app = buildProbeApp({
      ready: () => true,
      gate: (gate, ns, name) => {
        asked.push(`${gate} ${ns}/${name}`);
        return answer(gate, ns, name);
      },
    });
    return { app, asked };
  }
  // What Flagger posts (pkg/controller/webhook.go CallWebhook: CanaryWebhookPayload).
  const payload = { name: 'web', namespace: 'app', phase: 'Progressing', checksum: '7f6c9d', metadata: {} };

  it('answers 2xx only when the gate is open: Flagger proceeds on 2xx and waits on anything else', async () => {
    const { app, asked } = gatesWith((gate) =>
      Promise.resolve(gate === 'promote' ? { open: true, reason: 'approved' } : { open: false, reason: 'not approved' }),
    );
    const promote = await app.inject({ method: 'POST', url: '/flagger/gates/promote', payload, remoteAddress: '10.244.1.7' });
    expect([promote.statusCode, promote.json()]).toEqual([200, { open: true, reason: 'approved' }]);
    const rollback = await app.inject({ method: 'POST', url: '/flagger/gates/rollback', payload });
    expect([rollback.statusCode, rollback.json()]).toEqual([403, { open: false, reason: 'not approved' }]);
    expect(asked).toEqual(['promote app/web', 'rollback app/web']);
  });

  it('refuses a body that names no Canary, and asks nothing', async () => {
    const { app, asked } = gatesWith(() => Promise.resolve({ open: true, reason: '' }));
    for (const bad of [{}, { name: 'web' }, { name: '../x', namespace: 'app' }, { name: 'web', namespace: 7 }]) {
      const res = await app.inject({ method: 'POST', url: '/flagger/gates/promote', payload: bad });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatch(/Flagger's webhook payload/);
    }
    expect(asked).toEqual([]);
  });

  it('keeps the gate closed (503) when the Canary cannot be read', async () => {
    const { app } = gatesWith(() => Promise.reject(new Error('connect ECONNREFUSED')));
    const res = await app.inject({ method: 'POST', url: '/flagger/gates/promote', payload });
    expect([res.statusCode, res.json()]).toEqual([503, { open: false, reason: 'cannot read Canary app/web now' }]);
  });
});
