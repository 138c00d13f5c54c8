// Least privilege proven, not assumed: the chart's RBAC, rendered by the real helm and installed into the real
// kube-apiserver, is the only identity the service has here (a TokenRequest token of the chart's ServiceAccount).
// Real deployments through Flux and Argo CD must succeed with it; access reviews made with that same token prove what
// it cannot reach: Secrets other than the granted ones, ConfigMaps and Leases outside its state namespace, and any
// write on Flux or Argo CD objects beyond `patch`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthenticationV1Api, AuthorizationV1Api, CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../env/environment.js';
import { keptnCreateSecret } from '../env/keptn-secrets.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../env/keptn.js';
import { waitUntil } from '../env/process.js';
import {
  appFiles,
  gitHostOf,
  grantAnnotations,
  IMAGE,
  imageInCluster,
  PROJECT,
  settingsYaml,
  toolObjects,
  type TestApp,
  type Tool,
} from '../env/sample-app.js';

const RELEASE = 'gitops';
const RELEASE_NAMESPACE = 'gitops-system';
/** The chart's default state namespace for this release: one of its own (ADR 17). */
const STATE_NAMESPACE = 'gitops-system-gitops-state';
const MANAGED = 'app.kubernetes.io/managed-by=keptn-gitops-service';

let env: Environment;
let events: EventStream;
let counter = 0;

beforeAll(async () => {
  env = await startEnvironment({
    flux: true,
    argocd: true,
    // Installed apart from Keptn with nothing set but Keptn's namespace (chart README): Secrets read there, the
    // state in a namespace of its own by default.
    chartIdentity: { release: RELEASE, namespace: RELEASE_NAMESPACE, values: { keptnNamespace: 'keptn' } },
  });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}, 300_000);

afterAll(async () => {
  events?.close();
  await env?.stop();
}, 60_000);

/**
 * A team's app with its Git credentials made the Keptn way (`keptn create secret` in the keptn-default scope, whose
 * Role the chart binds) and granted; `scoped: false` makes the Secret with kubectl instead, outside every scope.
 */
async function newApp(tool: Tool, scoped = true): Promise<TestApp> {
  const name = `rbac-${tool}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, appFiles(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  const gitData = { username: env.git.username, password: env.git.password };
  const secret = `${name}-git`;
  if (scoped) {
    await keptnCreateSecret(env.cluster.kc, { namespace: 'keptn', name: secret, scope: 'keptn-default', data: gitData });
  } else {
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: secret, namespace: 'keptn' }, stringData: gitData } as KubernetesObject,
    ]);
  }
  await env.cluster.mergePatch({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace: 'keptn', name: secret, annotations: grantAnnotations([PROJECT], [gitHostOf(env.git.url)]) },
  });
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    ...toolObjects(tool, app, env),
  ]);
  env.resources.put({ project: PROJECT, stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsYaml(tool, app));
  if (tool === 'argocd') {
    // The team's first sync, as in deployment.e2e.test.ts.
    await env.cluster.mergePatch({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name, namespace: 'argocd' },
      operation: { sync: { revision: commit } },
    });
  }
  await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
  return app;
}

async function deliver(app: TestApp): Promise<KeptnCloudEvent> {
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
    project: PROJECT,
    stage: 'dev',
    service: app.service,
    configurationChange: { values: { image: `${IMAGE}:0.2.0` } },
  });
  await env.controlPlane.publish(triggered);
  await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 10_000, what: '.started' });
  const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
  expect(
    events.received
      .filter((e) => e.triggeredid === triggered.id)
      .map((e) => e.type)
      .sort(),
  ).toEqual(['sh.keptn.event.deployment.finished', 'sh.keptn.event.deployment.started']);
  return finished;
}

it("the service's kubeconfig is the chart's ServiceAccount, not admin", async () => {
  const review = await env.identity!.kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${RELEASE_NAMESPACE}:${RELEASE}`);
  expect(env.identity).toMatchObject({ stateNamespace: STATE_NAMESPACE, secretNamespace: 'keptn' });
});

describe.each<Tool>(['flux', 'argocd'])('%s: a real deployment with nothing but the chart RBAC', (tool) => {
  it("succeeds, with its records and Lease in the state namespace and none in Keptn's", async () => {
    const app = await newApp(tool);
    const finished = await deliver(app);
    const log = await env.git.log(app.repo);
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: log[0]!.sha } });
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    const admin = env.cluster.kc;
    const core = admin.makeApiClient(CoreV1Api);
    const leases = admin.makeApiClient(CoordinationV1Api);
    const records = (await core.listNamespacedConfigMap({ namespace: STATE_NAMESPACE, labelSelector: MANAGED })).items;
    expect(records.map((cm) => cm.metadata?.annotations?.['keptn-gitops-service/triggeredid'])).toContain(finished.triggeredid);
    expect((await leases.listNamespacedLease({ namespace: STATE_NAMESPACE, labelSelector: MANAGED })).items.length).toBeGreaterThan(0);
    expect((await core.listNamespacedConfigMap({ namespace: 'keptn', labelSelector: MANAGED })).items).toEqual([]);
    expect((await leases.listNamespacedLease({ namespace: 'keptn', labelSelector: MANAGED })).items).toEqual([]);
  }, 300_000);
});

it('a granted Secret outside every bound Keptn scope cannot be read: the deployment errors and nothing is committed', async () => {
  // Its annotations allow the project and the host; only RBAC stands in the way, so this fails only if the service
  // really runs as the chart's ServiceAccount.
  const app = await newApp('flux', false);
  const finished = await deliver(app);
  expect(finished.data).toMatchObject({ status: 'errored', result: 'fail' });
  expect(finished.data.message).toContain(`${app.name}-git`);
  expect(await env.git.log(app.repo)).toHaveLength(1);
}, 300_000);

