/**
 * What the orchestration asks of a GitOps tool, whichever it is: look at Git now, and say when our commit is
 * applied. Keptn sees the same events whichever driver answers.
 */
import type { Logger } from 'pino';
import type { FinalVerdict, Relation } from './verdict.js';
import type { ArgoCDSettings, TargetKind } from '../platform/settings/schema.js';

export interface DeliveryRequest {
  target: { kind: TargetKind; name: string; namespace: string };
  /** Our GitOps commit, full 40-hex SHA. */
  commit: string;
  repoUrl: string;
  /** The branch we pushed to: the tool must follow it for our commit to ever be applied. */
  branch: string;
  /** The image references we wrote (`repo:tag`, `repo@digest`): what must run once our commit is applied. */
  images: string[];
  /** The repository files we edited, to name when what runs is not what we wrote. */
  files: string[];
  /**
   * Confirm only, apply nothing: the commit may be older than what the branch holds now (a release checks what a
   * deployment applied earlier), so starting a sync of it would take back later commits. Drivers still ask the tool
   * to look at the branch (a refresh, a reconcile request), which changes nothing the branch does not already say.
   */
  verifyOnly?: boolean;
  /** The settings' Argo CD block; only the Argo CD driver reads it. */
  argocd?: ArgoCDSettings;
  /** Epoch milliseconds. */
  deadline: number;
  /**
   * The wait resumes one a restart or a takeover interrupted (ADR 14): its deadline applies no earlier than
   * FIRST_LOOK_MS after it starts, so the tool may answer the requests the resumed wait makes before it is judged late.
   */
  resumed?: boolean;
  /** Tags the tool operation we start, so we recognise it. */
  deploymentId: string;
  relation(sha: string): Promise<Relation>;
  /** Whether our commit is still on the branch (false once history was rewritten without it). */
  onBranch(): Promise<boolean>;
  log: Logger;
  onProgress?(reason: string): void;
}

export interface DeliveryTool {
  readonly kinds: readonly TargetKind[];
  deliver(req: DeliveryRequest): Promise<FinalVerdict>;
}
