// LeaseRegistry through @kubernetes/client-node against an in-process API server (api-server.ts).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { LeaseRegistry, leaseName } from '../../../../src/platform/state/replicas.js';
import { ConfigMapStore } from '../../../../src/platform/state/configmaps.js';
import type { DeploymentRecord } from '../../../../src/platform/state/record.js';
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

describe('LeaseRegistry cleans up Leases', () => {
  const event = (id: string) => ({
    id,
    type: 'sh.keptn.event.deployment.triggered',
    source: 'shipyard-controller',
    task: 'deployment',
    shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
    data: { project: 'p', stage: 's', service: 'svc' },
  });
  const rec = (owner: string, phase: DeploymentRecord['phase']): DeploymentRecord => ({
    event: event(`${owner}-${phase}`),
    phase,
    owner,
    acceptedAt: 1,
  });
  const staleLease = (identity: string) =>
    api.put('leases', {
      metadata: { name: leaseName(identity), labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service' } },
      spec: { holderIdentity: identity, leaseDurationSeconds: 20, renewTime: new Date(Date.now() - 21_000).toISOString() },
    });
  const withRecords = (identity: string, records: DeploymentRecord[], opts: { sweepIntervalMs?: number; now?: () => number } = {}) =>
    new LeaseRegistry(api.kubeConfig(), 'keptn', identity, 20, { records: { list: async () => records }, ...opts });

  it('release deletes our Lease when we own nothing unfinished, and a heartbeat after it creates none', async () => {
    const a = withRecords('a', [rec('a', 'done'), rec('b', 'started')]);
    await a.heartbeat();
    expect(api.get('leases', leaseName('a'))).toBeDefined();
    await expect(a.release()).resolves.toBe(true);
    expect(api.get('leases', leaseName('a'))).toBeUndefined();
    await a.heartbeat();
    expect(api.get('leases', leaseName('a'))).toBeUndefined();
  });

  it('release keeps our Lease while we own an unfinished deployment: it is adopted only once the Lease ran out', async () => {
    const a = withRecords('a', [rec('a', 'finishing')]);
    await a.heartbeat();
    await expect(a.release()).resolves.toBe(false);
    expect(api.get('leases', leaseName('a'))).toBeDefined();
  });

  it('release waits for a heartbeat under way, so it cannot bring the Lease back after the delete', async () => {
    const a = withRecords('a', []);
    await a.heartbeat();
    const beat = a.heartbeat();
    await expect(a.release()).resolves.toBe(true);
    await beat;
    expect(api.get('leases', leaseName('a'))).toBeUndefined();
  });

  it('release never rejects: API trouble leaves the Lease to run out', async () => {
    const a = withRecords('a', []);
    await a.heartbeat();
    api.failNext(503);
    await expect(a.release()).resolves.toBe(false);
  });

  it('with the default record store, release reads the ConfigMaps of the same namespace', async () => {
    const a = registry('a');
    await a.heartbeat();
    await new ConfigMapStore(api.kubeConfig(), 'keptn').create(rec('a', 'started'));
    await expect(a.release()).resolves.toBe(false);
    expect(api.get('leases', leaseName('a'))).toBeDefined();
  });

  it('sweep removes the expired Leases of replicas that own nothing unfinished, and only those', async () => {
    const a = withRecords('a', [rec('busy', 'started'), rec('gone', 'done'), rec('a', 'started')]);
    await a.heartbeat();
    staleLease('gone');
    staleLease('busy');
    await registry('fresh').heartbeat();
    // Not one of ours (no label): never touched.
    api.put('leases', {
      metadata: { name: 'keptn-controller-leader' },
      spec: { holderIdentity: 'x', leaseDurationSeconds: 1, renewTime: new Date(0).toISOString() },
    });
    await expect(a.sweep()).resolves.toEqual(['gone']);
    expect(api.get('leases', leaseName('gone'))).toBeUndefined();
    for (const kept of ['busy', 'fresh', 'a']) expect(api.get('leases', leaseName(kept))).toBeDefined();
    expect(api.get('leases', 'keptn-controller-leader')).toBeDefined();
  });

  it('sweep leaves a Lease renewed after it was listed (the delete is conditional on the version seen)', async () => {
    staleLease('slow');
    const a = new LeaseRegistry(api.kubeConfig(), 'keptn', 'a', 20, {
      records: {
        // Between the list of Leases and the delete, the slow replica renews.
        list: async () => {
          const current = api.get('leases', leaseName('slow'))!;
          api.put('leases', { ...current, spec: { ...(current['spec'] as object), renewTime: new Date().toISOString() } });
          return [];
        },
      },
    });
    await expect(a.sweep()).resolves.toEqual([]);
    expect(api.get('leases', leaseName('slow'))).toBeDefined();
  });

  it('a heartbeat sweeps once per sweep interval, never at the first heartbeat', async () => {
    let now = Date.now();
    const a = withRecords('a', [], { sweepIntervalMs: 60_000, now: () => now });
    staleLease('gone');
    await a.heartbeat();
    expect(api.get('leases', leaseName('gone'))).toBeDefined();
    now += 60_000;
    await a.heartbeat();
    expect(api.get('leases', leaseName('gone'))).toBeUndefined();
  });

  it('reports a sweep the API refuses as STATE_UNAVAILABLE, after the Lease was renewed', async () => {
    let now = Date.now();
    const a = withRecords('a', [], { sweepIntervalMs: 1_000, now: () => now });
    await a.heartbeat();
    const renewed = api.get('leases', leaseName('a'))?.metadata.resourceVersion;
    now += 1_000;
    api.failNextList(403);
    await expect(a.heartbeat()).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
      message: expect.stringContaining('list the replica Leases'),
    });
    expect(api.get('leases', leaseName('a'))?.metadata.resourceVersion).not.toBe(renewed);
  });
});
