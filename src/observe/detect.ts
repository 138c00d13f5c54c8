/**
 * Has an observed object finished deploying a revision, and how did it end? Pure: the revision the tool is working
 * on (attempted or compared) is judged with the very rules that judge a Keptn-driven deployment (flux/evaluate.ts,
 * argocd/evaluate.ts), taking that revision as "our commit": earlier revisions do not contain it, so a verdict
 * left over from them never counts. docs/verdicts.md has the rules; this only picks the revision and the inputs.
 */
import { evaluateApplication, sourcesOf, type Application, type SuspendedVerdict } from '../tools/argocd/evaluate.js';
import { sameRepository } from '../platform/git/repository.js';
import { evaluateHelmRelease, evaluateKustomization, type Clock, type FluxObject, type FluxView } from '../tools/flux/evaluate.js';
import { commitOf, type Expectation, type Verdict } from '../judge/verdict.js';
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
  /** The linked Keptn service's settings, when readable: its repository picks the source, its `argocd` the rules. */
  service?: ObservedService;
}

/** What the linked Keptn service's settings say about where its changes come from and how Argo CD is judged. */
export interface ObservedService {
  repoUrl: string;
  degradedGraceMs?: number;
  suspended?: SuspendedVerdict;
}

export type Detection =
  /** The tool works on no commit we can name (nothing attempted yet, an OCI source, a branch name only). */
  | { state: 'none' }
  /** `recheckAt`: the rules' settle window ends then (epoch ms), and the answer may change without any object changing. */
  | { state: 'pending'; revision: string; reason: string; recheckAt?: number }
  | { state: 'final'; revision: string; result: 'pass' | 'fail'; message: string };

const FULL_SHA = /^[0-9a-f]{40}$/;

/**
 * The commit the object's tool is deploying or has deployed: full or, for a Helm chart built from Git, 12 hex digits.
 * Only revisions that name a commit of a Git source count: an OCI artifact's digest, a chart version from a Helm or
 * OCI repository (`<version>+<digest12>` looks like a chart built from Git) or a branch name are never taken for one.
 */
export function candidateRevision(kind: ObservedKind, object: FluxObject | Application, service?: ObservedService): string | undefined {
  if (kind === 'Application') {
    const app = object as Application;
    const index = gitSourceIndex(app, service?.repoUrl);
    if (index === undefined) return undefined;
    const sync = app.status?.sync;
    const revision = app.spec.sources?.length ? sync?.revisions?.[index] : sync?.revision;
    // Argo CD names a Git source's revision by its full hash, and nothing else by one.
    return revision && FULL_SHA.test(revision) ? revision : undefined;
  }
  const obj = object as FluxObject;
  const status = obj.status;
  if (kind === 'Kustomization') {
    if (obj.spec?.sourceRef?.kind !== 'GitRepository') return undefined;
    // kustomize-controller sets lastAttemptedRevision before it builds, lastAppliedRevision only after a success.
    const sha = commitOf(status?.lastAttemptedRevision) ?? commitOf(status?.lastAppliedRevision);
    return sha && FULL_SHA.test(sha) ? sha : undefined;
  }
  // A HelmRelease's lastAttemptedRevision is its chart version: `<version>+<sha12>` only for a chart source-controller
  // built from a GitRepository (helmchart_controller.go buildFromTarballArtifact); helm-controller gives an OCI chart
  // `<version>+<digest12>` (internal/controller/helmrelease_controller.go mutateChartWithDigest), which is no commit.
  return chartFromGit(obj) ? commitOf(status?.lastAttemptedRevision) : undefined;
}

/**
 * The source whose revisions are the linked service's commits: the one that reads its repository (a multi-source
 * Application may read several); without the settings, the only Git source there is. Undefined when none is.
 */
export function gitSourceIndex(app: Application, repoUrl?: string): number | undefined {
  const sources = sourcesOf(app)
    .map((s, index) => ({ s, index }))
    .filter(({ s }) => !s.chart && !/^oci:\/\//i.test(s.repoURL));
  if (repoUrl !== undefined) return sources.find(({ s }) => sameRepository(s.repoURL, repoUrl))?.index;
  return sources.length === 1 ? sources[0]!.index : undefined;
}

export function detect(input: DetectInput): Detection {
  // A suspended Flux object deploys nothing: its "failure" says nothing about the revision it shows.
  if ((input.object as FluxObject).spec?.suspend) return { state: 'none' };
  const revision = candidateRevision(input.kind, input.object, input.service);
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
      sourceIndex: gitSourceIndex(input.object as Application, input.service?.repoUrl)!,
      ...(input.degradedForMs !== undefined ? { degradedForMs: input.degradedForMs } : {}),
      ...(input.service?.degradedGraceMs !== undefined ? { degradedGraceMs: input.service.degradedGraceMs } : {}),
      ...(input.service?.suspended ? { suspended: input.service.suspended } : {}),
    });
  } else {
    const ctx = { view: input.view, images: [], clock: input.clock };
    verdict =
      input.kind === 'HelmRelease'
        ? evaluateHelmRelease(input.object as FluxObject, expected, { ...ctx, chartFromOurRepo: chartFromGit(input.object as FluxObject) })
        : evaluateKustomization(input.object as FluxObject, expected, ctx);
  }
  if (verdict.state === 'pending')
    return {
      state: 'pending',
      revision,
      reason: verdict.reason,
      ...(verdict.recheckAt !== undefined ? { recheckAt: verdict.recheckAt } : {}),
    };
  return verdict.state === 'passed'
    ? { state: 'final', revision, result: 'pass', message: verdict.message }
    : { state: 'final', revision, result: 'fail', message: verdict.message };
}

/** A HelmRelease whose chart source-controller builds from a GitRepository: the chart version carries the commit. */
function chartFromGit(obj: FluxObject): boolean {
  const source = (obj.spec?.['chart'] as { spec?: { sourceRef?: { kind?: string } } } | undefined)?.spec?.sourceRef;
  return source?.kind === 'GitRepository';
}
