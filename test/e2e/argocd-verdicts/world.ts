// The Argo CD verdict cases' one environment (kube-apiserver, Argo CD with the applicationset controller, Git,
// NATS, the distributor and the service as the chart's ServiceAccount), shared by every case module of
// verdicts-argocd.e2e.test.ts, and the setups they build. `env` and `events` are live bindings set by start().
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvironment, type Environment } from '../../env/environment.js';
import { answerTo, keptnEvent, type EventStream, type KeptnCloudEvent } from '../../env/keptn.js';
import { waitUntil } from '../../env/process.js';
import {
  appFiles,
  grantAnnotations,
  IMAGE,
  imageInCluster,
  keptnSecret,
  settingsYaml,
  toolObjects,
  type TestApp,
  directDeployment,
} from '../../env/sample-app.js';

export const execFileAsync = promisify(execFile);
export const APP = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application' } as const;

export interface ApplicationObject extends KubernetesObject {
  spec: Record<string, unknown>;
  operation?: Record<string, unknown>;
  status?: {
    operationState?: {
      phase?: string;
      operation?: { info?: Array<{ name: string; value: string }>; retry?: unknown; sync?: { syncOptions?: string[]; prune?: boolean } };
    };
  };
}

export let env: Environment;
export let events: EventStream;
let counter = 0;

export async function start(): Promise<void> {
  env = await startEnvironment({ argocd: true, argocdApplicationSets: true });
  events = env.controlPlane.subscribe('sh.keptn.event.>');
}

export async function stop(): Promise<void> {
  events?.close();
  await env?.stop();
}

/** A repository with the sample app (and `extra` files, or files named after the app), the Keptn secret and settings; the Application is the test's. */
export async function newRepo(extra: Record<string, string> | ((name: string) => Record<string, string>) = {}): Promise<TestApp> {
  const name = `argocd-verdict-${++counter}`;
  const more = typeof extra === 'function' ? extra(name) : extra;
  const { url, commit } = await env.git.createRepo(name, { ...appFiles(name), ...more });
  const app: TestApp = { name, namespace: name, repo: name, repoUrl: url, initialCommit: commit, service: `svc-${name}` };
  const [repoSecret] = toolObjects('argocd', app, env);
  await env.cluster.apply([keptnSecret(app, env), repoSecret!]);
  return app;
}

export function application(app: TestApp, spec: Record<string, unknown>): KubernetesObject {
  return {
    ...APP,
    metadata: { name: app.name, namespace: 'argocd', annotations: grantAnnotations() },
    spec: {
      project: 'default',
      source: { repoURL: app.repoUrl, path: `apps/${app.name}`, targetRevision: 'main' },
      destination: { server: 'https://kubernetes.default.svc', namespace: app.namespace },
      ...spec,
    },
  } as KubernetesObject;
}

export async function initiallyDeployed(app: TestApp, revision: string): Promise<void> {
  await env.cluster.mergePatch({ ...APP, metadata: { name: app.name, namespace: 'argocd' }, operation: { sync: { revision } } });
  await waitUntil(`${app.name} initially deployed`, async () => (await imageInCluster(env.cluster, app)) === `${IMAGE}:0.1.0`, {
    timeoutMs: 120_000,
  });
}

/** The app's namespace, its Application and its settings, then waits until Argo CD has deployed `revision`. */
export async function deployedApplication(app: TestApp, spec: Record<string, unknown>, settings: string, revision: string): Promise<void> {
  await env.cluster.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: app.namespace } } as KubernetesObject,
    application(app, spec),
  ]);
  env.resources.put({ project: 'podtato', stage: 'dev', service: app.service }, 'gitops/config.yaml', settingsWith(app, settings));
  await initiallyDeployed(app, revision);
}

export async function deliver(
  app: TestApp,
  image = `${IMAGE}:0.2.0`,
): Promise<{ finished: KeptnCloudEvent; triggered: KeptnCloudEvent; ms: number }> {
  const { triggered, t0 } = await trigger(app, image);
  const finished = await events.waitFor(answerTo(triggered.id, 'finished', 'deployment'), { timeoutMs: 180_000, what: '.finished' });
  return { finished, triggered, ms: Date.now() - t0 };
}

/** Sends deployment.triggered and waits for .started only. */
export async function trigger(app: TestApp, image: string): Promise<{ triggered: KeptnCloudEvent; t0: number }> {
  const triggered = keptnEvent('sh.keptn.event.deployment.triggered', directDeployment(app.service, { image }));
  const t0 = Date.now();
  await env.controlPlane.publish(triggered);
  await events.waitFor(answerTo(triggered.id, 'started', 'deployment'), { timeoutMs: 10_000, what: '.started' });
  return { triggered, t0 };
}

/** With ARGOCD_CAPTURE=<dir>, keeps the Application as the real controller left it, for test/fixtures/argocd. */
export async function capture(app: TestApp, file: string): Promise<void> {
  const dir = process.env['ARGOCD_CAPTURE'];
  if (!dir) return;
  const a = await readApplication(app);
  delete (a.metadata as { managedFields?: unknown }).managedFields;
  await writeFile(join(dir, `${file}.json`), `${JSON.stringify(a, null, 2)}\n`);
}

/** Settings for the sample app with `extra` lines appended (e.g. an `argocd:` block). */
export const settingsWith = (app: TestApp, extra: string) =>
  `${settingsYaml('argocd', app).replace(/timeout: .*\n/, 'timeout: 120s\n')}${extra}`;

export const readApplication = (app: TestApp) => env.cluster.read<ApplicationObject>(APP.apiVersion, APP.kind, 'argocd', app.name);
export const ourOperation = (a: ApplicationObject, triggeredId: string) =>
  a.status?.operationState?.operation?.info?.some((i) => i.value === triggeredId) ?? false;
