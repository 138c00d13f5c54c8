/**
 * Argo CD: check that the Application follows our branch, hard refresh, start a sync of our revision when automated
 * sync is off (after anyone else's operation, written as Argo CD's own API sync writes it), then follow the
 * Application to a verdict. The verdict itself is the pure rule in evaluate.ts.
 * @see https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/
 */
import { messageOf } from '../../shared/errors.js';
import type { Cluster } from '../../platform/k8s/cluster.js';
import { Coalescer } from '../../platform/k8s/coalesce.js';
import { untilSynced, type KubeObject } from '../../platform/k8s/watch.js';
import { parseDuration } from '../../shared/duration.js';
import { isRetryableError, retry, type RetryPolicy } from '../../shared/retry.js';
import type { DeliveryRequest, DeliveryTool } from '../../judge/tool.js';
import { toolTimeoutMessage, waitForVerdict, waitingFor, type FinalVerdict } from '../../judge/wait.js';
import { blockedUntil, type SyncWindow } from './windows.js';
import { followedApplication, generatedFromFile, owningApplicationSet, syncsStepByStep, type ApplicationSet } from './topology.js';
import { PodlessReads } from './podless.js';
import { PausedRollouts } from './paused-rollouts.js';
import { UnhealthyReads } from './unhealthy.js';
import {
  alreadyPastOurs,
  comparisonError,
  DEFAULT_DEGRADED_GRACE_MS,
  evaluateApplication,
  isAutomated,
  isTransportError,
  OPERATION_INFO_KEY,
  prunes,
  sourcesOf,
  trackedSource,
  type Application,
  revisionsSyncedOrSyncing,
  type RefreshState,
} from './evaluate.js';
import type { Relation } from '../../judge/verdict.js';

export { isAutomated } from './evaluate.js';

export const APPLICATIONS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };
export const APP_PROJECTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'appprojects' };
export const APPLICATION_SETS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applicationsets' };
const REFRESH = 'argocd.argoproj.io/refresh';

/** Read-then-write of `operation`: a conflict means someone wrote in between, so read again soon. */
const SYNC_WRITE: RetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 4_000 };

type App = Application & KubeObject;

/**
 * The `operation` that syncs our commit, carrying what Argo CD's own API sync takes from the Application
 * (server/application/application.go Sync): the source(s), `syncOptions` (e.g. CreateNamespace=true), the retry
 * strategy, and the prune setting that automated sync would use. Tagged with our deployment id.
 */
export function syncOperation(app: Application, sourceIndex: number, commit: string, deploymentId: string): Record<string, unknown> {
  const policy = app.spec.syncPolicy;
  const sync: Record<string, unknown> = app.spec.sources?.length
    ? { sources: app.spec.sources, revisions: sourcesOf(app).map((s, i) => (i === sourceIndex ? commit : s.targetRevision || 'HEAD')) }
    : { ...(app.spec.source ? { source: app.spec.source } : {}), revision: commit };
  sync['prune'] = prunes(app);
  if (policy?.syncOptions?.length) sync['syncOptions'] = policy.syncOptions;
  return {
    initiatedBy: { username: 'keptn-gitops-service' },
    info: [{ name: OPERATION_INFO_KEY, value: deploymentId }],
    sync,
    ...(policy?.retry ? { retry: policy.retry } : {}),
  };
}

/**
 * A refresh we asked for is handled once an Application written after our request no longer carries the
 * annotation: the controller consumes it in the same write as the comparison (controller/appcontroller.go
 * persistReconciliationStatus). Decided from the objects alone, never from the controller's clock against ours.
 */
export class RefreshRequest {
  state: RefreshState = 'none';
  private before: string | undefined;

  requested(resourceVersionBefore: string | undefined): void {
    this.state = 'requested';
    this.before = resourceVersionBefore;
  }

  observe(app: App): void {
    if (this.state === 'requested' && !app.metadata.annotations?.[REFRESH] && app.metadata.resourceVersion !== this.before)
      this.state = 'handled';
  }
}

export class ArgoCDTool implements DeliveryTool {
  readonly kinds = ['Application'] as const;

