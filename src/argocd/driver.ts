/**
 * Argo CD: hard refresh, start a sync of our revision when automated sync is off (waiting out someone else's
 * operation), then follow the Application to a verdict.
 * @see https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/
 */
import type { Cluster } from '../k8s/cluster.js';
import { untilSynced, type KubeObject } from '../k8s/watch.js';
import type { DeliveryRequest, DeliveryTool } from '../tool.js';
import { waitForVerdict, type FinalVerdict } from '../wait.js';
import { evaluateApplication, OPERATION_INFO_KEY, sameRepo, sourcesOf, type Application } from './evaluate.js';

export const APPLICATIONS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };
const REFRESH = 'argocd.argoproj.io/refresh';

type App = Application & KubeObject;

/** Argo CD 2.x: `automated: {}` means on; 3.x adds `automated.enabled`, which may turn it off. */
export function isAutomated(app: Application): boolean {
  const automated = app.spec.syncPolicy?.automated as { enabled?: boolean } | undefined;
  return automated !== undefined && automated !== null && automated.enabled !== false;
}

/** The `operation` that syncs our commit: pinned revision(s), tagged with our deployment id. */
export function syncOperation(app: Application, sourceIndex: number, commit: string, deploymentId: string): Record<string, unknown> {
  const multi = Boolean(app.spec.sources?.length);
  const sync = multi
    ? { revisions: sourcesOf(app).map((s, i) => (i === sourceIndex ? commit : (s.targetRevision ?? 'HEAD'))), sourcePositions: sourcesOf(app).map((_, i) => i + 1) }
    : { revision: commit };
  return {
    initiatedBy: { username: 'keptn-gitops-service' },
    info: [{ name: OPERATION_INFO_KEY, value: deploymentId }],
    sync,
  };
}

export class ArgoCDTool implements DeliveryTool {
  readonly kinds = ['Application'] as const;

  constructor(private readonly cluster: Cluster) {}

  async deliver(req: DeliveryRequest): Promise<FinalVerdict> {
    const apps = this.cluster.watch<App>(APPLICATIONS);
    await untilSynced(apps.synced, req.deadline, 'Argo CD Applications');
    const { namespace, name } = req.target;
    const app = apps.get(namespace, name);
    if (!app) return { state: 'failed', message: `Argo CD Application ${namespace}/${name} not found; check target in the settings` };
    const sourceIndex = sourcesOf(app).findIndex((s) => sameRepo(s.repoURL, req.repoUrl));
    if (sourceIndex < 0) {
      return { state: 'failed', message: `Application ${namespace}/${name} does not read the GitOps repository ${req.repoUrl}; check git.url in the settings` };
    }
    const ref = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', namespace, name };
    const refreshedAt = new Date().toISOString();
    await this.cluster.mergePatch(ref, { metadata: { annotations: { [REFRESH]: 'hard' } } });
    const mustSync = !isAutomated(app);
    let syncRequested = false;
    req.log.info({ application: `${namespace}/${name}`, sourceIndex, mustSync }, 'argo cd refresh requested');

    return waitForVerdict({
      commit: req.commit,
      deadline: req.deadline,
      relation: req.relation,
      ...(req.onProgress ? { onProgress: req.onProgress } : {}),
      observe: (onChange) => apps.subscribe(namespace, name, onChange),
      react: async () => {
        if (!mustSync || syncRequested) return;
        const current = apps.get(namespace, name);
        // "another operation is already in progress": wait for it to end before starting ours.
        if (!current || current.operation || current.status?.operationState?.phase === 'Running') return;
        syncRequested = true;
        await this.cluster.mergePatch(ref, { operation: syncOperation(current, sourceIndex, req.commit, req.deploymentId) });
        req.log.info({ application: `${namespace}/${name}` }, 'argo cd sync started');
      },
      evaluate: (target) => {
        const current = apps.get(namespace, name);
        if (!current) return { state: 'failed', message: `Argo CD Application ${namespace}/${name} was deleted` };
        return evaluateApplication(current, { ...target, sourceIndex, operationTag: req.deploymentId, refreshedAt });
      },
      timeoutMessage: (last) => `Argo CD did not apply commit ${req.commit} in time: ${last}`,
    });
  }
}
