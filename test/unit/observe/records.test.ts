// The observation records and the observer Lease through @kubernetes/client-node against the in-process API server
// (test/unit/platform/state/api-server.ts): creation is the claim, updates are compare-and-swap, the Lease goes to one replica.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { KubeObserverLease } from '../../../src/observe/lease.js';
import { pino } from 'pino';
import { ConfigMapObservationStore, EXPIRED_PAGE, observationName, type ObservationRecord } from '../../../src/observe/records.js';
import { RecordRetention } from '../../../src/observe/retention.js';
import { StoreConflictError } from '../../../src/platform/state/record.js';
import { FakeApiServer } from '../platform/state/api-server.js';

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

describe('retention (issue 19, item 7): records are deleted once past it, counted from when their revision was last current', () => {
  const HOUR = 3_600_000;
  const NOW = Date.parse('2026-12-07T12:00:00Z');
  const at = (hoursAgo: number) => NOW - hoursAgo * HOUR;
  const names = () => api.requests.filter((r) => r.method === 'DELETE').map((r) => r.path.slice(r.path.lastIndexOf('/') + 1));

  function retention(active = () => true) {
    return new RecordRetention({ store, retentionMs: 168 * HOUR, active, log: pino({ level: 'silent' }), now: () => NOW });
  }

  it('deletes every record past the retention, of any phase, and keeps the rest', async () => {
    const old = [
      { ...record, revision: 'a'.repeat(40), phase: 'sent', at: at(200) },
      { ...record, revision: 'b'.repeat(40), phase: 'baseline', at: at(169) },
      // A month-late announcement would mislead more than it helps: an unsent one goes too.
      { ...record, revision: 'c'.repeat(40), phase: 'announcing', at: at(168.5) },
      { ...record, object: 'Application argocd/other', revision: 'd'.repeat(40), phase: 'refused', at: at(500) },
    ] as ObservationRecord[];
    const kept = [
      { ...record, revision: 'e'.repeat(40), phase: 'sent', at: at(167) },
      { ...record, revision: 'f'.repeat(40), phase: 'own', at: at(1) },
    ] as ObservationRecord[];
    for (const r of [...old, ...kept]) await store.create(r);
    expect(await retention().sweep()).toBe(4);
    expect(names().sort()).toEqual(old.map((r) => observationName(r.object, r.revision)).sort());
    for (const r of old) expect(await store.get(r.object, r.revision)).toBeUndefined();
    for (const r of kept) expect(await store.get(r.object, r.revision)).toMatchObject({ phase: r.phase });
    // Nothing left to delete: a second sweep deletes nothing.
    expect(await retention().sweep()).toBe(0);
  });

  it('keeps a record moved forward after it was listed (its object came back to that revision): the delete is conditional', async () => {
    const listed = (await store.create({ ...record, phase: 'sent', at: at(300) }))!;
    const expired = await store.expired(NOW - 168 * HOUR);
    expect(expired.map((r) => r.revision)).toEqual([REV]);
    // The observer moves it forward between the list and the delete.
    await store.update({ ...listed, at: NOW });
    expect(await store.remove(expired[0]!)).toBe(false);
    expect(await store.get(OBJECT, REV)).toMatchObject({ at: NOW });
    // And a record already gone is not an error.
    expect(await store.remove({ ...record, revision: '0'.repeat(40), version: '1' })).toBe(false);
  });

  it('deletes nothing on a replica that does not observe (another holds the observer Lease)', async () => {
    await store.create({ ...record, phase: 'sent', at: at(300) });
    expect(await retention(() => false).sweep()).toBe(0);
    expect(await store.get(OBJECT, REV)).toBeDefined();
  });

  it('lists in pages, and ages a ConfigMap of ours whose record cannot be read by its creation time', async () => {
    api.put('configmaps', {
      metadata: {
        name: observationName(OBJECT, 'unreadable'),
        namespace: 'keptn',
        creationTimestamp: new Date(at(400)).toISOString(),
        labels: { 'app.kubernetes.io/managed-by': 'keptn-gitops-service', 'keptn-gitops-service/kind': 'observation' },
        annotations: { 'keptn-gitops-service/object': OBJECT, 'keptn-gitops-service/revision': 'unreadable' },
      },
      data: { record: '{not json' },
    });
    expect(await retention().sweep()).toBe(1);
    expect(api.get('configmaps', observationName(OBJECT, 'unreadable'))).toBeUndefined();
    expect(api.lists.at(-1)).toContain(`limit=${EXPIRED_PAGE}`);
  });

  it('an API server that cannot be reached ends the sweep quietly; the next one tries again', async () => {
    await store.create({ ...record, phase: 'sent', at: at(300) });
    api.failNextList(503);
    expect(await retention().sweep()).toBe(0);
    expect(await retention().sweep()).toBe(1);
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
