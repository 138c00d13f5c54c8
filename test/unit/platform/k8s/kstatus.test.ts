// The kstatus rollout rules (sigs.k8s.io/cli-utils pkg/kstatus/status/core.go), row by row.
import { describe, expect, it } from '@jest/globals';
import { rolloutOf, type WorkloadObject } from '../../../../src/platform/k8s/kstatus.js';

const deployment = (
  status: WorkloadObject['status'],
  spec: WorkloadObject['spec'] = { replicas: 2, progressDeadlineSeconds: 600 },
  generation = 3,
): WorkloadObject => ({
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'app', generation },
  spec,
  status,
});
const available = [
  { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
  { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
];
const rolledOut = { observedGeneration: 3, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: available };

describe('Deployment', () => {
  it.each([
    ['rolled out at the current generation', deployment(rolledOut), 'Current', /available/],
    [
      'the controller has not seen the new spec',
      deployment({ ...rolledOut, observedGeneration: 2 }),
      'InProgress',
      /generation 3 not observed/,
    ],
    ['fewer replicas than asked', deployment({ ...rolledOut, replicas: 1 }), 'InProgress', /replicas 1\/2/],
    ['not all replicas updated', deployment({ ...rolledOut, updatedReplicas: 1 }), 'InProgress', /updated 1\/2/],
    ['old pods still terminating', deployment({ ...rolledOut, replicas: 3 }), 'InProgress', /pending termination: 1/],
    ['updated pods not available', deployment({ ...rolledOut, availableReplicas: 1 }), 'InProgress', /available 1\/2/],
    ['pods not ready', deployment({ ...rolledOut, readyReplicas: 1 }), 'InProgress', /ready 1\/2/],
    [
      'the new ReplicaSet not reported available',
      deployment({ ...rolledOut, conditions: [available[1]!] }),
      'InProgress',
      /new ReplicaSet/,
    ],
    [
      'no progress deadline: NewReplicaSetAvailable not needed',
      deployment({ ...rolledOut, conditions: [available[1]!] }, { replicas: 2 }),
      'Current',
      /available/,
    ],
    ['not Available', deployment({ ...rolledOut, conditions: [available[0]!] }), 'InProgress', /not available/],
    [
      'progress deadline exceeded',
      deployment({
        ...rolledOut,
        availableReplicas: 0,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "web-1" has timed out progressing.',
          },
        ],
      }),
      'Failed',
      /timed out progressing/,
    ],
    [
      'replicas default to 1',
      deployment(
        { observedGeneration: 3, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: available },
        { progressDeadlineSeconds: 600 },
      ),
      'Current',
      /1 replica/,
    ],
    [
      // deployment/sync.go sync: a paused Deployment gets no new ReplicaSet, so updatedReplicas stays short.
      'paused before the new template got a ReplicaSet',
      deployment({ ...rolledOut, updatedReplicas: 0 }, { replicas: 2, paused: true, progressDeadlineSeconds: 600 }),
      'InProgress',
      /paused \(spec.paused: true\) with 0\/2 Pods on the new template/,
    ],
    [
      'being deleted',
      { ...deployment(rolledOut), metadata: { name: 'web', generation: 3, deletionTimestamp: '2026-11-24T00:00:00Z' } },
      'Terminating',
      /deletion/,
    ],
  ] as const)('%s', (_name, obj, status, message) => {
    const r = rolloutOf(obj);
    expect(r.status).toBe(status);
    expect(r.message).toMatch(message);
  });
});

