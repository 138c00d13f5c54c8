// Changes made in Git alone (issue 10), against the real peers: someone else pushes to the GitOps repository, real
// Flux or Argo CD applies it, and the service announces exactly one Keptn sequence for it; the sequence's deployment
// task is then answered without a commit. The service runs as replicas in their own processes (as in a pod), so the
// observing replica can be killed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { serviceAccountKubeConfig } from '../env/chart-rbac.js';
import { TestCluster } from '../env/cluster.js';
import { startEnvironment, startServiceProcess, stateNamespace, type Environment, type ServiceReplica } from '../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../env/keptn.js';
import { freePort, waitUntil } from '../env/process.js';
import {
  appFiles,
  helmAppFiles,
  IMAGE,
  imageInCluster,
  keptnSecret,
  PROJECT,
  settingsYaml,
  toolObjects,
  type TestApp,
  type Tool,
} from '../env/sample-app.js';

let env: Environment;
let events: EventStream;
let counter = 0;
let notifyPort: number;
/** The Flux Provider's HMAC key, and the Secret that grants it to the project on the service's side. */
const NOTIFY_KEY = 'e2e-notify-key-5b1d';
/** The Argo CD webhook's shared secret. */
const ARGO_TOKEN = 'e2e-argo-token-9c2e';
const replicas: ServiceReplica[] = [];
/** Quick takeover for the tests; the production default Lease is 20 s. */
const OBSERVING = { OBSERVE: 'flux,argocd', LEASE_SECONDS: '4', RESUME_INTERVAL: '1s' };

beforeAll(async () => {
  env = await startEnvironment({ flux: true, argocd: true, service: false });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
  notifyPort = await freePort();
  await env.cluster.apply([
    {
      apiVersion: 'v1',
      kind: 'Secret',
      // Made like a Keptn secret (keptn create secret, scope keptn-default), so the service may read it as any other.
      metadata: {
        name: 'keptn-gitops-notify',
        namespace: 'keptn',
        labels: { 'app.kubernetes.io/managed-by': 'keptn-secret-service', 'app.kubernetes.io/scope': 'keptn-default' },
        annotations: { 'gitops.keptn.sh/projects': PROJECT },
      },
      stringData: { 'flux-token': NOTIFY_KEY, 'argocd-token': ARGO_TOKEN },
    } as KubernetesObject,
  ]);
  replicas.push(
    await startServiceProcess(env, {
      replicaId: 'obs-1',
      extraEnv: { ...OBSERVING, NOTIFY_PORT: String(notifyPort), NOTIFY_SECRET: 'keptn-gitops-notify' },
    }),
  );
}, 300_000);

afterAll(async () => {
  for (const r of replicas) await r.stop().catch(() => undefined);
  events?.close();
  await env?.stop();
}, 60_000);

const KINDS = { flux: 'Kustomization', argocd: 'Application' } as const;
const API = { flux: 'kustomize.toolkit.fluxcd.io/v1', argocd: 'argoproj.io/v1alpha1' } as const;
const NS = { flux: 'flux-system', argocd: 'argocd' } as const;
const objectOf = (tool: Tool, app: TestApp) => `${KINDS[tool]} ${NS[tool]}/${app.name}`;

/**
 * A team's app, deployed by the tool before anyone links it to Keptn; then linked with the annotations. Its settings
 * observe it (`observe`, with the object as target): only they let the object start the project's sequences (ADR 16).
 */
