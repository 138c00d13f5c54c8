/**
 * Flux: check that the sources read our branch, ask for an immediate reconcile (sources first), then follow the
 * target (and the Kustomization that applies it, if any) to a verdict. The rules are in kustomization.ts,
 * helmrelease.ts and sources.ts (entry points in evaluate.ts).
 * @see https://fluxcd.io/flux/components/kustomize/kustomizations/#reconciliation
 */
import type { Cluster } from '../../platform/k8s/cluster.js';
import { Coalescer } from '../../platform/k8s/coalesce.js';
import type { WorkloadObject } from '../../platform/k8s/kstatus.js';
import { untilSynced, type KubeObject, type ResourceKind, type ObjectWatch } from '../../platform/k8s/watch.js';
import type { Verdict } from '../../judge/verdict.js';
import { sameRepository } from '../../platform/git/repository.js';
import type { DeliveryRequest, DeliveryTool } from '../../judge/tool.js';
import { toolTimeoutMessage, waitForVerdict, waitingFor, type FinalVerdict } from '../../judge/wait.js';
import {
  checkGitRepositoryRef,
  evaluateGitRepository,
  evaluateHelmRelease,
  evaluateKustomization,
  objectName,
  specMayCarryImage,
  type Clock,
  type FluxObject,
  type FluxView,
  type HelmReleaseContext,
} from './evaluate.js';
import type { WorkloadKind } from './inventory.js';

export const KUSTOMIZATIONS = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
export const HELMRELEASES = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' };
export const GITREPOSITORIES = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' };
export const HELMCHARTS = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'helmcharts' };
export const OCIREPOSITORIES = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'ocirepositories' };
/** The annotation `flux push artifact --source` writes: the repository an OCI artifact was built from. */
const ORIGIN_SOURCE = 'org.opencontainers.image.source';
/** The workloads in a Kustomization's or HelmRelease's inventory whose rollout and images the rules read. */
export const WORKLOADS: Record<WorkloadKind, ResourceKind> = {
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments' },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets' },
  DaemonSet: { group: 'apps', version: 'v1', plural: 'daemonsets' },
};

const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
/** Labels kustomize-controller puts on every object it applies. */
const MANAGER_NAME = 'kustomize.toolkit.fluxcd.io/name';
const MANAGER_NAMESPACE = 'kustomize.toolkit.fluxcd.io/namespace';
const API_VERSION = {
  Kustomization: 'kustomize.toolkit.fluxcd.io/v1',
  HelmRelease: 'helm.toolkit.fluxcd.io/v2',
  GitRepository: 'source.toolkit.fluxcd.io/v1',
  OCIRepository: 'source.toolkit.fluxcd.io/v1',
};

type Obj = FluxObject & KubeObject;

interface SourceRef {
  kind: string;
  name: string;
  namespace?: string;
}

interface Ref {
  namespace: string;
  name: string;
}

export class FluxTool implements DeliveryTool {
  readonly kinds = ['Kustomization', 'HelmRelease'] as const;

  /** Reconcile requests, one per object at a time however many deployments wait on it. */
  private readonly requests = new Coalescer<string>();

  constructor(private readonly cluster: Cluster) {}

  /**
   * Asks Flux to reconcile an object now (`flux reconcile`'s annotation), with a request written after this call;
   * resolves to the request's token, which the controller echoes in `status.lastHandledReconcileAt`.
   */
  private requestReconcile(kind: keyof typeof API_VERSION, ref: Ref): Promise<string> {
    return this.requests.run(`${kind}/${refKey(ref)}`, async () => {
      const token = new Date().toISOString();
      await this.cluster.mergePatch(
        { apiVersion: API_VERSION[kind], kind, ...ref },
        { metadata: { annotations: { [REQUESTED_AT]: token } } },
      );
      return token;
    });
  }

