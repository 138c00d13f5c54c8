/**
 * The Flux rules' entry points, one module per kind: kustomization.ts, helmrelease.ts, sources.ts, with the shared
 * pieces in object.ts and the workload checks in workloads.ts. docs/verdicts.md (Flux) is the table of these rules.
 */
export { evaluateHelmRelease } from './helmrelease.js';
export { evaluateKustomization, specMayCarryImage } from './kustomization.js';
export {
  handledSince,
  objectName,
  type Clock,
  type FluxObject,
  type FluxView,
  type HelmReleaseContext,
  type RuleContext,
} from './object.js';
export { checkGitRepositoryRef, evaluateGitRepository, type SourceWanted } from './sources.js';
export { IMAGE_SETTLE_MS } from './workloads.js';
