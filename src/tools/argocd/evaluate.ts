/**
 * When has Argo CD applied our commit? Pure rules over an Application (Argo CD 3.5).
 * Never trust Synced/Healthy alone: right after a push both still describe the previous revision, and health is
 * only recomputed once `reconciledAt` has passed the end of the sync operation. The rule table, state by state, is
 * docs/verdicts.md (Argo CD).
 * @see https://argo-cd.readthedocs.io/en/stable/user-guide/application-specification/
 */
import { commitOf, contains, type Relation, type Verdict } from '../../judge/verdict.js';
import {
  appName,
  isAutomated,
  isMultiSource,
  OPERATION_INFO_KEY,
  prunes,
  resourceName,
  revisionOfSource,
  type Application,
} from './application.js';
import type { ArgoExpectation } from './expectation.js';
import { appliedImages, degraded, runningOurImage } from './health.js';
import { suspendedWithoutConsent } from './suspended.js';

// The entry points other modules import from here (kept stable when the rules were split by job).
export {
  isAutomated,
  OPERATION_INFO_KEY,
  prunes,
  sourcesOf,
  trackedSource,
  type Application,
  type ApplicationSource,
  type ResourceRef,
  type TrackedSource,
} from './application.js';
export { DEFAULT_DEGRADED_GRACE_MS, type ArgoExpectation, type RefreshState, type SuspendedVerdict } from './expectation.js';
export { sameImage } from './health.js';

/** Transport failures of the repo-server or Git (not of our manifests): worth another refresh before failing. */
const TRANSPORT_ERROR =
  /code = (Unavailable|DeadlineExceeded|ResourceExhausted|Aborted)\b|context deadline exceeded|i\/o timeout|connection (refused|reset)|no such host|TLS handshake timeout|unexpected EOF|remote end hung up|\b(502|503|504) (Bad Gateway|Service Unavailable|Gateway Time-?out)|status code: (429|502|503|504)\b/i;

export function isTransportError(message: string | undefined): boolean {
  return message !== undefined && TRANSPORT_ERROR.test(message);
}

export function comparisonError(app: Application): string | undefined {
  const condition = app.status?.conditions?.find((c) => c.type === 'ComparisonError');
  return condition ? (condition.message ?? '') : undefined;
}

