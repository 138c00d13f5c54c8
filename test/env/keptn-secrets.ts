// `keptn create secret NAME --scope=S` as Keptn 1.4.5's secret-service carries it out, for tests that need the very
// objects a real Keptn installation has. Upstream: keptn/keptn@1.4.5 secret-service/pkg/backend/secretbackend_k8s.go
// (CreateSecret: an Opaque Secret labelled managed-by/scope; per capability of the scope a Role named after the
// capability, `verbs` = its permissions on `secrets` with `resourceNames` = [NAME], or the existing Role's first rule
// with NAME appended; one RoleBinding `S-rolebinding` from the first Role to the ServiceAccount S, no namespace given)
// and installer/manifests/keptn/templates/secret-service.yaml (the scopes.yaml every installation ships).
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type KubernetesObject, type V1Role } from '@kubernetes/client-node';

/** Keptn 1.4.5's default scopes.yaml: scope → capability (the Role's name) → permissions (its verbs). */
export const KEPTN_SCOPES: Record<string, Record<string, string[]>> = {
  'keptn-default': { 'keptn-secrets-default-read': ['get'] },
  'keptn-webhook-service': { 'keptn-webhook-svc-read': ['get'] },
  'dynatrace-service': { 'keptn-dynatrace-svc-read': ['get'] },
  'keptn-prometheus-service': { 'keptn-prometheus-svc-read': ['get'] },
};

const MANAGED_BY = 'keptn-secret-service';

function status(err: unknown): number | undefined {
  return (err as { code?: number } | undefined)?.code;
}

/** The labels secret-service puts on a Secret of a scope. */
export const scopeLabels = (scope: string) => ({ 'app.kubernetes.io/managed-by': MANAGED_BY, 'app.kubernetes.io/scope': scope });

/** The scope of a Secret as secret-service made it, or undefined for any other Secret. */
export function scopeOf(secret: KubernetesObject): string | undefined {
  const labels = secret.metadata?.labels ?? {};
  const scope = labels['app.kubernetes.io/scope'];
  return secret.kind === 'Secret' && labels['app.kubernetes.io/managed-by'] === MANAGED_BY && scope && KEPTN_SCOPES[scope]
    ? scope
    : undefined;
}

/** Creates the Secret, Role(s) and RoleBinding exactly as secret-service does for `keptn create secret`. */
export async function keptnCreateSecret(
  kc: KubeConfig,
  opts: { namespace: string; name: string; scope: string; data: Record<string, string> },
): Promise<void> {
  if (!KEPTN_SCOPES[opts.scope]) throw new Error(`scope ${opts.scope} is not in Keptn's scopes.yaml`);
  const { namespace } = opts;
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace,
    body: { metadata: { name: opts.name, namespace, labels: scopeLabels(opts.scope) }, stringData: opts.data, type: 'Opaque' },
  });
  await grantToScope(kc, opts);
}

/** The Role(s) and RoleBinding secret-service writes for a new Secret of a scope: its name joins the scope's Roles. */
export async function grantToScope(kc: KubeConfig, opts: { namespace: string; name: string; scope: string }): Promise<void> {
  const capabilities = KEPTN_SCOPES[opts.scope];
  if (!capabilities) throw new Error(`scope ${opts.scope} is not in Keptn's scopes.yaml`);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const labels = scopeLabels(opts.scope);
  const { namespace } = opts;
  const roles = Object.entries(capabilities).map(([capability, verbs]): V1Role => ({
    metadata: { name: capability, namespace, labels },
    rules: [{ verbs, apiGroups: [''], resources: ['secrets'], resourceNames: [opts.name] }],
  }));
  for (const role of roles) await addToRole(rbac, role, opts.name);
  try {
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: `${opts.scope}-rolebinding`, namespace, labels },
        subjects: [{ kind: 'ServiceAccount', name: opts.scope }],
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roles[0]!.metadata!.name! },
      },
    });
  } catch (err: unknown) {
    if (status(err) !== 409) throw err;
  }
}

/**
 * Creates the scope's Role, or adds the Secret's name to it: a read-modify-write that tests making Secrets at once
 * may race on, so a conflict (409: someone else's write came between) is answered by reading again.
 */
async function addToRole(rbac: RbacAuthorizationV1Api, role: V1Role, secret: string): Promise<void> {
  const { namespace, name } = role.metadata as { namespace: string; name: string };
  for (;;) {
    try {
      await rbac.createNamespacedRole({ namespace, body: role });
      return;
    } catch (err: unknown) {
      if (status(err) !== 409) throw err;
    }
    const existing = await rbac.readNamespacedRole({ namespace, name });
    const names = existing.rules![0]!.resourceNames ?? [];
    if (names.includes(secret)) return;
    existing.rules![0]!.resourceNames = [...names, secret];
    try {
      await rbac.replaceNamespacedRole({ namespace, name, body: existing });
      return;
    } catch (err: unknown) {
      if (status(err) !== 409) throw err;
    }
  }
}
