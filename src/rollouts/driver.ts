/**
 * Argo Rollouts: follow a Rollout to the state a Keptn task wants (the pure rule in evaluate.ts), promote it the way
 * `kubectl argo rollouts promote --full` does, abort it the way `kubectl argo rollouts abort` does. Whichever GitOps
 * tool applies the Rollout, the service talks to the Rollout itself for these steps.
 */
import type { Logger } from 'pino';
import type { Cluster } from '../k8s/cluster.js';
import { untilSynced, type KubeObject } from '../k8s/watch.js';
import { retry, type RetryPolicy } from '../retry.js';
import { waitForVerdict, type FinalVerdict } from '../wait.js';
import { ABORT_PATCH, evaluateRollout, promotePatches, type RolloutExpectation, type RolloutObject } from './evaluate.js';

export const ROLLOUTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' };
export const ROLLOUT_API_VERSION = 'argoproj.io/v1alpha1';

/** Promote and abort are one patch each; an API server restart is worth a few quick attempts. */
const PATCH_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 4_000 };

type Obj = RolloutObject & KubeObject;

export interface RolloutRef {
  namespace: string;
  name: string;
}

export interface RolloutWait {
  expectation: RolloutExpectation;
  /** Epoch ms. */
  deadline: number;
  /** The GitOps commit the version came with, for messages. */
  commit: string;
  log: Logger;
  onProgress?(reason: string): void;
}

export class RolloutsDriver {
  constructor(private readonly cluster: Cluster) {}

  async wait(ref: RolloutRef, w: RolloutWait): Promise<FinalVerdict> {
    const rollouts = this.cluster.watch<Obj>(ROLLOUTS);
    await untilSynced(rollouts.synced, w.deadline, 'Argo Rollouts Rollouts');
    const what = `Rollout ${ref.namespace}/${ref.name}`;
    return waitForVerdict({
      commit: w.commit,
      deadline: w.deadline,
      log: w.log,
      ...(w.onProgress ? { onProgress: w.onProgress } : {}),
      // The rule reads the Rollout only; it never asks how a revision relates to the commit.
      relation: () => Promise.resolve('same'),
      observe: (onChange) => rollouts.subscribe(ref.namespace, ref.name, onChange),
      evaluate: () => {
        const ro = rollouts.get(ref.namespace, ref.name);
        if (!ro) return { state: 'failed', message: `${what} not found; check progressive.rollout in the settings` };
        return evaluateRollout(ro, w.expectation);
      },
      timeoutMessage: (last) => `${what} did not get there in time: ${last}`,
    });
  }

  /** Promotes fully, on a fresh read (the patches depend on the Rollout's current state). */
  async promote(ref: RolloutRef, log: Logger): Promise<void> {
    const ro = await retry(PATCH_RETRY, () => this.cluster.readFresh<Obj>(ROLLOUTS, ref.namespace, ref.name));
    const patches = promotePatches(ro);
    if (patches.status) await retry(PATCH_RETRY, () => this.cluster.mergePatchStatus(ROLLOUTS, ref.namespace, ref.name, patches.status!));
    if (patches.spec)
      await retry(PATCH_RETRY, () => this.cluster.mergePatch({ apiVersion: ROLLOUT_API_VERSION, kind: 'Rollout', ...ref }, patches.spec!));
    log.info({ rollout: `${ref.namespace}/${ref.name}`, spec: Boolean(patches.spec), status: Boolean(patches.status) }, 'rollout promoted');
  }

  /** Aborts what is in progress; a Rollout whose current version is already stable has nothing to abort. */
  async abort(ref: RolloutRef, log: Logger): Promise<boolean> {
    const ro = await retry(PATCH_RETRY, () => this.cluster.readFresh<Obj>(ROLLOUTS, ref.namespace, ref.name));
    if (ro.status?.currentPodHash && ro.status.currentPodHash === ro.status.stableRS) return false;
    await retry(PATCH_RETRY, () => this.cluster.mergePatchStatus(ROLLOUTS, ref.namespace, ref.name, { ...ABORT_PATCH }));
    log.info({ rollout: `${ref.namespace}/${ref.name}` }, 'rollout aborted');
    return true;
  }
}
