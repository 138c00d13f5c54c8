/**
 * Argo Rollouts: follow a Rollout to the state a Keptn task wants (the pure rule in evaluate.ts), promote it the way
 * `kubectl argo rollouts promote --full` does, abort it the way `kubectl argo rollouts abort` does. Whichever GitOps
 * tool applies the Rollout, the service talks to the Rollout itself for these steps.
 */
import type { Logger } from 'pino';
import type { Cluster } from '../../platform/k8s/cluster.js';
import { ServiceError } from '../../shared/errors.js';
import { untilSynced, type KubeObject } from '../../platform/k8s/watch.js';
import type { ProgressiveDriver, ProgressiveRef, ProgressiveURIs, ProgressiveWait } from '../../judge/progressive.js';
import { retry, type RetryPolicy } from '../../shared/retry.js';
import { waitForVerdict, type FinalVerdict } from '../../judge/wait.js';
import {
  ABORT_PATCH,
  evaluateRollout,
  promotePatches,
  promoteRefusal,
  revertAtGate,
  rolloutProblem,
  type RolloutObject,
  type WorkloadRefObject,
} from './evaluate.js';

export const ROLLOUTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' };
export const ROLLOUT_API_VERSION = 'argoproj.io/v1alpha1';

/** Promote and abort are one patch each; an API server restart is worth a few quick attempts. */
const PATCH_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 4_000 };

type Obj = RolloutObject & KubeObject;
type RefObj = WorkloadRefObject & KubeObject;

/** The kinds a workloadRef may name (rollout/templateref.go infoByGroupKind), and where the service reads them. */
const WORKLOAD_REF_KINDS: Record<string, { group: string; version: string; plural: string }> = {
  'apps/Deployment': { group: 'apps', version: 'v1', plural: 'deployments' },
  'apps/ReplicaSet': { group: 'apps', version: 'v1', plural: 'replicasets' },
  '/PodTemplate': { group: '', version: 'v1', plural: 'podtemplates' },
};

function refKind(ro: RolloutObject): { group: string; version: string; plural: string } | undefined {
  const ref = ro.spec?.workloadRef;
  if (!ref) return undefined;
  const group = (ref.apiVersion ?? '').includes('/') ? (ref.apiVersion ?? '').split('/')[0]! : '';
  return WORKLOAD_REF_KINDS[`${group}/${ref.kind ?? ''}`];
}

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

  /** The object a Rollout's workloadRef names, read fresh; undefined without a workloadRef. */
  private async workloadOf(ro: Obj, namespace: string): Promise<RefObj | undefined> {
    const kind = refKind(ro);
    if (!kind || !ro.spec?.workloadRef?.name) return undefined;
    return retry(PATCH_RETRY, () => this.cluster.readFresh<RefObj>(kind, namespace, ro.spec!.workloadRef!.name!));
  }

  async wait(ref: RolloutRef, w: ProgressiveWait): Promise<FinalVerdict> {
    const rollouts = this.cluster.watch<Obj>(ROLLOUTS);
    await untilSynced(rollouts.synced, w.deadline, 'Argo Rollouts Rollouts');
    const what = `Rollout ${ref.namespace}/${ref.name}`;
    // A workloadRef's kind is read once: it names where the template lives for the whole wait.
    const first = rollouts.get(ref.namespace, ref.name);
    const kind = first ? refKind(first) : undefined;
    const workloads = kind ? this.cluster.watch<RefObj>(kind) : undefined;
    if (workloads) await untilSynced(workloads.synced, w.deadline, `the ${first!.spec!.workloadRef!.kind} of ${what}`);
    let revertPromoted: string | undefined;
    return waitForVerdict({
      commit: w.commit,
      deadline: w.deadline,
      log: w.log,
      ...(w.onProgress ? { onProgress: w.onProgress } : {}),
      // The rule reads the Rollout only; it never asks how a revision relates to the commit.
      relation: () => Promise.resolve('same'),
      observe: (onChange) => {
        const stops = [rollouts.subscribe(ref.namespace, ref.name, onChange)];
        const name = first?.spec?.workloadRef?.name;
        if (workloads && name) stops.push(workloads.subscribe(ref.namespace, name, onChange));
        return () => stops.forEach((stop) => stop());
      },
      evaluate: () => {
        const ro = rollouts.get(ref.namespace, ref.name);
        if (!ro) return { state: 'failed', message: `${what} not found; check progressive.rollout in the settings` };
        if (ro.spec?.workloadRef && !refKind(ro))
          return {
            state: 'failed',
            message: `${what} takes its template from a ${ro.spec.workloadRef.kind ?? 'missing kind'}, which Argo Rollouts cannot read (Deployment, ReplicaSet or PodTemplate)`,
          };
        const name = ro.spec?.workloadRef?.name;
        const workload = workloads && name ? workloads.get(ref.namespace, name) : undefined;
        if (revertAtGate(ro, w.expectation, workload) && revertPromoted !== ro.status?.currentPodHash) {
          // Once per held version; a failed write is tried again on the Rollout's next change.
          revertPromoted = ro.status?.currentPodHash;
          this.promoteNow(ref, ro, w.log).catch((err: unknown) => {
            revertPromoted = undefined;
            w.log.warn({ err }, 'the revert could not be promoted');
          });
        }
        return evaluateRollout(ro, w.expectation, workload);
      },
      timeoutMessage: (last) => `${what} did not get there in time: ${last}`,
    });
  }

  /**
   * Promotes fully, on a fresh read (the patches depend on the Rollout's current state), and only the version this
   * sequence deployed: its images, and with `version` exactly that pod-template hash (promoteRefusal). A controller
   * that has not observed the latest spec yet gets a few quick re-reads before the refusal.
   */
  async promote(ref: RolloutRef, images: readonly string[], log: Logger, version?: string): Promise<void> {
    const ro = await retry(PATCH_RETRY, async () => {
      const fresh = await this.cluster.readFresh<Obj>(ROLLOUTS, ref.namespace, ref.name);
      const refusal = promoteRefusal(fresh, images, version, await this.workloadOf(fresh, ref.namespace));
      // Held by another version: final. Not observed yet: worth a re-read.
      if (refusal) throw new ServiceError('VERSION_NOT_HELD', refusal, { retryable: /not (yet )?observed/.test(refusal) });
      return fresh;
    });
    await this.promoteNow(ref, ro, log);
  }

  private async promoteNow(ref: RolloutRef, ro: Obj, log: Logger): Promise<void> {
    const patches = promotePatches(ro);
    if (patches.status) await retry(PATCH_RETRY, () => this.cluster.mergePatchStatus(ROLLOUTS, ref.namespace, ref.name, patches.status!));
    if (patches.spec)
      await retry(PATCH_RETRY, () => this.cluster.mergePatch({ apiVersion: ROLLOUT_API_VERSION, kind: 'Rollout', ...ref }, patches.spec!));
    log.info(
      {
        rollout: `${ref.namespace}/${ref.name}`,
        version: ro.status?.currentPodHash,
        spec: Boolean(patches.spec),
        status: Boolean(patches.status),
      },
      'rollout promoted',
    );
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