describe('StatefulSet', () => {
  const sts = (status: WorkloadObject['status'], spec: WorkloadObject['spec'] = { replicas: 2 }): WorkloadObject => ({
    kind: 'StatefulSet',
    metadata: { name: 'db', generation: 1 },
    spec,
    status,
  });
  const done = {
    observedGeneration: 1,
    replicas: 2,
    readyReplicas: 2,
    currentReplicas: 2,
    updatedReplicas: 2,
    currentRevision: 'db-2',
    updateRevision: 'db-2',
  };
  const onDelete = { replicas: 2, updateStrategy: { type: 'OnDelete' } };
  // Item 8 of issue 18, built from upstream code (no kwok capture): stateful_set_control.go counts Pods whose revision
  // label is updateRevision in updatedReplicas and moves currentRevision only under RollingUpdate
  // (completeRollingUpdate); kstatus core.go stsConditions calls every OnDelete StatefulSet Current.
  it.each([
    ['at the update revision', sts(done), 'Current'],
    ['pods not ready', sts({ ...done, readyReplicas: 1 }), 'InProgress'],
    ['update revision not current yet', sts({ ...done, currentRevision: 'db-1' }), 'InProgress'],
    ['fewer current replicas', sts({ ...done, currentReplicas: 1 }), 'InProgress'],
    [
      'OnDelete, no Pod deleted yet (kstatus: Current): the new template runs nowhere',
      sts({ ...done, currentRevision: 'db-1', updateRevision: 'db-2', currentReplicas: 2, updatedReplicas: 0 }, onDelete),
      'InProgress',
    ],
    [
      'OnDelete, one of two Pods deleted and back on the new template',
      sts({ ...done, currentRevision: 'db-1', currentReplicas: 1, updatedReplicas: 1 }, onDelete),
      'InProgress',
    ],
    [
      'OnDelete, every Pod on the new template and ready (currentRevision stays behind under OnDelete)',
      sts({ ...done, currentRevision: 'db-1', currentReplicas: 0, updatedReplicas: 2 }, onDelete),
      'Current',
    ],
    ['OnDelete, on the new template but not ready', sts({ ...done, currentRevision: 'db-1', readyReplicas: 1 }, onDelete), 'InProgress'],
    [
      'partition covers every ordinal (kstatus: Current with 0 updated)',
      sts({ ...done, updatedReplicas: 0, currentRevision: 'db-1' }, { replicas: 2, updateStrategy: { rollingUpdate: { partition: 2 } } }),
      'InProgress',
    ],
    [
      'partition 0 is a full rolling update',
      sts({ ...done, currentRevision: 'db-1' }, { replicas: 2, updateStrategy: { rollingUpdate: { partition: 0 } } }),
      'InProgress',
    ],
    [
      'partitioned rollout done',
      sts({ ...done, updatedReplicas: 1, currentRevision: 'db-1' }, { replicas: 2, updateStrategy: { rollingUpdate: { partition: 1 } } }),
      'Current',
    ],
    [
      'partitioned rollout under way',
      sts({ ...done, updatedReplicas: 0, currentRevision: 'db-1' }, { replicas: 2, updateStrategy: { rollingUpdate: { partition: 1 } } }),
      'InProgress',
    ],
  ] as const)('%s', (_name, obj, status) => {
    expect(rolloutOf(obj).status).toBe(status);
  });
  it('says why an OnDelete StatefulSet waits', () => {
    expect(rolloutOf(sts({ ...done, updatedReplicas: 0 }, onDelete)).message).toMatch(
      /OnDelete.*0\/2 Pods on the new template.*only when deleted/,
    );
    expect(
      rolloutOf(sts({ ...done, updatedReplicas: 0 }, { replicas: 2, updateStrategy: { rollingUpdate: { partition: 3 } } })).message,
    ).toMatch(/partition 3 covers all 2 replicas/);
  });
});

describe('DaemonSet', () => {
  const ds = (status: WorkloadObject['status']): WorkloadObject => ({
    kind: 'DaemonSet',
    metadata: { name: 'agent', generation: 4 },
    status,
  });
  const done = {
    observedGeneration: 4,
    desiredNumberScheduled: 3,
    currentNumberScheduled: 3,
    updatedNumberScheduled: 3,
    numberAvailable: 3,
    numberReady: 3,
  };
  it.each([
    ['every node runs the new pod', ds(done), 'Current'],
    ['no observed generation yet', ds({ desiredNumberScheduled: 3 }), 'InProgress'],
    ['not scheduled everywhere', ds({ ...done, currentNumberScheduled: 2 }), 'InProgress'],
    ['not updated everywhere', ds({ ...done, updatedNumberScheduled: 2 }), 'InProgress'],
    ['not available everywhere', ds({ ...done, numberAvailable: 2 }), 'InProgress'],
    ['not ready everywhere', ds({ ...done, numberReady: 2 }), 'InProgress'],
  ] as const)('%s', (_name, obj, status) => {
    expect(rolloutOf(obj).status).toBe(status);
  });
  // Built from daemon_controller.go updateDaemonSetStatus: the oldest Pod of each node counts as updated only once it
  // carries the new hash, which under OnDelete happens when someone deletes the old Pod.
  it('OnDelete: no Pod replaced yet is in progress, and says why', () => {
    const r = rolloutOf({ ...ds({ ...done, updatedNumberScheduled: 0 }), spec: { updateStrategy: { type: 'OnDelete' } } });
    expect(r.status).toBe('InProgress');
    expect(r.message).toMatch(/OnDelete.*0\/3 Pods on the new template/);
  });
});
