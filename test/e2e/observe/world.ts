// The observer's cases' one environment (kube-apiserver, Flux, Argo CD, Git, NATS, the distributor) with the
// observing replica, shared by every case module of observe.e2e.test.ts, and the team setups the cases build.
// `env`, `events` and `notifyPort` are live bindings: set by start() in the test file's beforeAll.
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, startServiceProcess, stateNamespace, type Environment, type ServiceReplica } from '../../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../../env/keptn.js';
import { freePort, waitUntil } from '../../env/process.js';
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
} from '../../env/sample-app.js';

export let env: Environment;
export let events: EventStream;
let counter = 0;
export let notifyPort: number;
/** The Flux Provider's HMAC key, and the Secret that grants it to the project on the service's side. */
export const NOTIFY_KEY = 'e2e-notify-key-5b1d';
/** The Argo CD webhook's shared secret. */
export const ARGO_TOKEN = 'e2e-argo-token-9c2e';
export const replicas: ServiceReplica[] = [];
/** Quick takeover for the tests; the production default Lease is 20 s. */
export const OBSERVING = { OBSERVE: 'flux,argocd', LEASE_SECONDS: '4', RESUME_INTERVAL: '1s' };

/** A fresh number for names: the cases run concurrently, each on repositories and namespaces of its own. */
export const nextId = (): number => ++counter;

export async function start(): Promise<void> {
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
}

export async function stop(): Promise<void> {
  for (const r of replicas) await r.stop().catch(() => undefined);
  events?.close();
  await env?.stop();
}

export const KINDS = { flux: 'Kustomization', argocd: 'Application' } as const;
export const API = { flux: 'kustomize.toolkit.fluxcd.io/v1', argocd: 'argoproj.io/v1alpha1' } as const;
export const NS = { flux: 'flux-system', argocd: 'argocd' } as const;
export const objectOf = (tool: Tool, app: TestApp) => `${KINDS[tool]} ${NS[tool]}/${app.name}`;

/**
 * A team's app, deployed by the tool before anyone links it to Keptn; then linked with the annotations. Its settings
 * observe it (`observe`, with the object as target): only they let the object start the project's sequences (ADR 16).
 */
export async function linkedApp(tool: Tool, extraFiles: Record<string, string> = {}, link = true): Promise<TestApp> {
  const name = `obs-${tool}-${nextId()}`;
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

export async function records(object: string): Promise<Array<{ revision: string; phase: string }>> {
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
export async function notifyTool(tool: Tool, app: TestApp): Promise<string> {
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

export async function pushNewTag(app: TestApp, tag: string, subject = `bump web to ${tag}`): Promise<string> {
  return env.git.commitAsOther(
    app.repo,
    {
      [`apps/${app.name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n  - name: ${IMAGE}\n    newTag: ${tag}\n`,
    },
    subject,
  );
}

export const announced = (app: TestApp, revision?: string) =>
  events.received.filter(
    (e) =>
      e.type === 'sh.keptn.event.dev.delivery.triggered' &&
      e.data?.service === app.service &&
      (revision === undefined || e.data?.labels?.['gitops.keptn.sh/revision'] === revision),
  );

export function announcementOf(app: TestApp, revision: string, timeoutMs = 150_000): Promise<KeptnCloudEvent> {
  return events.waitFor((e) => announced(app, revision).includes(e), { timeoutMs, what: `the sequence for ${revision}` });
}

/** Keptn's side of the sequence: its first task, as shipyard-controller sends it, with the sequence's data. */
export async function deploymentTask(sequence: KeptnCloudEvent): Promise<KeptnCloudEvent> {
  const { project, stage, service, labels } = sequence.data as Record<string, unknown>;
  const triggered = keptnEvent(
    'sh.keptn.event.deployment.triggered',
    { project, stage, service, labels, deployment: { deploymentstrategy: 'direct' } },
    { shkeptncontext: sequence.shkeptncontext!, gitcommitid: env.resources.version()! },
  );
  await env.controlPlane.publish(triggered);
  return events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 150_000, what: 'deployment.finished' });
}

/** A chart in the repository that the API server refuses for tag 0.9.9 (a ConfigMap with an invalid name). */
export function brokenChartApp(name: string): Record<string, string> {
  return {
    ...helmAppFiles(name),
    'charts/web/templates/broken.yaml': `{{- if eq .Values.image.tag "0.9.9" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n{{- end }}\n`,
  };
}
