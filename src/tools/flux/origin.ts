/**
 * Sources that are not Git (issue 18 items 13, 14): an OCIRepository whose artifact records the Git commit it was
 * built from, and a HelmRelease's chart from `spec.chartRef`. What revision of our repository did the object attempt
 * and apply?
 *
 * - source-controller (internal/controller/ocirepository_controller.go reconcileSource, reconcileArtifact): the
 *   artifact's `metadata` is the OCI manifest's annotations; `flux push artifact --revision` (fluxcd/pkg/oci) writes the
 *   Git origin there as `org.opencontainers.image.revision` (`main@sha1:<sha>`).
 * - kustomize-controller 1.9.4 kustomization_controller.go getOriginRevision: that annotation of the artifact it
 *   applies becomes `status.lastAppliedOriginRevision`, set beside `lastAppliedRevision` (the OCI `<tag>@sha256:…`);
 *   `lastAttemptedRevision` is the OCI revision only, so the attempted origin is the OCIRepository's while its
 *   artifact is the attempted one.
 * - helm-controller 1.6 helmrelease_controller.go getSource, mutateChartWithSourceRevision: with `spec.chartRef` to an
 *   OCIRepository the attempted version is `<chart version>+<digest12>` (a digest, never a commit) and
 *   `lastAttemptedRevisionDigest` the artifact's digest; with `spec.chartRef` to a HelmChart the chart is that
 *   HelmChart's, built as for `spec.chart` (`<version>+<sha12>` under `reconcileStrategy: Revision`).
 */
import { commitOf } from '../../judge/verdict.js';
import type { FluxObject, FluxView } from './object.js';

export const ORIGIN_REVISION = 'org.opencontainers.image.revision';

interface ArtifactWithMetadata {
  revision?: string;
  digest?: string;
  metadata?: Record<string, string>;
}

function artifactOf(obj: FluxObject | undefined): ArtifactWithMetadata | undefined {
  return obj?.status?.artifact as ArtifactWithMetadata | undefined;
}

/** The OCIRepository an object reads (`spec.sourceRef`, or a HelmRelease's `spec.chartRef`), if it reads one. */
function ociSource(obj: FluxObject, view: FluxView, ref = obj.spec?.sourceRef): FluxObject | undefined {
  if (ref?.kind !== 'OCIRepository') return undefined;
  return view.ociRepository?.(ref.namespace || obj.metadata.namespace || '', ref.name);
}

export interface Revisions {
  /** The commit in the revision the object applied last, if it names one. */
  applied?: string;
  /** The commit in the revision the object attempted last, if it names one. */
  attempted?: string;
  /** What to say instead when the source can never name a commit. */
  problem?: string;
}

/** A Kustomization's applied and attempted commits, through an OCIRepository's origin when it reads one. */
export function kustomizationRevisions(obj: FluxObject, view: FluxView): Revisions {
  const status = obj.status;
  if (obj.spec?.sourceRef?.kind !== 'OCIRepository')
    return { applied: commitOf(status?.lastAppliedRevision), attempted: commitOf(status?.lastAttemptedRevision) };
  const applied = commitOf(status?.['lastAppliedOriginRevision'] as string | undefined);
  const oci = ociSource(obj, view);
  const artifact = artifactOf(oci);
  const origin = artifact?.metadata?.[ORIGIN_REVISION];
  if (artifact?.revision && !origin)
    return {
      applied,
      problem: `OCIRepository ${oci!.metadata.namespace ?? ''}/${oci!.metadata.name} serves ${artifact.revision}, which records no Git origin (the ${ORIGIN_REVISION} annotation): push it with flux push artifact --revision=<branch>@sha1:<commit>, or no commit can be followed through it`,
    };
  const attempted =
    artifact?.revision && artifact.revision === status?.lastAttemptedRevision
      ? commitOf(origin)
      : status?.lastAttemptedRevision === status?.lastAppliedRevision
        ? applied
        : undefined;
  return { applied, attempted };
}

/**
 * The commit of the chart a HelmRelease attempted: `spec.chart` and a `spec.chartRef` HelmChart carry it in the
 * version; a `spec.chartRef` OCIRepository only through its artifact's origin, and only while the digest the release
 * attempted is that artifact's.
 */
export function chartCommit(obj: FluxObject, view: FluxView): string | undefined {
  const chartRef = obj.spec?.['chartRef'] as { kind: string; name: string; namespace?: string } | undefined;
  if (chartRef?.kind !== 'OCIRepository') return commitOf(obj.status?.lastAttemptedRevision);
  const artifact = artifactOf(ociSource(obj, view, chartRef));
  const digest = obj.status?.['lastAttemptedRevisionDigest'] as string | undefined;
  const served = artifact?.digest ?? artifact?.revision?.slice(artifact.revision.indexOf('@') + 1);
  return digest && served === digest ? commitOf(artifact?.metadata?.[ORIGIN_REVISION]) : undefined;
}

/** The HelmChart behind a HelmRelease's chart: the one it references (`spec.chartRef`) or the one made for it. */
export function helmChartOf(obj: FluxObject, view: FluxView): FluxObject | undefined {
  const chartRef = obj.spec?.['chartRef'] as { kind: string; name: string; namespace?: string } | undefined;
  if (chartRef?.kind === 'HelmChart') return view.helmChart(chartRef.namespace || obj.metadata.namespace || '', chartRef.name);
  const [namespace, name] = (obj.status?.helmChart ?? '').split('/');
  return namespace && name ? view.helmChart(namespace, name) : undefined;
}
