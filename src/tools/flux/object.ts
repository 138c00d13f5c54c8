/**
 * What every Flux rule shares: the object shapes, the views and clock a rule reads, and small readings of a status
 * (conditions, generations, reconcile tokens, how a revision relates to our commit). The rules per kind are in
 * kustomization.ts, helmrelease.ts and sources.ts; docs/verdicts.md (Flux) is their table.
 */
import { contains, findCondition, type Condition, type Expectation, type Verdict } from '../../judge/verdict.js';
import type { WorkloadObject } from '../../platform/k8s/kstatus.js';
import type { Inventory, InventoryRef } from './inventory.js';

export interface FluxObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { suspend?: boolean; sourceRef?: { kind: string; name: string; namespace?: string }; [k: string]: unknown };
  status?: {
    observedGeneration?: number;
    conditions?: Condition[];
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    lastHandledReconcileAt?: string;
    lastAttemptedGeneration?: number;
    artifact?: { revision?: string; digest?: string; metadata?: Record<string, string> };
    inventory?: Inventory;
    helmChart?: string;
    observedSourceArtifactRevision?: string;
    [k: string]: unknown;
  };
}

/** The objects a rule may look up besides the one it judges: read-only views of the shared watches. */
export interface FluxView {
  kustomization(namespace: string, name: string): FluxObject | undefined;
  helmChart(namespace: string, name: string): FluxObject | undefined;
  /** A HelmRelease a HelmRelease depends on (`dependsOn`); views that do not watch HelmReleases leave it out. */
  helmRelease?(namespace: string, name: string): FluxObject | undefined;
  /** An OCIRepository a Kustomization or a HelmRelease's chartRef reads; views without that watch leave it out. */
  ociRepository?(namespace: string, name: string): FluxObject | undefined;
  workload(ref: InventoryRef): WorkloadObject | undefined;
}

/** The service's clock, for the one settle window the rules have; `since` remembers when a state was first seen. */
export interface Clock {
  now: number;
  since(key: string): number;
}

export interface RuleContext {
  view: FluxView;
  /** The image references we wrote; empty for a roll-back (which writes no image). */
  images: readonly string[];
  /** The files we edited, when known, to name in a message. */
  files?: readonly string[];
  clock: Clock;
  /** The Kustomization that applies the judged object (its `kustomize.toolkit.fluxcd.io/name` label), if any. */
  manager?: FluxObject;
  /** The reconcile request we wrote on the judged object after its manager had applied our commit. */
  requestedAfterApply?: string;
  /** The judged object's generation when the deployment started. */
  startGeneration?: number;
}

export interface HelmReleaseContext extends RuleContext {
  /** The chart is built by source-controller from a GitRepository that reads our repository. */
  chartFromOurRepo: boolean;
}

/** Ready=False reasons of a Kustomization that mean "not done yet", not "failed". */
export const KUSTOMIZATION_NOT_YET = new Set([
  'Progressing',
  'ProgressingWithRetry',
  'DependencyNotReady',
  'ReconciliationInProgress',
  'HealthCheckCanceled',
  'ArtifactFailed',
  'SourceNotReady',
]);

/** helm-controller Ready=False reasons that end a release attempt (retries aside, see below). */
export const HELM_FAILED = new Set([
  'InstallFailed',
  'UpgradeFailed',
  'TestFailed',
  'RollbackSucceeded',
  'RollbackFailed',
  'UninstallSucceeded',
  'UninstallFailed',
  'RetriesExceeded',
  'MissingRollbackTarget',
  'InitFailed',
  'GetLastReleaseFailed',
]);

/** Stalled reasons set before any revision is attempted: nothing changes them but a new spec. */
export const STALLED_BEFORE_ATTEMPT = new Set(['InvalidCELExpression', 'AccessDenied', 'FeatureGateDisabled']);

export function objectName(obj: FluxObject): string {
  return `${obj.kind ?? 'object'} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

export function conditionText(c: Condition | undefined): string {
  return c ? `${c.reason ?? c.type}: ${c.message ?? ''}`.trim() : 'no Ready condition yet';
}

export function short(sha: string | undefined): string {
  return sha ? sha.slice(0, 12) : 'nothing';
}

export function suspended(obj: FluxObject): Verdict | undefined {
  return obj.spec?.suspend
    ? { state: 'failed', message: `${objectName(obj)} is suspended (spec.suspend: true); resume it to deploy` }
    : undefined;
}

/** The Ready condition, and whether it describes the current spec. */
export function readyAtGeneration(obj: FluxObject): { ready?: Condition; current: boolean } {
  const ready = findCondition(obj.status?.conditions, 'Ready');
  const generation = obj.metadata.generation;
  // Ready's own observedGeneration: status.observedGeneration stays -1 until a first success, even on failures.
  const observed = ready?.observedGeneration ?? obj.status?.observedGeneration;
  return { ready, current: generation === undefined || observed === generation };
}

export function isTrue(obj: FluxObject, type: string): Condition | undefined {
  const c = findCondition(obj.status?.conditions, type);
  return c?.status === 'True' ? c : undefined;
}

/**
 * Whether a reconcile request was handled: the same token, or a later one (another deployment through the same object
 * overwrote ours; its reconcile began after ours was written). Tokens that are not times must match exactly.
 */
export function handledSince(handled: string | undefined, requested: string | undefined): boolean {
  if (!handled || !requested) return false;
  if (handled === requested) return true;
  const [h, r] = [Date.parse(handled), Date.parse(requested)];
  return Number.isFinite(h) && Number.isFinite(r) && h >= r;
}

/** Asks the waiter about the first revision it cannot place yet. */
export function askAbout(expected: Expectation, ...shas: Array<string | undefined>): Verdict | undefined {
  for (const sha of shas) {
    if (sha && expected.relation(sha) === 'unknown')
      return { state: 'pending', reason: `learning how ${sha} relates to our commit`, unknownRevision: sha };
  }
  return undefined;
}

export function ours(expected: Expectation, sha: string | undefined): boolean {
  return sha !== undefined && contains(expected.relation(sha));
}

/** Evidence that the judged object reconciled after its manager applied our commit. */
export function reconciledAfterApply(obj: FluxObject, ctx: RuleContext): boolean {
  if (handledSince(obj.status?.lastHandledReconcileAt, ctx.requestedAfterApply)) return true;
  const generation = obj.metadata.generation;
  // The manager changed the spec after we started (our commit did) and the controller attempted that spec.
  return (
    ctx.startGeneration !== undefined &&
    generation !== undefined &&
    generation > ctx.startGeneration &&
    obj.status?.lastAttemptedGeneration === generation
  );
}
