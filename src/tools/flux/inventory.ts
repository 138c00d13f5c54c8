/**
 * What a Flux Kustomization or HelmRelease applied: its `status.inventory`, and the images its workloads run.
 * Entry ids are `<namespace>_<name>_<group>_<Kind>` (kustomize-controller api/v1 inventory_types.go, the
 * ObjMetadata format of sigs.k8s.io/cli-utils); helm-controller 1.6 api/v2 uses the same type.
 */

export interface InventoryRef {
  namespace: string;
  name: string;
  group: string;
  kind: string;
}

/** The workload kinds whose rollout and images the rules read (watched under apps/v1). */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/**
 * Kinds that run or carry pod specs the rules do not read. When the inventory holds one, an image we wrote may run
 * there, so its absence from the workloads above proves nothing. Flux's own kinds are here because a HelmRelease or
 * Kustomization in the inventory may be where the image went (values, `spec.images`).
 */
const OTHER_IMAGE_CARRIERS = new Set([
  '_Pod',
  '_ReplicationController',
  'apps_ReplicaSet',
  'batch_Job',
  'batch_CronJob',
  'argoproj.io_Rollout',
  'serving.knative.dev_Service',
  'helm.toolkit.fluxcd.io_HelmRelease',
  'kustomize.toolkit.fluxcd.io_Kustomization',
]);

export interface Inventory {
  entries?: Array<{ id?: string; v?: string }>;
}

export function inventoryRefs(inventory: Inventory | undefined): InventoryRef[] {
  const out: InventoryRef[] = [];
  for (const entry of inventory?.entries ?? []) {
    const parts = (entry.id ?? '').split('_');
    // Names and groups never hold "_"; cli-utils writes RBAC names with ":" as "__", which leaves more parts.
    if (parts.length !== 4) continue;
    const [namespace, name, group, kind] = parts as [string, string, string, string];
    if (name && kind) out.push({ namespace, name, group, kind });
  }
  return out;
}

export function isWorkload(ref: InventoryRef): ref is InventoryRef & { kind: WorkloadKind } {
  return ref.group === 'apps' && (WORKLOAD_KINDS as readonly string[]).includes(ref.kind);
}

export function carriesOtherImages(ref: InventoryRef): boolean {
  return OTHER_IMAGE_CARRIERS.has(`${ref.group}_${ref.kind}`);
}

// The one image matcher of every tool (issue 18 item 9): digests decide when both sides carry one.
export { sameImage } from '../../platform/git/image.js';
