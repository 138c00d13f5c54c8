/**
 * When has Argo CD applied our commit? A pure rule over an Application.
 * Never trust Synced/Healthy alone: right after a push both still describe the previous revision, and health is
 * only recomputed once `reconciledAt` has passed the end of the sync operation.
 * @see https://argo-cd.readthedocs.io/en/stable/user-guide/application-specification/
 */
import { commitOf, contains, type Expectation, type Verdict } from '../readiness.js';

export interface ApplicationSource {
  repoURL: string;
  path?: string;
  targetRevision?: string;
  chart?: string;
}

export interface Application {
  metadata: { name: string; namespace?: string; generation?: number; annotations?: Record<string, string> };
  spec: { source?: ApplicationSource; sources?: ApplicationSource[]; syncPolicy?: { automated?: unknown } };
  operation?: { sync?: { revision?: string; revisions?: string[] }; info?: Array<{ name: string; value: string }> };
  status?: {
    sync?: { status?: string; revision?: string; revisions?: string[] };
    health?: { status?: string; message?: string };
    reconciledAt?: string;
    operationState?: {
      phase?: string;
      message?: string;
      startedAt?: string;
      finishedAt?: string;
      operation?: { info?: Array<{ name: string; value: string }>; sync?: { revision?: string; revisions?: string[] } };
      syncResult?: { revision?: string; revisions?: string[] };
    };
    conditions?: Array<{ type: string; message?: string }>;
  };
}

/** The `info` entry that marks a sync operation as started by this service for one deployment. */
export const OPERATION_INFO_KEY = 'keptn-triggeredid';

export interface ArgoExpectation extends Expectation {
  /** Which of `spec.sources` is our Git repository; 0 for a single-source Application. */
  sourceIndex: number;
  /** Our deployment's triggeredid, to recognise the operation we started. */
  operationTag?: string;
  /** When we asked for the hard refresh (ISO time): comparisons after it include our commit. */
  refreshedAt?: string;
}

/** Normalise a Git URL for comparison: scheme-less, no credentials, no `.git`, no trailing slash, lower case host. */
export function sameRepo(a: string, b: string): boolean {
  const norm = (u: string) =>
    u.trim().replace(/^[a-z+]+:\/\//i, '').replace(/^[^@/]+@/, '').replace(/\.git\/?$/, '').replace(/\/+$/, '').replace(':', '/').toLowerCase();
  return norm(a) === norm(b);
}

export function sourcesOf(app: Application): ApplicationSource[] {
  return app.spec.sources?.length ? app.spec.sources : app.spec.source ? [app.spec.source] : [];
}

function pick(single: string | undefined, many: string[] | undefined, index: number, multi: boolean): string | undefined {
  return multi ? many?.[index] : single;
}

function name(app: Application): string {
  return `Application ${app.metadata.namespace ?? ''}/${app.metadata.name}`;
}

/** `reconciledAt` has second precision: compare against the refresh request truncated to the second. */
function comparedAfter(reconciledAt: string | undefined, refreshedAt: string | undefined): boolean {
  if (!reconciledAt || !refreshedAt) return false;
  return Date.parse(reconciledAt) >= Math.floor(Date.parse(refreshedAt) / 1000) * 1000;
}

export function evaluateApplication(app: Application, target: ArgoExpectation): Verdict {
  const multi = Boolean(app.spec.sources?.length);
  const status = app.status ?? {};
  const op = status.operationState;

  const spec = status.conditions?.find((c) => c.type === 'InvalidSpecError');
  if (spec) return { state: 'failed', message: `${name(app)} has an invalid spec: ${spec.message ?? ''}` };

  const synced = commitOf(pick(status.sync?.revision, status.sync?.revisions, target.sourceIndex, multi));
  const syncedRel = synced ? target.relation(synced) : undefined;
  if (synced && syncedRel === 'unknown') return { state: 'pending', reason: `learning how ${synced} relates to our commit`, unknownRevision: synced };
  const oursCompared = syncedRel !== undefined && contains(syncedRel);

  const opRevision = commitOf(pick(op?.syncResult?.revision ?? op?.operation?.sync?.revision, op?.syncResult?.revisions ?? op?.operation?.sync?.revisions, target.sourceIndex, multi));
  const opRel = opRevision ? target.relation(opRevision) : undefined;
  const ourOperation =
    (target.operationTag !== undefined && op?.operation?.info?.some((i) => i.name === OPERATION_INFO_KEY && i.value === target.operationTag)) ||
    (opRel !== undefined && contains(opRel));

  if (ourOperation && (op?.phase === 'Failed' || op?.phase === 'Error')) {
    return { state: 'failed', message: `Argo CD sync of ${name(app)} ${op.phase === 'Error' ? 'errored' : 'failed'}: ${op.message ?? ''}`.trim(), ...(opRevision ? { revision: opRevision } : {}) };
  }
  // When manifests cannot be generated Argo CD reports the branch (`main`), not a commit, as the compared revision;
  // a comparison finished after our refresh request saw the branch with our commit on it.
  const comparison = status.conditions?.find((c) => c.type === 'ComparisonError');
  const comparedSinceRefresh = synced === undefined && comparedAfter(status.reconciledAt, target.refreshedAt);
  if (comparison && (oursCompared || comparedSinceRefresh)) {
    return { state: 'failed', message: `Argo CD cannot compare ${name(app)} at ${synced ?? pick(status.sync?.revision, status.sync?.revisions, target.sourceIndex, multi) ?? 'our revision'}: ${comparison.message ?? ''}` };
  }

  if (!oursCompared) return { state: 'pending', reason: `${name(app)} compares ${synced?.slice(0, 12) ?? 'no revision'} so far; waiting for a refresh to see our commit` };
  if (app.operation) return { state: 'pending', reason: `${name(app)} has a sync operation queued` };
  if (op?.phase === 'Running' || op?.phase === 'Terminating') return { state: 'pending', reason: `${name(app)} is syncing: ${op.message ?? ''}` };
  if (status.sync?.status !== 'Synced') return { state: 'pending', reason: `${name(app)} is ${status.sync?.status ?? 'not compared yet'} at ${synced}` };
  if (op?.finishedAt && (!status.reconciledAt || Date.parse(status.reconciledAt) < Date.parse(op.finishedAt))) {
    return { state: 'pending', reason: `${name(app)} health not yet reassessed after the sync` };
  }
  const health = status.health?.status;
  if (health === 'Healthy') return { state: 'passed', message: `Argo CD synced ${name(app)} to ${synced} and it is Healthy`, revision: synced! };
  if (health === 'Degraded') return { state: 'failed', message: `${name(app)} is Degraded at ${synced}: ${status.health?.message ?? 'see the Application resources'}`, revision: synced! };
  return { state: 'pending', reason: `${name(app)} is ${health ?? 'of unknown health'} at ${synced}${status.health?.message ? `: ${status.health.message}` : ''}` };
}
