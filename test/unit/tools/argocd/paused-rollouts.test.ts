// The driver's reads of a Suspended Application's Rollouts: only when the rule needs them, through the shared watch,
// a refused watch taken as "unread" (the rule then fails as without them), and the settle time after a timed pause.
import { describe, expect, it, jest } from '@jest/globals';
import type { Cluster } from '../../../../src/platform/k8s/cluster.js';
import { WatchError, type KubeObject, type ObjectWatch } from '../../../../src/platform/k8s/watch.js';
import type { Application } from '../../../../src/tools/argocd/application.js';
import { PausedRollouts, ROLLOUTS } from '../../../../src/tools/argocd/paused-rollouts.js';
import { RESUME_SETTLE_MS } from '../../../../src/tools/argocd/suspended.js';

const app = (health: string, server = 'https://kubernetes.default.svc'): Application => ({
  metadata: { name: 'web', namespace: 'argocd' },
  spec: { destination: { server, namespace: 'app' } },
  status: {
    health: { status: health },
    resources: [
      { group: 'argoproj.io', kind: 'Rollout', namespace: 'app', name: 'web' },
      { kind: 'Service', namespace: 'app', name: 'web' },
    ],
  },
});

const timed = {
  metadata: { name: 'web', namespace: 'app', generation: 2 },
  spec: { strategy: { canary: { steps: [{}, { pause: { duration: '5s' } }] } } },
  status: {
    observedGeneration: '2',
    phase: 'Paused',
    pauseConditions: [{ reason: 'CanaryPauseStep' }],
    controllerPause: true,
    currentStepIndex: 1,
  },
};
const healthy = { ...timed, status: { observedGeneration: '2', phase: 'Healthy', currentStepIndex: 2 } };

function clusterWith(objects: Map<string, KubeObject>, synced: Promise<void> = Promise.resolve()) {
  const listeners = new Map<string, () => void>();
  const watch: ObjectWatch<KubeObject> = {
    resource: 'rollouts.argoproj.io',
    synced,
    get: (ns, name) => objects.get(`${ns}/${name}`),
    subscribe: (ns, name, listener) => {
      listeners.set(`${ns}/${name}`, () => listener(objects.get(`${ns}/${name}`)));
      return () => void listeners.delete(`${ns}/${name}`);
    },
    subscribeAll: () => () => undefined,
    onResumed: () => () => undefined,
  };
  const watched: string[] = [];
  const cluster = {
    watch: (kind: { plural: string }) => {
      watched.push(kind.plural);
      return watch;
    },
  } as unknown as Cluster;
  return { cluster, watched, listeners };
}

describe('PausedRollouts', () => {
  it('reads nothing unless the Application is Suspended, in this cluster, and a pause could fail it', async () => {
    const { cluster, watched } = clusterWith(new Map([['app/web', timed as KubeObject]]));
    const deadline = Date.now() + 60_000;
    for (const [current, wanted, destination] of [
      [app('Progressing'), true, undefined],
      [app('Suspended'), false, undefined],
      [app('Suspended'), true, 'https://other-cluster:6443'],
    ] as const) {
      const reads = new PausedRollouts(cluster, destination ? app('Suspended', destination) : current, wanted);
      expect(reads.due(current)).toBe(false);
      await reads.refresh(current, deadline);
      expect(reads.expectation(current)).toEqual({});
    }
    expect(watched).toEqual([]);
  });

  it('watches the Rollouts of a Suspended Application through the shared watch and hands them to the rule', async () => {
    const { cluster, watched, listeners } = clusterWith(new Map([['app/web', timed as KubeObject]]));
    const reads = new PausedRollouts(cluster, app('Suspended'), true);
    const changed = jest.fn();
    reads.onChange = changed;
    expect(reads.due(app('Suspended'))).toBe(true);
    await reads.refresh(app('Suspended'), Date.now() + 60_000);
    expect(watched).toEqual([ROLLOUTS.plural]);
    expect(reads.due(app('Suspended'))).toBe(false);
    expect(reads.expectation(app('Suspended'))).toEqual({ rollouts: [timed] });
    listeners.get('app/web')!();
    expect(changed).toHaveBeenCalledTimes(1);
    reads.stop();
    expect(listeners.size).toBe(0);
  });

  it('a refused watch leaves them unread, named for the rule; other errors are tried again', async () => {
    const refused = new WatchError('FORBIDDEN', 'rollouts.argoproj.io is forbidden: cannot list');
    const { cluster } = clusterWith(new Map(), Promise.reject(refused));
    const reads = new PausedRollouts(cluster, app('Suspended'), true);
    await reads.refresh(app('Suspended'), Date.now() + 60_000);
    expect(reads.due(app('Suspended'))).toBe(false);
    expect(reads.expectation(app('Suspended'))).toEqual({ rolloutsUnread: expect.stringMatching(/forbidden/) });

    const flaky = clusterWith(new Map(), Promise.reject(new WatchError('API_ERROR', 'connection reset', { retryable: true })));
    const again = new PausedRollouts(flaky.cluster, app('Suspended'), true);
    await expect(again.refresh(app('Suspended'), Date.now() + 60_000)).rejects.toThrow(/connection reset/);
    expect(again.due(app('Suspended'))).toBe(true);
  });

  it('counts the time since a timed pause it saw ended, and wakes the wait when the settle time is over', async () => {
    jest.useFakeTimers();
    try {
      let now = 1_000_000;
      const objects = new Map<string, KubeObject>([['app/web', timed as KubeObject]]);
      const { cluster } = clusterWith(objects);
      const reads = new PausedRollouts(cluster, app('Suspended'), true, () => now);
      const changed = jest.fn();
      reads.onChange = changed;
      await reads.refresh(app('Suspended'), now + 60_000);
      expect(reads.expectation(app('Suspended')).rolloutResumedForMs).toBeUndefined();
      objects.set('app/web', healthy as KubeObject);
      expect(reads.expectation(app('Suspended')).rolloutResumedForMs).toBe(0);
      now += 4_000;
      expect(reads.expectation(app('Suspended')).rolloutResumedForMs).toBe(4_000);
      jest.advanceTimersByTime(RESUME_SETTLE_MS + 10);
      expect(changed).toHaveBeenCalledTimes(1);
      reads.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});
