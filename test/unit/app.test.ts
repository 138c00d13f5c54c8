import { describe, expect, it } from '@jest/globals';
import { buildApp } from '../../src/app.js';
import type { TriggeredEvent } from '../../src/keptn/events.js';
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
    ready: () => true,
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
    expect(accepted[0]).toMatchObject({ task: 'deployment', shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de', gitcommitid: 'f00dbabe', data: { project: 'podtato' } });
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
    ['missing specversion', (() => { const { specversion: _, ...e } = triggeredCloudEvent(); return e; })(), /specversion|not a CloudEvent/i],
    ['missing shkeptncontext', triggeredCloudEvent({ shkeptncontext: undefined }), /shkeptncontext is required/],
    ['missing project', triggeredCloudEvent({}, { project: undefined }), /data.project is required/],
    ['project with a slash', triggeredCloudEvent({}, { project: '../etc' }), /not a valid Keptn name/],
    ['data is a string', { ...triggeredCloudEvent(), data: 'hello' }, /data/],
    ['values is a list', triggeredCloudEvent({}, { configurationChange: { values: ['x'] } }), /configurationChange.values must be an object/],
    ['labels not strings', triggeredCloudEvent({}, { labels: { a: 1 } }), /labels must map strings/],
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
});

it('answers 503 when the deployment cannot be recorded, so the distributor delivers it again', async () => {
  const app = buildApp({
    accept: async () => {
      throw new Error('cannot record the deployment in Kubernetes: connect ECONNREFUSED');
    },
    ready: () => true,
  });
  const res = await app.inject(structured(triggeredCloudEvent()));
  expect(res.statusCode).toBe(503);
  expect(res.json().reason).toContain('ECONNREFUSED');
});

describe('GET /health', () => {
  it('answers 200 for the distributor probe', async () => {
    const { app } = appWith();
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});
