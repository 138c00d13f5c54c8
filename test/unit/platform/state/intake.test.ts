// ConfigMapIntake through @kubernetes/client-node against an in-process API server (api-server.ts).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { TriggeredEvent } from '../../../../src/keptn/events.js';
import { ConfigMapIntake } from '../../../../src/platform/state/intake.js';
import { StoreConflictError } from '../../../../src/platform/state/record.js';
import { FakeApiServer } from './api-server.js';

const eventNo = (n: number): TriggeredEvent => ({
  id: `c4f1b6b2-1111-4a5e-9c1b-${String(n).padStart(12, '0')}`,
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
  data: { project: 'p', stage: 's', service: 'svc' },
});
const entries = [1, 2, 3].map((n) => ({ event: eventNo(n), acceptedAt: 1_700_000_000_000 + n }));

let api: FakeApiServer;
let intake: ConfigMapIntake;

beforeEach(async () => {
  api = await FakeApiServer.start();
  intake = new ConfigMapIntake(api.kubeConfig(), 'keptn');
});
afterEach(async () => {
  await api.close();
});

describe('ConfigMapIntake', () => {
  it('records a batch of events in one ConfigMap create, and lists it back', async () => {
    const batch = await intake.create('replica-a', entries);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(api.get('configmaps', batch.name)?.metadata).toMatchObject({
      labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'intake' },
      annotations: { 'keptn-gitops-service/owner': 'replica-a' },
    });
    expect(await intake.list()).toEqual([batch]);
  });

  it('leaves deployment records and unreadable ConfigMaps out of its list', async () => {
    api.put('configmaps', { metadata: { name: 'rec', labels: { 'keptn-gitops-service/kind': 'deployment' } }, data: {} });
    api.put('configmaps', {
      metadata: {
        name: 'broken',
        labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'intake' },
        annotations: { 'keptn-gitops-service/owner': 'x' },
      },
      data: { entries: '{not json' },
    });
    expect(await intake.list()).toEqual([]);
  });

  it('claims a batch with the version it listed, and refuses a stale one with StoreConflictError', async () => {
    const batch = await intake.create('replica-dead', entries);
    const claimed = await intake.claim(batch, 'replica-b');
    expect(claimed.owner).toBe('replica-b');
    await expect(intake.claim(batch, 'replica-c')).rejects.toBeInstanceOf(StoreConflictError);
    expect((await intake.list())[0]?.owner).toBe('replica-b');
  });

  it('removes a batch, and a second remove is no error', async () => {
    const batch = await intake.create('replica-a', entries);
    await intake.remove(batch);
    await intake.remove(batch);
    expect(await intake.list()).toEqual([]);
  });

  it('a server error is a retryable StoreUnavailableError (the answer is 503 and the distributor sends again)', async () => {
    api.failNext(503);
    await expect(intake.create('replica-a', entries)).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true });
    await expect(intake.create('replica-a', entries)).resolves.toMatchObject({ owner: 'replica-a' });
  });
});
