/**
 * Reads the live Argo Rollouts of a Suspended Application through the shared Rollouts watch, so the rule can tell a
 * timed pause (it resumes on its own) from a pause that needs someone (suspended.ts). Started only when the rule
 * needs them: the settings give no consent to a pause (`argocd.suspended: fail`), the Application is Suspended, it
 * deploys to this cluster and it holds Rollouts. Also remembers when a timed pause it saw ended, so a Suspended health
 * Argo CD computed just before is not taken for a pause that stays.
 */
import { codeOf, messageOf } from '../../shared/errors.js';
import type { Cluster } from '../../platform/k8s/cluster.js';
import { pauseEnd, type PausableRollout } from '../../platform/k8s/rollout-pause.js';
import { untilSynced, type KubeObject, type ObjectWatch } from '../../platform/k8s/watch.js';
import type { Application } from './application.js';
import { inCluster } from './podless.js';
import { RESUME_SETTLE_MS, rolloutsOf } from './suspended.js';

export const ROLLOUTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' };

type Live = PausableRollout & KubeObject;

export class PausedRollouts {
  /** Why the Rollouts cannot be read (a refused or unserved watch); then the rule fails as without them. */
  unreadable: string | undefined;
  /** The wait's wake-up: a Rollout changed, or the settle time after a timed pause ended has passed. */
  onChange: (() => void) | undefined;
  private watch: ObjectWatch<Live> | undefined;
  private readonly subscriptions = new Map<string, () => void>();
  private timedSeen = false;
  private resumedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly app: Application,
    /** The settings' `argocd.suspended` is `fail`: the only verdict the Rollouts' pauses can change. */
    private readonly wanted: boolean,
    private readonly clock: () => number = Date.now,
  ) {}

  private refs(current: Application) {
    if (!this.wanted || !inCluster(this.app) || current.status?.health?.status !== 'Suspended') return [];
    return rolloutsOf(current);
  }

  /** Rollouts the rule needs that are not watched yet: read them (the next nudge) before judging. */
  due(current: Application): boolean {
    return this.unreadable === undefined && this.refs(current).some((r) => !this.subscriptions.has(`${r.namespace}/${r.name}`));
  }

  async refresh(current: Application, deadline: number): Promise<void> {
    if (!this.due(current)) return;
    try {
      this.watch ??= this.cluster.watch<Live>(ROLLOUTS);
      await untilSynced(this.watch.synced, deadline, 'Argo Rollouts Rollouts');
      for (const r of this.refs(current)) {
        const key = `${r.namespace}/${r.name}`;
        if (!this.subscriptions.has(key))
          this.subscriptions.set(
            key,
            this.watch.subscribe(r.namespace!, r.name, () => this.onChange?.()),
          );
      }
    } catch (err: unknown) {
      // No grant (chart rbac.argocd) or no Rollouts API: the rule judges without them. Anything else is tried again.
      if (codeOf(err) !== 'FORBIDDEN' && codeOf(err) !== 'NOT_FOUND') throw err;
      this.unreadable = messageOf(err);
    }
  }

  /** What the rule is told: the live Rollouts, why they are unread, and how long ago a timed pause seen here ended. */
  expectation(current: Application): { rollouts?: PausableRollout[]; rolloutsUnread?: string; rolloutResumedForMs?: number } {
    if (this.unreadable) return { rolloutsUnread: this.unreadable };
    const watch = this.watch;
    if (!watch) return {};
    const rollouts = this.refs(current).flatMap((r) => {
      const ro = watch.get(r.namespace!, r.name);
      return ro ? [ro] : [];
    });
    if (rollouts.some((ro) => pauseEnd(ro)?.ends === 'itself')) {
      this.timedSeen = true;
      this.resumedAt = undefined;
      clearTimeout(this.timer);
    } else if (this.timedSeen && this.resumedAt === undefined) {
      this.resumedAt = this.clock();
      this.timer = setTimeout(() => this.onChange?.(), RESUME_SETTLE_MS + 10);
    }
    return { rollouts, ...(this.resumedAt !== undefined ? { rolloutResumedForMs: this.clock() - this.resumedAt } : {}) };
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
  }
}