async function linkedApp(tool: Tool, extraFiles: Record<string, string> = {}, link = true): Promise<TestApp> {
  const name = `obs-${tool}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, { ...appFiles(name), ...extraFiles });
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
    keptnSecret(app, env),
    ...toolObjects(tool, app, env, { automated: true }),
  ]);
  env.resources.put(
    { project: PROJECT, stage: 'dev', service: app.service },
    'gitops/config.yaml',
    `${settingsYaml(tool, app, { timeout: '120s' })}observe:\n  sequence: delivery\n`,
  );
  await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
  if (!link) return app;
  await env.cluster.mergePatch({
    apiVersion: API[tool],
    kind: KINDS[tool],
    metadata: {
      name,
      namespace: NS[tool],
      annotations: {
        'gitops.keptn.sh/observe-project': PROJECT,
        'gitops.keptn.sh/observe-stage': 'dev',
        'gitops.keptn.sh/observe-service': app.service,
      },
    },
  });
  // The revision it runs when linked is the baseline: never announced.
  await waitUntil(`${name} baseline recorded`, async () => (await records(objectOf(tool, app))).some((r) => r.phase === 'baseline'), {
    timeoutMs: 30_000,
  });
  return app;
}

async function records(object: string): Promise<Array<{ revision: string; phase: string }>> {
  const list = await env.cluster.kc
    .makeApiClient(CoreV1Api)
    .listNamespacedConfigMap({ namespace: stateNamespace(env), labelSelector: 'keptn-gitops-service/kind=observation' });
  return list.items
    .filter((cm) => cm.metadata?.annotations?.['keptn-gitops-service/object'] === object)
    .map((cm) => ({
      revision: cm.metadata?.annotations?.['keptn-gitops-service/revision'] ?? '',
      phase: cm.metadata?.labels?.['keptn-gitops-service/phase'] ?? '',
    }));
}

/** What a Flux Receiver or an Argo CD Git webhook does on a push: the tool looks at Git now. */
async function notifyTool(tool: Tool, app: TestApp): Promise<string> {
  const token = new Date().toISOString();
  if (tool === 'flux') {
    for (const kind of ['GitRepository', 'Kustomization'])
      await env.cluster.mergePatch({
        apiVersion: kind === 'GitRepository' ? 'source.toolkit.fluxcd.io/v1' : API.flux,
        kind,
        metadata: { name: app.name, namespace: 'flux-system', annotations: { 'reconcile.fluxcd.io/requestedAt': token } },
      });
  } else {
    await env.cluster.mergePatch({
      apiVersion: API.argocd,
      kind: 'Application',
      metadata: { name: app.name, namespace: 'argocd', annotations: { 'argocd.argoproj.io/refresh': 'normal' } },
    });
  }
  return token;
}

async function pushNewTag(app: TestApp, tag: string, subject = `bump web to ${tag}`): Promise<string> {
  return env.git.commitAsOther(
    app.repo,
    {
      [`apps/${app.name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n  - name: ${IMAGE}\n    newTag: ${tag}\n`,
    },
    subject,
  );
}

const announced = (app: TestApp, revision?: string) =>
  events.received.filter(
    (e) =>
      e.type === 'sh.keptn.event.dev.delivery.triggered' &&
      e.data?.service === app.service &&
      (revision === undefined || e.data?.labels?.['gitops.keptn.sh/revision'] === revision),
  );

function announcementOf(app: TestApp, revision: string, timeoutMs = 150_000): Promise<KeptnCloudEvent> {
  return events.waitFor((e) => announced(app, revision).includes(e), { timeoutMs, what: `the sequence for ${revision}` });
}

/** Keptn's side of the sequence: its first task, as shipyard-controller sends it, with the sequence's data. */
async function deploymentTask(sequence: KeptnCloudEvent): Promise<KeptnCloudEvent> {
  const { project, stage, service, labels } = sequence.data as Record<string, unknown>;
  const triggered = keptnEvent(
    'sh.keptn.event.deployment.triggered',
    { project, stage, service, labels, deployment: { deploymentstrategy: 'direct' } },
    { shkeptncontext: sequence.shkeptncontext!, gitcommitid: env.resources.version()! },
  );
  await env.controlPlane.publish(triggered);
  return events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 150_000, what: 'deployment.finished' });
}

describe.each(['flux', 'argocd'] as const)('a change pushed to Git and applied by %s', (tool) => {
  it('starts exactly one sequence, with the project, stage, service and where the change came from', async () => {
    const app = await linkedApp(tool);
    const foreign = await pushNewTag(app, '0.2.0', 'bump web to 0.2.0');
    await notifyTool(tool, app);
    const sequence = await announcementOf(app, foreign);
    expect(sequence).toMatchObject({
      source: 'gitops-service',
      shkeptnspecversion: '0.2.4',
      data: {
        project: PROJECT,
        stage: 'dev',
        service: app.service,
        result: 'pass',
        labels: {
          'gitops.keptn.sh/tool': tool,
          'gitops.keptn.sh/object': objectOf(tool, app),
          'gitops.keptn.sh/revision': foreign,
          'gitops.keptn.sh/author': 'Someone Else <else@example.test>',
          'gitops.keptn.sh/subject': 'bump web to 0.2.0',
          'gitops.keptn.sh/verdict': 'pass',
        },
      },
    });
    expect(sequence.shkeptncontext).toMatch(/^[0-9a-f-]{36}$/);
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);

    // The controller reports the same revision again (a reconcile that finds nothing new), then a later push: the
    // later one is announced once, the first is still announced once (per object the observer takes changes in order).
    await notifyTool(tool, app);
    const later = await pushNewTag(app, '0.3.0');
    await notifyTool(tool, app);
    await announcementOf(app, later);
    expect(announced(app, foreign)).toHaveLength(1);
    expect(announced(app, later)).toHaveLength(1);
    expect(announced(app)).toHaveLength(2);
  }, 400_000);

  it("the sequence's deployment task passes without a commit and reports the observed revision", async () => {
    const app = await linkedApp(tool);
    const foreign = await pushNewTag(app, '0.2.0');
    await notifyTool(tool, app);
    const sequence = await announcementOf(app, foreign);
    const finished = await deploymentTask(sequence);
    expect(finished.data).toMatchObject({ status: 'succeeded', result: 'pass', deployment: { gitCommit: foreign } });
    expect(finished.data.message).toContain('made in Git');
    // Nothing written: the history is the team's initial commit and their push.
    expect((await env.git.log(app.repo)).map((c) => c.sha)).toEqual([foreign, app.initialCommit]);
    // And the deployment the service made itself is not announced as a change made in Git.
    expect(announced(app)).toHaveLength(1);
  }, 400_000);
});

describe('a deployment Keptn drove itself', () => {
  it('is not announced again as a change made in Git', async () => {
    const app = await linkedApp('flux');
    const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
      project: PROJECT,
      stage: 'dev',
      service: app.service,
      configurationChange: { values: { image: `${IMAGE}:0.4.0` } },
    });
    await env.controlPlane.publish(triggered);
    const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 150_000 });
    expect(finished.data).toMatchObject({ result: 'pass' });
    const ours = finished.data.deployment.gitCommit as string;
    await waitUntil(
      'our commit recorded as own',
      async () => (await records(objectOf('flux', app))).some((r) => r.revision === ours && r.phase === 'own'),
      {
        timeoutMs: 30_000,
      },
    );
    expect(announced(app)).toHaveLength(0);
  }, 300_000);
});

describe('a tenant whose ServiceAccount may manage Flux objects only in its own namespace (issue 19, item 2)', () => {
  it("links its own Kustomization to another team's service and grants it itself: no sequence; the team's own object still starts one", async () => {
    const victim = await linkedApp('flux');
    const ns = `tenant-${++counter}`;
    const name = `tenant-app-${counter}`;
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
  }, 400_000);
});

describe('an unappliable change pushed to Git', () => {
  it("is announced as a failure with Flux's own message", async () => {
    const app = await linkedApp('flux');
    const broken = await env.git.commitAsOther(
      app.repo,
      {
        [`apps/${app.name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - missing-service.yaml\n`,
      },
      'add service',
    );
    await notifyTool('flux', app);
    const sequence = await announcementOf(app, broken);
    expect(sequence.data).toMatchObject({
      result: 'fail',
      labels: { 'gitops.keptn.sh/verdict': 'fail', 'gitops.keptn.sh/revision': broken },
    });
    expect(sequence.data.message).toMatch(/missing-service\.yaml/);
  }, 300_000);
});

describe('notifications wake the observer up; the objects decide (ADR 14)', () => {
  it('a real notification arrives before health is known: a Kustomization without wait whose workload cannot roll out is no pass; a forged one is refused', async () => {
    const app = await linkedApp('flux');
    // Flux does not check health (no spec.wait): it calls the apply Ready at once, and notification-controller sends
    // its ReconciliationSucceeded event then, long before the Deployment could be available.
    await env.cluster.mergePatch({
      apiVersion: API.flux,
      kind: 'Kustomization',
      metadata: { name: app.name, namespace: 'flux-system' },
      spec: { wait: false },
    });
    await env.cluster.apply([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${app.name}-keptn`, namespace: 'flux-system' },
        stringData: { token: NOTIFY_KEY },
      } as KubernetesObject,
      {
        apiVersion: 'notification.toolkit.fluxcd.io/v1beta3',
        kind: 'Provider',
        metadata: { name: `${app.name}-keptn`, namespace: 'flux-system' },
        spec: { type: 'generic-hmac', address: `http://127.0.0.1:${notifyPort}/flux`, secretRef: { name: `${app.name}-keptn` } },
      } as KubernetesObject,
      {
        apiVersion: 'notification.toolkit.fluxcd.io/v1beta3',
        kind: 'Alert',
        metadata: { name: `${app.name}-keptn`, namespace: 'flux-system' },
        spec: {
          providerRef: { name: `${app.name}-keptn` },
          eventSeverity: 'info',
          eventSources: [{ kind: 'Kustomization', name: app.name }],
          // As the README had teams write it before ADR 14, when a ReconciliationSucceeded event with this metadata
          // was announced as a pass at once; the link is the object's own now, and this is ignored.
          eventMetadata: { 'keptn-project': PROJECT, 'keptn-stage': 'dev', 'keptn-service': app.service },
        },
      } as KubernetesObject,
    ]);
    // A push whose Deployment can never be scheduled; its progress deadline makes the rollout's failure final.
    const stuck = await env.git.commitAsOther(
      app.repo,
      {
        [`apps/${app.name}/deployment.yaml`]: (await env.git.readFile(app.repo, `apps/${app.name}/deployment.yaml`))
          .replace('    spec:\n      containers:', '    spec:\n      nodeSelector: { no-such-node: "true" }\n      containers:')
          .replace('progressDeadlineSeconds: 600', 'progressDeadlineSeconds: 10'),
      },
      'schedule web on a node that does not exist',
    );
    await notifyTool('flux', app);
    const sequence = await announcementOf(app, stuck);
    // The deployment rules' verdict: applied, but the Deployment failed to roll out. Never a pass on the notification.
    expect(sequence.data).toMatchObject({
      result: 'fail',
      labels: { 'gitops.keptn.sh/verdict': 'fail', 'gitops.keptn.sh/revision': stuck },
    });
    expect(sequence.data.message).toMatch(/without checking health|failed to roll out/);
    expect(announced(app, stuck)).toHaveLength(1);

    // A forged notification (signed with a guessed key): 401, nothing looked at, nothing announced.
    const forged = JSON.stringify({
      involvedObject: { kind: 'Kustomization', namespace: 'flux-system', name: app.name },
      severity: 'info',
      reason: 'ReconciliationSucceeded',
      message: 'forged',
      metadata: { revision: `main@sha1:${'f'.repeat(40)}` },
    });
    const { createHmac } = await import('node:crypto');
    const res = await fetch(`http://127.0.0.1:${notifyPort}/flux`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-signature': `sha256=${createHmac('sha256', 'guessed').update(forged).digest('hex')}`,
      },
      body: forged,
    });
    expect(res.status).toBe(401);
    expect(announced(app, 'f'.repeat(40))).toHaveLength(0);
  }, 300_000);
});

