/**
 * Reads the live workloads that may run no Pods by design (a Deployment, StatefulSet or ReplicaSet scaled to 0), so
 * the rule can judge them by the template our sync applied (health.ts runsNoPodsByDesign). The Application's status
 * does not carry replica counts, so only the live object says it. Read once per sync, only for workloads our sync
 * applied with an image we wrote, and only when the Application deploys to the cluster this service runs in.
 */
import type { Cluster } from '../../platform/k8s/cluster.js';
import type { KubeObject } from '../../platform/k8s/watch.js';
import type { Application, ResourceRef } from './application.js';
import { runsNoPodsByDesign, sameImage } from './health.js';

const PLURALS: Record<string, string> = { Deployment: 'deployments', StatefulSet: 'statefulsets', ReplicaSet: 'replicasets' };

/** The destination is the cluster Argo CD runs in, which is the one this service reads. */
export function inCluster(app: Application): boolean {
  const d = app.spec.destination ?? {};
  return d.server === 'https://kubernetes.default.svc' || d.name === 'in-cluster';
}

export class PodlessReads {
  /** Workloads found to run no Pods by design, with why. */
  found: Array<ResourceRef & { why: string }> = [];
  private readFor: string | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly app: Application,
  ) {}

  /**
   * Whether this sync's candidates are still to be read: Synced and Healthy without our image among the Pods', not yet
   * read for this operation. The rule must not judge such a state before they are (the wait judges before it acts).
   */
  due(current: Application, images: readonly string[]): boolean {
    const status = current.status;
    if (!inCluster(this.app) || !status?.operationState?.syncResult) return false;
    if (status.sync?.status !== 'Synced' || status.health?.status !== 'Healthy') return false;
    const running = status.summary?.images ?? [];
    if (images.every((w) => running.some((r) => sameImage(w, r)))) return false;
    return this.readFor !== (status.operationState.finishedAt ?? '');
  }

  /** Reads the candidates of the current sync once (see due). */
  async refresh(current: Application, images: readonly string[]): Promise<void> {
    if (!this.due(current, images)) return;
    const result = current.status!.operationState!.syncResult!;
    this.readFor = current.status!.operationState!.finishedAt ?? '';
    const found: Array<ResourceRef & { why: string }> = [];
    for (const r of result.resources ?? []) {
      const plural = PLURALS[r.kind];
      if (!plural || (r.group ?? '') !== 'apps' || !r.namespace) continue;
      if (!r.images?.some((i) => images.some((w) => sameImage(w, i)))) continue;
      try {
        const live = await this.cluster.readFresh<KubeObject & { spec?: { replicas?: number } }>(
          { group: 'apps', version: 'v1', plural },
          r.namespace,
          r.name,
        );
        const why = runsNoPodsByDesign({ kind: r.kind, ...(live.spec ? { spec: live.spec } : {}) });
        if (why) found.push({ ...r, why });
      } catch {
        // Not readable (no grant, gone): the rule then asks for running Pods, as without this read.
      }
    }
    this.found = found;
  }
}
