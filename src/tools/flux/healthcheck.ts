/**
 * kustomize-controller's health checks, read from a Kustomization: which of the objects it applied it checks.
 */
import type { InventoryRef } from './inventory.js';
import type { FluxObject } from './object.js';

interface HealthCheckRef {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

/**
 * Which workloads kustomize-controller health-checked before it set Ready=True. kustomize-controller 1.9.4
 * kustomization_controller.go checkHealth: with `spec.wait` every applied object; otherwise only the objects
 * `spec.healthChecks` lists (internal/inventory/inventory.go ReferenceToObjMetadataSet: the group from `apiVersion`,
 * `apps/v1` when empty, and the namespace as written, none when left out); with neither, none. A workload the list
 * leaves out was applied, not checked, so it gets the same rollout check as under a Kustomization without `wait`.
 */
export function fluxHealthChecks(obj: FluxObject): { all: boolean; checked: (ref: InventoryRef) => boolean; why: string } {
  if (obj.spec?.['wait'] === true) return { all: true, checked: () => true, why: '' };
  const listed = (obj.spec?.['healthChecks'] as HealthCheckRef[] | undefined) ?? [];
  if (listed.length === 0) return { all: false, checked: () => false, why: 'spec.wait is off' };
  const checked = (ref: InventoryRef): boolean =>
    listed.some((hc) => {
      const apiVersion = hc.apiVersion || 'apps/v1';
      const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
      return group === ref.group && hc.kind === ref.kind && hc.name === ref.name && (hc.namespace ?? '') === ref.namespace;
    });
  return { all: false, checked, why: 'spec.wait is off and spec.healthChecks does not list it' };
}
