// Notifications from clusters the service does not watch: signatures over the raw body, Flux events captured from
// the real controllers (test/fixtures/flux/event-*.json) and Argo CD webhook bodies read as finished deployments,
// and the HTTP face through app.inject().
import { createHmac } from 'node:crypto';
import { describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { buildNotifyApp, notifyKeysFrom, type NotifyDeps } from '../../../src/observe/notify-app.js';
import { argoNotification, fluxNotification, verifyBearer, verifyHmac } from '../../../src/observe/notifications.js';
import { fixture } from '../fixtures.js';

const KEY = 'flux-hmac-key';
const sign = (raw: string, key = KEY) => `sha256=${createHmac('sha256', key).update(raw).digest('hex')}`;
const eventMetadata = { 'keptn-project': 'podtato', 'keptn-stage': 'dev', 'keptn-service': 'web' };

function fluxEvent(name: string, withLink = true): Record<string, unknown> {
  const body = fixture<{ body: Record<string, unknown> }>('flux', name).body;
  return withLink ? { ...body, metadata: { ...(body['metadata'] as object), ...eventMetadata } } : body;
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

describe('Flux events as finished deployments', () => {
  it.each([
    ['event-kustomization-reconciliationsucceeded-info', 'pass', '738ddbf6793b901abef754589144a82e57bfbe20'],
    ['event-kustomization-buildfailed-error', 'fail', '95f68d02d75bd051b5fd870f0047a7d86c27c752'],
    ['event-kustomization-healthcheckfailed-error', 'fail', '86eb1df762d648ef6da4a944aeea85a41e50d9b7'],
    ['event-helmrelease-upgradesucceeded-info', 'pass', 'b75e00c4ca18'],
    ['event-helmrelease-upgradefailed-error', 'fail', '019ed930aafb'],
  ])('%s → %s at %s', (name, result, revision) => {
    const outcome = fluxNotification(fluxEvent(name));
    expect(outcome).toMatchObject({
      kind: 'deployment',
      deployment: { link: { project: 'podtato', stage: 'dev', service: 'web', sequence: 'delivery' }, detection: { result, revision } },
    });
  });

  it('a failure carries the controller message', () => {
    const outcome = fluxNotification(fluxEvent('event-kustomization-buildfailed-error'));
    expect(outcome.kind === 'deployment' && outcome.deployment.detection.message).toMatch(/missing\.yaml/);
  });

  it.each([
    ['event-kustomization-progressing-info', true, /does not end a deployment/],
    ['event-gitrepository-newartifact-info', true, /not deployments/],
    ['event-kustomization-reconciliationsucceeded-info', false, /eventMetadata: keptn-project/],
  ])('ignored: %s', (name, withLink, reason) => {
    const outcome = fluxNotification(fluxEvent(name, withLink));
    expect(outcome.kind).toBe('ignored');
    expect((outcome as { reason: string }).reason).toMatch(reason);
  });
});

describe('Argo CD webhook bodies as finished deployments', () => {
  const base = {
    namespace: 'argocd',
    name: 'app',
    revision: 'a'.repeat(40),
    sync: 'Synced',
    syncedRevision: 'a'.repeat(40),
    annotations: {
      'gitops.keptn.sh/observe-project': 'podtato',
      'gitops.keptn.sh/observe-stage': 'dev',
      'gitops.keptn.sh/observe-service': 'web',
    },
  };
  it.each<[string, Record<string, unknown>, string | undefined]>([
    ['synced and Healthy', { phase: 'Succeeded', health: 'Healthy' }, 'pass'],
    ['sync failed', { phase: 'Failed', health: 'Healthy', message: 'one or more objects failed to apply' }, 'fail'],
    ['Degraded', { phase: 'Succeeded', health: 'Degraded' }, 'fail'],
    ['still Progressing', { phase: 'Succeeded', health: 'Progressing' }, undefined],
    // A refresh moved the compared revision on; the Succeeded operation is the previous revision's.
    ['compared, not yet synced', { phase: 'Succeeded', health: 'Healthy', sync: 'OutOfSync', syncedRevision: 'b'.repeat(40) }, undefined],
    ['synced to another revision', { phase: 'Succeeded', health: 'Healthy', syncedRevision: 'b'.repeat(40) }, undefined],
  ])('%s', (_, fields, result) => {
    const outcome = argoNotification({ ...base, ...fields });
    if (result) expect(outcome).toMatchObject({ kind: 'deployment', deployment: { kind: 'Application', detection: { result } } });
    else expect(outcome.kind).toBe('ignored');
  });
});

describe('the notification endpoint', () => {
  function app(projects = ['podtato']) {
    const notified = jest.fn<NotifyDeps['notified']>(async () => undefined);
    const server = buildNotifyApp(
      {
        keys: async () =>
          notifyKeysFrom({ 'flux-token': KEY, 'argocd-token': 's3cret' }, { 'gitops.keptn.sh/projects': projects.join(',') }),
        notified,
      },
      { loggerInstance: pino({ level: 'silent' }) },
    );
    return { server, notified };
  }
  const raw = JSON.stringify(fluxEvent('event-kustomization-reconciliationsucceeded-info'));

  it('takes a signed Flux event', async () => {
    const { server, notified } = app();
    const res = await server.inject({
      method: 'POST',
      url: '/flux',
      headers: { 'content-type': 'application/json', 'x-signature': sign(raw) },
      payload: raw,
    });
    expect(res.statusCode).toBe(202);
    expect(notified).toHaveBeenCalledWith(
      'Kustomization',
      'flux-system',
      'app',
      expect.objectContaining({ project: 'podtato' }),
      expect.objectContaining({ result: 'pass' }),
    );
  });

  it.each([
    ['forged', { 'x-signature': sign(raw, 'guessed') }],
    ['unsigned', {}],
  ])('refuses a %s Flux event with 401 and triggers nothing', async (_, headers) => {
    const { server, notified } = app();
    const res = await server.inject({
      method: 'POST',
      url: '/flux',
      headers: { 'content-type': 'application/json', ...headers },
      payload: raw,
    });
    expect(res.statusCode).toBe(401);
    expect(notified).not.toHaveBeenCalled();
  });

  it('refuses a project the key is not granted to', async () => {
    const { server, notified } = app(['other']);
    const res = await server.inject({
      method: 'POST',
      url: '/flux',
      headers: { 'content-type': 'application/json', 'x-signature': sign(raw) },
      payload: raw,
    });
    expect(res.statusCode).toBe(403);
    expect(notified).not.toHaveBeenCalled();
  });

  it('takes an Argo CD webhook with the shared secret, refuses one without', async () => {
    const { server, notified } = app();
    const body = JSON.stringify({
      namespace: 'argocd',
      name: 'app',
      revision: 'b'.repeat(40),
      sync: 'Synced',
      phase: 'Succeeded',
      health: 'Healthy',
      annotations: {
        'gitops.keptn.sh/observe-project': 'podtato',
        'gitops.keptn.sh/observe-stage': 'dev',
        'gitops.keptn.sh/observe-service': 'web',
      },
    });
    const bad = await server.inject({ method: 'POST', url: '/argocd', headers: { 'content-type': 'application/json' }, payload: body });
    expect(bad.statusCode).toBe(401);
    const good = await server.inject({
      method: 'POST',
      url: '/argocd',
      headers: { 'content-type': 'application/json', authorization: 'Bearer s3cret' },
      payload: body,
    });
    expect(good.statusCode).toBe(202);
    expect(notified).toHaveBeenCalledTimes(1);
  });
});
