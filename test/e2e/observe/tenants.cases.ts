// Observation authority (issue 19 item 2, ADR 16): a tenant who may manage Flux objects in its own namespace cannot
// make the observer start another team's sequences by annotating its objects.
import { expect } from '@jest/globals';
import { type KubernetesObject } from '@kubernetes/client-node';
import { serviceAccountKubeConfig } from '../../env/chart-rbac.js';
import { TestCluster } from '../../env/cluster.js';
import { waitUntil } from '../../env/process.js';
import { appFiles, IMAGE, imageInCluster, PROJECT, type TestApp } from '../../env/sample-app.js';
import { API, announced, announcementOf, env, events, linkedApp, nextId, notifyTool, pushNewTag, records } from './world.js';
import { concurrentCases } from '../support/concurrent.js';

export function tenantCases(): void {
  const concurrently = concurrentCases(
    'a tenant whose ServiceAccount may manage Flux objects only in its own namespace (issue 19, item 2)',
  );
  concurrently(
    "links its own Kustomization to another team's service and grants it itself: no sequence; the team's own object still starts one",
    async () => {
      const victim = await linkedApp('flux');
      const id = nextId();
      const ns = `tenant-${id}`;
      const name = `tenant-app-${id}`;
      const { url, commit } = await env.git.createRepo(name, appFiles(name));
      const tenantApp: TestApp = { name, namespace: ns, repo: name, repoUrl: url, initialCommit: commit, service: victim.service };
      // The platform engineer's part: the namespace, the tenant's ServiceAccount with a Role for Flux objects in that
      // namespace only, and the tenant's Git credentials there.
      await env.cluster.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubernetesObject,
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tenant', namespace: ns } } as KubernetesObject,
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'flux-objects', namespace: ns },
          rules: [
            {
              apiGroups: ['source.toolkit.fluxcd.io'],
              resources: ['gitrepositories'],
              verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
            },
            {
              apiGroups: ['kustomize.toolkit.fluxcd.io'],
              resources: ['kustomizations'],
              verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
            },
          ],
        } as KubernetesObject,
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'flux-objects', namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'flux-objects' },
          subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: ns }],
        } as KubernetesObject,
        {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `${name}-git`, namespace: ns },
          stringData: { username: env.git.username, password: env.git.password },
        } as KubernetesObject,
      ]);
      const tenant = new TestCluster(await serviceAccountKubeConfig(env.cluster.kc, ns, 'tenant'));
      // The tenant cannot touch the team's own object (RBAC): all it can do is in its own namespace.
      await expect(
        tenant.mergePatch({
          apiVersion: API.flux,
          kind: 'Kustomization',
          metadata: { name: victim.name, namespace: 'flux-system', annotations: { 'gitops.keptn.sh/observe-stage': 'dev' } },
        }),
      ).rejects.toMatchObject({ code: 403 });
      // Its own GitRepository and Kustomization, linked to the team's project, stage and service (the very ones whose
      // settings observe an object, so only the authority is missing) and granted to that project by itself.
      await tenant.apply([
        {
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'GitRepository',
          metadata: { name, namespace: ns },
          spec: { interval: '1h', url, ref: { branch: 'main' }, secretRef: { name: `${name}-git` } },
        } as KubernetesObject,
        {
          apiVersion: API.flux,
          kind: 'Kustomization',
          metadata: {
            name,
            namespace: ns,
            annotations: {
              'gitops.keptn.sh/observe-project': PROJECT,
              'gitops.keptn.sh/observe-stage': 'dev',
              'gitops.keptn.sh/observe-service': victim.service,
              'gitops.keptn.sh/projects': PROJECT,
            },
          },
          spec: {
            interval: '1h',
            retryInterval: '5s',
            path: `./apps/${name}`,
            prune: true,
            wait: true,
            timeout: '5m',
            targetNamespace: ns,
            sourceRef: { kind: 'GitRepository', name },
          },
        } as KubernetesObject,
      ]);
      const tenantObject = `Kustomization ${ns}/${name}`;
      await waitUntil('the tenant object seen', async () => (await records(tenantObject)).some((r) => r.phase === 'baseline'), {
        timeoutMs: 120_000,
      });
      // A change in the tenant's repository, applied by real Flux at the tenant's request.
      const pushed = await pushNewTag(tenantApp, '6.6.6', 'tenant change');
      const requestedAt = new Date().toISOString();
      for (const [apiVersion, kind] of [
        ['source.toolkit.fluxcd.io/v1', 'GitRepository'],
        [API.flux, 'Kustomization'],
      ] as const)
        await tenant.mergePatch({
          apiVersion,
          kind,
          metadata: { name, namespace: ns, annotations: { 'reconcile.fluxcd.io/requestedAt': requestedAt } },
        });
      // The observer decided on that revision: its record says refused, or (were the object's word enough) Keptn got it.
      const fromTenant = () => events.received.filter((e) => e.data?.labels?.['gitops.keptn.sh/object'] === tenantObject);
      await waitUntil(
        "the observer's decision on the tenant's revision",
        async () => fromTenant().length > 0 || (await records(tenantObject)).some((r) => r.revision === pushed && r.phase === 'refused'),
        { timeoutMs: 150_000 },
      );
      expect(fromTenant()).toEqual([]);
      expect((await records(tenantObject)).find((r) => r.revision === pushed)?.phase).toBe('refused');
      expect(await imageInCluster(env.cluster, tenantApp)).toBe(`${IMAGE}:6.6.6`);
      expect(events.received.filter((e) => e.data?.labels?.['gitops.keptn.sh/revision'] === pushed)).toEqual([]);
      expect(announced(victim)).toHaveLength(0);

      // The team's own object, which its settings observe, still starts its sequence.
      const foreign = await pushNewTag(victim, '0.2.0');
      await notifyTool('flux', victim);
      await announcementOf(victim, foreign);
      expect(announced(victim)).toHaveLength(1);
      expect(fromTenant()).toEqual([]);
    },
    400_000,
  );
}
