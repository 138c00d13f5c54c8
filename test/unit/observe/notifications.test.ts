// Notifications as wake-ups (ADR 14): signatures over the raw body, Flux events captured from the real controllers
// (test/fixtures/flux/event-*.json) and Argo CD webhook bodies read only for the object they name, the senders' keys
// and their bounds, the rate limit, and the HTTP face through app.inject().
import { createHmac } from 'node:crypto';
import { describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import type { Link } from '../../../src/observe/link.js';
import { buildNotifyApp, type NotifyDeps } from '../../../src/observe/notify-app.js';
import { notifySenderFrom, NotifyKeyCache, RateLimiter, senderMayName, type NotifySender } from '../../../src/observe/notify-keys.js';
import { argoNotification, fluxNotification, verifyBearer, verifyHmac } from '../../../src/observe/notifications.js';
import { fixture } from '../fixtures.js';

const KEY = 'flux-hmac-key';
const sign = (raw: string, key = KEY) => `sha256=${createHmac('sha256', key).update(raw).digest('hex')}`;

function fluxEvent(name: string): Record<string, unknown> {
  return fixture<{ body: Record<string, unknown> }>('flux', name).body;
}

describe('signatures', () => {
  const raw = Buffer.from(JSON.stringify(fluxEvent('event-kustomization-reconciliationsucceeded-info')));
  it.each<[string, string | undefined, string, boolean]>([
    ['the HMAC of the body with the key', sign(raw.toString()), KEY, true],
    ['another key', sign(raw.toString(), 'other'), KEY, false],
    ['the HMAC of another body', sign(`${raw.toString()} `), KEY, false],
    ['no header', undefined, KEY, false],
    ['not sha256=<hex>', 'sha1=abc', KEY, false],
    ['no key configured', sign(raw.toString(), ''), '', false],
  ])('Flux X-Signature: %s → %s', (_, header, key, want) => {
    expect(verifyHmac(raw, header, key)).toBe(want);
  });

  it.each<[string | undefined, boolean]>([
    ['Bearer s3cret', true],
    ['Bearer s3cre', false],
    ['Bearer s3cret ', false],
    [undefined, false],
  ])('Argo CD Authorization %s → %s', (header, want) => {
    expect(verifyBearer(header, 's3cret')).toBe(want);
  });
});

describe('a notification names the object to look at, nothing more', () => {
  it.each([
    // Success, failure, retry: every event is the same wake-up; its severity, reason and revision decide nothing.
    ['event-kustomization-reconciliationsucceeded-info', 'Kustomization'],
    ['event-kustomization-buildfailed-error', 'Kustomization'],
    ['event-kustomization-healthcheckfailed-error', 'Kustomization'],
    ['event-helmrelease-upgradesucceeded-info', 'HelmRelease'],
    ['event-helmrelease-upgradefailed-error', 'HelmRelease'],
  ])('%s → look at the %s', (name, kind) => {
    const body = fluxEvent(name);
    const involved = body['involvedObject'] as { namespace: string; name: string };
    expect(fluxNotification(body)).toEqual({ kind: 'look', object: { kind, namespace: involved.namespace, name: involved.name } });
  });

  it.each<[string, unknown]>([
    ['not an object', 'text'],
    ['another kind', { involvedObject: { kind: 'GitRepository', namespace: 'flux-system', name: 'app' } }],
    ['an invalid name', { involvedObject: { kind: 'Kustomization', namespace: 'flux-system', name: '../x' } }],
  ])('Flux: %s is ignored', (_, body) => {
    expect(fluxNotification(body).kind).toBe('ignored');
  });

  it('Argo CD: the Application; an older template that says Succeeded/Healthy for another revision decides nothing either', () => {
    const body = { namespace: 'argocd', name: 'app', revision: 'b'.repeat(40), phase: 'Succeeded', health: 'Healthy', sync: 'Synced' };
    expect(argoNotification(body)).toEqual({ kind: 'look', object: { kind: 'Application', namespace: 'argocd', name: 'app' } });
    expect(argoNotification({ name: 'app' }).kind).toBe('ignored');
  });
});

describe('senders: each key bound to the projects and objects it may speak for (issue 19 item 3)', () => {
  it('reads a Secret as a sender; without notify-objects it may name any object of its projects', () => {
    const sender = notifySenderFrom('team-a', { 'flux-token': 'k' }, { 'gitops.keptn.sh/projects': 'a, b' });
    expect(sender).toEqual({ name: 'team-a', flux: 'k', projects: ['a', 'b'] });
    expect(senderMayName(sender, { kind: 'Kustomization', namespace: 'x', name: 'y' })).toBe(true);
  });

  it.each<[string, string, boolean]>([
    ['team-a/web', 'team-a/web', true],
    ['team-a/*', 'team-a/web', true],
    ['team-a/web', 'team-a/api', false],
    ['team-a/*', 'team-b/web', false],
  ])('notify-objects %s, object %s → %s', (pattern, object, want) => {
    const sender = notifySenderFrom(
      's',
      { 'flux-token': 'k' },
      { 'gitops.keptn.sh/projects': 'a', 'gitops.keptn.sh/notify-objects': pattern },
    );
    const [namespace, name] = object.split('/') as [string, string];
    expect(senderMayName(sender, { kind: 'Kustomization', namespace, name })).toBe(want);
  });

  it('keys are read in the background, not on a request: a Secret that cannot be read keeps its last reading', async () => {
    let fail = false;
    const reads: string[] = [];
    const cache = new NotifyKeyCache({
      secrets: ['a', 'b'],
      read: async (name) => {
        reads.push(name);
        if (fail) throw new Error('HTTP 503');
        return { name, flux: `key-${name}`, projects: ['p'] };
      },
      refreshMs: 60_000,
      onError: () => undefined,
    });
    expect(cache.current()).toBeUndefined();
    await cache.start();
    cache.stop();
    expect(cache.current()?.map((s) => s.flux)).toEqual(['key-a', 'key-b']);
    fail = true;
    await cache.refresh();
    expect(cache.current()?.map((s) => s.flux)).toEqual(['key-a', 'key-b']);
    expect(reads).toHaveLength(4);
  });
});

describe('the rate limit (issue 19 item 6)', () => {
  it('per address and overall, refilled with time', () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 2 }, { ratePerSecond: 10, burst: 3 }, () => now);
    expect([limiter.allow('a'), limiter.allow('a'), limiter.allow('a')]).toEqual([true, true, false]);
    // Another address has its own share, within the overall one (3 at once).
    expect([limiter.allow('b'), limiter.allow('b')]).toEqual([true, false]);
    now += 1_000;
    expect(limiter.allow('a')).toBe(true);
  });
});

