// HttpEventSink against in-process HTTP servers: what arrives, what is retried, and that the token never follows a
// redirect to another host.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startedEvent, type TriggeredEvent } from '../../../src/keptn/events.js';
import { HttpEventSink, type HttpEventSinkOptions } from '../../../src/keptn/sender.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

/** A server that answers each request with the next of `answers` (the last one repeats), recording what came. */
async function serve(...answers: Array<(res: ServerResponse) => void>): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += String(c)));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      (answers[Math.min(received.length, answers.length) - 1] ?? ((r) => r.end()))(res);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/event`, received };
}

const status =
  (code: number, headers: Record<string, string> = {}) =>
  (res: ServerResponse) => {
    res.writeHead(code, headers);
    res.end();
  };

const triggered: TriggeredEvent = {
  id: 'c4f1b6b2-1111-4a5e-9c1b-000000000001',
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
  data: { project: 'p', stage: 's', service: 'svc' },
};
const event = startedEvent(triggered, { source: 'gitops-service', id: 'out-1' });
const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 };
const sink = (opts: Omit<HttpEventSinkOptions, 'policy'> & { policy?: HttpEventSinkOptions['policy'] }) =>
  new HttpEventSink({ policy: { ...policy, ...opts.policy }, ...opts });

describe('HttpEventSink', () => {
  it('posts the event as structured CloudEvent JSON, with the token when it has one', async () => {
    const server = await serve(status(200));
    await sink({ url: server.url, apiToken: 'tok-123' }).send(event);
    expect(server.received).toHaveLength(1);
    expect(server.received[0]?.headers['content-type']).toBe('application/cloudevents+json');
    expect(server.received[0]?.headers['x-token']).toBe('tok-123');
    expect(JSON.parse(server.received[0]!.body)).toEqual(event);
  });

  it('asks again after a 503 and a 429, and is done at the first 2xx', async () => {
    const server = await serve(status(503), status(429), status(202));
    await sink({ url: server.url }).send(event);
    expect(server.received).toHaveLength(3);
  });

  it('does not ask again after a 400: it will not get better', async () => {
    const server = await serve(status(400));
    const err = await sink({ url: server.url })
      .send(event)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'EVENT_DELIVERY_FAILED',
      retryable: false,
      message: expect.stringMatching(/could not deliver sh\.keptn\.event\.deployment\.started \(out-1\) to .*: HTTP 400$/),
    });
    expect(server.received).toHaveLength(1);
  });

  it('gives up after the attempts of its policy when the endpoint keeps failing', async () => {
    const server = await serve(status(500));
    await expect(sink({ url: server.url }).send(event)).rejects.toMatchObject({ code: 'EVENT_DELIVERY_FAILED', retryable: true });
    expect(server.received).toHaveLength(3);
  });

  it('retries a refused connection and a timeout', async () => {
    const refused = await serve(status(200));
    const url = refused.url;
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await expect(sink({ url }).send(event)).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('ECONNREFUSED') });
    const silent = await serve(() => undefined); // never answers
    await expect(sink({ url: silent.url, timeoutMs: 50 }).send(event)).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining('ECONNABORTED'),
    });
    expect(silent.received).toHaveLength(3);
  });

  it('never follows a redirect: the token does not reach the other host', async () => {
    const elsewhere = await serve(status(200));
    const target = new URL(elsewhere.url);
    target.hostname = 'localhost'; // another host name, as a redirect to an attacker's host would be
    target.search = '?steal=1';
    const redirecting = await serve(status(307, { location: target.toString() }));
    const err = await sink({ url: redirecting.url, apiToken: 'tok-123' })
      .send(event)
      .catch((e: unknown) => e);
    expect(elsewhere.received).toEqual([]);
    expect(redirecting.received).toHaveLength(1);
    expect(err).toMatchObject({ code: 'EVENT_DELIVERY_FAILED', retryable: false });
    expect(String((err as Error).message)).toMatch(
      new RegExp(`HTTP 307 with a redirect to http://localhost:${target.port}, which is not followed`),
    );
    expect(String((err as Error).message)).not.toContain('steal');
  });
});
