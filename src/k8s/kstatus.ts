/**
 * Has a workload rolled out its current spec? The rules kstatus applies to Deployments, StatefulSets and DaemonSets
 * (sigs.k8s.io/cli-utils pkg/kstatus/status/core.go and generic.go), which is also what Flux's own health checks use,
 * so "Current" here means what it means to kustomize-controller with `spec.wait: true`.
 * Pure: one object in, one status out.
 */

export type RolloutStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating';

export interface Rollout {
  status: RolloutStatus;
  message: string;
}

export interface WorkloadObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; generation?: number; deletionTimestamp?: string };
  spec?: {
    replicas?: number;
    progressDeadlineSeconds?: number;
    updateStrategy?: { type?: string; rollingUpdate?: { partition?: number } };
    [k: string]: unknown;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    currentReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    desiredNumberScheduled?: number;
    currentNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    numberReady?: number;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

interface PodTemplateHolder {
  spec?: { template?: { spec?: { containers?: Array<{ image?: string }>; initContainers?: Array<{ image?: string }> } } };
}

/** The images of every container and init container in a workload's pod template. */
export function imagesOf(workload: Pick<WorkloadObject, 'spec'>): string[] {
  const pod = (workload as PodTemplateHolder).spec?.template?.spec;
  return [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])].map((c) => c.image ?? '').filter(Boolean);
}

const MAX_INT32 = 2147483647;
const inProgress = (message: string): Rollout => ({ status: 'InProgress', message });

/** The kstatus verdict for a Deployment, StatefulSet or DaemonSet (by `kind`); other kinds are not workloads here. */
export function rolloutOf(obj: WorkloadObject): Rollout {
  if (obj.metadata.deletionTimestamp) return { status: 'Terminating', message: 'scheduled for deletion' };
  const generation = obj.metadata.generation;
  const observed = obj.status?.observedGeneration;
  // generic.go checkGeneration: a spec the controller has not seen yet says nothing about the rollout.
  if (generation !== undefined && observed !== undefined && observed !== generation) {
    return inProgress(`generation ${generation} not observed yet (observed ${observed})`);
  }
  for (const c of obj.status?.conditions ?? []) {
    if (c.type === 'Reconciling' && c.status === 'True') return inProgress(c.message ?? c.reason ?? 'reconciling');
    if (c.type === 'Stalled' && c.status === 'True') return { status: 'Failed', message: c.message ?? c.reason ?? 'stalled' };
  }
  switch (obj.kind) {
    case 'Deployment':
      return deploymentRollout(obj);
    case 'StatefulSet':
      return statefulSetRollout(obj);
    case 'DaemonSet':
      return daemonSetRollout(obj);
    default:
      return { status: 'Current', message: `${obj.kind ?? 'object'} has no rollout rules` };
  }
}

function deploymentRollout(obj: WorkloadObject): Rollout {
  // Without a progress deadline (absent or MaxInt32) the controller never reports NewReplicaSetAvailable.
  let progressing = (obj.spec?.progressDeadlineSeconds ?? MAX_INT32) === MAX_INT32;
  let available = false;
  for (const c of obj.status?.conditions ?? []) {
    if (c.type === 'Progressing') {
      if (c.reason === 'ProgressDeadlineExceeded')
        return { status: 'Failed', message: `progress deadline exceeded: ${c.message ?? ''}`.trim() };
      if (c.status === 'True' && c.reason === 'NewReplicaSetAvailable') progressing = true;
    }
    if (c.type === 'Available' && c.status === 'True') available = true;
  }
  const spec = obj.spec?.replicas ?? 1;
  const s = obj.status ?? {};
  const replicas = s.replicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const avail = s.availableReplicas ?? 0;
  if (spec > replicas) return inProgress(`replicas ${replicas}/${spec}`);
  if (spec > updated) return inProgress(`updated ${updated}/${spec}`);
  if (replicas > spec) return inProgress(`pending termination: ${replicas - spec}`);
  if (updated > avail) return inProgress(`available ${avail}/${updated}`);
  if (spec > ready) return inProgress(`ready ${ready}/${spec}`);
  if (!progressing) return inProgress('new ReplicaSet not available yet');
  if (!available) return inProgress('Deployment not available');
  return { status: 'Current', message: `available, ${replicas} replica(s)` };
}

function statefulSetRollout(obj: WorkloadObject): Rollout {
  if (obj.spec?.updateStrategy?.type === 'OnDelete')
    return { status: 'Current', message: 'OnDelete update strategy: pods change only when deleted' };
  const spec = obj.spec?.replicas ?? 1;
  const s = obj.status ?? {};
  const replicas = s.replicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const current = s.currentReplicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  const partition = obj.spec?.updateStrategy?.rollingUpdate?.partition;
  if (spec > replicas) return inProgress(`replicas ${replicas}/${spec}`);
  if (spec > ready) return inProgress(`ready ${ready}/${spec}`);
  if (replicas > spec) return inProgress(`pending termination: ${replicas - spec}`);
  if (partition !== undefined) {
    if (updated < spec - partition) return inProgress(`partitioned rollout: updated ${updated}/${spec - partition}`);
    return { status: 'Current', message: `partitioned rollout complete, ${updated} updated` };
  }
  if (spec > current) return inProgress(`current ${current}/${spec}`);
  if ((s.currentRevision ?? '') !== (s.updateRevision ?? '')) return inProgress('waiting for the update revision to become current');
  return { status: 'Current', message: `${replicas} replica(s) at the update revision` };
}

function daemonSetRollout(obj: WorkloadObject): Rollout {
  if (obj.metadata.generation === undefined || obj.status?.observedGeneration === undefined)
    return inProgress('generation not observed yet');
  const s = obj.status;
  const desired = s.desiredNumberScheduled;
  if (desired === undefined) return inProgress('no desiredNumberScheduled yet');
  if (desired > (s.currentNumberScheduled ?? 0)) return inProgress(`scheduled ${s.currentNumberScheduled ?? 0}/${desired}`);
  if (desired > (s.updatedNumberScheduled ?? 0)) return inProgress(`updated ${s.updatedNumberScheduled ?? 0}/${desired}`);
  if (desired > (s.numberAvailable ?? 0)) return inProgress(`available ${s.numberAvailable ?? 0}/${desired}`);
  if (desired > (s.numberReady ?? 0)) return inProgress(`ready ${s.numberReady ?? 0}/${desired}`);
  return { status: 'Current', message: `${desired} pod(s) scheduled and ready` };
}
