// Keptn's failure path as shipyard-controller plays it (issue 24 item 3): a delivery whose deployment fails ends the
// sequence `dev.delivery` with result fail; a sequence triggered on that (`triggeredOn: dev.delivery.finished`,
// selector `result: fail`) runs the `rollback` task in the same Keptn context, with the delivery's data carried over.
// keptn/keptn 1.4.5 shipyard-controller: triggerNextTaskSequences keeps the KeptnContext; sendTaskSequenceTriggeredEvent
// passes the finished sequence's GetNextTriggeredEventData on (nextTriggeredData models it).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { TestCluster } from './cluster.js';
import {
  keptnEvent,
  nextTriggeredData,
  runTask,
  type ControlPlane,
  type EventStream,
  type KeptnCloudEvent,
  type TaskRun,
} from './keptn.js';
import type { TestApp } from './sample-app.js';

/**
 * A ResourceQuota with room for the one Pod that runs now: a new version's Pod can never be created (the ReplicaSet
 * gets "exceeded quota"), so its rollout never completes, while the old Pod keeps serving and a revert needs no new Pod.
 */
export function roomForOnePod(app: Pick<TestApp, 'namespace'>): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: 'one-pod', namespace: app.namespace },
    spec: { hard: { pods: '1' } },
  } as KubernetesObject;
}

/**
 * After the deployment task of `dev.delivery` finished with `fail`: `dev.delivery.finished`, then the rollback
 * sequence's `rollback.triggered` with the data shipyard-controller carries over, answered by the service.
 */
export async function rollbackSequence(
  keptn: { controlPlane: ControlPlane; events: EventStream },
  deployment: { triggered: KeptnCloudEvent; finished: KeptnCloudEvent },
): Promise<TaskRun & { ms: number }> {
  const { shkeptncontext, gitcommitid, data: input } = deployment.triggered;
  const carried = nextTriggeredData(input as Record<string, unknown>, [deployment.finished], 'rollback');
  const { project, stage, service, result, status } = carried as Record<string, unknown>;
  await keptn.controlPlane.publish(
    keptnEvent(`sh.keptn.event.${String(stage)}.delivery.finished`, { project, stage, service, result, status }, { shkeptncontext }),
  );
  const t0 = Date.now();
  const run = await runTask({ ...keptn, configVersion: gitcommitid }, 'rollback', carried, {
    ...(shkeptncontext ? { shkeptncontext } : {}),
    timeoutMs: 120_000,
  });
  return { ...run, ms: Date.now() - t0 };
}

/** The sample Deployment `web` runs `image` on all its replicas, rolled out: what "healthy at the previous image" means. */
export async function rolledOut(cluster: TestCluster, app: Pick<TestApp, 'namespace'>): Promise<{ image?: string; ready: boolean }> {
  const d = await cluster.read<
    KubernetesObject & {
      spec: { replicas?: number; template: { spec: { containers: Array<{ image: string }> } } };
      status?: { observedGeneration?: number; updatedReplicas?: number; availableReplicas?: number; replicas?: number };
    }
  >('apps/v1', 'Deployment', app.namespace, 'web');
  const want = d.spec.replicas ?? 1;
  const s = d.status ?? {};
  return {
    image: d.spec.template.spec.containers[0]?.image,
    ready:
      s.observedGeneration === d.metadata?.generation && s.updatedReplicas === want && s.availableReplicas === want && s.replicas === want,
  };
}
