// What FlaggerDriver writes to open a gate, and when it writes nothing (src/tools/flagger/driver.ts). The cluster is a fake
// that answers reads with fixed objects and records the patches.
import { describe, expect, it } from '@jest/globals';
import type { CanaryObject } from '../../../../src/tools/flagger/evaluate.js';
import { CANARIES, FlaggerDriver } from '../../../../src/tools/flagger/driver.js';
import type { Cluster } from '../../../../src/platform/k8s/cluster.js';
import { silentLog } from '../../helpers.js';

const ref = { kind: 'Canary' as const, namespace: 'app', name: 'web' };

function clusterWith(phase: string, targetImage: string) {
  const canary: CanaryObject & { metadata: { resourceVersion: string } } = {
    metadata: { name: 'web', namespace: 'app', resourceVersion: '42' },
    spec: { targetRef: { kind: 'Deployment', name: 'web' } },
    status: { phase, lastAppliedSpec: 'h-new', lastPromotedSpec: 'h-old' },
  };
  const target = { metadata: { name: 'web', namespace: 'app' }, spec: { template: { spec: { containers: [{ image: targetImage }] } } } };
  const patches: Array<{ resourceVersion: string; patch: Record<string, unknown> }> = [];
  const cluster = {
    readFresh: (kind: unknown, namespace: string, name: string) =>
      Promise.resolve(kind === CANARIES ? canary : { ...target, metadata: { name, namespace } }),
    mergePatchAt: (_kind: unknown, _ns: string, _name: string, resourceVersion: string, patch: Record<string, unknown>) => {
      patches.push({ resourceVersion, patch });
      return Promise.resolve();
    },
  } as unknown as Cluster;
  return { driver: new FlaggerDriver(cluster), patches };
}

describe('FlaggerDriver opens gates by annotating the Canary at the version it read', () => {
  it('release: the promote annotation names the held hash, written at the resourceVersion read', async () => {
    const { driver, patches } = clusterWith('WaitingPromotion', 'ghcr.io/podtato/head:0.2.0');
    await driver.promote(ref, ['ghcr.io/podtato/head:0.2.0'], silentLog);
    expect(patches).toEqual([{ resourceVersion: '42', patch: { metadata: { annotations: { 'gitops.keptn.sh/promote': 'h-new' } } } }]);
  });

  it('release refuses a held version without the sequence\u2019s image, and writes nothing', async () => {
    const { driver, patches } = clusterWith('WaitingPromotion', 'ghcr.io/podtato/head:0.3.0');
    await expect(driver.promote(ref, ['ghcr.io/podtato/head:0.2.0'], silentLog)).rejects.toMatchObject({
      code: 'VERSION_NOT_HELD',
      message: expect.stringMatching(/holds ghcr.io\/podtato\/head:0\.3\.0, not ghcr.io\/podtato\/head:0\.2\.0 .*nothing promoted/),
    });
    expect(patches).toEqual([]);
  });

  it('release refuses a newer version than the one this sequence tested (same image), and writes nothing', async () => {
    const { driver, patches } = clusterWith('WaitingPromotion', 'ghcr.io/podtato/head:0.2.0');
    await expect(driver.promote(ref, ['ghcr.io/podtato/head:0.2.0'], silentLog, 'h-tested')).rejects.toMatchObject({
      code: 'VERSION_NOT_HELD',
      message: expect.stringMatching(/holds version h-new, not h-tested/),
    });
    expect(patches).toEqual([]);
  });

  it('rollback: the rollback annotation while Flagger works on a version; nothing once it has settled', async () => {
    const progressing = clusterWith('Progressing', 'x:1');
    expect(await progressing.driver.abort(ref, silentLog)).toBe(true);
    expect(progressing.patches.map((p) => p.patch)).toEqual([{ metadata: { annotations: { 'gitops.keptn.sh/rollback': 'h-new' } } }]);
    const settled = clusterWith('Succeeded', 'x:1');
    expect(await settled.driver.abort(ref, silentLog)).toBe(false);
    expect(settled.patches).toEqual([]);
  });
});