/** A chart in the repository that the API server refuses for tag 0.9.9 (a ConfigMap with an invalid name). */
function brokenChartApp(name: string): Record<string, string> {
  return {
    ...helmAppFiles(name),
    'charts/web/templates/broken.yaml': `{{- if eq .Values.image.tag "0.9.9" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n{{- end }}\n`,
  };
}

describe('Argo CD notifications', () => {
  it("argocd-notifications' webhook with the shared secret wakes the observer up: one sequence, judged from the Application", async () => {
    const app = await linkedApp('argocd', {}, false);
    // The README's webhook service, template and trigger, as a team would put them into argocd-notifications-cm.
    await env.cluster.mergePatch({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'argocd-notifications-cm', namespace: 'argocd' },
      data: {
        'service.webhook.keptn': `url: http://127.0.0.1:${notifyPort}/argocd\nheaders:\n  - { name: Authorization, value: "Bearer $keptn-token" }\n`,
        'template.keptn': `webhook:
  keptn:
    method: POST
    body: |
      {"namespace": "{{.app.metadata.namespace}}", "name": "{{.app.metadata.name}}",
       "annotations": {{toJson .app.metadata.annotations}},
       "revision": "{{.app.status.sync.revision}}", "sync": "{{.app.status.sync.status}}",
       "syncedRevision": "{{.app.status.operationState.syncResult.revision}}",
       "phase": "{{.app.status.operationState.phase}}", "health": "{{.app.status.health.status}}",
       "message": {{toJson .app.status.operationState.message}}}
`,
        'trigger.on-keptn': `- when: app.status.operationState.phase in ['Failed', 'Error'] or (app.status.sync.status == 'Synced' and app.status.health.status in ['Healthy', 'Degraded'])
  oncePer: app.status.sync.revision
  send: [keptn]
`,
      },
    } as KubernetesObject & Record<string, unknown>);
    await env.cluster.mergePatch({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'argocd-notifications-secret', namespace: 'argocd' },
      data: { 'keptn-token': Buffer.from(ARGO_TOKEN).toString('base64') },
    } as KubernetesObject & Record<string, unknown>);
    // Linked like any observed Application; the webhook only makes the observer look at it sooner.
    await env.cluster.mergePatch({
      apiVersion: API.argocd,
      kind: 'Application',
      metadata: {
        name: app.name,
        namespace: 'argocd',
        annotations: {
          'gitops.keptn.sh/observe-project': PROJECT,
          'gitops.keptn.sh/observe-stage': 'dev',
          'gitops.keptn.sh/observe-service': app.service,
          'notifications.argoproj.io/subscribe.on-keptn.keptn': '',
        },
      },
    } as unknown as KubernetesObject & Record<string, unknown>);
    const object = objectOf('argocd', app);
    await waitUntil('the baseline recorded', async () => (await records(object)).some((r) => r.phase === 'baseline'), {
      timeoutMs: 90_000,
    });
    const foreign = await pushNewTag(app, '0.2.0', 'bump web to 0.2.0');
    await notifyTool('argocd', app);
    const sequence = await announcementOf(app, foreign);
    expect(sequence.data).toMatchObject({
      project: PROJECT,
      stage: 'dev',
      service: app.service,
      result: 'pass',
      labels: { 'gitops.keptn.sh/tool': 'argocd', 'gitops.keptn.sh/object': object, 'gitops.keptn.sh/subject': 'bump web to 0.2.0' },
    });
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.2.0`);
    expect(announced(app)).toHaveLength(1);
  }, 300_000);
});

describe('revert on failure (settings onFailure: revert)', () => {
  it('reverts our failed commit: Git and the cluster are back on the previous image, and .finished names both commits', async () => {
    const name = `obs-revert-${++counter}`;
    const { url, commit } = await env.git.createRepo(name, brokenChartApp(name));
    const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
    await env.cluster.apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as KubernetesObject,
      keptnSecret(app, env),
      ...toolObjects('flux', app, env),
    ]);
    env.resources.put(
      { project: PROJECT, stage: 'dev', service: app.service },
      'gitops/config.yaml',
      `git:\n  url: ${url}\n  branch: main\n  secretRef: { name: ${name}-git }\nimages:\n  - file: apps/${name}/release.yaml\n    yamlPath: spec.values.image.tag\n    part: tag\ntarget:\n  kind: HelmRelease\n  name: ${name}\n  namespace: ${name}\ntimeout: 120s\nonFailure: revert\n`,
    );
    await waitUntil(`${name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
      timeoutMs: 120_000,
    });
    const triggered = keptnEvent('sh.keptn.event.deployment.triggered', {
      project: PROJECT,
      stage: 'dev',
      service: app.service,
      configurationChange: { values: { image: `${IMAGE}:0.9.9` } },
    });
    await env.controlPlane.publish(triggered);
    const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 280_000, what: '.finished' });
    const log = await env.git.log(app.repo);
    const [revert, ours] = log;
    expect(log).toHaveLength(3);
    expect(ours!.body).toContain(`Keptn-Deployment-Id: ${triggered.id}`);
    expect(revert!.subject).toMatch(new RegExp(`^keptn: revert ${ours!.sha.slice(0, 12)}`));
    expect(finished.data).toMatchObject({
      status: 'succeeded',
      result: 'fail',
      deployment: { gitCommit: ours!.sha, revertCommit: revert!.sha },
    });
    expect(finished.data.message).toMatch(/ConfigMap "Bad_Name" is invalid|status: 'Failed'/);
    expect(finished.data.message).toContain(`Reverted with commit ${revert!.sha}, which is deployed`);
    expect(await env.git.readFile(app.repo, `apps/${name}/release.yaml`)).toContain('tag: 0.1.0 # set by Keptn');
    expect(await imageInCluster(env.cluster, app)).toBe(`${IMAGE}:0.1.0`);
    expect(events.received.filter((e) => e.triggeredid === triggered.id && e.type.endsWith('.finished'))).toHaveLength(1);
  }, 320_000);
});