describe('access reviews with the same token: what the chart ServiceAccount must not reach', () => {
  type Attrs = { namespace?: string; verb: string; group?: string; resource: string; name?: string; subresource?: string };
  const allowed = async (attrs: Attrs): Promise<boolean> => {
    const review = await env.identity!.kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: attrs } },
    });
    return review.status?.allowed === true;
  };
  const verbs = (list: string[], attrs: Omit<Attrs, 'verb'>): Attrs[] => list.map((verb) => ({ ...attrs, verb }));
  const WRITES = ['create', 'update', 'delete', 'deletecollection'];
  const FLUX_AND_ARGO = [
    { group: 'kustomize.toolkit.fluxcd.io', resource: 'kustomizations', namespace: 'flux-system' },
    { group: 'helm.toolkit.fluxcd.io', resource: 'helmreleases', namespace: 'flux-system' },
    { group: 'source.toolkit.fluxcd.io', resource: 'gitrepositories', namespace: 'flux-system' },
    { group: 'argoproj.io', resource: 'applications', namespace: 'argocd' },
  ];

  it('may not read any Secret but the granted ones, nor list, watch or write Secrets anywhere', async () => {
    const denied: Attrs[] = [
      ...['keptn-api-token', 'some-other-secret'].map((name) => ({ namespace: 'keptn', verb: 'get', resource: 'secrets', name })),
      ...['keptn', STATE_NAMESPACE, RELEASE_NAMESPACE, 'flux-system', 'argocd'].flatMap((namespace) =>
        verbs(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'], { namespace, resource: 'secrets' }),
      ),
      ...verbs(['get', 'list'], { resource: 'secrets' }),
    ];
    for (const attrs of denied) expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: false });
    // The check is live: a Secret made by `keptn create secret` in the bound scope is readable.
    await keptnCreateSecret(env.cluster.kc, {
      namespace: 'keptn',
      name: 'rbac-review-git',
      scope: 'keptn-default',
      data: { password: 'p' },
    });
    const granted: Attrs = { namespace: 'keptn', verb: 'get', resource: 'secrets', name: 'rbac-review-git' };
    await waitUntil('the scope Secret readable', () => allowed(granted).then((a) => a || undefined), { timeoutMs: 20_000 });
  }, 60_000);

  it("may not touch ConfigMaps or Leases outside its state namespace (Keptn's included)", async () => {
    const ALL = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
    for (const namespace of ['keptn', RELEASE_NAMESPACE, 'kube-system', 'flux-system', 'argocd']) {
      for (const attrs of [
        ...verbs(ALL, { namespace, resource: 'configmaps' }),
        ...verbs(ALL, { namespace, group: 'coordination.k8s.io', resource: 'leases' }),
      ])
        expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: false });
    }
    // Keptn's own leader-election Lease and configuration, by name.
    for (const verb of ['update', 'patch', 'delete']) {
      for (const attrs of [
        { namespace: 'keptn', verb, group: 'coordination.k8s.io', resource: 'leases', name: 'shipyard-controller' },
        { namespace: 'keptn', verb, resource: 'configmaps', name: 'keptn-domain' },
      ])
        expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: false });
    }
    // In the state namespace: what the service uses, and no more (no patch, watch or deletecollection).
    for (const [resource, group] of [
      ['configmaps', undefined],
      ['leases', 'coordination.k8s.io'],
    ] as const) {
      for (const verb of ALL) {
        const attrs = { namespace: STATE_NAMESPACE, verb, resource, ...(group ? { group } : {}) };
        const expected = ['get', 'list', 'create', 'update', 'delete'].includes(verb);
        expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: expected });
      }
    }
  }, 60_000);

  it('may only read, watch and patch Flux and Argo CD objects: no create, update, delete or status writes', async () => {
    for (const target of FLUX_AND_ARGO) {
      for (const attrs of [
        ...verbs(WRITES, target),
        { ...target, verb: 'update', subresource: 'status' },
        { ...target, verb: 'patch', subresource: 'status' },
      ])
        expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: false });
      expect(await allowed({ ...target, verb: 'patch' })).toBe(true);
    }
    for (const attrs of [
      ...verbs(['patch', ...WRITES], { group: 'source.toolkit.fluxcd.io', resource: 'helmcharts', namespace: 'flux-system' }),
      ...verbs(['list', 'patch', ...WRITES], { group: 'argoproj.io', resource: 'appprojects', namespace: 'argocd' }),
      ...verbs(['list', 'watch', 'patch', ...WRITES], { group: 'argoproj.io', resource: 'applicationsets', namespace: 'argocd' }),
      ...verbs(['list', 'patch', ...WRITES], { group: 'apps', resource: 'replicasets', namespace: 'default' }),
      ...verbs(['patch', ...WRITES], { group: 'apps', resource: 'deployments', namespace: 'default' }),
      ...verbs(['get', 'list', 'create', 'delete'], { resource: 'pods', namespace: 'default' }),
      // rbac.argocd reads Rollouts (a Suspended Application's timed pause); only rbac.rollouts may promote or abort them.
      ...verbs(['patch', ...WRITES], { group: 'argoproj.io', resource: 'rollouts', namespace: 'default' }),
      { group: 'argoproj.io', resource: 'rollouts', namespace: 'default', verb: 'patch', subresource: 'status' },
      ...verbs(['create', 'bind', 'escalate'], { group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: 'keptn' }),
    ])
      expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: false });
    for (const attrs of verbs(['get', 'list', 'watch'], { group: 'argoproj.io', resource: 'rollouts', namespace: 'default' }))
      expect({ ...attrs, allowed: await allowed(attrs) }).toEqual({ ...attrs, allowed: true });
  }, 60_000);
});
