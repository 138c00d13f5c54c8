/**
 * Health `Suspended` at our commit, when the settings give no consent to a pause (`argocd.suspended: fail`, the
 * default; a progressive strategy passes `pass` instead, so this is the `direct` strategy or a change made in Git).
 * Argo CD calls every paused Rollout Suspended, whatever holds it (argo-cd resource_customizations/argoproj.io/Rollout/
 * health.lua maps the Rollout's phase `Paused` to `Suspended`, and `spec.paused` or any pause condition likewise), so
 * a Rollout in a timed pause, which its controller resumes by itself, looks like one held for promotion. The live
 * Rollouts, read by the driver (paused-rollouts.ts), tell them apart (src/platform/k8s/rollout-pause.ts pauseEnd):
 * a timed pause is waited out; a pause only a person ends fails at once, naming it and what resumes it.
 */
import type { Verdict } from '../../judge/verdict.js';
import { pauseEnd, rolloutMoving, statusObserved, type PausableRollout } from '../../platform/k8s/rollout-pause.js';
import { appName, resourceName, type Application, type ResourceRef } from './application.js';
import type { ArgoExpectation } from './expectation.js';

/**
 * How long a Suspended health may outlive the timed pause this wait saw end: Argo CD recomputes the Application's
 * health from its resource cache on the Rollout's change, which takes a moment after the Rollout's own status moved.
 */
export const RESUME_SETTLE_MS = 15_000;

const isRollout = (r: ResourceRef) => r.group === 'argoproj.io' && r.kind === 'Rollout';

/** The Rollouts among the Application's resources: the ones whose pause may make it Suspended. */
export function rolloutsOf(app: Application): ResourceRef[] {
  return (app.status?.resources ?? []).filter((r) => isRollout(r) && r.namespace);
}

export function suspendedWithoutConsent(app: Application, expected: ArgoExpectation, synced: string): Verdict {
  const status = app.status ?? {};
  const suspended = (status.resources ?? []).filter((r) => r.health?.status === 'Suspended');
  const shown = `${appName(app)} is Suspended at ${synced}`;
  // With `controller.resource.health.persist` the status names what is Suspended; by default (`appTree`) it does not,
  // and only the Rollouts' own status can say whether one of them is why.
  const onlyRollouts = suspended.every(isRollout);
  const live = liveRollouts(app, expected.rollouts ?? []);
  if (onlyRollouts && live.length > 0) {
    // A status older than the spec says nothing about the current pause; the controller is about to write a new one.
    const unobserved = live.filter(({ ro }) => !statusObserved(ro)).map(({ ref }) => resourceName(ref));
    if (unobserved.length)
      return { state: 'pending', reason: `${shown}; waiting for Argo Rollouts to observe the spec of ${unobserved.join(', ')}` };
    const held = live.flatMap(({ ref, ro }) => {
      const end = pauseEnd(ro);
      return end?.ends === 'never' ? [`${resourceName(ref)} is ${end.what}, which nothing resumes under this strategy: ${end.fix}`] : [];
    });
    if (held.length) return { state: 'failed', message: `${shown}: ${held.join('; ')}`, revision: synced };
    const timed = live.flatMap(({ ref, ro }) => {
      const end = pauseEnd(ro);
      return end?.ends === 'itself' ? [`${resourceName(ref)} is ${end.what}`] : [];
    });
    if (timed.length) return { state: 'pending', reason: `${shown}: ${timed.join('; ')}; it resumes on its own` };
    const moving = live
      .filter(({ ro }) => rolloutMoving(ro))
      .map(({ ref, ro }) => `${resourceName(ref)} is ${ro.status?.phase ?? 'not reconciled yet'}`);
    if (moving.length)
      return { state: 'pending', reason: `${shown}, computed before ${moving.join(', ')}; waiting for Argo CD to reassess its health` };
    if (expected.rolloutResumedForMs !== undefined && expected.rolloutResumedForMs < RESUME_SETTLE_MS)
      return {
        state: 'pending',
        reason: `${shown}, computed before a Rollout left its timed pause; waiting for Argo CD to reassess its health`,
      };
  }
  const paused = suspended.map((r) => `${resourceName(r)}${r.health?.message ? ` (${r.health.message})` : ''}`);
  const why = paused.length ? `: ${paused.join(', ')}` : status.health?.message ? `: ${status.health.message}` : '';
  const unread = expected.rolloutsUnread ? ` (its Rollouts could not be read to tell a timed pause: ${expected.rolloutsUnread})` : '';
  return {
    state: 'failed',
    message: `${shown}${why}; it does not resume on its own (set argocd.suspended to pass or wait if it is paused on purpose)${unread}`,
    revision: synced,
  };
}

function liveRollouts(app: Application, rollouts: readonly PausableRollout[]): Array<{ ref: ResourceRef; ro: PausableRollout }> {
  return rolloutsOf(app).flatMap((ref) => {
    const ro = rollouts.find((r) => r.metadata.name === ref.name && r.metadata.namespace === ref.namespace);
    return ro ? [{ ref, ro }] : [];
  });
}
