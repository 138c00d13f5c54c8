/**
 * Flagger: follow a Canary to the state a Keptn task wants (the pure rules in evaluate.ts), and open its gates. The
 * service never promotes or rolls back itself: Flagger does, when it asks the Canary's confirm-promotion or rollback
 * webhook and the service answers "open" (see evaluate.ts, gateOpen). Whichever GitOps tool applies the Canary and
 * its target, the service talks to the Canary itself for these steps.
 */
import type { Logger } from 'pino';
import type { Cluster } from '../../platform/k8s/cluster.js';
import { imagesOf, type WorkloadObject } from '../../platform/k8s/kstatus.js';
import { untilSynced, type KubeObject } from '../../platform/k8s/watch.js';
import type { ProgressiveDriver, ProgressiveRef, ProgressiveURIs, ProgressiveWait } from '../../judge/progressive.js';
import { retry, type RetryPolicy } from '../../shared/retry.js';
import { carriesAll } from '../../platform/git/image.js';
import { ServiceError } from '../../shared/errors.js';
import { waitForVerdict, type FinalVerdict } from '../../judge/wait.js';
import {
  canaryName,
  canaryProblem,
  canaryURIs,
  evaluateCanary,
  gateOpen,
  gatePatch,
  primaryName,
  promoteRefusal,
  revertAtGate,
  targetName,
  underAnalysis,
  type CanaryObject,
  type Gate,
} from './evaluate.js';

export const CANARIES = { group: 'flagger.app', version: 'v1beta1', plural: 'canaries' };
const DEPLOYMENTS = { group: 'apps', version: 'v1', plural: 'deployments' };

/** A gate is one patch at the read version; a conflict (Flagger wrote the status meanwhile) is worth a re-read. */
const PATCH_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 4_000 };
/** Phases in which approving a gate still means something: Flagger is analysing or waiting. */
const GATED_PHASES = new Set(['Progressing', 'Waiting', 'WaitingPromotion']);

type Canary = CanaryObject & KubeObject;
type Deployment = WorkloadObject & KubeObject;

export class FlaggerDriver implements ProgressiveDriver {
  constructor(private readonly cluster: Cluster) {}

  private read(ref: ProgressiveRef): Promise<Canary> {
    return retry(PATCH_RETRY, () => this.cluster.readFresh<Canary>(CANARIES, ref.namespace, ref.name));
  }

  async mark(ref: ProgressiveRef): Promise<string | undefined> {
    return (await this.read(ref)).status?.lastAppliedSpec ?? '';
  }

  async problem(ref: ProgressiveRef): Promise<string | undefined> {
    return canaryProblem(await this.read(ref));
  }

  async uris(ref: ProgressiveRef): Promise<ProgressiveURIs | undefined> {
    return canaryURIs(await this.read(ref));
  }

  async wait(ref: ProgressiveRef, w: ProgressiveWait): Promise<FinalVerdict> {
    const canaries = this.cluster.watch<Canary>(CANARIES);
    const deployments = this.cluster.watch<Deployment>(DEPLOYMENTS);
    await untilSynced(Promise.all([canaries.synced, deployments.synced]), w.deadline, 'Flagger Canaries and Deployments');
    const what = `Canary ${ref.namespace}/${ref.name}`;
    const view = () => {
      const canary = canaries.get(ref.namespace, ref.name);
      if (!canary) return undefined;
      const target = deployments.get(ref.namespace, targetName(canary));
      const primary = deployments.get(ref.namespace, primaryName(canary));
      return { canary, ...(target ? { target } : {}), ...(primary ? { primary } : {}) };
    };
    // The version Flagger was seen working on: only its roll-back is a verdict (see evaluateCanary).
    let analysed: string | undefined;
    let revertOpened: string | undefined;
    return waitForVerdict({
      commit: w.commit,
      deadline: w.deadline,
      log: w.log,
      ...(w.onProgress ? { onProgress: w.onProgress } : {}),
      relation: () => Promise.resolve('same'),
      observe: (onChange) => {
        // The Deployments' names come from the Canary; subscribing to both possible names of each is enough.
        const canary = canaries.get(ref.namespace, ref.name);
        const target = canary ? targetName(canary) : ref.name;
        const stops = [
          canaries.subscribe(ref.namespace, ref.name, onChange),
          deployments.subscribe(ref.namespace, target, onChange),
          deployments.subscribe(ref.namespace, `${target}-primary`, onChange),
        ];
        return () => stops.forEach((stop) => stop());
      },
      evaluate: () => {
        const v = view();
        if (!v) return { state: 'failed', message: `${what} not found; check progressive.canary in the settings` };
        analysed = underAnalysis(v.canary) ?? analysed;
        const held = v.canary.status?.lastAppliedSpec;
        if (revertAtGate(v, w.expectation) && revertOpened !== held) {
          // Once per held version; a failed write is tried again on the next change.
          revertOpened = held;
          this.openGate(ref, 'promote', [], w.log).catch((err: unknown) => {
            revertOpened = undefined;
            w.log.warn({ err }, 'the promotion gate of the revert could not be opened');
          });
        }
        return evaluateCanary(v, w.expectation, analysed);
      },
      timeoutMessage: (last) => `${what} did not get there in time: ${last}`,
    });
  }

  /** Flagger asks: is this gate open for the version the Canary holds now? (A fresh read: Keptn may have just opened it.) */
  async gate(gate: Gate, namespace: string, name: string): Promise<{ open: boolean; reason: string }> {
    return gateOpen(await this.cluster.readFresh<Canary>(CANARIES, namespace, name), gate);
  }

  /**
   * Opens the promotion gate for the version Flagger holds, once that version is the one with our images and, with
   * `version`, exactly the one this sequence's deployment recorded as tested.
   */
  async promote(ref: ProgressiveRef, images: readonly string[], log: Logger, version?: string): Promise<void> {
    await this.openGate(ref, 'promote', images, log, version);
  }

  async abort(ref: ProgressiveRef, log: Logger): Promise<boolean> {
    return this.openGate(ref, 'rollback', [], log);
  }

  /**
   * Annotates the Canary at the resourceVersion read, so the approval names the exact version checked here; a
   * Canary that settled meanwhile (promoted, rolled back) has nothing to approve. Approving twice writes nothing.
   */
  private async openGate(ref: ProgressiveRef, gate: Gate, images: readonly string[], log: Logger, version?: string): Promise<boolean> {
    return retry(PATCH_RETRY, async () => {
      const canary = await this.read(ref);
      const refusal = promoteRefusal(canary, version);
      if (refusal) throw new ServiceError('VERSION_NOT_HELD', refusal);
      if (!GATED_PHASES.has(canary.status?.phase ?? '')) return false;
      if (images.length > 0) {
        const target = await this.cluster.readFresh<Deployment>(DEPLOYMENTS, ref.namespace, targetName(canary));
        const held = imagesOf(target);
        if (!carriesAll(images, held))
          throw new ServiceError(
            'VERSION_NOT_HELD',
            `${canaryName(canary)} holds ${held.join(', ') || 'no image'}, not ${images.join(', ')} that this sequence deployed; nothing promoted`,
          );
      }
      if (gateOpen(canary, gate).open) return true;
      const patch = gatePatch(canary, gate);
      if (!patch) return false;
      await this.cluster.mergePatchAt(CANARIES, ref.namespace, ref.name, canary.metadata.resourceVersion ?? '', patch);
      log.info({ canary: `${ref.namespace}/${ref.name}`, gate, spec: canary.status?.lastAppliedSpec }, 'flagger gate opened');
      return true;
    });
  }
}