  /** Hard refreshes, one per Application at a time however many deployments wait on it. */
  private readonly refreshes = new Coalescer<string | undefined>();

  constructor(
    private readonly cluster: Cluster,
    private readonly clock: () => number = Date.now,
  ) {}

  async deliver(req: DeliveryRequest): Promise<FinalVerdict> {
    const apps = this.cluster.watch<App>(APPLICATIONS);
    await untilSynced(apps.synced, req.deadline, 'Argo CD Applications');
    const target = apps.get(req.target.namespace, req.target.name);
    if (!target)
      return {
        state: 'failed',
        message: `Argo CD Application ${req.target.namespace}/${req.target.name} not found; check target in the settings`,
      };
    // An app of apps: the child that deploys our file is what runs our change (topology.ts followedApplication).
    const followed = followedApplication(target, (ns, n) => apps.get(ns, n), req.repoUrl, req.branch, req.files);
    if ('problem' in followed) return { state: 'failed', message: followed.problem };
    const app = followed.app as App;
    const namespace = app.metadata.namespace ?? req.target.namespace;
    const name = app.metadata.name;
    const tracked = trackedSource(app, req.repoUrl, req.branch);
    if ('problem' in tracked) return { state: 'failed', message: tracked.problem };
    const generated = await this.generatedBy(app, req);

    const ref = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', namespace, name };
    const hardRefresh = new RefreshRequest();
    const retryRefresh = new RefreshRequest();
    // Shared with every deployment waiting on this Application (a refresh written after each of them asked).
    const before = await this.refreshes.run(`${namespace}/${name}`, async () => {
      const version = apps.get(namespace, name)?.metadata.resourceVersion;
      await this.cluster.mergePatch(ref, { metadata: { annotations: { [REFRESH]: 'hard' } } });
      return version;
    });
    hardRefresh.requested(before);
    // A release (verifyOnly) never syncs: its commit may be older than the branch, and a sync of it would undo later ones.
    // A RollingSync ApplicationSet syncs its Applications step by step; a sync of ours would skip its steps.
    const mustSync = !isAutomated(app) && !req.verifyOnly && !generated.syncedBy;
    let syncStarted = false;
    let syncSkipped: string | undefined;
    let syncedSpec: string | undefined;
    let syncFailure: string | undefined;
    const log = req.log.child({ application: `${namespace}/${name}` });
    log.info({ sourceIndex: tracked.index, mustSync, via: followed.via, ...generated }, 'argo cd refresh requested');
    const podless = new PodlessReads(this.cluster, app);
    const paused = new PausedRollouts(this.cluster, app, (req.argocd?.suspended ?? 'fail') === 'fail', this.clock);
    const unhealthy = new UnhealthyReads(this.cluster, app);

    const syncBlocked = await this.windowsBlocking(app, mustSync, req);
    const graceMs = req.argocd?.degradedGrace ? parseDuration(req.argocd.degradedGrace) : DEFAULT_DEGRADED_GRACE_MS;
    const degraded = new DegradedClock(graceMs, this.clock);
    const observeRefreshes = (current: App) => {
      hardRefresh.observe(current);
      retryRefresh.observe(current);
    };

    return waitForVerdict({
      ...waitingFor(req),
      observe: (onChange) => {
        degraded.onElapsed = onChange;
        paused.onChange = onChange;
        const unsubscribe = apps.subscribe(namespace, name, onChange);
        return () => {
          unsubscribe();
          degraded.stop();
          paused.stop();
        };
      },
      nudge: async () => {
        const current = apps.get(namespace, name);
        if (!current) return;
        observeRefreshes(current);
        if (retryRefresh.state === 'none' && isTransportError(comparisonError(current))) {
          await this.cluster.mergePatch(ref, { metadata: { annotations: { [REFRESH]: 'normal' } } });
          retryRefresh.requested(current.metadata.resourceVersion);
          log.info({ comparisonError: comparisonError(current) }, 'argo cd could not reach the repository; normal refresh requested');
        }
        await podless.refresh(current, req.images);
        await paused.refresh(current, req.deadline);
        await unhealthy.refresh(current);
        // A Git files generator regenerated the Application after our sync (our file is in its spec now, not in the
        // manifests we synced): the new spec needs a sync too. Its status is no part of spec, so compare spec only.
        if (syncStarted && generated.regeneratedBy && JSON.stringify(current.spec) !== syncedSpec) syncStarted = false;
        if (!mustSync || syncStarted || syncFailure || syncSkipped) return;
        // "another operation is already in progress": wait for it to end before starting ours.
        if (current.operation || current.status?.operationState?.phase === 'Running') return;
        try {
          const started = await this.startSync(namespace, name, tracked.index, req, syncedSpec !== undefined);
          if (typeof started === 'string') {
            syncSkipped = started;
            log.info({ revision: started }, 'argo cd already synced a revision containing ours; no sync of ours (it would go backwards)');
          } else syncStarted = started;
          syncedSpec = JSON.stringify(current.spec);
          if (syncStarted) log.info('argo cd sync started');
        } catch (err: unknown) {
          log.warn({ err }, 'argo cd sync could not be started');
          // Conflicts and API outages that outlasted the retries: the next change of the Application tries again.
          if (!isRetryableError(err))
            syncFailure = `could not start the Argo CD sync of Application ${namespace}/${name}: ${messageOf(err)}`;
        }
      },
      evaluate: (expected) => {
        if (syncFailure) return { state: 'failed', message: syncFailure };
        const current = apps.get(namespace, name);
        if (!current) return { state: 'failed', message: `Argo CD Application ${namespace}/${name} was deleted` };
        observeRefreshes(current);
        // Workloads our sync applied may run no Pods by design: read them (the next nudge) before judging the images.
        if (podless.due(current, req.images))
          return { state: 'pending', reason: 'reading the live workloads our sync applied (they may run no Pods by design)' };
        // A Suspended Application's Rollouts may be in a timed pause: read them before judging the pause.
        if (paused.due(current)) return { state: 'pending', reason: 'reading the Argo Rollouts of the Suspended Application' };
        return evaluateApplication(current, {
          ...expected,
          sourceIndex: tracked.index,
          trackedHead: tracked.tracksHead,
          branch: req.branch,
          operationTag: req.deploymentId,
          hardRefresh: hardRefresh.state,
          retryRefresh: retryRefresh.state,
          images: req.images,
          files: req.files,
          ...(req.argocd?.suspended ? { suspended: req.argocd.suspended } : {}),
          degradedForMs: degraded.observe(current.status?.health?.status === 'Degraded', degradedSpell(current)),
          degradedGraceMs: graceMs,
          ...(syncBlocked ? { syncBlocked } : {}),
          ...(podless.found.length ? { podless: podless.found } : {}),
          ...paused.expectation(current),
          ...(unhealthy.found.length ? { unhealthy: unhealthy.found } : {}),
          ...generated,
        });
      },
      timeoutMessage: toolTimeoutMessage('Argo CD', req.commit),
    });
  }