export function evaluateApplication(app: Application, expected: ArgoExpectation): Verdict {
  const multi = isMultiSource(app);
  const status = app.status ?? {};
  const op = status.operationState;
  const index = expected.sourceIndex;

  const spec = status.conditions?.find((c) => c.type === 'InvalidSpecError');
  if (spec) return { state: 'failed', message: `${appName(app)} has an invalid spec: ${spec.message ?? ''}` };

  const comparedRevision = revisionOfSource(status.sync?.revision, status.sync?.revisions, index, multi);
  const synced = commitOf(comparedRevision);
  const syncedRel = synced ? expected.relation(synced) : undefined;
  if (synced && syncedRel === 'unknown')
    return { state: 'pending', reason: `learning how ${synced} relates to our commit`, unknownRevision: synced };
  const oursCompared = syncedRel !== undefined && contains(syncedRel);

  const opRevision = commitOf(
    revisionOfSource(
      op?.syncResult?.revision ?? op?.operation?.sync?.revision,
      op?.syncResult?.revisions ?? op?.operation?.sync?.revisions,
      index,
      multi,
    ),
  );
  const opRel = opRevision ? expected.relation(opRevision) : undefined;
  if (opRevision && opRel === 'unknown')
    return { state: 'pending', reason: `learning how ${opRevision} relates to our commit`, unknownRevision: opRevision };
  const ourOperation =
    (expected.operationTag !== undefined &&
      op?.operation?.info?.some((i) => i.name === OPERATION_INFO_KEY && i.value === expected.operationTag)) ||
    (opRel !== undefined && contains(opRel));

  if (ourOperation && (op?.phase === 'Failed' || op?.phase === 'Error')) {
    return {
      state: 'failed',
      message: `Argo CD sync of ${appName(app)} ${op.phase === 'Error' ? 'errored' : 'failed'}: ${op.message ?? ''}`.trim(),
      ...(opRevision ? { revision: opRevision } : {}),
    };
  }

  // When manifests cannot be generated Argo CD reports the branch (`main`), not a commit, as the compared revision;
  // a comparison written after the controller consumed our refresh request saw the branch with our commit on it.
  const comparison = comparisonError(app);
  if (comparison !== undefined && (oursCompared || (synced === undefined && expected.hardRefresh === 'handled'))) {
    const at = synced ?? comparedRevision ?? 'our revision';
    if (isTransportError(comparison)) {
      // A hard refresh skips Argo CD's grace period for repository errors, so one failed fetch shows at once.
      if (expected.retryRefresh !== 'handled')
        return {
          state: 'pending',
          reason: `Argo CD could not reach the repository for ${appName(app)} (${comparison}); retrying with a normal refresh`,
        };
      return { state: 'failed', message: `Argo CD still cannot compare ${appName(app)} at ${at} after a retry: ${comparison}` };
    }
    return { state: 'failed', message: `Argo CD cannot compare ${appName(app)} at ${at}: ${comparison}` };
  }

  if (!oursCompared) {
    // HEAD is resolved by Argo CD: once it compared after our refresh, a HEAD without our commit is another branch.
    if (expected.trackedHead && expected.hardRefresh === 'handled' && synced && syncedRel === 'unrelated') {
      return {
        state: 'failed',
        message: `${appName(app)} tracks HEAD, which resolves to ${synced.slice(0, 12)}, not to branch ${expected.branch ?? 'of our commit'}: it never deploys our commit`,
      };
    }
    return {
      state: 'pending',
      reason: `${appName(app)} compares ${synced?.slice(0, 12) ?? 'no revision'} so far; waiting for a refresh to see our commit`,
    };
  }
  const windowClosed = expected.syncBlocked
    ? `Argo CD cannot sync ${appName(app)} before the deadline: ${expected.syncBlocked}`
    : undefined;
  if (op?.phase === 'Running' || op?.phase === 'Terminating') {
    // controller/sync.go SyncAppState: a running operation waits with this message while a window blocks it.
    if (windowClosed && op.message?.includes('blocked by sync window'))
      return { state: 'failed', message: windowClosed, revision: synced! };
    return { state: 'pending', reason: `Argo CD is syncing ${appName(app)}: ${op.message ?? op.phase}` };
  }
  if (app.operation)
    return {
      state: 'pending',
      reason: `${appName(app)} has a sync operation queued${ourOperation ? '' : ' that is not ours; ours starts after it'}`,
    };

  if (status.sync?.status !== 'Synced') {
    const stuck = pruneOnly(app, expected, Boolean(ourOperation && op?.phase === 'Succeeded'));
    if (stuck) return { state: 'failed', message: stuck, revision: synced! };
    // Automated sync does not start while a window blocks it, and says nothing about it in the status.
    if (windowClosed && !app.operation && isAutomated(app)) return { state: 'failed', message: windowClosed, revision: synced! };
    const by = expected.syncedBy ? `; ${expected.syncedBy} syncs it, the service starts no sync of its own` : '';
    return { state: 'pending', reason: `${appName(app)} is ${status.sync?.status ?? 'not compared yet'} at ${synced}${by}` };
  }
  if (op?.finishedAt && (!status.reconciledAt || Date.parse(status.reconciledAt) < Date.parse(op.finishedAt))) {
    return { state: 'pending', reason: `${appName(app)} health not yet reassessed after the sync`, applied: synced! };
  }

  const health = status.health?.status;
  if (health === 'Healthy') return runningOurImage(app, expected, synced!, 'Healthy', [], ourOperation === true);
  if (health === 'Degraded') return appliedAt(degraded(app, expected, synced!, ourOperation === true), synced!);
  if (health === 'Suspended') {
    const verdict = expected.suspended ?? 'fail';
    // Paused on purpose: the new Pods may not exist yet, so the image applied by our sync counts as well.
    if (verdict === 'pass')
      return runningOurImage(app, expected, synced!, 'Suspended (argocd.suspended: pass)', ourOperation ? appliedImages(app) : []);
    if (verdict === 'fail') return suspendedWithoutConsent(app, expected, synced!);
  }
  const behind = notHealthy(app, expected);
  return {
    state: 'pending',
    reason: `${appName(app)} is ${health ?? 'of unknown health'} at ${synced}${status.health?.message ? `: ${status.health.message}` : ''}${behind.length ? `; not Healthy: ${behind.join('; ')}` : ''}`,
    applied: synced!,
  };
}