describe('two replicas', () => {
  it('the observing replica is killed mid-way: the other takes over and announces the change exactly once', async () => {
    replicas.push(await startServiceProcess(env, { replicaId: 'obs-2', extraEnv: OBSERVING }));
    // Held back by a gate: Flux cannot apply the push until the test opens it, after the kill.
    const app = await linkedApp('flux', {
      'gates/open/gate.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gate\ndata: { open: "true" }\n',
    });
    const gate = (path: string) =>
      ({
        apiVersion: API.flux,
        kind: 'Kustomization',
        metadata: { name: `gate-${app.name}`, namespace: 'flux-system' },
        spec: { interval: '1h', path, prune: true, targetNamespace: app.name, sourceRef: { kind: 'GitRepository', name: app.name } },
      }) as KubernetesObject;
    await env.cluster.apply([gate('./gates/closed')]);
    await env.cluster.mergePatch({
      apiVersion: API.flux,
      kind: 'Kustomization',
      metadata: { name: app.name, namespace: 'flux-system' },
      spec: { dependsOn: [{ name: `gate-${app.name}` }] },
    });
    const foreign = await pushNewTag(app, '0.2.0');
    await notifyTool('flux', app);

    const leases = env.cluster.kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await leases.readNamespacedLease({ namespace: stateNamespace(env), name: 'keptn-gitops-observer' })).spec?.holderIdentity;
    const observing = await holder();
    const dead = replicas.find((r) => r.replicaId === observing)!;
    const survivor = replicas.find((r) => r.replicaId !== observing)!;
    await dead.process.kill();
    await waitUntil('the other replica holds the observer Lease', async () => (await holder()) === survivor.replicaId, {
      timeoutMs: 30_000,
    });
    await env.cluster.apply([gate('./gates/open')]);
    await notifyTool('flux', app);
    const sequence = await announcementOf(app, foreign);
    expect(sequence.data).toMatchObject({ result: 'pass', labels: { 'gitops.keptn.sh/revision': foreign } });
    // Exactly once: a later push is announced by the survivor, and the first is still announced once.
    const later = await pushNewTag(app, '0.3.0');
    await notifyTool('flux', app);
    await announcementOf(app, later);
    expect(announced(app, foreign)).toHaveLength(1);
    expect(await records(objectOf('flux', app))).toEqual(
      expect.arrayContaining([expect.objectContaining({ revision: foreign, phase: 'sent' })]),
    );
  }, 400_000);
});
