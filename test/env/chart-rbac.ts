// The chart's RBAC in the test environment's API server, and a kubeconfig that acts as the chart's ServiceAccount
// (a token from the TokenRequest API). installChartIdentity renders chart/templates/rbac.yaml with the real helm, so
// what is tested is what a platform engineer installs; chartSecretRbac is the hand-written equivalent of its Secret
// part, for tests that do without helm.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuthorizationV1Api, CoreV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { TestCluster } from './cluster.js';
import type { Helm } from './helm.js';
import { grantToScope, scopeOf } from './keptn-secrets.js';
import { waitUntil } from './process.js';

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

/** The RBAC kinds of the chart: what decides what its ServiceAccount may do. */
const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

export interface ChartIdentityOptions {
  /** Helm release name and namespace. */
  release: string;
  namespace: string;
  /** Chart values (state.namespace, service.secretNamespace, secrets.*, rbac.*). */
  values?: Record<string, unknown>;
}

export interface ChartIdentity {
  /** A kubeconfig file that authenticates as the chart's ServiceAccount. */
  kubeconfigPath: string;
  kc: KubeConfig;
  serviceAccount: { namespace: string; name: string };
  /** The namespaces the chart gives the service: STATE_NAMESPACE and SECRET_NAMESPACE as its Deployment sets them. */
  stateNamespace: string;
  secretNamespace: string;
  /** WATCH_NAMESPACES as the Deployment sets it (namespaced mode), if it does. */
  watchNamespaces?: string;
  /** The RBAC objects installed. */
  objects: KubernetesObject[];
}

/**
 * Renders the chart with helm, applies its ServiceAccount and RBAC (not the Deployment: the service runs as a local
 * process here) and returns that ServiceAccount's credentials, once the authorizer lets it write its state.
 */
export async function installChartIdentity(
  cluster: TestCluster,
  helm: Helm,
  workDir: string,
  opts: ChartIdentityOptions,
): Promise<ChartIdentity> {
  const rendered = await helm.render(opts.release, opts.namespace, opts.values ?? {});
  const env = Object.fromEntries(
    rendered
      .filter((o) => o.kind === 'Deployment')
      .flatMap(
        (d) =>
          (
            d as {
              spec?: { template?: { spec?: { containers?: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } } };
            }
          ).spec?.template?.spec?.containers ?? [],
      )
      .filter((c) => c.name === 'gitops-service')
      .flatMap((c) => c.env ?? [])
      .map((e) => [e.name, e.value]),
  );
  const stateNamespace = env['STATE_NAMESPACE'];
  const secretNamespace = env['SECRET_NAMESPACE'];
  if (!stateNamespace || !secretNamespace) throw new Error('the rendered Deployment sets no STATE_NAMESPACE or SECRET_NAMESPACE');
  const objects = rendered
    .filter((o) => RBAC_KINDS.has(o.kind ?? ''))
    .map((o) =>
      o.kind?.startsWith('Cluster') || o.metadata?.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: opts.namespace } },
    );
  const sa = objects.find((o) => o.kind === 'ServiceAccount');
  if (!sa?.metadata?.name) throw new Error('the chart rendered no ServiceAccount');
  // Namespaced mode's Roles go into the namespaces the values list; a platform team installs into existing ones.
  const namespaces = [
    ...new Set([
      opts.namespace,
      stateNamespace,
      secretNamespace,
      ...objects.flatMap((o) => (o.metadata?.namespace ? [o.metadata.namespace] : [])),
    ]),
  ];
  await cluster.apply(namespaces.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }) as KubernetesObject));
  await cluster.apply(objects);
  const kc = await serviceAccountKubeConfig(cluster.kc, opts.namespace, sa.metadata.name);
  // RBAC reaches the authorizer through its informers: wait until the state Role counts before the service starts.
  const reviews = kc.makeApiClient(AuthorizationV1Api);
  await waitUntil(
    'the chart ServiceAccount may create Leases in the state namespace',
    async () =>
      (
        await reviews.createSelfSubjectAccessReview({
          body: {
            spec: { resourceAttributes: { namespace: stateNamespace, verb: 'create', group: 'coordination.k8s.io', resource: 'leases' } },
          },
        })
      ).status?.allowed,
    { timeoutMs: 20_000 },
  );
  const kubeconfigPath = join(workDir, `kubeconfig-${opts.namespace}-${sa.metadata.name}`);
  await writeFile(kubeconfigPath, kc.exportConfig(), { mode: 0o600 });
  return {
    kubeconfigPath,
    kc,
    serviceAccount: { namespace: opts.namespace, name: sa.metadata.name },
    stateNamespace,
    secretNamespace,
    ...(env['WATCH_NAMESPACES'] ? { watchNamespaces: env['WATCH_NAMESPACES'] } : {}),
    objects,
  };
}

/**
 * Plays Keptn's secret-service for the Secrets a test applies with its labels (`keptn create secret` made them): each
 * name joins its scope's Role, as upstream does. Then waits until the authorizer lets the chart's ServiceAccount read
 * it, so a test never races RBAC propagation.
 */
export function secretServiceFor(cluster: TestCluster, identity: ChartIdentity): (objects: KubernetesObject[]) => Promise<void> {
  const user = `system:serviceaccount:${identity.serviceAccount.namespace}:${identity.serviceAccount.name}`;
  const reviews = cluster.kc.makeApiClient(AuthorizationV1Api);
  return async (objects) => {
    for (const secret of objects) {
      const scope = scopeOf(secret);
      const { name, namespace } = secret.metadata ?? {};
      if (!scope || !name || !namespace) continue;
      await grantToScope(cluster.kc, { namespace, name, scope });
      if (namespace !== identity.secretNamespace) continue;
      await waitUntil(
        `the chart ServiceAccount may read Secret ${namespace}/${name}`,
        async () =>
          (
            await reviews.createSubjectAccessReview({
              body: { spec: { user, resourceAttributes: { namespace, verb: 'get', resource: 'secrets', name } } },
            })
          ).status?.allowed === true,
        { timeoutMs: 20_000 },
      );
    }
  };
}