describe('the notification endpoint', () => {
  const LINK: Link = { project: 'podtato', stage: 'dev', service: 'web', sequence: 'delivery' };
  const TEAM_A: NotifySender = { name: 'team-a', flux: KEY, argocd: 's3cret', projects: ['podtato'] };
  /** `null`: no keys read yet / the object is not observed here. */
  function app(senders: NotifySender[] | null = [TEAM_A], link: Link | null = LINK, limiter?: RateLimiter) {
    const wake = jest.fn<NotifyDeps['wake']>();
    const linkOf = jest.fn<NotifyDeps['linkOf']>(() => link ?? undefined);
    const server = buildNotifyApp(
      { senders: () => senders ?? undefined, linkOf, wake, ...(limiter ? { limiter } : {}) },
      { loggerInstance: pino({ level: 'silent' }) },
    );
    return { server, wake, linkOf };
  }
  const raw = JSON.stringify(fluxEvent('event-kustomization-reconciliationsucceeded-info'));
  const involved = JSON.parse(raw).involvedObject as { namespace: string; name: string };
  const post = (server: ReturnType<typeof app>['server'], headers: Record<string, string>, payload = raw, url = '/flux') =>
    server.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload });

  it('a signed Flux event wakes the observer up for the object it names', async () => {
    const { server, wake } = app();
    const res = await post(server, { 'x-signature': sign(raw) });
    expect(res.statusCode).toBe(202);
    expect(wake).toHaveBeenCalledWith('Kustomization', involved.namespace, involved.name);
  });

  it('finds the sender by its key among several', async () => {
    const other: NotifySender = { name: 'team-b', flux: 'team-b-key', projects: ['other'] };
    const { server, wake } = app([other, TEAM_A]);
    expect((await post(server, { 'x-signature': sign(raw) })).statusCode).toBe(202);
    expect(wake).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['forged', { 'x-signature': sign(raw, 'guessed') }],
    ['unsigned', {}],
  ])('refuses a %s Flux event with 401: nothing read about the object, nothing woken', async (_, headers) => {
    const { server, wake, linkOf } = app();
    expect((await post(server, headers)).statusCode).toBe(401);
    expect(linkOf).not.toHaveBeenCalled();
    expect(wake).not.toHaveBeenCalled();
  });

  it("refuses an object of a project the sender's key is not granted to (403), and one its notify-objects do not name", async () => {
    const { server, wake } = app([{ ...TEAM_A, projects: ['other'] }]);
    expect((await post(server, { 'x-signature': sign(raw) })).statusCode).toBe(403);
    const narrow = app([{ ...TEAM_A, objects: ['team-x/*'] }]);
    expect((await post(narrow.server, { 'x-signature': sign(raw) })).statusCode).toBe(403);
    expect(narrow.linkOf).not.toHaveBeenCalled();
    expect(wake).not.toHaveBeenCalled();
  });

  it('an object not observed here changes nothing (202, ignored)', async () => {
    const { server, wake } = app([TEAM_A], null);
    const res = await post(server, { 'x-signature': sign(raw) });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ status: 'ignored' });
    expect(wake).not.toHaveBeenCalled();
  });

  it('503 until the keys were read once', async () => {
    const { server } = app(null);
    expect((await post(server, { 'x-signature': sign(raw) })).statusCode).toBe(503);
  });

  it('an Argo CD webhook with the shared secret wakes the observer up; one without is refused', async () => {
    const { server, wake } = app();
    const body = JSON.stringify({ namespace: 'argocd', name: 'app' });
    expect((await post(server, {}, body, '/argocd')).statusCode).toBe(401);
    expect((await post(server, { authorization: 'Bearer s3cret' }, body, '/argocd')).statusCode).toBe(202);
    expect(wake).toHaveBeenCalledWith('Application', 'argocd', 'app');
  });

  it('over the rate limit: 429 before the signature is even checked', async () => {
    const { server, wake } = app([TEAM_A], LINK, new RateLimiter({ ratePerSecond: 0.001, burst: 1 }, { ratePerSecond: 100, burst: 100 }));
    expect((await post(server, { 'x-signature': sign(raw) })).statusCode).toBe(202);
    const res = await post(server, { 'x-signature': sign(raw) });
    expect(res.statusCode).toBe(429);
    expect(wake).toHaveBeenCalledTimes(1);
  });
});
