// The chart's Secret RBAC as objects: what chart/templates/rbac.yaml renders for `secrets.keptnScopeRoles` and
// `secrets.names` (checked against `helm template` output when written; render the template instead once a helm peer
// exists), plus a kubeconfig that acts as the chart's ServiceAccount, with a token from the TokenRequest API.
import { CoreV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export interface ChartRbacValues {
  release: string;
  releaseNamespace: string;
  /** service.secretNamespace (default: the release namespace). */
  secretNamespace: string;
  keptnScopeRoles: string[];
  names: string[];
}

export function chartSecretRbac(v: ChartRbacValues): KubernetesObject[] {
  const subjects = [{ kind: 'ServiceAccount', name: v.release, namespace: v.releaseNamespace }];
  const objects: KubernetesObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: v.release, namespace: v.releaseNamespace } },
    ...v.keptnScopeRoles.map((role) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${v.release}-${role}`, namespace: v.secretNamespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects,
    })),
  ];
  if (v.names.length) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: `${v.release}-git-secrets`, namespace: v.secretNamespace },
        rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: v.names, verbs: ['get'] }],
      } as KubernetesObject,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: `${v.release}-git-secrets`, namespace: v.secretNamespace },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${v.release}-git-secrets` },
        subjects,
      } as KubernetesObject,
    );
  }
  return objects;
}

/** A kubeconfig for the same API server that authenticates as a ServiceAccount (a short-lived TokenRequest token). */
export async function serviceAccountKubeConfig(admin: KubeConfig, namespace: string, name: string): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  const token = await core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  const cluster = admin.getCurrentCluster();
  if (!cluster || !token.status?.token) throw new Error('no cluster in the admin kubeconfig, or no token issued');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'test' }],
    users: [{ name: `${namespace}:${name}`, token: token.status.token }],
    contexts: [{ name: 'sa', cluster: 'test', user: `${namespace}:${name}`, namespace }],
    currentContext: 'sa',
  });
  return kc;
}
