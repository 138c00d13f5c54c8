// The Flux verdict cases' one environment (kube-apiserver, Flux, Git, NATS, the distributor and the service as the
// chart's ServiceAccount), shared by every case module of verdicts-flux.e2e.test.ts, and the team setups they build.
// `env` and `events` are live bindings: set by start() in the test file's beforeAll, read by the cases when they run.
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import { CHART_DEPLOYMENT, IMAGE, imageInCluster, keptnSecret, toolObjects, type TestApp, directDeployment } from '../../env/sample-app.js';

export let env: Environment;
export let events: EventStream;
let counter = 0;

export async function start(): Promise<void> {
  env = await startEnvironment({ flux: true });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}

export async function stop(): Promise<void> {
  events?.close();
  await env?.stop();
}

export const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }) as KubernetesObject;

/** A repository with `files`, its namespace and Secret, and the team's Flux objects. */
export async function newApp(
  prefix: string,
  files: (name: string) => Record<string, string>,
  objects: (app: TestApp) => KubernetesObject[],
  settings: (app: TestApp) => string,
): Promise<TestApp> {
  const name = `${prefix}-${++counter}`;
  const { url, commit } = await env.git.createRepo(name, files(name));
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  await env.cluster.apply([ns(name), keptnSecret(app, env), ...objects(app)]);
  env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settings(app));
  return app;
}

export const initiallyDeployed = (app: TestApp) =>
  waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });

export interface Delivery {
  triggered: KeptnCloudEvent;
  finished: KeptnCloudEvent;
  imageAtFinish: string | undefined;
  ms: number;
}

export async function deliver(app: TestApp, image = `${IMAGE}:0.2.0`): Promise<Delivery> {
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', directDeployment(app.service, { image }));
  const t0 = Date.now();
  await env.controlPlane.publish(triggered);
  await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 10_000, what: '.started' });
  const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
  return { triggered, finished, imageAtFinish: await imageInCluster(env.cluster, app), ms: Date.now() - t0 };
}

export function gitRepository(app: TestApp, ref: Record<string, string> = { branch: 'main' }): KubernetesObject {
  return {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name: app.name, namespace: 'flux-system' },
    spec: { interval: '1h', url: app.repoUrl, ref, secretRef: { name: `${app.name}-git` } },
  } as KubernetesObject;
}

/** The team's Kustomization, as in sample-app.ts, with `spec` overrides. */
export function fluxObjects(app: TestApp, spec: Record<string, unknown> = {}): KubernetesObject[] {
  const [secret, source, kustomization] = toolObjects('flux', app, env);
  const k = kustomization as KubernetesObject & { spec: Record<string, unknown> };
  return [secret!, source!, { ...k, spec: { ...k.spec, ...spec } } as KubernetesObject];
}

/**
 * A chart in the repository; `extra` adds files. With `failOn`, that tag adds a ConfigMap the API server rejects, so
 * the Helm upgrade fails the way a real broken release does (a Helm release record marked failed).
 */
export function chartFiles(extra: Record<string, string> = {}, failOn?: string): Record<string, string> {
  return {
    'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
    'charts/web/values.yaml': `image:\n  repository: ${IMAGE}\n  tag: 0.1.0 # set by Keptn\n`,
    ...(failOn
      ? {
          'charts/web/templates/broken.yaml': `{{- if eq .Values.image.tag "${failOn}" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n{{- end }}\n`,
        }
      : {}),
    'charts/web/templates/deployment.yaml': CHART_DEPLOYMENT,
    ...extra,
  };
}

export function helmSettings(
  app: TestApp,
  file: string,
  yamlPath: string,
  target: { kind: string; namespace: string } = { kind: 'HelmRelease', namespace: app.namespace },
  timeout = '120s',
): string {
  return `git:
  url: ${app.repoUrl}
  branch: main
  secretRef: { name: ${app.name}-git }
images:
  - file: ${file}
    yamlPath: ${yamlPath}
    part: tag
target:
  kind: ${target.kind}
  name: ${app.name}
  namespace: ${target.namespace}
timeout: ${timeout}
`;
}
