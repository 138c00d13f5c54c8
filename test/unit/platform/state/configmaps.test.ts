// ConfigMapStore through @kubernetes/client-node against an in-process API server (api-server.ts).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { TriggeredEvent } from '../../../../src/keptn/events.js';
import { ConfigMapStore, LIST_PAGE, MAX_RECORD_BYTES, recordName } from '../../../../src/platform/state/configmaps.js';
import {
  RecordTooLargeError,
  StoreConflictError,
  StoreUnavailableError,
  type DeploymentRecord,
} from '../../../../src/platform/state/record.js';
import { FakeApiServer } from './api-server.js';

const event: TriggeredEvent = {
  id: 'c4f1b6b2-1111-4a5e-9c1b-000000000001',
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
  data: { project: 'p', stage: 's', service: 'svc' },
};
const record: DeploymentRecord = { event, phase: 'accepted', owner: 'replica-a', acceptedAt: 1_700_000_000_000, claim: 'claim-1' };

let api: FakeApiServer;
let store: ConfigMapStore;

beforeEach(async () => {
  api = await FakeApiServer.start();
  store = new ConfigMapStore(api.kubeConfig(), 'keptn');
});
afterEach(async () => {
  await api.close();
});

describe('ConfigMapStore', () => {
  it('creates a record under a name derived from the event id, with its version, and reads it back', async () => {
    const created = await store.create(record);
    expect(created?.version).toMatch(/^\d+$/);
    const cm = api.get('configmaps', recordName(event.id));
    expect(cm?.metadata).toMatchObject({
      namespace: 'keptn',
      labels: {
        'app.kubernetes.io/managed-by': 'keptn-gitops-service',
        'keptn-gitops-service/kind': 'deployment',
        'keptn-gitops-service/phase': 'accepted',
      },
      annotations: { 'keptn-gitops-service/triggeredid': event.id, 'keptn-gitops-service/owner': 'replica-a' },
    });
    expect(await store.get(event.id)).toEqual(created);
    expect(await store.list()).toEqual([created]);
  });

  it('answers undefined to a second create of the same event id (a redelivery)', async () => {
    await store.create(record);
    expect(await store.create({ ...record, owner: 'replica-b' })).toBeUndefined();
    expect((await store.get(event.id))?.owner).toBe('replica-a');
  });

  it('saves with the version it read and refuses a stale one with StoreConflictError', async () => {
    const created = (await store.create(record))!;
    const saved = await store.update({ ...created, phase: 'started' });
    expect(saved.version).not.toBe(created.version);
    expect(api.requests.at(-1)?.body?.metadata.resourceVersion).toBe(created.version);
    await expect(store.update({ ...created, phase: 'finishing' })).rejects.toBeInstanceOf(StoreConflictError);
    expect((await store.get(event.id))?.phase).toBe('started');
  });

  it('keeps the version of a save that changes nothing, as the API server does', async () => {
    const created = (await store.create(record))!;
    expect((await store.update(created)).version).toBe(created.version);
  });

  it('reports a removed record as a conflict on save, and undefined on read', async () => {
    const created = (await store.create(record))!;
    await store.remove(created);
    await expect(store.update({ ...created, phase: 'started' })).rejects.toBeInstanceOf(StoreConflictError);
    expect(await store.get(event.id)).toBeUndefined();
    await expect(store.remove(created)).resolves.toBeUndefined();
  });

  it('lists only its own, readable records', async () => {
    await store.create(record);
    api.put('configmaps', { metadata: { name: 'other', labels: { app: 'x' } }, data: { record: '{}' } });
    api.put('configmaps', {
      metadata: {
        name: 'keptn-gitops-broken',
        labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'deployment' },
      },
      data: { record: '{not json' },
    });
    expect((await store.list()).map((r) => r.event.id)).toEqual([event.id]);
  });

  it('lists finished records only once per sweep period, so the scan does not grow with history', async () => {
    let t = 0;
    const swept = new ConfigMapStore(api.kubeConfig(), 'keptn', 60_000, () => t);
    await swept.create({ ...record, phase: 'done', event: { ...event, id: 'done-1' } });
    await swept.create(record);
    const ids = async () => (await swept.list()).map((r) => r.event.id).sort();
    expect(await ids()).toEqual([event.id, 'done-1'].sort());
    t = 59_999;
    expect(await ids()).toEqual([event.id]);
    t = 60_000;
    expect(await ids()).toEqual([event.id, 'done-1'].sort());
  });

  it('lists in pages, so thousands of records in flight are never parsed in one piece', async () => {
    const ids = Array.from({ length: 2 * LIST_PAGE + 3 }, (_, i) => `id-${i}`);
    for (const id of ids) await store.create({ ...record, event: { ...event, id } });
    expect((await store.list()).map((r) => r.event.id).sort()).toEqual([...ids].sort());
    expect(api.lists.map((q) => new URLSearchParams(q).get('limit'))).toEqual([String(LIST_PAGE), String(LIST_PAGE), String(LIST_PAGE)]);
  });

  it('reads progress written before `created` was named `ownCommit`', async () => {
    const progress = {
      commit: 'c0ffee',
      created: true,
      deadline: 1,
      target: { kind: 'Kustomization', name: 'a', namespace: 'b' },
      repoUrl: 'http://git/x.git',
    };
    api.put('configmaps', {
      metadata: {
        name: recordName(event.id),
        labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'deployment' },
      },
      data: { record: JSON.stringify({ ...record, phase: 'started', progress }) },
    });
    expect((await store.get(event.id))?.progress).toEqual({
      commit: 'c0ffee',
      ownCommit: true,
      deadline: 1,
      target: progress.target,
      repoUrl: progress.repoUrl,
    });
  });

  it('refuses a record larger than a ConfigMap holds before sending it: terminal, not retryable', async () => {
    const huge = { ...record, event: { ...event, data: { ...event.data, blob: 'x'.repeat(MAX_RECORD_BYTES) } } };
    const err = await store.create(huge).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordTooLargeError);
    expect(err).toMatchObject({ code: 'RECORD_TOO_LARGE', retryable: false });
    expect(api.requests).toHaveLength(0);
  });

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [403, false],
    [422, false],
  ])('turns HTTP %i into STATE_UNAVAILABLE, retryable: %s', async (status, retryable) => {
    api.failNext(status);
    const err = await store.create(record).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({
      code: 'STATE_UNAVAILABLE',
      retryable,
      message: `cannot record the deployment in Kubernetes: HTTP ${status}`,
    });
  });

  it('takes an API server that does not answer as retryable', async () => {
    await api.close();
    const err = await store.list().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true });
    api = await FakeApiServer.start(); // for afterEach
  });
});