  /**
   * Whether the AppProject's sync windows keep our sync (or automated sync) from running until after the deadline.
   * A project we cannot read decides nothing: the wait then reports Argo CD's "blocked by sync window" until the end.
   */
  private async windowsBlocking(app: App, manual: boolean, req: DeliveryRequest): Promise<string | undefined> {
    const project = app.spec.project || 'default';
    const namespace = app.status?.controllerNamespace ?? app.metadata.namespace ?? 'argocd';
    try {
      const appProject = await this.cluster.readFresh<KubeObject & { spec?: { syncWindows?: SyncWindow[] } }>(
        APP_PROJECTS,
        namespace,
        project,
      );
      const windows = appProject.spec?.syncWindows ?? [];
      const block = blockedUntil(
        windows,
        { name: app.metadata.name, destination: app.spec.destination ?? {} },
        manual,
        this.clock(),
        req.deadline,
      );
      return block
        ? `${block.because} in AppProject ${project} blocks ${manual ? 'manual' : 'automated'} syncs until after the deadline`
        : undefined;
    } catch (err: unknown) {
      req.log.warn({ err, project }, 'argo cd project not readable; sync windows not checked');
      return undefined;
    }
  }

  /**
   * Writes our `operation` on a fresh read, at that read's resourceVersion, and clears the previous operation state,
   * as Argo CD's own sync does (util/argo SetAppOperation). False when someone else's operation got there first; the
   * revision instead when the Application already synced (or syncs) a commit that contains ours (never backwards).
   */
  private startSync(namespace: string, name: string, sourceIndex: number, req: DeliveryRequest, again = false): Promise<boolean | string> {
    return retry(SYNC_WRITE, async () => {
      const fresh = await this.cluster.readFresh<App>(APPLICATIONS, namespace, name);
      if (fresh.operation) return false;
      const relations = new Map<string, Relation>();
      for (const sha of revisionsSyncedOrSyncing(fresh, sourceIndex)) relations.set(sha, await req.relation(sha));
      // `unknown` (not in the repository even after a fetch: force-pushed away, another branch) contains nothing of ours.
      // `again`: our commit was synced before the ApplicationSet regenerated the spec; only a later commit holds us back.
      const later = alreadyPastOurs(fresh, sourceIndex, (sha) =>
        req.commit.startsWith(sha) ? (again ? 'unrelated' : 'same') : (relations.get(sha) ?? 'unrelated'),
      );
      if (later) return later;
      await this.cluster.mergePatchAt(APPLICATIONS, namespace, name, fresh.metadata.resourceVersion ?? '', {
        operation: syncOperation(fresh, sourceIndex, req.commit, req.deploymentId),
        status: { operationState: null },
      });
      return true;
    });
  }

