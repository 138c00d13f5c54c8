/**
 * Which workload keeps an Application that synced our commit from being Healthy, and why, in Argo CD's words (issue 24
 * item 2). Argo CD 3.x keeps per-resource health in its resource tree, not in the Application (`resourceHealthSource:
 * appTree` unless `controller.resource.health.persist` is true), so the Application says only "Progressing". The
 * live workloads our sync applied say why: read once per change of the Application, only while it is Progressing, and
 * only when it deploys to the cluster this service runs in; judged by gitops-engine's own rules.
 */
import type { Cluster } from '../../platform/k8s/cluster.js';
import type { KubeObject } from '../../platform/k8s/watch.js';
import { rolloutOf, type WorkloadObject } from '../../platform/k8s/kstatus.js';
import { resourceName, type Application, type ResourceRef } from './application.js';
import { inCluster } from './podless.js';

const PLURALS: Record<string, string> = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' };

/**
 * Argo CD's health message for a workload that is not Healthy, or undefined when Argo CD would call it Healthy.
 * Deployments: gitops-engine pkg/health/health_deployment.go getAppsv1DeploymentHealth (kubectl's rollout status
 * checks, in its words). StatefulSets and DaemonSets: the kstatus reading (k8s/kstatus.ts), which checks the same counts.
 */
export function argoWorkloadHealth(kind: string, obj: WorkloadObject): string | undefined {
  if (kind !== 'Deployment') {
    const rollout = rolloutOf({ ...obj, kind });
    return rollout.status === 'Current' ? undefined : rollout.message;
  }
  if (obj.spec?.paused) return 'Deployment is paused';
  const s = obj.status ?? {};
  if ((obj.metadata.generation ?? 0) > (s.observedGeneration ?? 0))
    return 'Waiting for rollout to finish: observed deployment generation less than desired generation';
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') return `Deployment "${obj.metadata.name}" exceeded its progress deadline`;
  const replicas = obj.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  if (updated < replicas) return `Waiting for rollout to finish: ${updated} out of ${replicas} new replicas have been updated...`;
  if ((s.replicas ?? 0) > updated)
    return `Waiting for rollout to finish: ${(s.replicas ?? 0) - updated} old replicas are pending termination...`;
  if ((s.availableReplicas ?? 0) < updated)
    return `Waiting for rollout to finish: ${s.availableReplicas ?? 0} of ${updated} updated replicas are available...`;
  return undefined;
}

/** What keeps a workload from being Healthy, e.g. `Deployment shop/web: Waiting for rollout to finish: …`. */
export type UnhealthyWorkload = string;

export class UnhealthyReads {
  /** The workloads of our sync found not Healthy at the last read, each with why. */
  found: UnhealthyWorkload[] = [];
  private readAt: string | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly app: Application,
  ) {}

  /** Reads the workloads the current sync applied, once per version of a Progressing Application. */
  async refresh(current: Application & { metadata: { resourceVersion?: string } }): Promise<void> {
    const status = current.status;
    if (!inCluster(this.app) || status?.health?.status !== 'Progressing' || status.sync?.status !== 'Synced') return;
    if (this.readAt === current.metadata.resourceVersion) return;
    this.readAt = current.metadata.resourceVersion;
    const found: UnhealthyWorkload[] = [];
    for (const r of (status.operationState?.syncResult?.resources ?? []) as ResourceRef[]) {
      const plural = PLURALS[r.kind];
      if (!plural || (r.group ?? '') !== 'apps' || !r.namespace) continue;
      try {
        const live = await this.cluster.readFresh<KubeObject & WorkloadObject>(
          { group: 'apps', version: 'v1', plural },
          r.namespace,
          r.name,
        );
        const why = argoWorkloadHealth(r.kind, live);
        if (why) found.push(`${resourceName(r)}: ${why}`);
      } catch {
        // Not readable (no grant, gone): the message then says what the Application says, as without this read.
      }
    }
    this.found = found;
  }
}
