/**
 * Argo CD: check that the Application follows our branch, hard refresh, start a sync of our revision when automated
 * sync is off (after anyone else's operation, written as Argo CD's own API sync writes it), then follow the
 * Application to a verdict. The verdict itself is the pure rule in evaluate.ts.
 * @see https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/
 */
import { messageOf } from '../errors.js';
import type { Cluster } from '../k8s/cluster.js';
import { Coalescer } from '../k8s/coalesce.js';
import { untilSynced, type KubeObject } from '../k8s/watch.js';
import { parseDuration } from '../duration.js';
import { isRetryableError, retry, type RetryPolicy } from '../retry.js';
import type { DeliveryRequest, DeliveryTool } from '../tool.js';
import { waitForVerdict, waitingFor, type FinalVerdict } from '../wait.js';
import { blockedUntil, type SyncWindow } from './windows.js';
import {
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
  type RefreshState,
} from './evaluate.js';

export { isAutomated } from './evaluate.js';

export const APPLICATIONS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };
export const APP_PROJECTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'appprojects' };
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
    const { namespace, name } = req.target;
    const app = apps.get(namespace, name);
    if (!app) return { state: 'failed', message: `Argo CD Application ${namespace}/${name} not found; check target in the settings` };
    const tracked = trackedSource(app, req.repoUrl, req.branch);
    if ('problem' in tracked) return { state: 'failed', message: tracked.problem };

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
    const mustSync = !isAutomated(app) && !req.verifyOnly;
    let syncStarted = false;
    let syncFailure: string | undefined;
    const log = req.log.child({ application: `${namespace}/${name}` });
    log.info({ sourceIndex: tracked.index, mustSync }, 'argo cd refresh requested');

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
        const unsubscribe = apps.subscribe(namespace, name, onChange);
        return () => {
          unsubscribe();
          degraded.stop();
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
        if (!mustSync || syncStarted || syncFailure) return;
        // "another operation is already in progress": wait for it to end before starting ours.
        if (current.operation || current.status?.operationState?.phase === 'Running') return;
        try {
          syncStarted = await this.startSync(namespace, name, tracked.index, req);
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
        });
      },
      timeoutMessage: (last) => `Argo CD did not apply commit ${req.commit} in time: ${last}`,
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
   * as Argo CD's own sync does (util/argo SetAppOperation). False when someone else's operation got there first.
   */
  private startSync(namespace: string, name: string, sourceIndex: number, req: DeliveryRequest): Promise<boolean> {
    return retry(SYNC_WRITE, async () => {
      const fresh = await this.cluster.readFresh<App>(APPLICATIONS, namespace, name);
      if (fresh.operation) return false;
      await this.cluster.mergePatchAt(APPLICATIONS, namespace, name, fresh.metadata.resourceVersion ?? '', {
        operation: syncOperation(fresh, sourceIndex, req.commit, req.deploymentId),
        status: { operationState: null },
      });
      return true;
    });
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