  /**
   * What an owning ApplicationSet changes (topology.ts): with RollingSync it syncs the Application itself; with a Git
   * files generator reading our file it must regenerate the Application before our change is in its spec. An
   * ApplicationSet the service may not read could be either: then it starts no sync, and says why while it waits.
   */
  private async generatedBy(app: App, req: DeliveryRequest): Promise<{ syncedBy?: string; regeneratedBy?: string }> {
    const owner = owningApplicationSet(app as App & { metadata: { ownerReferences?: [] } });
    if (!owner) return {};
    const namespace = app.metadata.namespace ?? 'argocd';
    const shown = `ApplicationSet ${namespace}/${owner}`;
    let appSet: ApplicationSet;
    try {
      appSet = await this.cluster.readFresh<ApplicationSet & KubeObject>(APPLICATION_SETS, namespace, owner);
    } catch (err: unknown) {
      req.log.warn({ err, applicationSet: owner }, 'argo cd applicationset not readable; no sync of ours');
      return { syncedBy: `its ${shown}, which the service cannot read (${messageOf(err)}; grant get on applicationsets)` };
    }
    const file = generatedFromFile(appSet, req.repoUrl, req.branch, req.files);
    return {
      ...(syncsStepByStep(appSet) ? { syncedBy: `its ${shown} (RollingSync, step by step)` } : {}),
      ...(file ? { regeneratedBy: `${shown}, whose Git files generator reads ${file}` } : {}),
    };
  }
}

/** What a Degraded count is about (the compared revision and the last sync): a new one starts the count again. */
export function degradedSpell(app: App): string {
  const status = app.status;
  return JSON.stringify([status?.sync?.revision, status?.sync?.revisions, status?.operationState?.finishedAt]);
}

/**
 * How long health has been Degraded without a break, on this service's clock alone, and a wake-up when the grace
 * period ends (nothing else may change on the Application to make the waiter look again).
 */
export class DegradedClock {
  onElapsed: (() => void) | undefined;
  private since: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly graceMs: number,
    private readonly clock: () => number,
  ) {}

  private spell: string | undefined;

  /** `spell` names what is Degraded (revision and sync); a new one starts the count again. */
  observe(isDegraded: boolean, spell: string): number {
    if (!isDegraded || spell !== this.spell) this.stop();
    this.spell = spell;
    if (!isDegraded) return 0;
    const now = this.clock();
    this.since ??= now;
    this.timer ??= setTimeout(() => this.onElapsed?.(), Math.max(0, this.since + this.graceMs - now) + 10);
    return now - this.since;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.since = undefined;
  }
}
