/**
 * Flux: ask for an immediate reconcile (source first), then follow Kustomization or HelmRelease to a verdict.
 * @see https://fluxcd.io/flux/components/kustomize/kustomizations/#reconciliation
 */
import type { Cluster } from '../k8s/cluster.js';
import { untilSynced, type KubeObject } from '../k8s/watch.js';
import type { Verdict } from '../readiness.js';
import type { DeliveryRequest, DeliveryTool } from '../tool.js';
import { waitForVerdict, type FinalVerdict } from '../wait.js';
import { evaluateGitRepository, evaluateHelmRelease, evaluateKustomization, type FluxObject } from './evaluate.js';

export const KUSTOMIZATIONS = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
export const HELMRELEASES = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' };
export const GITREPOSITORIES = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' };

const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
/** Labels kustomize-controller puts on every object it applies. */
const MANAGER_NAME = 'kustomize.toolkit.fluxcd.io/name';
const MANAGER_NAMESPACE = 'kustomize.toolkit.fluxcd.io/namespace';

type Obj = FluxObject & KubeObject;

interface Ref {
  namespace: string;
  name: string;
}

export class FluxTool implements DeliveryTool {
  readonly kinds = ['Kustomization', 'HelmRelease'] as const;

  constructor(private readonly cluster: Cluster) {}

  async deliver(req: DeliveryRequest): Promise<FinalVerdict> {
    const kustomizations = this.cluster.watch<Obj>(KUSTOMIZATIONS);
    const sources = this.cluster.watch<Obj>(GITREPOSITORIES);
    const releases = req.target.kind === 'HelmRelease' ? this.cluster.watch<Obj>(HELMRELEASES) : undefined;
    await untilSynced(Promise.all([kustomizations.synced, sources.synced, releases?.synced]).then(() => undefined), req.deadline, 'Flux objects');

    const { namespace, name } = req.target;
    const release = releases?.get(namespace, name);
    const kustomizationRef: Ref | undefined =
      req.target.kind === 'Kustomization'
        ? { namespace, name }
        : release?.metadata.labels?.[MANAGER_NAME]
          ? { name: release.metadata.labels[MANAGER_NAME], namespace: release.metadata.labels[MANAGER_NAMESPACE] ?? namespace }
          : undefined;
    if (req.target.kind === 'HelmRelease' && !release) return notFound('HelmRelease', namespace, name);
    const kustomization = kustomizationRef && kustomizations.get(kustomizationRef.namespace, kustomizationRef.name);
    if (kustomizationRef && !kustomization) return notFound('Kustomization', kustomizationRef.namespace, kustomizationRef.name);
    // The Git source: the Kustomization's, or for a HelmRelease no Kustomization manages, its chart's.
    const chartSource = (release?.spec?.['chart'] as { spec?: { sourceRef?: { kind: string; name: string; namespace?: string } } } | undefined)?.spec?.sourceRef;
    const sourceRef = kustomization ? kustomization.spec?.sourceRef : chartSource;
    const owner = kustomization ? `Kustomization ${kustomizationRef!.namespace}/${kustomizationRef!.name}` : `HelmRelease ${namespace}/${name}`;
    if (sourceRef?.kind !== 'GitRepository') {
      return { state: 'failed', message: `${owner} reads from a ${sourceRef?.kind ?? 'missing'} source; only GitRepository sources can be followed to a commit` };
    }
    const source: Ref = { namespace: sourceRef.namespace ?? (kustomizationRef?.namespace ?? namespace), name: sourceRef.name };

    // One token for all three: each controller echoes it in status.lastHandledReconcileAt.
    const token = new Date().toISOString();
    const annotate = { metadata: { annotations: { [REQUESTED_AT]: token } } };
    await this.cluster.mergePatch({ apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', ...source }, annotate);
    if (kustomizationRef) await this.cluster.mergePatch({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', ...kustomizationRef }, annotate);
    if (release) await this.cluster.mergePatch({ apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', namespace, name }, annotate);
    req.log.info({ token, source, kustomization: kustomizationRef }, 'flux reconcile requested');

    return waitForVerdict({
      commit: req.commit,
      deadline: req.deadline,
      relation: req.relation,
      ...(req.onProgress ? { onProgress: req.onProgress } : {}),
      observe: (onChange) => {
        const offs = [
          sources.subscribe(source.namespace, source.name, onChange),
          ...(kustomizationRef ? [kustomizations.subscribe(kustomizationRef.namespace, kustomizationRef.name, onChange)] : []),
          ...(releases ? [releases.subscribe(namespace, name, onChange)] : []),
        ];
        return () => offs.forEach((off) => off());
      },
      evaluate: (target): Verdict => {
        const src = sources.get(source.namespace, source.name);
        if (!src) return { state: 'failed', message: `GitRepository ${source.namespace}/${source.name} not found` };
        const k = kustomizationRef && kustomizations.get(kustomizationRef.namespace, kustomizationRef.name);
        if (kustomizationRef && !k) return { state: 'failed', message: `Kustomization ${kustomizationRef.namespace}/${kustomizationRef.name} was deleted` };
        const sourceVerdict = evaluateGitRepository(src, token);
        if (sourceVerdict) return sourceVerdict;
        if (!releases) return evaluateKustomization(k!, target);
        const hr = releases.get(namespace, name);
        if (!hr) return { state: 'failed', message: `HelmRelease ${namespace}/${name} was deleted` };
        return evaluateHelmRelease(hr, k, target);
      },
      timeoutMessage: (last) => `Flux did not apply commit ${req.commit} in time: ${last}`,
    });
  }
}

function notFound(kind: string, namespace: string, name: string): FinalVerdict {
  return { state: 'failed', message: `Flux ${kind} ${namespace}/${name} not found; check target in the settings` };
}
