// A peer's CustomResourceDefinitions, as its install manifests would put them in a cluster: applied server-side, then
// waited for until the API server serves them (condition Established).
import * as k8s from '@kubernetes/client-node';
import { waitUntil } from './process.js';

/** Applies every CRD among `docs`; fails naming `source` when one of `required` is not among them. */
export async function installCrds(kc: k8s.KubeConfig, docs: unknown[], required: string[], source: string): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const names: string[] = [];
  for (const doc of docs) {
    const crd = doc as k8s.V1CustomResourceDefinition | null;
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.metadata?.name) continue;
    await objects.patch(crd, undefined, undefined, 'keptn-gitops-test-env', true, k8s.PatchStrategy.ServerSideApply);
    names.push(crd.metadata.name);
  }
  const missing = required.filter((n) => !names.includes(n));
  if (missing.length > 0) throw new Error(`no CRD ${missing.join(', ')} in ${source}`);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await Promise.all(
    names.map((name) =>
      waitUntil(
        `CRD ${name} established`,
        async () =>
          (await ext.readCustomResourceDefinition({ name })).status?.conditions?.some(
            (c) => c.type === 'Established' && c.status === 'True',
          ),
        { timeoutMs: 30_000 },
      ),
    ),
  );
}
