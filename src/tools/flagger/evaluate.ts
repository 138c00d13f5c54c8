/**
 * When is a Flagger `Canary` where a Keptn task wants it? Pure rules over the Canary's status and the two Deployments
 * Flagger runs (Flagger v1.44, Kubernetes provider, blue-green with manual gating):
 * - the target Deployment (`spec.targetRef`) is the canary: the GitOps tool applies our image to it, Flagger scales
 *   it up for the analysis and back to zero afterwards;
 * - `<target>-primary` is the stable version; Flagger copies the target's template into it on promotion.
 *
 * Flagger's status names no image: `lastAppliedSpec` is a hash of the target's pod template that only Flagger can
 * compute (pkg/canary/spec.go ComputeHash, spew + FNV), and `lastPromotedSpec` the hash it last promoted. So "our
 * version" is read as: the target carries our images, and Flagger's `lastAppliedSpec` is not the one it held before
 * our commit (what the driver's `mark` noted). Each analysis tick reads the target afresh before any gate is called
 * (pkg/controller/scheduler.go advanceCanary: hasCanaryRevisionChanged comes before the rollback and
 * confirm-promotion hooks), so a new `lastAppliedSpec` at WaitingPromotion is the template Flagger analysed.
 *
 * Gates: Flagger asks its `confirm-promotion` and `rollback` webhooks every tick (scheduler_hooks.go
 * runConfirmPromotionHooks, runRollbackHooks; a 2xx answer opens the gate). The service answers them from the
 * Canary itself: a gate is open when the Canary's annotation `gitops.keptn.sh/<gate>` names the `lastAppliedSpec`
 * Flagger holds now, which the release (promote) and rollback tasks write. The answer holds across replicas and
 * restarts, binds to one version (a newer version is never promoted by an older approval), and an operator can open a
 * gate by hand with `kubectl annotate`.
 */
import { carriesAll } from '../../platform/git/image.js';
import { imagesOf, rolloutOf, type WorkloadObject } from '../../platform/k8s/kstatus.js';
import type { ProgressiveExpectation, ProgressiveURIs } from '../../judge/progressive.js';
import type { Verdict } from '../../judge/verdict.js';

