/**
 * What every task (deployment, rollback, release, observed revision) is given, the error a task ends errored with,
 * and what `prepare` hands to each of them.
 */
import { ServiceError } from '../shared/errors.js';
import type { GitWorkspace, RepoRef } from '../platform/git/workspace.js';
import type { DeploymentOutcome } from '../keptn/events.js';
import type { GitOpsSettings } from '../platform/settings/schema.js';
import type { SettingsSource } from '../platform/settings/source.js';
import type { DeliveryTool } from '../judge/tool.js';
import type { ObjectMetadata, ObjectRef } from '../platform/k8s/cluster.js';
import type { Metrics } from '../platform/metrics.js';
import type { ProgressiveDriver, ProgressiveKind } from '../judge/progressive.js';
import type { SourceKind, SourceObject } from './target-source.js';

export interface DeploymentDeps {
  settings: SettingsSource;
  git: GitWorkspace;
  tools: DeliveryTool[];
  /** Reads a Secret's data; absent when the service runs without a cluster. */
  secretData?(namespace: string, name: string): Promise<Record<string, string>>;
  /** Reads the labels and annotations grants live in (see grants.ts); absent when the service runs without a cluster. */
  objectMetadata?(ref: ObjectRef): Promise<ObjectMetadata>;
  /**
   * Reads one Flux or Argo CD object in full with a GET from the API server (not a watch cache): the target and what
   * it deploys from (target-check.ts); absent when the service runs without a cluster.
   */
  readObject?(kind: SourceKind, namespace: string, name: string): Promise<SourceObject>;
  /** Argo Rollouts and Flagger, by the kind of their workload: absent when the service runs without a cluster. */
  progressive?: Partial<Record<ProgressiveKind, ProgressiveDriver>>;
  secretNamespace: string;
  defaultTimeoutMs: number;
  author: { name: string; email: string };
  /** Hears how long each deployment waited for its tool, and when one waits out an outage (outage.ts). */
  metrics?: Pick<Metrics, 'toolWaited' | 'outageWaiting'>;
}

/** A deployment that cannot be carried out as asked: reported as `errored` with this message. */
export class DeploymentError extends ServiceError {}

/** What a deployment and a rollback of one service both need: its settings, tool, repository and report. */
export interface Prepared {
  settings: GitOpsSettings;
  tool: DeliveryTool;
  repo: RepoRef;
  timeoutMs: number;
  report: Omit<DeploymentOutcome, 'status' | 'result' | 'message' | 'gitCommit'>;
  /**
   * Set when prepared for a commit: the group commit of its branch is waiting for it (platform/git/arrivals.ts) until
   * it asks for its commit or calls this, so a deployment that will not commit after all calls it at once.
   */
  withdraw?: () => void;
}
