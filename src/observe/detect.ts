/**
 * Has an observed object finished deploying a revision, and how did it end? Pure: the revision the tool is working
 * on (attempted or compared) is judged with the very rules that judge a Keptn-driven deployment (flux/evaluate.ts,
 * argocd/evaluate.ts), taking that revision as "our commit": earlier revisions do not contain it, so a verdict
 * left over from them never counts. docs/verdicts.md has the rules; this only picks the revision and the inputs.
 */
import { evaluateApplication, sourcesOf, type Application } from '../argocd/evaluate.js';
import { evaluateHelmRelease, evaluateKustomization, type Clock, type FluxObject, type FluxView } from '../flux/evaluate.js';
import { commitOf, type Expectation, type Verdict } from '../readiness.js';
import type { ObservedKind } from './link.js';

export type ObservedTool = 'flux' | 'argocd';

export const TOOL_OF: Record<ObservedKind, ObservedTool> = { Kustomization: 'flux', HelmRelease: 'flux', Application: 'argocd' };

export interface DetectInput {
  kind: ObservedKind;
  object: FluxObject | Application;
  /** Read-only views of the shared watches (Flux rules look up workloads, charts and dependencies). */
  view: FluxView;
  clock: Clock;
  /** How long this service has seen the Application Degraded at its current revision without a break. */
  degradedForMs?: number;
}

export type Detection =
  /** The tool works on no commit we can name (nothing attempted yet, an OCI source, a branch name only). */
  | { state: 'none' }
  | { state: 'pending'; revision: string; reason: string }
  | { state: 'final'; revision: string; result: 'pass' | 'fail'; message: string };

/** The commit the object's tool is deploying or has deployed: full or, for a Helm chart built from Git, 12 hex digits. */
export function candidateRevision(kind: ObservedKind, object: FluxObject | Application): string | undefined {
  if (kind === 'Application') {
    const app = object as Application;
    const index = gitSourceIndex(app);
    const sync = app.status?.sync;
    return commitOf(app.spec.sources?.length ? sync?.revisions?.[index] : sync?.revision);
  }
  const status = (object as FluxObject).status;
  // kustomize-controller sets lastAttemptedRevision before it builds, lastAppliedRevision only after a success; a
  // HelmRelease's lastAttemptedRevision is its chart version, `<version>+<sha12>` for a chart built from Git.
  return commitOf(status?.lastAttemptedRevision) ?? (kind === 'Kustomization' ? commitOf(status?.lastAppliedRevision) : undefined);
}

/** The first source that is a Git repository, not a Helm chart: the one whose revisions are commits. */
export function gitSourceIndex(app: Application): number {
  return Math.max(
    0,
    sourcesOf(app).findIndex((s) => !s.chart),
  );
}

export function detect(input: DetectInput): Detection {
  // A suspended Flux object deploys nothing: its "failure" says nothing about the revision it shows.
  if ((input.object as FluxObject).spec?.suspend) return { state: 'none' };
  const revision = candidateRevision(input.kind, input.object);
  if (!revision) return { state: 'none' };
  // Only the candidate itself contains the candidate: what the tool applied before does not.
  const expected: Expectation = {
    commit: revision,
    relation: (sha) => (revision.startsWith(sha) || sha.startsWith(revision) ? 'same' : 'unrelated'),
  };
  let verdict: Verdict;
  if (input.kind === 'Application') {
    verdict = evaluateApplication(input.object as Application, {
      ...expected,
      sourceIndex: gitSourceIndex(input.object as Application),
      ...(input.degradedForMs !== undefined ? { degradedForMs: input.degradedForMs } : {}),
    });
  } else {
    const ctx = { view: input.view, images: [], clock: input.clock };
    verdict =
      input.kind === 'HelmRelease'
        ? evaluateHelmRelease(input.object as FluxObject, expected, { ...ctx, chartFromOurRepo: chartFromGit(input.object as FluxObject) })
        : evaluateKustomization(input.object as FluxObject, expected, ctx);
  }
  if (verdict.state === 'pending') return { state: 'pending', revision, reason: verdict.reason };
  return verdict.state === 'passed'
    ? { state: 'final', revision, result: 'pass', message: verdict.message }
    : { state: 'final', revision, result: 'fail', message: verdict.message };
}

/** A HelmRelease whose chart source-controller builds from a GitRepository: the chart version carries the commit. */
function chartFromGit(obj: FluxObject): boolean {
  const source = (obj.spec?.['chart'] as { spec?: { sourceRef?: { kind?: string } } } | undefined)?.spec?.sourceRef;
  return source?.kind === 'GitRepository';
}