  async deliver(req: DeliveryRequest): Promise<FinalVerdict> {
    const kind = req.target.kind === 'HelmRelease' ? 'HelmRelease' : 'Kustomization';
    const kustomizations = this.cluster.watch<Obj>(KUSTOMIZATIONS);
    const sources = this.cluster.watch<Obj>(GITREPOSITORIES);
    const releases = kind === 'HelmRelease' ? this.cluster.watch<Obj>(HELMRELEASES) : undefined;
    const charts = kind === 'HelmRelease' ? this.cluster.watch<Obj>(HELMCHARTS) : undefined;
    const workloads = Object.fromEntries(
      Object.entries(WORKLOADS).map(([k, resource]) => [k, this.cluster.watch<WorkloadObject & KubeObject>(resource)]),
    ) as Record<WorkloadKind, ObjectWatch<WorkloadObject & KubeObject>>;
    const all = [kustomizations, sources, releases, charts, ...Object.values(workloads)].filter((w) => w !== undefined);
    await untilSynced(
      Promise.all(all.map((w) => w.synced)).then(() => undefined),
      req.deadline,
      'Flux objects and workloads',
    );

    const { namespace, name } = req.target;
    const targets = kind === 'HelmRelease' ? releases! : kustomizations;
    const target = targets.get(namespace, name);
    if (!target) return notFound(kind, namespace, name);
    // A manager matters only when it reads our repository and the target's spec may carry the image (a HelmRelease's
    // values; a Kustomization's images or substitutions): then our commit may change the target's own spec.
    const labelled = managerOf(target, kind);
    const labelledManager = labelled && kustomizations.get(labelled.namespace, labelled.name);
    if (labelled && !labelledManager) return notFound('Kustomization', labelled.namespace, labelled.name);
    const readsOurs = (obj: Obj | undefined): boolean => {
      const ref = obj?.spec?.sourceRef;
      const repo = ref?.kind === 'GitRepository' ? sources.get(ref.namespace ?? obj?.metadata.namespace ?? '', ref.name) : undefined;
      return typeof repo?.spec?.['url'] === 'string' && sameRepository(repo.spec['url'], req.repoUrl);
    };
    const managerRef =
      labelledManager && readsOurs(labelledManager) && (kind === 'HelmRelease' || specMayCarryImage(target)) ? labelled : undefined;
    const manager = managerRef ? labelledManager : undefined;

    // The sources our commit travels through: the manager's, the target's own, and a chart's: its GitRepository
    // (`spec.chart`, or the HelmChart `spec.chartRef` names) or the OCIRepository `spec.chartRef` names (issue 18 item 13).
    const chartRef = kind === 'HelmRelease' ? (target.spec?.['chartRef'] as SourceRef | undefined) : undefined;
    const refChart = chartRef?.kind === 'HelmChart' ? charts!.get(chartRef.namespace || namespace, chartRef.name) : undefined;
    if (chartRef?.kind === 'HelmChart' && !refChart) return notFound('HelmChart', chartRef.namespace || namespace, chartRef.name);
    const chartSource: SourceRef | undefined =
      kind !== 'HelmRelease'
        ? undefined
        : chartRef?.kind === 'HelmChart'
          ? refChart!.spec?.sourceRef && { ...refChart!.spec.sourceRef, namespace: refChart!.metadata.namespace ?? namespace }
          : (chartRef ?? (target.spec?.['chart'] as { spec?: { sourceRef?: SourceRef } } | undefined)?.spec?.sourceRef);
    const appliers = [manager, kind === 'Kustomization' ? target : undefined].filter((o): o is Obj => o !== undefined);
    const followable = (k: string | undefined) => k === 'GitRepository' || k === 'OCIRepository';
    if (appliers.length === 0 && !followable(chartSource?.kind)) {
      return {
        state: 'failed',
        message: `HelmRelease ${namespace}/${name} reads its chart from a ${chartSource?.kind ?? 'missing'} source and no Kustomization applies it; only GitRepository sources, and OCIRepository artifacts that record their Git origin, can be followed to a commit`,
      };
    }
    const followed: Ref[] = [];
    /** OCIRepositories whose artifacts record the commit they were built from (origin.ts, issue 18 item 14). */
    const ociFollowed: Ref[] = [];
    for (const applier of appliers) {
      const ref = applier.spec?.sourceRef;
      if (!followable(ref?.kind))
        return {
          state: 'failed',
          message: `${objectName(applier)} reads from a ${ref?.kind ?? 'missing'} source; only GitRepository sources, and OCIRepository artifacts that record their Git origin, can be followed to a commit`,
        };
      addRef(ref!.kind === 'OCIRepository' ? ociFollowed : followed, {
        namespace: ref!.namespace ?? applier.metadata.namespace ?? namespace,
        name: ref!.name,
      });
    }
    let chartFromOurRepo = false;
    if (chartSource?.kind === 'OCIRepository') {
      // Its artifacts name their origin; origin.ts follows it, and the check below refuses another repository's.
      chartFromOurRepo = true;
      addRef(ociFollowed, { namespace: chartSource.namespace || namespace, name: chartSource.name });
    }
    const ocis = ociFollowed.length > 0 ? this.cluster.watch<Obj>(OCIREPOSITORIES) : undefined;
    if (ocis) await untilSynced(ocis.synced, req.deadline, 'Flux OCIRepositories');
    for (const ref of ociFollowed) {
      const oci = ocis!.get(ref.namespace, ref.name);
      if (!oci) return notFound('OCIRepository', ref.namespace, ref.name);
      const source = (oci.status?.artifact as { metadata?: Record<string, string> } | undefined)?.metadata?.[ORIGIN_SOURCE];
      if (source && !sameRepository(source, req.repoUrl))
        return {
          state: 'failed',
          message: `${objectName(oci)} serves artifacts built from ${source} (${ORIGIN_SOURCE}), not our repository ${req.repoUrl}; our commit never reaches it`,
        };
    }
    if (chartSource?.kind === 'GitRepository') {
      const ref = { namespace: chartSource.namespace ?? namespace, name: chartSource.name };
      const repo = sources.get(ref.namespace, ref.name);
      chartFromOurRepo = typeof repo?.spec?.['url'] === 'string' && sameRepository(repo.spec['url'], req.repoUrl);
      if (chartFromOurRepo || appliers.length === 0) addRef(followed, ref);
    }
    for (const ref of followed) {
      const src = sources.get(ref.namespace, ref.name);
      if (!src) return notFound('GitRepository', ref.namespace, ref.name);
      const wrong = checkGitRepositoryRef(src, { repoUrl: req.repoUrl, branch: req.branch });
      if (wrong) return wrong as FinalVerdict;
    }

    // Sources first. Each controller echoes the request's token in status.lastHandledReconcileAt; the rules read the
    // sources' tokens (the target's own is judged by what it applied).
    const tokens = new Map<string, string>();
    /** Each source's artifact when we asked: a status still showing it after our request proves nothing. */
    const artifactsBefore = new Map<string, string | undefined>();
    for (const ref of followed) artifactsBefore.set(refKey(ref), sources.get(ref.namespace, ref.name)?.status?.artifact?.revision);
    const requestAll = async (): Promise<string> => {
      for (const ref of followed) tokens.set(refKey(ref), await this.requestReconcile('GitRepository', ref));
      // An OCIRepository gets our commit only once a pipeline pushed it; ask now, its interval does the rest.
      for (const ref of ociFollowed) await this.requestReconcile('OCIRepository', ref);
      if (managerRef) await this.requestReconcile('Kustomization', managerRef);
      return this.requestReconcile(kind, { namespace, name });
    };
    const token = await requestAll();
    req.log.info({ token, sources: followed, manager: managerRef }, 'flux reconcile requested');
    /**
     * While the API server is away every controller's status write fails, and Flux retries a failed object with an
     * exponential backoff (fluxcd/pkg runtime/controller rate_limiter.go: --min-retry-delay 750 ms doubling up to
     * --max-retry-delay 15 min): after a one-minute outage our GitRepository sat out 96 s more (faults.e2e). What
     * `flux reconcile` does by hand, the wait does when its watches are back: a request annotation is a watch event,
     * which the controllers queue at once, past the backoff. The new tokens replace the old ones, so the rules judge
     * only a status written after it.
     */
    const askAgain = () =>
      requestAll().then(
        (again) => req.log.info({ token: again }, 'flux reconcile requested again: the Kubernetes API was back after failing'),
        (err: unknown) => req.log.warn({ err }, 'could not request a Flux reconcile again after the Kubernetes API was back'),
      );

    // After the manager applied our commit, the target must reconcile once more to act on what it applied.
    let requestedAfterApply: string | undefined;
    let managerApplied = false;
    const startGeneration = target.metadata.generation;
    const firstSeen = new Map<string, number>();
    const clock = (): Clock => ({ now: Date.now(), since: (key) => firstSeen.get(key) ?? (firstSeen.set(key, Date.now()), Date.now()) });
    let onChange: (() => void) | undefined;
    const followedObjects = new Map<string, () => void>();
    const follow = <T extends KubeObject>(watch: ObjectWatch<T>, ns: string, n: string): T | undefined => {
      const key = `${watch.resource}/${ns}/${n}`;
      if (onChange && !followedObjects.has(key)) followedObjects.set(key, watch.subscribe(ns, n, onChange));
      return watch.get(ns, n);
    };
    const view: FluxView = {
      kustomization: (ns, n) => follow(kustomizations, ns, n),
      helmChart: (ns, n) => (charts ? follow(charts, ns, n) : undefined),
      helmRelease: (ns, n) => (releases ? follow(releases, ns, n) : undefined),
      ociRepository: (ns, n) => (ocis ? follow(ocis, ns, n) : undefined),
      workload: (ref) => {
        const watch = workloads[ref.kind as WorkloadKind];
        return watch ? follow(watch, ref.namespace, ref.name) : undefined;
      },
    };
    let recheck: NodeJS.Timeout | undefined;

    return waitForVerdict({
      ...waitingFor(req),
      observe: (listener) => {
        onChange = listener;
        for (const ref of followed) follow(sources, ref.namespace, ref.name);
        for (const ref of ociFollowed) follow(ocis!, ref.namespace, ref.name);
        if (managerRef) follow(kustomizations, managerRef.namespace, managerRef.name);
        follow(targets, namespace, name);
        const resumed = [sources, targets].map((watch) => watch.onResumed(() => void askAgain()));
        return () => {
          clearTimeout(recheck);
          for (const off of resumed) off();
          for (const off of followedObjects.values()) off();
          followedObjects.clear();
        };
      },
      nudge: async () => {
        if (!managerApplied || requestedAfterApply) return;
        const afterApply = await this.requestReconcile(kind, { namespace, name });
        requestedAfterApply = afterApply;
        req.log.info({ token: afterApply }, 'flux reconcile requested after the manager applied our commit');
      },
      evaluate: (expected): Verdict => {
        for (const ref of followed) {
          const src = sources.get(ref.namespace, ref.name);
          if (!src) return { state: 'failed', message: `GitRepository ${ref.namespace}/${ref.name} was deleted` };
          const verdict = evaluateGitRepository(src, tokens.get(refKey(ref)), expected, artifactsBefore.get(refKey(ref)));
          if (verdict) return verdict;
        }
        const now = targets.get(namespace, name);
        if (!now) return { state: 'failed', message: `${kind} ${namespace}/${name} was deleted` };
        const currentManager = managerRef && kustomizations.get(managerRef.namespace, managerRef.name);
        if (managerRef && !currentManager)
          return { state: 'failed', message: `Kustomization ${managerRef.namespace}/${managerRef.name} was deleted` };
        const ctx: HelmReleaseContext = {
          view,
          images: req.images,
          files: req.files,
          clock: clock(),
          chartFromOurRepo,
          ...(currentManager ? { manager: currentManager } : {}),
          ...(requestedAfterApply ? { requestedAfterApply } : {}),
          ...(startGeneration !== undefined ? { startGeneration } : {}),
        };
        if (
          currentManager &&
          !managerApplied &&
          evaluateKustomization(currentManager, expected, { ...ctx, images: [], manager: undefined }).state === 'passed'
        ) {
          managerApplied = true;
          // nudge() writes the request; run the waiter once more so it does.
          if (onChange) queueMicrotask(onChange);
        }
        const verdict = kind === 'HelmRelease' ? evaluateHelmRelease(now, expected, ctx) : evaluateKustomization(now, expected, ctx);
        if (verdict.state === 'pending' && verdict.recheckAt !== undefined && onChange) {
          clearTimeout(recheck);
          recheck = setTimeout(onChange, Math.max(0, verdict.recheckAt - Date.now()));
          recheck.unref();
        }
        return verdict;
      },
      timeoutMessage: toolTimeoutMessage('Flux', req.commit),
    });
  }
}

/** The Kustomization that applies `obj`, from the labels kustomize-controller sets; never the object itself. */
function managerOf(obj: Obj, kind: 'Kustomization' | 'HelmRelease'): Ref | undefined {
  const name = obj.metadata.labels?.[MANAGER_NAME];
  if (!name) return undefined;
  const ref = { name, namespace: obj.metadata.labels?.[MANAGER_NAMESPACE] ?? obj.metadata.namespace ?? '' };
  if (kind === 'Kustomization' && ref.name === obj.metadata.name && ref.namespace === obj.metadata.namespace) return undefined;
  return ref;
}

function refKey(ref: Ref): string {
  return `${ref.namespace}/${ref.name}`;
}

function addRef(refs: Ref[], ref: Ref): void {
  if (!refs.some((r) => r.namespace === ref.namespace && r.name === ref.name)) refs.push(ref);
}

function notFound(kind: string, namespace: string, name: string): FinalVerdict {
  return { state: 'failed', message: `Flux ${kind} ${namespace}/${name} not found; check target in the settings` };
}
