/**
 * The workloads a Kustomization or HelmRelease applied (its `status.inventory`): does one run each image we wrote,
 * and, when Flux did not check health itself, have they rolled out (kstatus rules in k8s/kstatus.ts)? Where Flux did
 * check, it trusted kstatus, which calls an OnDelete StatefulSet (or one whose partition covers every Pod) Current with
 * the new template on no Pod (cli-utils pkg/kstatus/status/core.go stsConditions): those get our rollout rule too.
 */
import { imagesOf, laxerInKstatus, rolloutOf, type WorkloadObject } from '../../platform/k8s/kstatus.js';
import type { Verdict } from '../../judge/verdict.js';
import { carriesOtherImages, inventoryRefs, isWorkload, sameImage, type Inventory, type InventoryRef } from './inventory.js';
import { objectName, short, type FluxObject, type RuleContext } from './object.js';

/**
 * How long a missing image may be put down to watch lag (the workload watch trailing the Kustomization watch) before
 * it counts: both events come from one API server, normally within milliseconds.
 */
export const IMAGE_SETTLE_MS = 10_000;

export interface InventoryCheck {
  /**
   * Whether Flux checked this workload's health itself before it called the owner Ready: every workload with a
   * Kustomization's `spec.wait` or Helm's wait, only the listed ones with `spec.healthChecks` alone.
   */
  checkedByFlux: (ref: InventoryRef) => boolean;
  /** Why Flux did not check a workload's health, for the message. */
  why: string;
  /** What the owner deploys, for the message when our image does not run. */
  where: string;
  revision: string;
  /** The images that must run at that revision (none when a later commit rewrote the files we edited). */
  images: readonly string[];
}

/**
 * The workloads in an owner's inventory: does one run each image we wrote, and (when Flux did not check health) have
 * they rolled out? Undefined when all is well.
 */
export function checkInventory(
  owner: FluxObject,
  inventory: Inventory | undefined,
  check: InventoryCheck,
  ctx: RuleContext,
): Verdict | undefined {
  const images = check.images;
  const refs = inventoryRefs(inventory);
  // A StatefulSet Flux checked may still need our rule (laxerInKstatus), which only its spec tells: it must be seen.
  const toJudge = refs.filter(isWorkload).filter((ref) => !check.checkedByFlux(ref) || ref.kind === 'StatefulSet');
  if (images.length === 0 && toJudge.length === 0) return undefined;
  const workloads = refs.filter(isWorkload);
  const seen: Array<{ ref: InventoryRef; obj: WorkloadObject }> = [];
  for (const ref of workloads) {
    const obj = ctx.view.workload(ref);
    if (!obj)
      return {
        state: 'pending',
        reason: `${objectName(owner)} applied ${short(check.revision)}; waiting to see its ${ref.kind} ${ref.namespace}/${ref.name}`,
        applied: check.revision,
      };
    seen.push({ ref, obj });
  }

  const othersMayRunIt = refs.some(carriesOtherImages);
  if (images.length > 0 && seen.length > 0 && !othersMayRunIt) {
    const missing = images.filter((image) => !seen.some(({ obj }) => imagesOf(obj).some((runs) => sameImage(image, runs))));
    if (missing.length > 0) {
      const key = `${objectName(owner)}@${check.revision}: ${missing.join(',')}`;
      const settledAt = ctx.clock.since(key) + IMAGE_SETTLE_MS;
      if (ctx.clock.now < settledAt) {
        return {
          state: 'pending',
          reason: `${objectName(owner)} applied ${short(check.revision)}; no workload runs ${missing.join(', ')} yet`,
          recheckAt: settledAt,
          applied: check.revision,
        };
      }
      const running = [...new Set(seen.flatMap(({ obj }) => imagesOf(obj)))].join(', ');
      const files = ctx.files?.length ? `the file we edited (${ctx.files.join(', ')})` : 'the file we edited';
      return {
        state: 'failed',
        message: `${objectName(owner)} applied our commit ${short(check.revision)} and is ready, but none of its workloads runs ${missing.join(', ')} (they run ${running}): ${files} is not part of what ${objectName(owner)} deploys (${check.where})`,
        revision: check.revision,
      };
    }
  }

  for (const { ref, obj } of seen) {
    const byFlux = check.checkedByFlux(ref);
    if (byFlux && !laxerInKstatus({ ...obj, kind: ref.kind })) continue;
    const rollout = rolloutOf({ ...obj, kind: ref.kind });
    const what = `${ref.kind} ${ref.namespace}/${ref.name}`;
    if (rollout.status === 'Failed')
      return {
        state: 'failed',
        message: `${objectName(owner)} applied ${check.revision}, but ${what} failed to roll out: ${rollout.message}`,
        revision: check.revision,
      };
    if (rollout.status !== 'Current') {
      return {
        state: 'pending',
        reason: byFlux
          ? `${objectName(owner)} applied ${short(check.revision)} and Flux's health check (kstatus) passed ${what}, but it has not rolled out: ${rollout.message}`
          : `${objectName(owner)} applied ${short(check.revision)} without checking health (${check.why}); ${what} is rolling out: ${rollout.message}`,
        applied: check.revision,
      };
    }
  }
  return undefined;
}