/** Synced to our commit: a pending answer from here on is about health, with our commit applied (issue 24 item 2). */
function appliedAt(verdict: Verdict, synced: string): Verdict {
  return verdict.state === 'pending' ? { ...verdict, applied: synced } : verdict;
}

/**
 * The resources that keep the Application from Healthy, with Argo CD's message: from `status.resources[].health`
 * when the controller persists it (`controller.resource.health.persist`), else from the live workloads the driver
 * read (unhealthy.ts).
 */
function notHealthy(app: Application, expected: ArgoExpectation): string[] {
  const persisted = (app.status?.resources ?? []).filter((r) => r.health?.status && r.health.status !== 'Healthy');
  if (persisted.length)
    return persisted.map((r) => `${resourceName(r)} is ${r.health!.status}${r.health!.message ? `: ${r.health!.message}` : ''}`);
  return [...(expected.unhealthy ?? [])];
}

/**
 * The commits of our source that the Application has synced, is syncing, or is asked to sync: a queued operation,
 * the last operation unless it failed, and the compared revision once the live state matches it (`Synced`).
 */
export function revisionsSyncedOrSyncing(app: Application, sourceIndex: number): string[] {
  const multi = isMultiSource(app);
  const op = app.status?.operationState;
  const candidates = [
    revisionOfSource(app.operation?.sync?.revision, app.operation?.sync?.revisions, sourceIndex, multi),
    ...(op && op.phase !== 'Failed' && op.phase !== 'Error'
      ? [
          revisionOfSource(
            op.syncResult?.revision ?? op.operation?.sync?.revision,
            op.syncResult?.revisions ?? op.operation?.sync?.revisions,
            sourceIndex,
            multi,
          ),
        ]
      : []),
    ...(app.status?.sync?.status === 'Synced'
      ? [revisionOfSource(app.status.sync.revision, app.status.sync.revisions, sourceIndex, multi)]
      : []),
  ];
  return [...new Set(candidates.map(commitOf).filter((c): c is string => c !== undefined))];
}

/**
 * Never sync backwards: a commit the Application already synced (or is syncing) that contains ours, if any. A sync
 * of our commit then would take the later commits back; Argo CD's own automated sync only ever syncs the compared
 * revision, the newest of the branch, and skips one it already synced (argo-cd controller/appcontroller.go autoSync,
 * alreadyAttemptedSync). Our commit is then judged on that later revision, which contains it.
 */
export function alreadyPastOurs(app: Application, sourceIndex: number, relation: (sha: string) => Relation): string | undefined {
  return revisionsSyncedOrSyncing(app, sourceIndex).find((sha) => contains(relation(sha)));
}

/**
 * OutOfSync only because resources wait to be pruned, and nobody will prune them: automated sync skips it when
 * `automated.prune` is off (controller/appcontroller.go autoSync, "need to prune extra resources only"), and the
 * sync we started carried the same prune setting.
 */
function pruneOnly(app: Application, expected: ArgoExpectation, ourSyncDone: boolean): string | undefined {
  const resources = app.status?.resources ?? [];
  const toPrune = resources.filter((r) => r.requiresPruning);
  if (toPrune.length === 0 || prunes(app) || !resources.every((r) => r.status === 'Synced' || r.requiresPruning)) return undefined;
  if (!isAutomated(app) && !ourSyncDone) return undefined;
  const names = toPrune.slice(0, 5).map(resourceName).join(', ') + (toPrune.length > 5 ? ` and ${toPrune.length - 5} more` : '');
  return `${appName(app)} stays OutOfSync at ${expected.commit.slice(0, 12)} until ${names} ${toPrune.length === 1 ? 'is' : 'are'} pruned, and its sync policy does not prune (syncPolicy.automated.prune is off); prune them or turn prune on`;
}
