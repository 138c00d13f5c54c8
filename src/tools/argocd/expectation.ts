/**
 * What the Argo CD rules are told besides the Application: our commit, our source, and what the driver observed.
 */
import type { Expectation } from '../../judge/verdict.js';
import type { PausableRollout } from '../../platform/k8s/rollout-pause.js';
import type { ResourceRef } from './application.js';

/** What a `Suspended` health at our commit means for this service (settings `argocd.suspended`). */
export type SuspendedVerdict = 'fail' | 'pass' | 'wait';

/** The state of a refresh we asked for: `handled` once the controller consumed the annotation after our request. */
export type RefreshState = 'none' | 'requested' | 'handled';

export interface ArgoExpectation extends Expectation {
  /** Which of `spec.sources` is our Git repository; 0 for a single-source Application. */
  sourceIndex: number;
  /** The branch we pushed to. */
  branch?: string;
  /** Our source tracks `HEAD`, which Argo CD resolves to the repository's default branch. */
  trackedHead?: boolean;
  /** Our deployment's triggeredid, to recognise the operation we started. */
  operationTag?: string;
  /** Our hard refresh: once handled, the comparison in the status was made after our push. */
  hardRefresh?: RefreshState;
  /** The normal refresh we ask for after a transport error in the comparison that followed our hard refresh. */
  retryRefresh?: RefreshState;
  /** The image references we wrote: what must run once our commit is synced. */
  images?: readonly string[];
  /** The files we wrote them into, named when the Application does not deploy them. */
  files?: readonly string[];
  /** How long this service has seen health `Degraded` without a break (its own clock only). */
  degradedForMs?: number;
  /** How long `Degraded` may last when the workload running our image is not known to be Degraded; default 60 s. */
  degradedGraceMs?: number;
  suspended?: SuspendedVerdict;
  /**
   * The live Argo Rollouts among the Application's resources, read only while it is Suspended and `suspended` is
   * `fail`: whether their pauses end by themselves (suspended.ts).
   */
  rollouts?: readonly PausableRollout[];
  /** Why the Rollouts could not be read (no grant), named in the failure. */
  rolloutsUnread?: string;
  /** How long ago a Rollout this wait saw in a timed pause left it, on this service's clock alone. */
  rolloutResumedForMs?: number;
  /** Set when the project's sync windows keep the sync from running at any time before the deadline: why. */
  syncBlocked?: string;
  /**
   * Workloads of the Application the driver read live that run no Pods by design (a Deployment scaled to 0), with
   * why: they are judged by the template our sync applied. CronJobs need no read (the rule knows them by kind).
   */
  podless?: ReadonlyArray<ResourceRef & { why: string }>;
  /** Workloads of our sync the driver read live that Argo CD would not call Healthy, with why (unhealthy.ts). */
  unhealthy?: readonly string[];
  /** An ApplicationSet generates the Application from a file we edited: what must regenerate it (for messages). */
  regeneratedBy?: string;
  /** Someone other than this service syncs the Application (a RollingSync ApplicationSet): who, for messages. */
  syncedBy?: string;
}

export const DEFAULT_DEGRADED_GRACE_MS = 60_000;
