// The observation records and the observer Lease through @kubernetes/client-node against the in-process API server
// (test/unit/state/api-server.ts): creation is the claim, updates are compare-and-swap, the Lease goes to one replica.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { KubeObserverLease } from '../../../src/observe/lease.js';
import { ConfigMapObservationStore, type ObservationRecord } from '../../../src/observe/records.js';
import { StoreConflictError } from '../../../src/state/record.js';
import { FakeApiServer } from '../state/api-server.js';

let api: FakeApiServer;
let store: ConfigMapObservationStore;
const OBJECT = 'Kustomization flux-system/app';
const REV = 'a'.repeat(40);
const record: ObservationRecord = { object: OBJECT, revision: REV, phase: 'announcing', owner: 'r1', at: 1, claim: 'c1' };

beforeEach(async () => {
  api = await FakeApiServer.start();
  store = new ConfigMapObservationStore(api.kubeConfig(), 'keptn');
});
afterEach(async () => {
  await api.close();
});

describe('ConfigMapObservationStore', () => {
  it('creates a record once: a second create for the same object and revision is refused', async () => {
    expect(await store.seen(OBJECT)).toBe(false);
    const created = await store.create(record);
    expect(created?.version).toBeTruthy();
    expect(await store.create({ ...record, owner: 'r2' })).toBeUndefined();
    expect(await store.get(OBJECT, REV)).toMatchObject({ owner: 'r1', phase: 'announcing' });
    expect(await store.seen(OBJECT)).toBe(true);
    expect(await store.seen('Kustomization flux-system/other')).toBe(false);
  });

  it('lists only what is still unsent, and claims by compare-and-swap', async () => {
    const created = (await store.create(record))!;
    await store.create({ ...record, revision: 'b'.repeat(40), phase: 'baseline' });
    expect((await store.unsent()).map((r) => r.revision)).toEqual([REV]);
    const claimed = await store.update({ ...created, owner: 'r2', claim: 'c2' });
    // A claim made from the same (now stale) read loses.
    await expect(store.update({ ...created, owner: 'r3', claim: 'c3' })).rejects.toBeInstanceOf(StoreConflictError);
    await store.update({ ...claimed, phase: 'sent' });
    expect(await store.unsent()).toEqual([]);
    expect(await store.get(OBJECT, REV)).toMatchObject({ owner: 'r2', phase: 'sent' });
  });
});

describe('KubeObserverLease', () => {
  it('goes to one replica; the other takes it only once it has run out', async () => {
    const a = new KubeObserverLease(api.kubeConfig(), 'keptn', 'a', 1);
    const b = new KubeObserverLease(api.kubeConfig(), 'keptn', 'b', 1);
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(false);
    expect(await a.acquire()).toBe(true);
    // Not renewed for its duration (1 s): the other replica takes it, and the first no longer holds it.
    const until = Date.now() + 1_100;
    while (Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await b.acquire()).toBe(true);
    expect(await a.acquire()).toBe(false);
  });
});
