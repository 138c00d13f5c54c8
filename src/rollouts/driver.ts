/**
 * Argo Rollouts: follow a Rollout to the state a Keptn task wants (the pure rule in evaluate.ts), promote it the way
 * `kubectl argo rollouts promote --full` does, abort it the way `kubectl argo rollouts abort` does. Whichever GitOps
 * tool applies the Rollout, the service talks to the Rollout itself for these steps.
 */
import type { Logger } from 'pino';
import type { Cluster } from '../k8s/cluster.js';
import { ServiceError } from '../errors.js';
import { untilSynced, type KubeObject } from '../k8s/watch.js';
import type { ProgressiveDriver, ProgressiveRef, ProgressiveURIs, ProgressiveWait } from '../progressive.js';
import { retry, type RetryPolicy } from '../retry.js';
import { waitForVerdict, type FinalVerdict } from '../wait.js';
import { carriesAll } from '../git/image.js';
import { ABORT_PATCH, evaluateRollout, promotePatches, rolloutName, rolloutProblem, type RolloutObject } from './evaluate.js';

export const ROLLOUTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' };
export const ROLLOUT_API_VERSION = 'argoproj.io/v1alpha1';

/** Promote and abort are one patch each; an API server restart is worth a few quick attempts. */
const PATCH_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 4_000 };

type Obj = RolloutObject & KubeObject;

type RolloutRef = Pick<ProgressiveRef, 'namespace' | 'name'>;

export class RolloutsDriver implements ProgressiveDriver {
  constructor(private readonly cluster: Cluster) {}

  /** A Rollout's status names the version it holds (its pod-template hash): nothing to note beforehand. */
  mark(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async problem(ref: RolloutRef): Promise<string | undefined> {
    return rolloutProblem(await retry(PATCH_RETRY, () => this.cluster.readFresh<Obj>(ROLLOUTS, ref.namespace, ref.name)));
  }

  /** The Services the strategy names: blue-green's preview and active, canary's canary and stable. */
  async uris(ref: RolloutRef): Promise<ProgressiveURIs | undefined> {
    const ro = await retry(PATCH_RETRY, () => this.cluster.readFresh<Obj>(ROLLOUTS, ref.namespace, ref.name));
    const { blueGreen, canary } = ro.spec?.strategy ?? {};
    const [preview, stable] = blueGreen
      ? [blueGreen.previewService, blueGreen.activeService]
      : [canary?.canaryService, canary?.stableService];
    if (!preview && !stable) return undefined;
    const uri = (svc: string | undefined) => (svc ? [`http://${svc}.${ref.namespace}`] : []);
    return { previewURIsLocal: uri(preview), stableURIsLocal: uri(stable) };
  }

  async wait(ref: RolloutRef, w: ProgressiveWait): Promise<FinalVerdict> {
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

  /**
   * Promotes fully, on a fresh read (the patches depend on the Rollout's current state), and only the version with
   * our images: a newer version in the template did not pass this sequence's quality gate.
   */
  async promote(ref: RolloutRef, images: readonly string[], log: Logger): Promise<void> {
    const ro = await retry(PATCH_RETRY, () => this.cluster.readFresh<Obj>(ROLLOUTS, ref.namespace, ref.name));
    const held = (ro.spec?.template?.spec?.containers ?? []).map((c) => c.image ?? '');
    if (!carriesAll(images, held))
      throw new ServiceError(
        'VERSION_NOT_HELD',
        `${rolloutName(ro)} holds ${held.join(', ') || 'no image'}, not ${images.join(', ')} that this sequence deployed; nothing promoted`,
      );
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
