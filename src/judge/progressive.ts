/**
 * Which way a Keptn deployment strategy goes for a service: as written (`direct`, `user_managed`: the tool applies
 * the commit and that is the release), or through the progressive workload the settings name (an Argo Rollouts
 * Rollout or a Flagger Canary that keeps the new version as preview or canary until `release` promotes it). A
 * strategy the settings do not map is refused with what to change, never deployed some other way than the shipyard
 * asked.
 *
 * Both controllers sit behind one interface, so the deployment, release and rollback tasks read the same whichever
 * the team runs; only the drivers (src/tools/rollouts, src/tools/flagger) know the controller.
 */
import type { Logger } from 'pino';
import { DEFAULT_PROGRESSIVE_STRATEGIES, DIRECT_STRATEGIES, type GitOpsSettings } from '../platform/settings/schema.js';
import type { FinalVerdict } from './wait.js';

export type ProgressiveKind = 'Rollout' | 'Canary';

export interface ProgressiveRef {
  kind: ProgressiveKind;
  namespace: string;
  name: string;
}

/**
 * Where a Keptn task wants the workload: `preview` (deployment: our version runs beside the stable one, healthy and
 * held back), `stable` (release: our version promoted), `rolled-back` (rollback: the stable version serves again).
 */
export type ProgressiveGoal = 'preview' | 'stable' | 'rolled-back';

export interface ProgressiveExpectation {
  goal: ProgressiveGoal;
  /** The images we wrote: the workload must carry them (preview, stable) or no longer serve them (rolled-back). */
  images: readonly string[];
  /** What `mark` returned before our commit: a version the controller held then is not ours. */
  since?: string;
  /**
   * Release: the exact version the sequence's deployment saw held back and Keptn tested (a Rollout's pod-template
   * hash, a Canary's lastAppliedSpec); only that version may become stable.
   */
  version?: string;
}

export interface ProgressiveWait {
  expectation: ProgressiveExpectation;
  /** Epoch ms. */
  deadline: number;
  /** The GitOps commit the version came with, for messages. */
  commit: string;
  log: Logger;
  onProgress?(reason: string): void;
}

/** Where Keptn's tests reach each version: the `deploymentURIsLocal` of a progressive deployment are the preview's. */
export interface ProgressiveURIs {
  previewURIsLocal: string[];
  stableURIsLocal: string[];
}

export interface ProgressiveDriver {
  /**
   * Notes which version the controller holds now, before our commit reaches it, so the wait can tell our version
   * from one the controller was already holding (Flagger's status names no image). Undefined: nothing to note.
   */
  mark(ref: ProgressiveRef): Promise<string | undefined>;
  wait(ref: ProgressiveRef, w: ProgressiveWait): Promise<FinalVerdict>;
  /**
   * Lets the held version become stable; refuses (throws VERSION_NOT_HELD) when the held version does not carry
   * `images`, or, with `version`, is not exactly that version (what the deployment recorded as tested).
   */
  promote(ref: ProgressiveRef, images: readonly string[], log: Logger, version?: string): Promise<void>;
  /** Stops what is in progress so the stable version serves; false when nothing was in progress. */
  abort(ref: ProgressiveRef, log: Logger): Promise<boolean>;
  /** Read from the workload's own spec; undefined when it names no Services. */
  uris(ref: ProgressiveRef): Promise<ProgressiveURIs | undefined>;
  /** What makes the workload unfit for Keptn's gate (e.g. a Canary that promotes on its own); undefined when fit. */
  problem(ref: ProgressiveRef): Promise<string | undefined>;
}

export type StrategyPlan = { kind: 'direct' } | { kind: 'progressive'; workload: ProgressiveRef } | { problem: string };

/** The workload the settings name, whichever controller runs it. */
export function progressiveWorkload(progressive: NonNullable<GitOpsSettings['progressive']>): ProgressiveRef {
  return progressive.canary ? { kind: 'Canary', ...progressive.canary } : { kind: 'Rollout', ...progressive.rollout! };
}

/** The settings field that names a workload, for messages. */
export function settingOf(ref: ProgressiveRef): string {
  return ref.kind === 'Canary' ? 'progressive.canary' : 'progressive.rollout';
}

export function strategyPlan(strategy: string, settings: Pick<GitOpsSettings, 'target' | 'progressive'>): StrategyPlan {
  if ((DIRECT_STRATEGIES as readonly string[]).includes(strategy)) return { kind: 'direct' };
  const progressive = settings.progressive;
  const mapped: readonly string[] = progressive?.strategies ?? DEFAULT_PROGRESSIVE_STRATEGIES;
  if (progressive && mapped.includes(strategy)) return { kind: 'progressive', workload: progressiveWorkload(progressive) };
  const { kind, namespace, name } = settings.target;
  const shown = JSON.stringify(strategy);
  if (!progressive)
    return {
      problem:
        `deploymentstrategy ${shown} needs a progressive workload (preview or canary, promoted by release), which ${kind} ` +
        `${namespace}/${name} alone cannot do: name the service's Argo Rollouts Rollout (progressive.rollout) or Flagger ` +
        `Canary (progressive.canary) in the settings, or use ${DIRECT_STRATEGIES.join(' or ')} in the shipyard`,
    };
  return {
    problem:
      `deploymentstrategy ${shown} is not one the settings deploy progressively (progressive.strategies: ${mapped.join(', ')}); ` +
      `add it there, or use one of those or ${DIRECT_STRATEGIES.join(' or ')} in the shipyard`,
  };
}