export interface CanaryObject {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: {
    targetRef?: { apiVersion?: string; kind?: string; name?: string };
    provider?: string;
    skipAnalysis?: boolean;
    suspend?: boolean;
    service?: { name?: string; port?: number };
    analysis?: { webhooks?: Array<{ name?: string; type?: string; url?: string }> };
  };
  status?: {
    phase?: string;
    lastAppliedSpec?: string;
    lastPromotedSpec?: string;
    iterations?: number;
    failedChecks?: number;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

/** The Canary and the Deployments it runs, as the watches hold them. */
export interface CanaryView {
  canary: CanaryObject;
  /** The target Deployment: the canary version. */
  target?: WorkloadObject;
  /** `<target>-primary`: the stable version. */
  primary?: WorkloadObject;
}

export type Gate = 'promote' | 'rollback';
export const GATES: readonly Gate[] = ['promote', 'rollback'];
/** The Flagger webhook type each gate answers (pkg/apis/flagger/v1beta1/canary.go HookType). */
export const GATE_HOOK: Record<Gate, string> = { promote: 'confirm-promotion', rollback: 'rollback' };
export const GATE_ANNOTATION: Record<Gate, string> = {
  promote: 'gitops.keptn.sh/promote',
  rollback: 'gitops.keptn.sh/rollback',
};
/** The path of each gate on the probe port; the Canary's webhooks point there. */
export const GATE_PATH: Record<Gate, string> = { promote: '/flagger/gates/promote', rollback: '/flagger/gates/rollback' };

/** Phases in which Flagger is still working on a version (status.go CanaryPhase). */
const IN_PROGRESS = new Set(['Progressing', 'Waiting', 'WaitingPromotion', 'Promoting', 'Finalising']);

/** The hash of the version Flagger is working on now, if it is working on one. */
export function underAnalysis(c: CanaryObject): string | undefined {
  return IN_PROGRESS.has(c.status?.phase ?? '') ? c.status?.lastAppliedSpec || undefined : undefined;
}
/** Phases in which the primary is all there is: nothing is held back. */
const SETTLED = new Set(['Initialized', 'Succeeded']);

export function canaryName(c: CanaryObject): string {
  return `Canary ${c.metadata.namespace ?? ''}/${c.metadata.name}`;
}

export function targetName(c: CanaryObject): string {
  return c.spec?.targetRef?.name ?? c.metadata.name;
}

export function primaryName(c: CanaryObject): string {
  return `${targetName(c)}-primary`;
}

/** Whether a gate is open for the version Flagger holds now. */
export function gateOpen(c: CanaryObject, gate: Gate): { open: boolean; reason: string } {
  const spec = c.status?.lastAppliedSpec;
  const approved = c.metadata.annotations?.[GATE_ANNOTATION[gate]];
  const name = canaryName(c);
  if (!spec) return { open: false, reason: `${name} holds no version yet` };
  if (approved === spec) return { open: true, reason: `${gate} approved for ${name} at ${spec}` };
  return {
    open: false,
    reason: approved
      ? `${gate} was approved for ${approved}, not for the version ${spec} that ${name} holds now`
      : `${gate} not approved for ${name}: Keptn's ${gate === 'promote' ? 'release' : 'rollback'} task opens this gate`,
  };
}

/** The annotation patch that opens a gate for the version Flagger holds now. */
export function gatePatch(c: CanaryObject, gate: Gate): { metadata: { annotations: Record<string, string> } } | undefined {
  const spec = c.status?.lastAppliedSpec;
  return spec ? { metadata: { annotations: { [GATE_ANNOTATION[gate]]: spec } } } : undefined;
}

/**
 * What makes a Canary unfit for Keptn's gate: Flagger would promote without asking (no confirm-promotion webhook,
 * skipAnalysis), could not be rolled back from Keptn (no rollback webhook), or runs a kind the rules do not read.
 */
export function canaryProblem(c: CanaryObject): string | undefined {
  const name = canaryName(c);
  const kind = c.spec?.targetRef?.kind;
  if (kind !== 'Deployment') return `${name} targets a ${kind ?? 'missing kind'}; the service follows Canaries of Deployments`;
  if (c.spec?.skipAnalysis) return `${name} has skipAnalysis: true, so Flagger promotes without Keptn's quality gate; remove it`;
  const hooks = new Set((c.spec?.analysis?.webhooks ?? []).map((w) => w.type));
  const missing = GATES.filter((g) => !hooks.has(GATE_HOOK[g]));
  if (missing.length === 0) return undefined;
  return (
    `${name} has no ${missing.map((g) => GATE_HOOK[g]).join(' or ')} webhook, so Flagger would ` +
    `${missing.includes('promote') ? 'promote without Keptn\u2019s quality gate' : 'never roll back for Keptn'}: add ` +
    missing.map((g) => `{ type: ${GATE_HOOK[g]}, url: http://<service>.<namespace>:<probe port>${GATE_PATH[g]} }`).join(' and ') +
    ' to spec.analysis.webhooks'
  );
}

/** Flagger's Services (router/kubernetes_default.go): `<name>-canary` reaches the target, `<name>-primary` the primary. */
export function canaryURIs(c: CanaryObject): ProgressiveURIs {
  const apex = c.spec?.service?.name ?? targetName(c);
  const ns = c.metadata.namespace ?? 'default';
  const port = c.spec?.service?.port;
  const uri = (svc: string) => `http://${svc}.${ns}${port ? `:${port}` : ''}`;
  return { previewURIsLocal: [uri(`${apex}-canary`)], stableURIsLocal: [uri(`${apex}-primary`)] };
}

function carries(w: WorkloadObject | undefined, images: readonly string[]): boolean {
  return Boolean(w) && images.length > 0 && carriesAll(images, imagesOf(w!));
}

/**
 * A roll-back after Flagger already promoted our version: the primary runs it, and the revert reaches the target as
 * a new version that Flagger analyses and then holds at the confirm-promotion gate like any other. Keptn's roll-back
 * is the decision to go back, so the revert's gate is opened, only for a target that carries none of our images.
 */
export function revertAtGate(view: CanaryView, expected: ProgressiveExpectation): boolean {
  const { canary, target, primary } = view;
  if (expected.goal !== 'rolled-back' || expected.images.length === 0) return false;
  if (canary.status?.phase !== 'WaitingPromotion' || !canary.status.lastAppliedSpec || !target) return false;
  return carries(primary, expected.images) && imagesOf(target).length > 0 && !carriesAll(expected.images, imagesOf(target));
}

/** Why a release must not open the promotion gate now; undefined when the held version is the one tested. */
export function promoteRefusal(canary: CanaryObject, version: string | undefined): string | undefined {
  const held = canary.status?.lastAppliedSpec;
  if (version === undefined || held === version) return undefined;
  return `${canaryName(canary)} holds version ${held ?? 'none'}, not ${version} that this sequence deployed and tested (a later change to its target, even with the same image, did not pass this quality gate); nothing promoted`;
}

/** Rolled out at its current spec with at least one ready replica (kstatus rules, as for any Deployment). */
function serving(w: WorkloadObject | undefined): boolean {
  return Boolean(w) && rolloutOf({ kind: 'Deployment', ...w! }).status === 'Current' && (w!.status?.readyReplicas ?? 0) > 0;
}

/** Flagger's own words on the last analysis: the `Promoted` condition (status.go MakeStatusConditions). */
function flaggerSays(c: CanaryObject): string {
  const promoted = c.status?.conditions?.find((x) => x.type === 'Promoted');
  const phase = c.status?.phase ?? 'no phase';
  return promoted?.message ? `${phase}: ${promoted.message}` : phase;
}

/**
 * `analysed`: the hash the wait has seen Flagger work on (underAnalysis). A `Failed` phase counts only for that hash:
 * a failed Canary syncs the new target's hash into its status a moment before it starts the analysis
 * (scheduler.go shouldAdvance: "sync lastAppliedSpec even if the canary is in a failed state"), so `Failed` with a
 * new hash alone is the old failure, not a verdict on our version.
 */
export function evaluateCanary(view: CanaryView, expected: ProgressiveExpectation, analysed?: string): Verdict {
  const { canary, target, primary } = view;
  const name = canaryName(canary);
  const status = canary.status ?? {};
  const phase = status.phase ?? '';
  const revision = status.lastAppliedSpec ?? '';
  const says = flaggerSays(canary);
  const images = expected.images;
  const shown = images.join(', ');
  // Flagger has read the target since our commit: its held version is new (or nothing was noted before).
  const fresh = expected.since === undefined || revision !== expected.since;
  const primaryRuns = (primary ? imagesOf(primary) : []).join(', ') || 'nothing yet';

  if (expected.goal === 'rolled-back') {
    if (revertAtGate(view, expected))
      return {
        state: 'pending',
        reason: `${name}'s primary runs ${shown}, promoted before the roll-back; the revert ${revision} waits at the promotion gate and is promoted now`,
      };
    if (IN_PROGRESS.has(phase)) return { state: 'pending', reason: `${name} has not rolled back yet: ${says}` };
    if (images.length > 0 && carries(primary, images))
      return {
        state: 'pending',
        reason: `${name}'s primary runs ${shown}, promoted before the roll-back; waiting for Flagger to analyse the revert`,
      };
    if (serving(primary))
      return { state: 'passed', message: `${name}: ${primaryName(canary)} serves ${primaryRuns} again (${says})`, revision };
    return { state: 'pending', reason: `${name}: ${primaryName(canary)} is not serving yet (${says})` };
  }

  if (target && images.length > 0 && !carries(target, images))
    return {
      state: 'failed',
      message: `${name} targets Deployment ${targetName(canary)}, which runs ${imagesOf(target).join(', ') || 'no image'}, not ${shown}: the file we wrote is not what Flagger's target deploys; check progressive.canary in the settings`,
    };

  if (expected.goal === 'stable') {
    // Release: only the version the sequence tested (status.go SetStatusPhase copies lastAppliedSpec into
    // lastPromotedSpec on Succeeded); a newer target template in its place was never approved by us.
    const version = expected.version;
    if (version && revision !== version && status.lastPromotedSpec !== version)
      return {
        state: 'failed',
        message: `${name} now holds ${revision || 'no version'}, not ${version} that this sequence deployed and tested; a newer template replaced it before it was promoted`,
        revision,
      };
    if (version && status.lastPromotedSpec !== version)
      return { state: 'pending', reason: `${name} has not promoted ${version} yet: ${says}` };
    if (SETTLED.has(phase) && carries(primary, images) && serving(primary))
      return { state: 'passed', message: `${name} promoted ${shown}: ${primaryName(canary)} runs it (${says})`, revision };
    if (phase === 'Failed' && revision === analysed)
      return { state: 'failed', message: `${name} rolled back instead of promoting ${shown}: ${says}`, revision };
    return { state: 'pending', reason: `${name} has not promoted ${shown} yet: ${says}` };
  }

  // preview
  if (fresh && phase === 'Failed' && revision === analysed)
    return {
      state: 'failed',
      message: `${name} rolled back ${shown}: ${says}; ${primaryName(canary)} still runs ${primaryRuns}`,
      revision,
    };
  if (SETTLED.has(phase) && carries(primary, images) && serving(primary))
    return {
      state: 'passed',
      message: `${name} runs ${shown} as its primary already (its first version: Flagger holds nothing back at initialisation)`,
      revision,
    };
  if (phase === 'WaitingPromotion' && fresh && revision !== status.lastPromotedSpec) {
    if (!serving(target)) return { state: 'pending', reason: `${name} waits for promotion, but ${targetName(canary)} is not serving yet` };
    return {
      state: 'passed',
      message: `${name} holds ${shown} as canary, analysed and waiting at the confirm-promotion gate; ${primaryName(canary)} runs ${primaryRuns}`,
      revision,
    };
  }
  return { state: 'pending', reason: `${name}: ${says}${fresh ? '' : ' (Flagger has not picked up our version yet)'}` };
}
