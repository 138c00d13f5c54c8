/**
 * The vocabulary shared by the Flux and Argo CD readiness rules. Each rule is a pure function of the observed
 * object(s) and the commit we wait for; the waiter feeds it fresh objects and answers its ancestry questions.
 */

import type { Relation } from '../platform/git/ancestry.js';

export type { Relation };

export interface Expectation {
  /** Our GitOps commit, full 40-hex SHA. */
  commit: string;
  /** What we know of a commit's relation to ours; `unknown` makes the waiter look it up in Git. */
  relation(sha: string): Relation;
}

/**
 * A rule's answer. `unknownRevision` asks the waiter how a commit relates to ours; `recheckAt` (epoch ms) says the
 * answer may change at that time without any object changing (a settle window), so the driver evaluates again then.
 * A pending answer also says what is true so far, for the message at the deadline and for the deadline itself:
 * `applied` is the revision (ours or one containing it) the tool has applied while what it applied is not healthy yet;
 * `busyUntil` (epoch ms) is when the tool is free at the latest to act on our commit at all (kustomize-controller
 * still checking the health of an earlier revision), so the wait's time starts counting only then.
 */
export type Verdict =
  | { state: 'pending'; reason: string; unknownRevision?: string; recheckAt?: number; applied?: string; busyUntil?: number }
  | { state: 'passed'; message: string; revision: string }
  | { state: 'failed'; message: string; revision?: string };

export type PendingVerdict = Extract<Verdict, { state: 'pending' }>;

/** How a wait ends: a pass or a failure, never pending. */
export type FinalVerdict = Extract<Verdict, { state: 'passed' | 'failed' }>;

export function contains(relation: Relation): boolean {
  return relation === 'same' || relation === 'descendant' || relation === 'superseded';
}

/** The images that must run at a revision: ours, unless a later commit in it rewrote the files we wrote them into. */
export function imagesExpectedAt(relation: Relation, images: readonly string[]): readonly string[] {
  return relation === 'superseded' ? [] : images;
}

/** A relation function built from what the waiter has learned so far. */
export function relationFrom(commit: string, known: ReadonlyMap<string, Relation>): (sha: string) => Relation {
  return (sha) => (commit.startsWith(sha) ? 'same' : (known.get(sha) ?? 'unknown'));
}

const SHA = /^[0-9a-f]{40}$/;
/**
 * source-controller's version of a chart built from Git with `reconcileStrategy: Revision`: `<chart version>+<first 12
 * hex of the commit>`, and `<...>.<HelmChart generation>` when `valuesFiles` are set
 * (source-controller internal/controller/helmchart_controller.go, buildFromTarballArtifact).
 */
const CHART_FROM_GIT = /\+([0-9a-f]{12})(?:\.[0-9]+)?$/;

/**
 * The commit hash inside a Flux or Argo CD revision string: `main@sha1:<sha>`, `refs/heads/main@sha1:<sha>`,
 * legacy `main/<sha>`, a bare SHA, or the abbreviated hash of a Helm chart built from Git (`0.1.0+86eb1df762d6`,
 * `0.1.0+86eb1df762d6.3`).
 * Branch names and OCI digests (`sha256:`) are not commits and give undefined.
 */
export function commitOf(revision: string | undefined | null): string | undefined {
  if (!revision) return undefined;
  const chart = CHART_FROM_GIT.exec(revision);
  if (chart) return chart[1];
  const candidate = revision.includes('@sha1:')
    ? revision.slice(revision.lastIndexOf('@sha1:') + 6)
    : revision.slice(revision.lastIndexOf('/') + 1);
  return SHA.test(candidate) ? candidate : undefined;
}

/** Kubernetes-style condition, as both Flux and (for workloads) Kubernetes use it. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
