// Small helpers for tests to create objects in the real API server.
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

export class TestCluster {
  readonly objects: KubernetesObjectApi;

  constructor(readonly kc: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
  }

  static fromFile(path: string): TestCluster {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return new TestCluster(kc);
  }

  /** Runs after every apply with what was applied: the environment plays Keptn's secret-service there. */
  afterApply?: (objects: KubernetesObject[]) => Promise<void>;

  /** Server-side applies every document of a YAML stream (or the given objects). */
  async apply(manifests: string | KubernetesObject[]): Promise<void> {
    const docs =
      typeof manifests === 'string'
        ? parseAllDocuments(manifests)
            .map((d) => d.toJS() as KubernetesObject)
            .filter(Boolean)
        : manifests;
    for (const doc of docs) {
      await this.objects.patch(doc, undefined, undefined, 'keptn-gitops-e2e', true, PatchStrategy.ServerSideApply);
    }
    await this.afterApply?.(docs);
  }

  /** A JSON merge patch: change a few fields of an object someone else manages. */
  async mergePatch(obj: KubernetesObject & Record<string, unknown>): Promise<void> {
    await this.objects.patch(obj, undefined, undefined, 'keptn-gitops-e2e', undefined, PatchStrategy.MergePatch);
  }

  async read<T extends KubernetesObject>(apiVersion: string, kind: string, namespace: string, name: string): Promise<T> {
    return (await this.objects.read({ apiVersion, kind, metadata: { namespace, name } })) as T;
  }
}
