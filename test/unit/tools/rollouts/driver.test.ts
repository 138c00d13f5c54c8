import { describe, expect, it } from '@jest/globals';
import type { Cluster } from '../../../../src/platform/k8s/cluster.js';
import { ROLLOUTS, RolloutsDriver } from '../../../../src/tools/rollouts/driver.js';
import type { RolloutObject } from '../../../../src/tools/rollouts/evaluate.js';
import { silentLog } from '../../helpers.js';

/** Records the writes the driver makes; reads answer with `ro`. */
function clusterWith(ro: RolloutObject) {
  const writes: Array<{ to: 'status' | 'object'; patch: Record<string, unknown> }> = [];
  const cluster = {
    readFresh: (kind: unknown, namespace: string, name: string) => {
      expect([kind, namespace, name]).toEqual([ROLLOUTS, 'app', 'web']);
      return Promise.resolve(ro);
    },
    mergePatchStatus: (_kind: unknown, _ns: string, _name: string, patch: Record<string, unknown>) => {
      writes.push({ to: 'status', patch });
      return Promise.resolve();
    },
    mergePatch: (_ref: unknown, patch: Record<string, unknown>) => {
      writes.push({ to: 'object', patch });
      return Promise.resolve();
    },
  } as unknown as Cluster;
  return { driver: new RolloutsDriver(cluster), writes };
}

const paused: RolloutObject = {
  metadata: { name: 'web', namespace: 'app' },
  spec: { paused: true },
  status: { currentPodHash: 'new', stableRS: 'old', pauseConditions: [{ reason: 'BlueGreenPause' }] },
};
const stable: RolloutObject = { metadata: { name: 'web', namespace: 'app' }, status: { currentPodHash: 'old', stableRS: 'old' } };
const ref = { namespace: 'app', name: 'web' };

describe('RolloutsDriver writes what the kubectl plugin writes, where it writes it', () => {
  it('promote: promoteFull on the status subresource, unpause on the object', async () => {
    const { driver, writes } = clusterWith(paused);
    await driver.promote(ref, [], silentLog);
    expect(writes).toEqual([
      { to: 'status', patch: { status: { promoteFull: true } } },
      { to: 'object', patch: { spec: { paused: false } } },
    ]);
  });

  it('promote of a stable Rollout writes nothing (a resumed release promotes again harmlessly)', async () => {
    const { driver, writes } = clusterWith(stable);
    await driver.promote(ref, [], silentLog);
    expect(writes).toEqual([]);
  });

  it('promote refuses a Rollout whose template holds another image than the sequence deployed, and writes nothing', async () => {
    const newer = { ...paused, spec: { paused: true, template: { spec: { containers: [{ image: 'web:3.0' }] } } } };
    const { driver, writes } = clusterWith(newer);
    await expect(driver.promote(ref, ['web:2.0'], silentLog)).rejects.toMatchObject({
      code: 'VERSION_NOT_HELD',
      message: expect.stringMatching(/holds web:3\.0, not web:2\.0 that this sequence deployed; nothing promoted/),
    });
    expect(writes).toEqual([]);
  });

  it('promote refuses a newer template than the one this sequence tested, even with the same image, and writes nothing', async () => {
    const { driver, writes } = clusterWith({ ...paused, status: { ...paused.status, currentPodHash: 'newer' } });
    await expect(driver.promote(ref, [], silentLog, 'new')).rejects.toMatchObject({
      code: 'VERSION_NOT_HELD',
      message: expect.stringMatching(/holds version newer, not new that this sequence deployed and tested/),
    });
    expect(writes).toEqual([]);
  });

  it('promote of the tested version writes the promotion', async () => {
    const { driver, writes } = clusterWith(paused);
    await driver.promote(ref, [], silentLog, 'new');
    expect(writes).toHaveLength(2);
  });

  it('abort: abort on the status subresource while a new version is in progress', async () => {
    const { driver, writes } = clusterWith(paused);
    expect(await driver.abort(ref, silentLog)).toBe(true);
    expect(writes).toEqual([{ to: 'status', patch: { status: { abort: true } } }]);
  });

  it('abort of a Rollout whose current version is stable writes nothing', async () => {
    const { driver, writes } = clusterWith(stable);
    expect(await driver.abort(ref, silentLog)).toBe(false);
    expect(writes).toEqual([]);
  });
});
