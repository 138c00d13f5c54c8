// LeaseRegistry through @kubernetes/client-node against an in-process API server (api-server.ts).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { LeaseRegistry, leaseName } from '../../../src/state/replicas.js';
import { FakeApiServer } from './api-server.js';

let api: FakeApiServer;

beforeEach(async () => {
  api = await FakeApiServer.start();
});
afterEach(async () => {
  await api.close();
});

const registry = (identity: string, seconds = 20) => new LeaseRegistry(api.kubeConfig(), 'keptn', identity, seconds);

describe('LeaseRegistry', () => {
  it('creates its Lease on the first heartbeat and renews it with its resourceVersion after', async () => {
    const a = registry('Replica_A.1');
    await a.heartbeat();
    const first = api.get('leases', leaseName('Replica_A.1'));
    expect(leaseName('Replica_A.1')).toBe('keptn-gitops-replica-replica-a-1');
    expect(first).toMatchObject({ spec: { holderIdentity: 'Replica_A.1', leaseDurationSeconds: 20 } });
    await a.heartbeat();
    const put = api.requests.find((r) => r.method === 'PUT');
    expect(put?.body?.metadata.resourceVersion).toBe(first?.metadata.resourceVersion);
    expect(api.get('leases', leaseName('Replica_A.1'))?.metadata.resourceVersion).not.toBe(first?.metadata.resourceVersion);
  });

  it('takes a replica for alive while its Lease is fresh, and for stopped once it ran out or when it has none', async () => {
    const a = registry('a');
    await a.heartbeat();
    const b = registry('b');
    expect(await b.isAlive('a')).toBe(true);
    expect(await b.isAlive('never-seen')).toBe(false);
    api.put('leases', {
      metadata: { name: leaseName('stale') },
      spec: { holderIdentity: 'stale', leaseDurationSeconds: 5, renewTime: new Date(Date.now() - 6_000).toISOString() },
    });
    expect(await b.isAlive('stale')).toBe(false);
  });

  it('reports API trouble as STATE_UNAVAILABLE, retryable when asking again may help', async () => {
    api.failNext(503);
    await expect(registry('a').heartbeat()).rejects.toMatchObject({ code: 'STATE_UNAVAILABLE', retryable: true });
    api.failNext(403);
    await expect(registry('a').isAlive('b')).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
      retryable: false,
      message: 'cannot read the Lease of b in Kubernetes: HTTP 403',
    });
  });
});
