// StateMove through @kubernetes/client-node against an in-process API server (api-server.ts): the upgrade that moves
// the state namespace (ADR 17) leaves nothing behind and never takes what an earlier replica still works on.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { TriggeredEvent } from '../../../../src/keptn/events.js';
import { ConfigMapStore, recordName } from '../../../../src/platform/state/configmaps.js';
import { StateMove } from '../../../../src/platform/state/move.js';
import type { DeploymentRecord } from '../../../../src/platform/state/record.js';
import { LeaseRegistry, leaseName } from '../../../../src/platform/state/replicas.js';
import { FakeApiServer } from './api-server.js';

const OLD = 'keptn';
const NEW = 'keptn-gitops-service-state';

const event = (id: string): TriggeredEvent => ({
  id,
  type: 'sh.keptn.event.deployment.triggered',
  source: 'shipyard-controller',
  task: 'deployment',
  shkeptncontext: 'a1b2c3d4-0000-4000-8000-00000000c0de',
  data: { project: 'p', stage: 's', service: 'svc' },
});
const record = (id: string, phase: DeploymentRecord['phase']): DeploymentRecord => ({
  event: event(id),
  phase,
  owner: 'old-pod',
  acceptedAt: 1_700_000_000_000,
  claim: `claim-${id}`,
});

let api: FakeApiServer;
/** The move's clock: it starts at the real time, which LeaseRegistry writes into renewTime. */
let now: number;
let t0: number;

beforeEach(async () => {
  api = await FakeApiServer.start();
  t0 = now = Date.now();
});
afterEach(async () => {
  await api.close();
});

/** An earlier release's replica: its Lease (renewed at `now`, 20 s) and records in the old namespace. */
async function earlierRelease(...records: DeploymentRecord[]): Promise<ConfigMapStore> {
  await new LeaseRegistry(api.kubeConfig(), OLD, 'old-pod', 20, { records: { list: async () => records }, now: () => now }).heartbeat();
  const store = new ConfigMapStore(api.kubeConfig(), OLD);
  for (const r of records) await store.create(r);
  return store;
}

const move = () => new StateMove(api.kubeConfig(), OLD, NEW, { now: () => now });

describe('StateMove', () => {
  it('waits while a replica of the earlier release still holds its Lease, and moves nothing meanwhile', async () => {
    await earlierRelease(record('e-1', 'started'));
    expect(await move().round()).toEqual({ state: 'waiting', holders: ['old-pod'] });
    expect(api.names('configmaps', NEW)).toEqual([]);
    expect(api.names('configmaps', OLD)).toEqual([recordName('e-1')]);
  });

  it('once that Lease ran out, moves every record unchanged (owner, claim, phase) and removes it and the Lease there', async () => {
    await earlierRelease(record('e-1', 'started'), record('e-2', 'done'), record('e-3', 'accepted'));
    now += 21_000;
    expect(await move().round()).toEqual({ state: 'done', moved: 3 });
    expect(api.names('configmaps', OLD)).toEqual([]);
    expect(api.names('leases', OLD)).toEqual([]);
    const moved = new ConfigMapStore(api.kubeConfig(), NEW);
    const records = await moved.list();
    expect(records.map(({ version: _v, ...r }) => r).sort((a, b) => a.event.id.localeCompare(b.event.id))).toEqual([
      record('e-1', 'started'),
      record('e-2', 'done'),
      record('e-3', 'accepted'),
    ]);
    // The moved record is the one the runner adopts: the store reads it by event id, with a version to swap on.
    expect((await moved.get('e-1'))?.owner).toBe('old-pod');
  });

  it('a record copied before a crash is only removed there: the copy here, which may have moved on, stays', async () => {
    await earlierRelease(record('e-1', 'started'));
    const here = new ConfigMapStore(api.kubeConfig(), NEW);
    const adopted = (await here.create({ ...record('e-1', 'started'), owner: 'new-pod' }))!;
    await here.update({ ...adopted, phase: 'finishing' });
    now += 21_000;
    expect(await move().round()).toEqual({ state: 'done', moved: 1 });
    expect(await here.get('e-1')).toMatchObject({ owner: 'new-pod', phase: 'finishing' });
    expect(api.names('configmaps', OLD)).toEqual([]);
  });

  it('leaves a record changed after it was listed for the next round (the delete is conditional on the version)', async () => {
    await earlierRelease(record('e-1', 'started'));
    now += 21_000;
    const mover = move();
    // Served: the list of Leases, the list of records, the copy; the delete then meets a newer version (409).
    api.failNext(0, 0, 0, 409);
    expect(await mover.round()).toEqual({ state: 'moving', moved: 0, left: 1 });
    expect(api.requests.at(-1)).toMatchObject({ method: 'DELETE', body: { preconditions: { resourceVersion: expect.any(String) } } });
    expect(api.names('configmaps', OLD)).toEqual([recordName('e-1')]);
    expect(await mover.round()).toEqual({ state: 'done', moved: 1 });
    expect(api.names('configmaps', OLD)).toEqual([]);
    expect(api.names('configmaps', NEW)).toEqual([recordName('e-1')]);
  });

  it('touches only what the service wrote there: other ConfigMaps and Leases of that namespace stay', async () => {
    await earlierRelease(record('e-1', 'started'));
    api.put('configmaps', { metadata: { name: 'keptn-config', namespace: OLD } });
    api.put('leases', {
      metadata: { name: 'shipyard-controller-leader', namespace: OLD },
      spec: { holderIdentity: 'shipyard-0', renewTime: new Date(t0).toISOString(), leaseDurationSeconds: 15 },
    });
    now += 21_000;
    expect(await move().round()).toEqual({ state: 'done', moved: 1 });
    expect(api.names('configmaps', OLD)).toEqual(['keptn-config']);
    expect(api.names('leases', OLD)).toEqual(['shipyard-controller-leader']);
  });

  it('reports a refusal as STATE_UNAVAILABLE naming what to do, and moves nothing', async () => {
    await earlierRelease(record('e-1', 'started'));
    now += 21_000;
    api.failNext(403);
    await expect(move().round()).rejects.toMatchObject({
      code: 'STATE_UNAVAILABLE',
      message: expect.stringContaining('ADR 17'),
    });
    expect(api.get('configmaps', recordName('e-1'), OLD)).toBeDefined();
    expect(api.get('leases', leaseName('old-pod'), OLD)).toBeDefined();
  });

  it('untilDone rounds until nothing is left, logging the wait once and the end', async () => {
    await earlierRelease(record('e-1', 'started'));
    const lines: string[] = [];
    const log = { info: (_f: object, m: string) => lines.push(m), warn: (_f: object, m: string) => lines.push(`warn: ${m}`) };
    let rounds = 0;
    const done = move().untilDone(1, log, () => false);
    // The earlier replica stops renewing: its Lease runs out on the clock the move reads.
    const tick = setInterval(() => (++rounds > 3 ? (now += 21_000) : undefined), 1);
    await done;
    clearInterval(tick);
    expect(lines[0]).toContain('waits for the replicas of the earlier release');
    expect(lines.filter((l) => l.includes('waits'))).toHaveLength(1);
    expect(lines.at(-1)).toContain('state moved');
    expect(api.names('configmaps', NEW)).toEqual([recordName('e-1')]);
  });

  it('refuses to move a namespace into itself', () => {
    expect(() => new StateMove(api.kubeConfig(), OLD, OLD)).toThrow('not within keptn');
  });
});
