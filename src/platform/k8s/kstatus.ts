/**
 * Has a workload rolled out its current spec, and do Pods on the new template run? The rules kstatus applies to
 * Deployments, StatefulSets and DaemonSets (sigs.k8s.io/cli-utils pkg/kstatus/status/core.go and generic.go), which is
 * also what Flux's own health checks use, made stricter where kstatus calls a workload Current while no Pod runs the
 * new template (issue 18 item 8): a pass needs the controller's own count of Pods on the update revision.
 * - StatefulSet `OnDelete`: kstatus (core.go stsConditions) returns Current at once; the StatefulSet controller
 *   replaces no Pod (kubernetes pkg/controller/statefulset/stateful_set_control.go updateStatefulSet: the OnDelete
 *   strategy returns before any Pod is deleted) and counts Pods on the update revision in `updatedReplicas`
 *   (computeReplicaStatus: the Pod's revision label equals updateRevision), so the count decides.
 * - StatefulSet with `partition` at or above `replicas`: kstatus' partition rule (updated >= replicas - partition)
 *   holds with zero updated Pods; no ordinal at or above the partition exists, so the new template runs nowhere.
 * - DaemonSet `OnDelete`: kstatus already needs `updatedNumberScheduled` (the daemon controller counts the oldest
 *   Pod of each node on the new hash: pkg/controller/daemon/daemon_controller.go updateDaemonSetStatus); the
 *   message says that only deleting the Pods moves it.
 * - Deployment `spec.paused`: the controller makes no new ReplicaSet (pkg/controller/deployment/sync.go sync,
 *   getAllReplicaSetsAndSyncRevision with createIfNotExisted false), so `updatedReplicas` stays short; the message
 *   says it waits for a resume.
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
    paused?: boolean;
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

/**
 * Whether kstatus may call this workload Current by a laxer rule than `rolloutOf` (the StatefulSet cases above):
 * then a health check that trusts kstatus (Flux's `wait`, Helm's wait through kstatus) passed it although the new
 * template may run on no Pod. sigs.k8s.io/cli-utils pkg/kstatus/status/core.go stsConditions: OnDelete returns Current
 * before any count, and the partition rule holds with zero updated Pods once the partition reaches `replicas`.
 */
export function laxerInKstatus(obj: Pick<WorkloadObject, 'kind' | 'spec'>): boolean {
  if (obj.kind !== 'StatefulSet') return false;
  const strategy = obj.spec?.updateStrategy;
  return strategy?.type === 'OnDelete' || (strategy?.rollingUpdate?.partition ?? 0) > 0;
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
  if (spec > updated && obj.spec?.paused)
    return inProgress(`paused (spec.paused: true) with ${updated}/${spec} Pods on the new template; it rolls out once resumed`);
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
  const spec = obj.spec?.replicas ?? 1;
  const s = obj.status ?? {};
  const replicas = s.replicas ?? 0;
  const ready = s.readyReplicas ?? 0;
  const current = s.currentReplicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  const strategy = obj.spec?.updateStrategy;
  if (strategy?.type === 'OnDelete') {
    // kstatus says Current here; the controller replaces no Pod, so count the Pods on the update revision.
    if (spec > updated)
      return inProgress(`OnDelete update strategy: ${updated}/${spec} Pods on the new template; a Pod takes it only when deleted`);
    if (spec > ready) return inProgress(`ready ${ready}/${spec}`);
    if (replicas > spec) return inProgress(`pending termination: ${replicas - spec}`);
    return { status: 'Current', message: `${updated} Pod(s) on the new template (OnDelete), ready` };
  }
  const partition = strategy?.rollingUpdate?.partition;
  if (spec > replicas) return inProgress(`replicas ${replicas}/${spec}`);
  if (spec > ready) return inProgress(`ready ${ready}/${spec}`);
  if (replicas > spec) return inProgress(`pending termination: ${replicas - spec}`);
  if (partition !== undefined && partition > 0) {
    const target = spec - partition;
    // kstatus' partition rule holds with no updated Pod when the partition covers every ordinal.
    if (spec > 0 && target <= 0)
      return inProgress(`partition ${partition} covers all ${spec} replicas: no Pod takes the new template until it is lowered`);
    if (updated < target) return inProgress(`partitioned rollout: updated ${updated}/${target}`);
    return { status: 'Current', message: `partitioned rollout complete, ${updated} Pod(s) on the new template` };
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
  if (desired > (s.updatedNumberScheduled ?? 0))
    return inProgress(
      obj.spec?.updateStrategy?.type === 'OnDelete'
        ? `OnDelete update strategy: ${s.updatedNumberScheduled ?? 0}/${desired} Pods on the new template; a Pod takes it only when deleted`
        : `updated ${s.updatedNumberScheduled ?? 0}/${desired}`,
    );
  if (desired > (s.numberAvailable ?? 0)) return inProgress(`available ${s.numberAvailable ?? 0}/${desired}`);
  if (desired > (s.numberReady ?? 0)) return inProgress(`ready ${s.numberReady ?? 0}/${desired}`);
  return { status: 'Current', message: `${desired} pod(s) scheduled and ready` };
}
